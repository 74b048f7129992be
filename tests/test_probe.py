"""One check attempt's calls (shared/checks/probe.py): a header secret comes only from a CHECK_HEADER_* app setting
holding one sendable `Name: value`, and goes only to the hosts its `<name>_HOSTS` setting lists; an HTTP check is
called only on CHECK_ALLOWED_HOSTS, its whole answer (at most 1 MiB) within CHECK_TIMEOUT_SECONDS, and whatever goes
wrong is that check's error, saying why without the secret; an ADF run check passes in a wanted status, fails for
good once the run ended otherwise or belongs to another pipeline, and is an error (tried again) when it cannot be
read."""

import threading
import time
import uuid

import pytest

from local_dev.check_endpoint import CheckEndpoint
from shared.checks.expect import Result
from shared.checks.probe import MAX_RESPONSE_BYTES, HeaderNotAllowed, header_for, header_from_setting, run_adf, run_http
from shared.settings import Limits, Settings
from tests.support import LOCAL_STORAGE
from shared.targets.adf import PipelineTarget
from tests.support import TARGET, sdk_client

SECRET = "Bearer s3cret-token"


def settings(hosts=("127.0.0.1",), timeout=1.0) -> Settings:
    return Settings(storage=LOCAL_STORAGE, check_allowed_hosts=hosts,
                    limits=Limits(check_timeout_seconds=timeout))


@pytest.fixture(scope="module")
def endpoint():
    """One endpoint for the module (stopping one waits out its poll interval); each test uses paths of its own."""
    with CheckEndpoint() as running:
        yield running


@pytest.fixture
def path():
    return uuid.uuid4().hex[:12]


def test_a_header_setting_holds_one_header_trimmed_around_its_name_and_value(monkeypatch):
    monkeypatch.setenv("CHECK_HEADER_DQ", "  Authorization :  Bearer a:b c  ")
    assert header_from_setting("CHECK_HEADER_DQ") == ("Authorization", "Bearer a:b c")


@pytest.mark.parametrize("value, message", [
    (None, "app setting CHECK_HEADER_DQ is not set"),
    ("no colon s3cret", "app setting CHECK_HEADER_DQ must hold one header, 'Name: value'"),
    ("X-Key:", "must hold one header"),
    ("X Key: s3cret", "must hold one header"),
    ("X-Key: s3cret\ttab", "must hold one header"),            # not sent as written
    ("X-Key: s3cret caf\u00e9", "must hold one header"),       # not ASCII
    ("Content-Length: 5", "names the header Content-Length, which the app sets itself"),
    ("host: s3cret.example", "names the header host, which the app sets itself"),
])
def test_a_header_setting_that_cannot_be_sent_is_refused_saying_why_without_its_value(monkeypatch, value, message):
    if value is not None:
        monkeypatch.setenv("CHECK_HEADER_DQ", value)
    else:
        monkeypatch.delenv("CHECK_HEADER_DQ", raising=False)
    with pytest.raises(ValueError) as refused:
        header_from_setting("CHECK_HEADER_DQ")
    assert message in str(refused.value) and "s3cret" not in str(refused.value)
    assert not isinstance(refused.value, HeaderNotAllowed)


@pytest.mark.parametrize("hosts, host, message", [
    ("dq.contoso.com, *.example.com", "dq.contoso.com", None),
    ("dq.contoso.com, *.example.com", "a.b.example.com", None),
    ("dq.contoso.com, *.example.com", "example.com", "which does not list example.com"),  # a wildcard is below it
    ("dq.contoso.com, *.example.com", "127.0.0.1", "may be sent only to the hosts in CHECK_HEADER_DQ_HOSTS"),
    (None, "dq.contoso.com", "CHECK_HEADER_DQ_HOSTS is not set"),
    ("https://dq.contoso.com", "dq.contoso.com", "CHECK_HEADER_DQ_HOSTS has entries that are not host names"),
])
def test_a_header_goes_only_to_the_hosts_its_hosts_setting_lists(monkeypatch, hosts, host, message):
    monkeypatch.setenv("CHECK_HEADER_DQ", f"Authorization: {SECRET}")
    if hosts is not None:
        monkeypatch.setenv("CHECK_HEADER_DQ_HOSTS", hosts)
    else:
        monkeypatch.delenv("CHECK_HEADER_DQ_HOSTS", raising=False)
    if message is None:
        assert header_for("CHECK_HEADER_DQ", host) == ("Authorization", SECRET)
        return
    with pytest.raises(HeaderNotAllowed) as refused:
        header_for("CHECK_HEADER_DQ", host)
    assert message in str(refused.value) and "s3cret" not in str(refused.value)


def test_an_http_check_is_sent_with_its_method_body_and_header_and_its_answer_judged(endpoint, path, monkeypatch):
    monkeypatch.setenv("CHECK_HEADER_DQ", f"Authorization: {SECRET}")
    monkeypatch.setenv("CHECK_HEADER_DQ_HOSTS", "127.0.0.1")
    endpoint.set(path, json={"status": "OK"})
    check = {"name": "dq", "http": {"url": endpoint.url(path), "method": "POST", "body": {"day": "2026-11-25"},
                                    "header_setting": "CHECK_HEADER_DQ"},
             "expect": {"json": {"path": "$.status", "equals": "OK"}}}
    seen = run_http(check, settings())
    assert (seen.result, seen.detail) == (Result.PASSED, '$.status is "OK"')
    sent = endpoint.seen(path)
    assert sent.calls == 1 and sent.headers[0]["Authorization"] == SECRET
    assert sent.headers[0]["Content-Type"] == "application/json" and sent.bodies == ['{"day": "2026-11-25"}']


@pytest.mark.parametrize("hosts, header_hosts, detail", [
    (("dq.contoso.com",), "127.0.0.1", "plain http is allowed only for loopback hosts listed in CHECK_ALLOWED_HOSTS"),
    (("127.0.0.1",), "dq.contoso.com", "CHECK_HEADER_DQ_HOSTS, which does not list 127.0.0.1"),
    (("127.0.0.1",), None, "CHECK_HEADER_DQ_HOSTS is not set"),  # narrowed after the pause was made
])
def test_a_check_whose_url_or_header_may_not_go_to_its_host_is_an_error_and_not_called(
        endpoint, path, monkeypatch, hosts, header_hosts, detail):
    monkeypatch.setenv("CHECK_HEADER_DQ", f"Authorization: {SECRET}")
    if header_hosts is not None:
        monkeypatch.setenv("CHECK_HEADER_DQ_HOSTS", header_hosts)
    else:
        monkeypatch.delenv("CHECK_HEADER_DQ_HOSTS", raising=False)
    endpoint.set(path, json={"status": "OK"})
    check = {"name": "dq", "http": {"url": endpoint.url(path), "header_setting": "CHECK_HEADER_DQ"}}
    seen = run_http(check, settings(hosts))
    assert seen.result == Result.ERROR and detail in seen.detail and "s3cret" not in seen.detail
    assert endpoint.seen(path).calls == 0


def test_an_answer_of_up_to_1_mib_is_read_and_a_byte_more_is_an_error(endpoint, path):
    endpoint.set(path + "-full", body=b"x" * MAX_RESPONSE_BYTES)
    endpoint.set(path + "-over", body=b"x" * (MAX_RESPONSE_BYTES + 1))
    full = run_http({"name": "full", "http": {"url": endpoint.url(path + "-full")}}, settings())
    assert (full.result, full.detail) == (Result.PASSED, "answered HTTP 200")
    over = run_http({"name": "over", "http": {"url": endpoint.url(path + "-over")}}, settings())
    assert (over.result, over.detail) == (Result.ERROR, "the answer is over 1024 KiB")


def test_an_endpoint_that_does_not_answer_in_time_is_an_error_at_the_timeout(endpoint, path):
    gate = threading.Event()
    endpoint.set(path, json={"status": "OK"}, gate=gate)
    started = time.monotonic()
    try:
        seen = run_http({"name": "slow", "http": {"url": endpoint.url(path)}}, settings(timeout=0.3))
    finally:
        gate.set()
    assert (seen.result, seen.detail) == (Result.ERROR, "no whole answer within 0.3 s")
    assert time.monotonic() - started < 2


def test_checks_of_one_endpoint_use_one_kept_connection_and_one_cut_short_is_not_used_again():
    """As with a real endpoint, which keeps connections open: answers read whole hand their connection back for
    the next check; an answer the deadline cut short takes its connection with it, and the next check opens one."""
    with CheckEndpoint() as endpoint:
        endpoint.set("ok", json={"status": "OK"})
        for _ in range(3):
            assert run_http({"name": "dq", "http": {"url": endpoint.url("ok")}}, settings()).result is Result.PASSED
        assert endpoint.connections == 1
        gate = threading.Event()
        endpoint.set("slow", json={"status": "OK"}, gate=gate)
        try:
            late = run_http({"name": "slow", "http": {"url": endpoint.url("slow")}}, settings(timeout=0.3))
        finally:
            gate.set()
        assert (late.result, late.detail) == (Result.ERROR, "no whole answer within 0.3 s")
        after = run_http({"name": "dq", "http": {"url": endpoint.url("ok")}}, settings())
        assert (after.result, after.detail) == (Result.PASSED, "answered HTTP 200")
        assert endpoint.connections == 2  # the slow check's own (the first, then idle, was the one it used)


def test_a_host_nobody_listens_on_is_an_error_saying_it_could_not_connect(refused_port):
    seen = run_http({"name": "dq", "http": {"url": f"http://127.0.0.1:{refused_port}/dq"}}, settings())
    assert (seen.result, seen.detail) == (Result.ERROR, "could not connect: Connection refused")


def adf_check(run_id, *statuses, pipeline_name=None):
    run = {"run_id": run_id, **({"pipeline_name": pipeline_name} if pipeline_name else {})}
    return {"name": "upstream", "adf_run": run, "expect": {"status": list(statuses)}}


def start_run(adf):
    return sdk_client(adf).pipelines.create_run(TARGET["resource_group"], TARGET["factory_name"],
                                                TARGET["pipeline_name"], parameters={"pause_id": "upstream"},
                                                enforce_https=False).run_id


@pytest.mark.integration
def test_an_adf_run_passes_in_a_wanted_status_and_fails_for_good_once_it_ended_otherwise(app_env, adf):
    target, run_id = PipelineTarget(**TARGET), start_run(adf)
    waiting = run_adf(adf_check(run_id, "Succeeded"), target)
    assert waiting.result == Result.NOT_YET and waiting.detail in ("run is Queued", "run is InProgress")
    adf.finish_run(run_id, "Failed", "  Copy activity failed: source not found \n")
    ended = run_adf(adf_check(run_id, "Succeeded", "Cancelled"), target)
    assert (ended.result, ended.detail) == (Result.FAILED, "run ended Failed: Copy activity failed: source not found")
    wanted = run_adf(adf_check(run_id, "Failed"), target)  # a status asked for passes, even an ending one
    assert (wanted.result, wanted.detail) == (Result.PASSED, "run is Failed")


@pytest.mark.integration
def test_an_adf_run_of_another_pipeline_fails_with_names_compared_regardless_of_case(app_env, adf):
    target, run_id = PipelineTarget(**TARGET), start_run(adf)
    adf.finish_run(run_id, "Succeeded")
    assert run_adf(adf_check(run_id, "Succeeded", pipeline_name="load_SALES"), target).result == Result.PASSED
    other = run_adf(adf_check(run_id, "Succeeded", pipeline_name="Other_Pipeline"), target)
    assert other.result == Result.FAILED
    assert other.detail == f"run {run_id} is of pipeline Load_Sales, not Other_Pipeline"


@pytest.mark.integration
def test_an_adf_run_that_cannot_be_read_is_an_error_to_try_again(app_env):
    seen = run_adf(adf_check(str(uuid.uuid4()), "Succeeded"), PipelineTarget(**TARGET))
    assert seen.result == Result.ERROR and seen.detail.startswith("PipelineRunNotFound: ")


def test_a_deadline_firing_as_the_answer_goes_back_to_the_pool_leaves_its_connection_alone(endpoint, path,
                                                                                         monkeypatch):
    """Once the answer is read its connection may serve another call: a deadline that fires in the
    moment the response hands it back must not shut it down under that call."""
    import requests

    from shared import clients

    made, shut = [], []

    class Recording(clients.Deadline):
        def __init__(self, seconds):
            super().__init__(seconds)
            made.append(self)

    close = requests.Response.close

    def close_then_fire(response):
        close(response)
        for deadline in made:
            deadline._expire()  # as the scheduler would, had the time run out just then

    monkeypatch.setattr(clients, "Deadline", Recording)
    monkeypatch.setattr(clients, "_shut", shut.append)
    monkeypatch.setattr(requests.Response, "close", close_then_fire)
    endpoint.set(path, json={"status": "OK"})
    seen = run_http({"name": "dq", "http": {"url": endpoint.url(path)}}, settings())
    assert seen.result is Result.PASSED and len(made) == 1 and made[0]._sockets
    assert shut == [] and not made[0].expired
