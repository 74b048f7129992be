"""Callback mode: the ADF WebHook activity waits; the app calls its callBackUri back once."""

import json
import logging
import time
import threading

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def hook(configure, adf):
    """Allow the stand-in's loopback callback endpoint; return a callBackUri factory."""
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1")
    return lambda name="activity-1": f"{adf.url}/_standin/callbacks/{name}"


def test_webhook_pause_needs_no_pipeline_fields_and_answers_202_without_location(api, hook):
    response = api.pause({"callBackUri": hook(), "data": {"rows": 5}, "notification": {"title": "Go on?"}})
    assert response.status_code == 202
    # ADF's activities read 202 + Location as an asynchronous operation to poll.
    assert "Location" not in response.headers
    created = api.json(response)
    record = api.record(created["pause_id"])
    assert record["mode"] == "callback" and record["status"] == "pending"
    assert "callback_uri" not in record and "callBackUri" not in json.dumps(record)


def test_approve_calls_back_once_with_output_and_starts_no_run(api, hook, adf):
    created = api.json(api.pause({"callBackUri": hook(), "data": {"rows": 5}}))
    response = api.decide("restart", created["token"], json_body={"comment": "ok", "input": {"k": 1}})
    assert response.status_code == 200 and api.json(response)["status"] == "restarted"
    [call] = adf.callbacks
    assert call["status"] == 200
    assert call["body"] == {"Output": {"pause_id": created["pause_id"], "status": "restarted", "comment": "ok",
                                       "input": {"k": 1}, "data": {"rows": 5}}, "StatusCode": "200"}
    assert adf.runs == []
    assert api.decide("restart", created["token"]).status_code == 409
    assert len(adf.callbacks) == 1


def test_cancel_calls_back_with_pause_cancelled_error(api, hook, adf):
    created = api.json(api.pause({"callBackUri": hook()}))
    assert api.decide("cancel", created["token"], form={"reason": "Wrong month"}).status_code == 200
    [call] = adf.callbacks
    assert call["body"] == {"Error": {"ErrorCode": "PauseCancelled", "Message": "Wrong month"}, "StatusCode": "400"}
    assert api.record(created["pause_id"])["status"] == "cancelled"


def test_cancel_without_reason_still_sends_a_message(api, hook, adf):
    created = api.json(api.pause({"callBackUri": hook()}))
    api.decide("cancel", created["token"])
    assert adf.callbacks[0]["body"]["Error"]["Message"]


def test_refused_callback_is_502_and_the_link_works_again_without_a_second_success(api, hook, adf):
    created = api.json(api.pause({"callBackUri": hook()}))
    adf.inject("callback", "before", status=400)  # refused: the activity did not take it
    failed = api.decide("restart", created["token"])
    assert failed.status_code == 502
    record = api.record(created["pause_id"])
    assert record["status"] == "pending" and "CallbackRefused" in record["last_error"]
    assert api.decide("restart", created["token"]).status_code == 200
    assert [c["status"] for c in adf.callbacks] == [400, 200]


def test_unreachable_callback_host_is_502_and_nothing_was_sent(refused_port, api, configure):
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1")
    created = api.json(api.pause({"callBackUri": f"http://127.0.0.1:{refused_port}/cb"}))
    response = api.decide("restart", created["token"])
    assert response.status_code == 502 and "Nothing was started" in api.json(response)["detail"]
    record = api.record(created["pause_id"])
    assert record["status"] == "pending" and "CallbackUnreachable" in record["last_error"]


def test_simultaneous_approvals_call_back_exactly_once(api, hook, adf):
    created = api.json(api.pause({"callBackUri": hook()}))
    barrier, statuses = threading.Barrier(12), []

    def click():
        barrier.wait()
        statuses.append(api.decide("restart", created["token"]).status_code)

    threads = [threading.Thread(target=click) for _ in range(12)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(statuses) == [200] + [409] * 11
    assert len(adf.callbacks) == 1


@pytest.mark.parametrize("uri, status", [
    ("https://evil.example/callback", 403),
    ("http://dpeastus.svc.datafactory.azure.com/cb", 403),
    ("http://127.0.0.2:9/cb", 403),  # loopback, but not listed
    ("https://user:pw@dpeastus.svc.datafactory.azure.com/cb", 400),
    ("ftp://dpeastus.svc.datafactory.azure.com/cb", 400),
    ("not a url", 400),
    (42, 400), ("", 400), (None, 400), ([], 400), ({}, 400),
    # Where URL parsers disagree, the host checked might not be the host called: refused.
    ("https://evil.example\\@dpeastus.svc.datafactory.azure.com/cb", 400),
    ("https://evil.example#@dpeastus.svc.datafactory.azure.com/cb", 400),
    ("https://evil.example%2F@dpeastus.svc.datafactory.azure.com/cb", 400),
    ("https://dpeastus.svc.datafactory.azure.com%2eevil.example/cb", 400),
    ("https://dpeastus.svc.datafactory.azure.com:443@evil.example/cb", 400),
    ("https://dpeastus.svc.datafactory.azure.com\t/cb", 400),
    ("https://dpe\u0430stus.svc.datafactory.azure.com/cb", 400),  # a Cyrillic 'а'
    ("https://" + "a" * 64 + ".svc.datafactory.azure.com/cb", 400),  # a label over 63
    ("https://dpeastus.svc.datafactory.azure.com./cb", 400),
    ("https://0x7f000001/cb", 400), ("https://127.1/cb", 400), ("https://2130706433/cb", 400),
])
def test_disallowed_callback_uri_is_refused_before_anything_is_stored(api, configure, table, uri, status):
    configure(CALLBACK_ALLOWED_HOSTS="*.svc.datafactory.azure.com,127.0.0.1")
    response = api.pause({"callBackUri": uri})
    assert response.status_code == status
    problem = api.json(response)
    assert "callBackUri" in problem["detail"] or problem["errors"][0]["field"] == "callBackUri"
    from azure.core.exceptions import ResourceNotFoundError
    try:
        assert list(table.list_entities()) == []
    except ResourceNotFoundError:
        pass  # the table was never even created


def test_default_allow_list_accepts_data_factory_callback_hosts(api):
    uri = "https://dpeastus.svc.datafactory.azure.com/dataplane/workflow/callback/abc?callbackUrl=x"
    assert api.pause({"callBackUri": uri}).status_code == 202
    assert api.pause({"callBackUri": "https://svc.datafactory.azure.com.evil.example/cb"}).status_code == 403


def test_the_app_calls_the_url_rebuilt_from_the_checked_parts(api, hook, adf, table):
    raw = hook("rebuilt").replace("http://", "HTTP://") .replace("/_standin/", "/_standin/./../_standin/")
    created = api.json(api.pause({"callBackUri": raw}))
    stored = table.get_entity(created["pause_id"], "pause")["callback_uri"]
    assert stored.startswith("http://127.0.0.1:") and stored != raw
    assert api.decide("restart", created["token"]).status_code == 200
    assert [c["callbackId"] for c in adf.callbacks] == ["rebuilt"]


def test_narrowed_allow_list_stops_the_call_and_keeps_the_pause(api, hook, configure, adf):
    created = api.json(api.pause({"callBackUri": hook()}))
    configure(CALLBACK_ALLOWED_HOSTS="*.svc.datafactory.azure.com")
    assert api.decide("restart", created["token"]).status_code == 403
    assert adf.callbacks == []
    assert api.record(created["pause_id"])["status"] == "pending"


def test_callback_redirects_are_not_followed(api, configure):
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Response

    hits = []

    def app(environ, start_response):
        hits.append(environ["PATH_INFO"])
        return Response(status=307, headers={"Location": "http://127.0.0.1:9/elsewhere"})(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1")
        created = api.json(api.pause({"callBackUri": f"http://127.0.0.1:{server.server_port}/cb"}))
        assert api.decide("restart", created["token"]).status_code == 502
        assert hits == ["/cb"]  # one attempt (3xx is not retried), and the redirect was not followed
    finally:
        server.shutdown()
        server.server_close()  # its listening socket too (an unclosed one fails a later test under -W error)
        thread.join()


# What a failed call means comes from what the socket did, and no log carries the URL's query
# (ADF signs its callBackUri there).

SECRET = "sig=s3cr3t-signature"


def logged(caplog) -> str:
    return "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)


@pytest.mark.parametrize("behaviour", ["tls_alert", "tls_garbage"])
def test_a_failed_tls_handshake_is_refused_nothing_was_sent_and_the_link_works_again(api, configure, caplog,
                                                                                      behaviour):
    from local_dev.bad_peers import BadPeer

    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1")
    caplog.set_level(logging.DEBUG)
    with BadPeer(behaviour) as peer:
        created = api.json(api.pause({"callBackUri": f"https://127.0.0.1:{peer.port}/cb?{SECRET}"}))
        response = api.decide("restart", created["token"])
        assert response.status_code == 502 and "Nothing was started" in api.json(response)["detail"]
        record = api.record(created["pause_id"])
        assert record["status"] == "pending" and "CallbackUnreachable" in record["last_error"]
        assert "TLS failed" in record["last_error"]
        assert api.decide("restart", created["token"]).status_code == 502  # the link still works
    assert peer.received and all(hello.startswith(b"\x16") for hello in peer.received)  # only a ClientHello
    assert "pause_id" in logged(caplog) and "s3cr3t" not in logged(caplog)


def test_a_callback_host_that_resets_after_taking_the_request_may_have_had_it(api, configure, caplog):
    from local_dev.bad_peers import BadPeer

    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1")
    caplog.set_level(logging.DEBUG)
    with BadPeer("reset_after_request") as peer:
        created = api.json(api.pause({"callBackUri": f"http://127.0.0.1:{peer.port}/cb?{SECRET}"}))
        response = api.decide("restart", created["token"])
    assert response.status_code == 202 and api.json(response)["callback_confirmed"] is False
    record = api.record(created["pause_id"])
    assert record["status"] == "restarted" and "CallbackNoAnswer" in record["last_error"]
    assert api.decide("cancel", created["token"]).status_code == 409
    [request] = peer.received
    assert request.startswith(b"POST /cb?") and b'"Output"' in request
    assert "s3cr3t" not in logged(caplog) and "s3cr3t" not in str(record)


def test_an_unreachable_callback_host_logs_no_query(refused_port, api, configure, caplog):
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1")
    caplog.set_level(logging.DEBUG)
    created = api.json(api.pause({"callBackUri": f"http://127.0.0.1:{refused_port}/cb?{SECRET}"}))
    assert api.decide("restart", created["token"]).status_code == 502
    assert "Retrying" in logged(caplog)  # urllib3 retried the connection, and said so
    assert "s3cr3t" not in logged(caplog) and "s3cr3t" not in str(api.record(created["pause_id"]))


def test_a_callback_host_name_that_resolves_to_loopback_is_refused_unless_its_address_is_listed(api, configure, adf):
    configure(CALLBACK_ALLOWED_HOSTS="localhost")  # the name is listed, the address it resolves to is not
    uri = f"{adf.url.replace('127.0.0.1', 'localhost')}/_standin/callbacks/dns"
    created = api.json(api.pause({"callBackUri": uri}))
    response = api.decide("restart", created["token"])
    assert response.status_code == 403, api.json(response)
    detail = api.json(response)["detail"]
    assert "host localhost resolves to " in detail and "127.0.0.1" in detail
    record = api.record(created["pause_id"])
    assert record["status"] == "pending" and "CallbackAddressNotAllowed" in record["last_error"]
    assert adf.callbacks == []
    configure(CALLBACK_ALLOWED_HOSTS="localhost,127.0.0.1")
    assert api.decide("restart", created["token"]).status_code == 200
    assert [c["callbackId"] for c in adf.callbacks] == ["dns"]


def test_a_callback_host_that_answers_a_byte_at_a_time_is_given_up_on_at_the_whole_answer_deadline(api, configure):
    """Each read gets a byte within the read timeout, so only a limit on the whole answer ends the call:
    3 connection attempts of 0.1 s and a read timeout of 0.3 s make 0.6 s; the callback may have arrived."""
    from local_dev.bad_peers import BadPeer

    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1", CALLBACK_CONNECT_TIMEOUT_SECONDS="0.1",
              CALLBACK_READ_TIMEOUT_SECONDS="0.3")
    with BadPeer("drip_after_request") as peer:
        created = api.json(api.pause({"callBackUri": f"http://127.0.0.1:{peer.port}/cb?{SECRET}"}))
        started = time.monotonic()
        response = api.decide("restart", created["token"])
        took = time.monotonic() - started
    assert response.status_code == 202 and api.json(response)["callback_confirmed"] is False
    assert 0.6 <= took < 3, took
    record = api.record(created["pause_id"])
    assert record["status"] == "restarted" and "no whole answer within 0.6 s" in record["last_error"]
    [request] = peer.received
    assert request.startswith(b"POST /cb?") and b'"Output"' in request


def _logged(function, events: list, name: str):
    def logged(*args, **kwargs):
        events.append(name)
        return function(*args, **kwargs)
    return logged


def test_callbacks_to_one_host_share_a_connection_unless_its_answer_is_long(configure, monkeypatch):
    """A short answer body is read so the next callback needs no new connection (nor, in Azure, TLS handshake);
    one too long to read closes its connection instead. Each is delivered all the same."""
    from urllib3.connectionpool import HTTPConnectionPool
    from urllib3.response import GzipDecoder
    from werkzeug.wrappers import Request, Response

    from shared import clients
    from shared.targets import callback
    from tests.support import keep_alive_server

    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1")

    @Request.application
    def receiver(request):
        if request.args.get("gzip"):  # not gzip at all: read as sent it is harmless; decoded, it would fail
            return Response(b"not gzip", headers={"Content-Encoding": "gzip"})
        return Response(b"x" * int(request.args["size"]))

    with keep_alive_server(receiver) as (server, opened):
        base = f"http://127.0.0.1:{server.server_port}/activity"
        for size in (0, 2, callback.SHORT_BODY):
            assert callback.deliver(f"{base}?size={size}", b"{}") is callback.Delivery.DELIVERED
        assert len(opened) == 1
        assert callback.deliver(f"{base}?size={callback.SHORT_BODY + 1}", b"{}") is callback.Delivery.DELIVERED
        assert callback.deliver(f"{base}?size=2", b"{}") is callback.Delivery.DELIVERED
        assert len(opened) == 2  # the long answer's connection was closed: the next call opened one
        # Read as sent, never decompressed (nested gzip of a few hundred bytes unpacks to gigabytes).
        events = []
        monkeypatch.setattr(GzipDecoder, "decompress", _logged(GzipDecoder.decompress, events, "gunzip"))
        assert callback.deliver(f"{base}?size=0&gzip=1", b"{}") is callback.Delivery.DELIVERED
        assert callback.deliver(f"{base}?size=0", b"{}") is callback.Delivery.DELIVERED
        assert events == [] and len(opened) == 2
        # Back to the pool only once the deadline is finished: a deadline firing after the hand-back would shut
        # the socket of whichever callback had taken the connection meanwhile.
        monkeypatch.setattr(clients.Deadline, "finish", _logged(clients.Deadline.finish, events, "finish"))
        monkeypatch.setattr(HTTPConnectionPool, "_put_conn", _logged(HTTPConnectionPool._put_conn, events, "pool"))
        assert callback.deliver(f"{base}?size=2", b"{}") is callback.Delivery.DELIVERED
        assert events.index("finish") < events.index("pool"), events
        assert len(opened) == 2
