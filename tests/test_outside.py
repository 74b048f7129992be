"""What a failed outside call means (shared/targets/outside.py): every failure of a createRun or a WebHook
callback is exactly one of two kinds. `Refused`: it surely had no effect (nothing left the app, or the other side
answered with a refusal), so the pause may be given back and the call made again; `forbidden` when the app's own
allow-list refused it, `transient` when the same call may well work a little later. `Unknown`: it may have had
an effect (the request left and no answer came, a timeout, a 5xx, an answer that cannot be read), so it is never
repeated blindly. Here each kind of failure is produced by a real peer and its classification checked; in
particular a request the other side received, and did not refuse, is never classified as Refused."""

import threading

import pytest

from local_dev.bad_peers import BadPeer
from local_dev.check_endpoint import CheckEndpoint
from shared.targets import callback
from shared.targets.adf import PipelineTarget, get_adf
from shared.targets.outside import OutsideCallFailed, Refused, Unknown
from tests.support import TARGET

FAST = {"ARM_READ_TIMEOUT_SECONDS": "0.5", "CALLBACK_READ_TIMEOUT_SECONDS": "0.5", "ARM_RETRY_TOTAL": "0",
        "CALLBACK_ALLOWED_HOSTS": "127.0.0.1"}
BODY = b'{"Output":{"pause_id":"x"},"StatusCode":"200"}'
PAUSE_ID = "0123456789abcdef" * 2


@pytest.fixture(scope="module")
def receiver():
    """One local WebHook receiver for the module (each test answers on a path of its own)."""
    with CheckEndpoint() as endpoint:
        yield endpoint


def deliver(uri) -> OutsideCallFailed | callback.Delivery:
    try:
        return callback.deliver(uri, BODY)
    except OutsideCallFailed as failure:
        return failure


def test_the_two_kinds_are_distinct_and_say_their_cause_briefly():
    refused, unknown = Refused("CallbackRefused", "the callback target answered HTTP 400", status=400), \
        Unknown("CallbackNoAnswer", "the callback was sent but no answer came back")
    assert isinstance(refused, OutsideCallFailed) and isinstance(unknown, OutsideCallFailed)
    assert not isinstance(refused, Unknown) and not isinstance(unknown, Refused)
    assert refused.summary == "CallbackRefused: the callback target answered HTTP 400"
    assert (refused.forbidden, refused.status, refused.transient) == (False, 400, False)
    assert Refused("X", "y").status is None and not Refused("X", "y").forbidden
    assert len(Unknown("Error", "x" * 5000).summary) == 1000


@pytest.mark.parametrize("status, kind, code, transient", [
    (400, Refused, "CallbackRefused", False),
    (404, Refused, "CallbackRefused", False),
    (408, Refused, "CallbackRefused", True),
    (429, Refused, "CallbackRefused", True),
    (307, Refused, "CallbackRefused", False),   # a redirect is not followed, and did nothing
    (500, Unknown, "CallbackServerError", None),  # a 5xx can follow a callback the activity took
    (503, Unknown, "CallbackServerError", None),
    (200, None, None, None), (204, None, None, None), (409, None, None, None),
])
def test_a_callback_answered_with_a_status_is_refused_only_when_the_receiver_refused_it(outside_settings,
                                                                                        receiver, status,
                                                                                        kind, code, transient):
    outside_settings(**FAST)
    path = f"answers-{status}"
    receiver.set(path, status=status, location="http://127.0.0.1:9/elsewhere" if status == 307 else None)
    result = deliver(receiver.url(path))
    assert receiver.seen(path).calls == 1  # sent once, never repeated by a retry
    if kind is None:
        expected = callback.Delivery.ALREADY_COMPLETED if status == 409 else callback.Delivery.DELIVERED
        assert result is expected
        return
    assert type(result) is kind and result.code == code and str(status) in str(result)
    if kind is Refused:
        assert (result.status, result.transient, result.forbidden) == (status, transient, False)


def test_a_callback_with_no_answer_in_time_may_have_arrived(outside_settings, receiver):
    outside_settings(**{**FAST, "CALLBACK_READ_TIMEOUT_SECONDS": "0.2"})
    gate = threading.Event()
    receiver.set("slow", gate=gate)
    try:
        result = deliver(receiver.url("slow"))
    finally:
        gate.set()  # let the receiver answer (to nobody) and finish
    assert receiver.seen("slow").calls == 1 and type(result) is Unknown and result.code == "CallbackNoAnswer"


@pytest.mark.parametrize("peer, kind, code", [
    (None, Refused, "CallbackUnreachable"),                    # nothing listens: nothing was sent
    ("tls_alert", Refused, "CallbackUnreachable"),             # the handshake failed: only a ClientHello left
    ("tls_garbage", Refused, "CallbackUnreachable"),
    ("reset_after_request", Unknown, "CallbackNoAnswer"),      # the whole request left, then the connection died
])
def test_a_callback_that_fails_on_the_wire_is_classified_by_what_left_the_socket(refused_port, outside_settings, peer,
                                                                                 kind, code):
    outside_settings(**FAST)
    if peer is None:
        result, received = deliver(f"http://127.0.0.1:{refused_port}/cb"), False
    else:
        scheme = "https" if peer.startswith("tls") else "http"
        with BadPeer(peer) as bad:
            result = deliver(f"{scheme}://127.0.0.1:{bad.port}/cb")
        received = any(sent.startswith(b"POST /cb") and sent.endswith(BODY) for sent in bad.received)
    assert type(result) is kind and result.code == code
    assert received is (kind is Unknown)  # Refused exactly when the request never arrived
    if kind is Refused:
        assert result.transient and not result.forbidden  # nothing was sent: the same call may work later


def test_a_callback_the_allow_list_refuses_is_forbidden_and_nothing_is_sent(outside_settings, adf):
    outside_settings(**{**FAST, "CALLBACK_ALLOWED_HOSTS": "*.svc.datafactory.azure.com"})
    by_host = deliver(f"{adf.url}/_standin/callbacks/listed-no-more")
    # the name is listed, its loopback address is not
    outside_settings(**{**FAST, "CALLBACK_ALLOWED_HOSTS": "localhost"})
    by_address = deliver(f"{adf.url.replace('127.0.0.1', 'localhost')}/_standin/callbacks/resolved")
    assert (type(by_host), by_host.code, by_host.forbidden) == (Refused, "CallbackHostNotAllowed", True)
    assert (type(by_address), by_address.code, by_address.forbidden) == (Refused, "CallbackAddressNotAllowed", True)
    assert adf.callbacks == []


@pytest.mark.parametrize("kind, status, code, outcome", [
    ("before", 400, "BadRequest", Refused),
    ("before", 403, "AuthorizationFailed", Refused),
    ("before", 409, "Conflict", Refused),
    ("before", 503, "ServiceUnavailable", Unknown),   # no run this time, but a 5xx can follow one
    ("after", 500, "InternalServerError", Unknown),
    ("after", 504, "GatewayTimeout", Unknown),
    ("drop", 500, None, Unknown),
    ("late", 500, None, Unknown),                     # the answer came after the read timeout
    ("garbled", 500, None, Unknown),
    ("truncated", 500, None, Unknown),
])
def test_a_create_run_that_may_have_started_a_run_is_never_refused(outside_settings, adf, kind, status, code, outcome):
    outside_settings(**FAST)
    adf.inject("createRun", kind, status=status, code=code or "InternalServerError", seconds=2)
    with pytest.raises(OutsideCallFailed) as failed:
        get_adf().start_run(PipelineTarget(**TARGET), {"pause_id": PAUSE_ID})
    assert type(failed.value) is outcome
    if code is not None:
        assert failed.value.code == code
    if outcome is Refused:
        assert failed.value.status == status
    started = [run for run in adf.runs if run["parameters"].get("pause_id") == PAUSE_ID]
    assert len(started) == (0 if kind == "before" else 1)  # one request: a run was started at most once
    if started:
        assert outcome is Unknown


@pytest.mark.parametrize("peer, outcome, code", [(None, Refused, "Unreachable"),
                                                 ("reset_after_request", Unknown, "NoResponse")])
def test_a_create_run_that_fails_on_the_wire_is_classified_by_what_left_the_socket(refused_port, outside_settings,
                                                                                   peer, outcome, code):
    if peer is None:
        outside_settings(ARM_ENDPOINT=f"http://127.0.0.1:{refused_port}", **FAST)
        with pytest.raises(OutsideCallFailed) as failed:
            get_adf().start_run(PipelineTarget(**TARGET), {"pause_id": PAUSE_ID})
    else:
        with BadPeer(peer) as bad:
            outside_settings(ARM_ENDPOINT=f"http://127.0.0.1:{bad.port}", **FAST)
            with pytest.raises(OutsideCallFailed) as failed:
                get_adf().start_run(PipelineTarget(**TARGET), {"pause_id": PAUSE_ID})
        assert any(PAUSE_ID.encode() in sent for sent in bad.received)  # createRun left, with its body
    assert type(failed.value) is outcome and failed.value.code == code
    if outcome is Refused:
        assert failed.value.transient
