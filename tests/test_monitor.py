"""Automated checks: pauses that poll until a condition holds, run only by the timer."""

import logging
import random
import threading
from datetime import datetime, timedelta, timezone

import pytest

from local_dev.bad_peers import BadPeer
from local_dev.check_endpoint import CheckEndpoint
from shared import sweep
from shared.targets.adf import PipelineTarget, get_adf, pacing_key
from tests.support import TARGET, sdk_client, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def endpoint(configure):
    with CheckEndpoint() as running:
        configure(CHECK_ALLOWED_HOSTS="127.0.0.1", CALLBACK_ALLOWED_HOSTS="127.0.0.1", CHECK_TIMEOUT_SECONDS="1")
        yield running


def now():
    return datetime.now(timezone.utc)


def http_check(endpoint, name="dq", **expect):
    return {"name": name, "http": {"url": endpoint.url(name)},
            "expect": expect or {"json": {"path": "$.status", "equals": "OK"}}}


def result_of(api, pause_id, index=0):
    return api.record(pause_id)["checks"][index]


def test_auto_mode_continues_by_itself_at_the_first_timer_run_after_the_checks_pass(api, adf, endpoint):
    endpoint.set("dq", json={"status": "RUNNING"})
    created = api.created(checks=[http_check(endpoint)], check_every=60)
    assert endpoint.seen("dq").calls == 0  # nothing runs in the request that made the pause
    assert sweep.sweep(now()) == {"checked": 1}
    shown = result_of(api, created["pause_id"])
    assert (shown["result"], shown["detail"], shown["attempts"]) == ("not_yet", '$.status is "RUNNING"', 1)
    assert adf.runs == [] and sweep.sweep(now()) == {}  # not due again before check_every
    endpoint.set("dq", json={"status": "OK"})
    assert sweep.sweep(now() + timedelta(seconds=61)) == {"restarted": 1}
    [run] = adf.runs
    record = api.record(created["pause_id"])
    assert record["status"] == "restarted" and record["decided_by"] == "checks" and record["run_id"] == run["runId"]
    assert record["checks_passed"] is True and record["check_attempts"] == 2
    assert endpoint.seen("dq").calls == 2


def test_checks_that_pass_while_arms_write_bucket_is_low_start_at_their_slot_without_another_attempt(api, adf, table,
                                                                                                      endpoint):
    """The run auto mode starts is an ARM write like any the timer makes: paced before the claim. The attempt
    that passed is kept (not counted again), nothing is claimed or sent until the write slot, then once."""
    endpoint.set("dq", json={"status": "OK"})
    created = api.created(checks=[http_check(endpoint)], check_every=60)
    target = PipelineTarget(*(TARGET[name] for name in ("subscription_id", "resource_group", "factory_name",
                                                        "pipeline_name")))
    moment = now()
    get_adf().pacer.observed(pacing_key(target), 2, moment.timestamp())  # under ARM_WRITES_LOW_WATER
    assert sweep.sweep(moment) == {"deferred": 1}
    record = api.record(created["pause_id"])
    assert (record["status"], record["check_attempts"], record["checks_passed"]) == ("pending", 1, True), record
    stored = table.get_entity(created["pause_id"], "pause")
    assert not {"claim_id", "claimed_at"} & set(stored) and adf.runs == []  # never claimed, nothing sent to ARM
    get_adf().pacer.observed(pacing_key(target), 150, moment.timestamp() + 30)
    assert sweep.sweep(moment + timedelta(seconds=30)) == {"restarted": 1}
    [run] = adf.runs
    record = api.record(created["pause_id"])
    assert (record["status"], record["run_id"], record["check_attempts"]) == ("restarted", run["runId"], 1)
    assert endpoint.seen("dq").calls == 1


def test_gate_mode_lets_people_approve_only_after_every_check_passed(api, adf, endpoint):
    endpoint.set("dq", json={"status": "RUNNING"})
    created = api.created(checks=[http_check(endpoint)], checks_mode="gate")
    sweep.sweep(now())
    early = api.decide("restart", created["token"])
    assert early.status_code == 409 and api.json(early)["code"] == "checks_pending"
    page = api.page("restart", created["token"]).get_body().decode()
    assert "disabled" in page and "checks have not passed yet" in page and "RUNNING" in page
    endpoint.set("dq", json={"status": "OK"})
    assert sweep.sweep(now() + timedelta(minutes=6)) == {"checked": 1}
    assert adf.runs == [] and api.record(created["pause_id"])["status"] == "pending"  # gate: people decide
    assert "disabled" not in api.page("restart", created["token"]).get_body().decode()
    assert api.decide("restart", created["token"]).status_code == 200 and len(adf.runs) == 1
    assert api.decide("cancel", created["token"]).status_code == 409


def test_checks_that_never_pass_settle_by_on_timeout_when_the_attempts_run_out(api, adf, endpoint):
    endpoint.set("dq", status=503)
    created = api.json(api.pause({"callBackUri": f"{adf.url}/_standin/callbacks/never", "check_max_attempts": 2,
                                  "checks": [http_check(endpoint)], "check_every": 60}))
    assert sweep.sweep(now()) == {"checked": 1}
    assert sweep.sweep(now() + timedelta(seconds=61)) == {"expired": 1}
    record = api.record(created["pause_id"])
    assert record["status"] == "expired" and "did not all pass in 2 attempts" in record["reason"]
    [call] = adf.callbacks
    assert call["body"]["Error"]["ErrorCode"] == "PauseExpired" and "2 attempts" in call["body"]["Error"]["Message"]
    assert result_of(api, created["pause_id"])["detail"] == "answered HTTP 503"


def test_checks_that_run_out_with_on_timeout_restart_continue(api, adf, endpoint):
    endpoint.set("dq", status=500)
    created = api.created(checks=[http_check(endpoint)], check_max_attempts=1, on_timeout="restart")
    assert sweep.sweep(now()) == {"restarted": 1} and len(adf.runs) == 1
    assert api.record(created["pause_id"])["decided_by"] == "checks"


def upstream_run(adf):
    return sdk_client(adf).pipelines.create_run(TARGET["resource_group"], TARGET["factory_name"],
                                                TARGET["pipeline_name"], parameters={"pause_id": "upstream"},
                                                enforce_https=False).run_id


def adf_check(run_id, **extra):
    return {"name": "upstream", "adf_run": {"run_id": run_id, **extra}, "expect": {"status": ["Succeeded"]}}


def test_an_adf_run_check_waits_for_the_run_and_a_failed_run_settles_at_once(api, adf, endpoint):
    run_id = upstream_run(adf)
    created = api.json(api.pause({**{k: TARGET[k] for k in ("subscription_id", "resource_group", "factory_name")},
                                  "callBackUri": f"{adf.url}/_standin/callbacks/wait", "checks": [adf_check(run_id)]}))
    assert sweep.sweep(now()) == {"checked": 1}
    assert result_of(api, created["pause_id"])["detail"] in ("run is Queued", "run is InProgress")
    adf.finish_run(run_id, "Failed", "Copy activity failed: source not found")
    assert sweep.sweep(now() + timedelta(minutes=6)) == {"expired": 1}
    record = api.record(created["pause_id"])
    assert record["status"] == "expired" and "source not found" in record["reason"]
    assert result_of(api, created["pause_id"])["result"] == "failed"
    assert adf.callbacks[0]["body"]["Error"]["ErrorCode"] == "PauseExpired"


def test_an_adf_run_that_succeeds_continues_the_waiting_run(api, adf, endpoint):
    run_id = upstream_run(adf)
    adf.finish_run(run_id, "Succeeded")
    created = api.json(api.pause({**{k: TARGET[k] for k in ("subscription_id", "resource_group", "factory_name")},
                                  "callBackUri": f"{adf.url}/_standin/callbacks/ok", "checks": [adf_check(run_id)]}))
    assert sweep.sweep(now()) == {"restarted": 1}
    [call] = adf.callbacks
    assert call["body"]["StatusCode"] == "200" and api.record(created["pause_id"])["decided_by"] == "checks"


def test_a_run_of_another_pipeline_fails_the_check_for_good(api, adf, endpoint):
    created = api.created(checks=[adf_check(upstream_run(adf), pipeline_name="Other_Pipeline")])
    assert sweep.sweep(now()) == {"expired": 1}
    assert "not Other_Pipeline" in api.record(created["pause_id"])["reason"]


@pytest.mark.parametrize("answer, result, detail", [
    ({"status": 500}, "not_yet", "answered HTTP 500"),
    ({"body": b"<html>busy</html>"}, "not_yet", "not JSON"),
    ({"json": {"rows": 3}}, "not_yet", "$.status is not in the answer"),
    ({"delay": 3, "json": {"status": "OK"}}, "error", "no whole answer within 1 s"),
    ({"body": b"[" + b"1," * 600_000 + b"1]"}, "error", "over 1024 KiB"),
    ({"status": 302, "location": "http://127.0.0.1:9/elsewhere"}, "not_yet", "answered HTTP 302"),
    ({"body": b"[" * 100_000}, "error", "the answer is nested deeper than 64 levels"),
    ({"body": b"[" * 65 + b"]" * 65}, "error", "the answer is nested deeper than 64 levels"),
    ({"json": {"status": "RUNNING", "s": "[" * 1000}}, "not_yet", '$.status is "RUNNING"'),  # brackets in a string
    # JSON between systems is UTF-8 (RFC 8259): a UTF-16 answer is not read, though json.loads would take it.
    ({"body": ('{"s": "\\"' + "[" * 200 + '"}').encode("utf-16")}, "not_yet", "not UTF-8 JSON"),
    ({"body": '{"status": "OK"}'.encode("utf-16-le")}, "not_yet", "not JSON"),  # valid UTF-8 (NULs), not JSON
    ({"body": b'\xef\xbb\xbf{"status": "RUNNING"}'}, "not_yet", '$.status is "RUNNING"'),  # a UTF-8 BOM is fine
])
def test_what_an_endpoint_answers_is_kept_as_the_checks_result(api, endpoint, answer, result, detail):
    endpoint.set("dq", **answer)
    created = api.created(checks=[http_check(endpoint)])
    assert sweep.sweep(now()) == {"checked": 1}
    shown = result_of(api, created["pause_id"])
    assert shown["result"] == result and detail in shown["detail"]


@pytest.mark.parametrize("expect, document, passes", [
    ({"json": {"path": "$.rows", "ge": 100}}, {"rows": 120}, True),
    ({"json": {"path": "$.rows", "lt": 100}}, {"rows": 120}, False),
    ({"json": {"path": "$.items[1].ok", "equals": True}}, {"items": [{}, {"ok": True}]}, True),
    ({"json": {"path": "$.ok", "equals": 1}}, {"ok": True}, False),  # true is not 1
    ({"json": {"path": "$['state name']", "in": ["A", "B"]}}, {"state name": "B"}, True),
    ({"json": {"path": "$.error", "exists": False}}, {"rows": 1}, True),
    ({"status": [200, 204]}, {}, True),
])
def test_expectations_on_status_and_json(api, endpoint, expect, document, passes):
    endpoint.set("dq", json=document)
    created = api.created(checks=[http_check(endpoint, **expect)], checks_mode="gate")
    sweep.sweep(now())
    assert result_of(api, created["pause_id"])["result"] == ("passed" if passes else "not_yet")


def test_a_secret_header_comes_from_an_app_setting_never_from_the_pause(api, endpoint, configure):
    configure(CHECK_HEADER_DQ="Authorization: Bearer s3cret-token", CHECK_HEADER_DQ_HOSTS="127.0.0.1",
              CHECK_ALLOWED_HOSTS="127.0.0.1")
    endpoint.set("dq", json={"status": "OK"})
    check = http_check(endpoint)
    check["http"]["header_setting"] = "CHECK_HEADER_DQ"
    created = api.created(checks=[check], checks_mode="gate")
    sweep.sweep(now())
    assert endpoint.seen("dq").headers[0]["Authorization"] == "Bearer s3cret-token"
    assert "s3cret" not in str(api.record(created["pause_id"]))


@pytest.mark.parametrize("name, value, rule", [
    ("CHECK_HEADER_NOT_SET", None, "app_setting"),
    ("SMTP_PASSWORD", "user: pa:ss", "pattern"),  # only CHECK_HEADER_* settings can be sent anywhere
    ("CHECK_HEADER_BAD", "no colon here", "app_setting"),
    ("CHECK_HEADER_BAD", "Authorization: Bearer caf\u00e9", "app_setting"),  # not ASCII: could not be sent
    ("CHECK_HEADER_BAD", "Host: evil.example", "app_setting"),
    ("CHECK_HEADER_BAD", "X-Key: a\tb ", "app_setting"),
])
def test_a_header_setting_that_cannot_be_sent_is_400_at_pause(api, endpoint, configure, name, value, rule):
    configure(**{name: value})
    check = http_check(endpoint)
    check["http"]["header_setting"] = name
    response = api.pause(checks=[check])
    assert response.status_code == 400, api.json(response)
    [error] = api.json(response)["errors"]
    assert (error["field"], error["rule"]) == ("checks[0].http.header_setting", rule)
    assert "pa:ss" not in response.get_body().decode()


@pytest.mark.parametrize("hosts, message", [
    (None, "CHECK_HEADER_DQ_HOSTS is not set"),
    ("", "CHECK_HEADER_DQ_HOSTS is not set"),
    ("dq.contoso.com, *.example.com", "may be sent only to the hosts in CHECK_HEADER_DQ_HOSTS, which does not list "
                                      "127.0.0.1"),
    ("https://127.0.0.1", "CHECK_HEADER_DQ_HOSTS has entries that are not host names"),
])
def test_a_header_setting_goes_only_to_the_hosts_its_hosts_setting_lists(api, endpoint, configure, hosts, message):
    configure(CHECK_HEADER_DQ="Authorization: Bearer s3cret-token", CHECK_HEADER_DQ_HOSTS=hosts)
    check = http_check(endpoint)
    check["http"]["header_setting"] = "CHECK_HEADER_DQ"
    response = api.pause(checks=[check])
    assert response.status_code == 400, api.json(response)
    [error] = api.json(response)["errors"]
    assert (error["field"], error["rule"]) == ("checks[0].http.header_setting", "hosts")
    assert message in error["message"] and "s3cret" not in response.get_body().decode()


def test_a_header_whose_host_list_no_longer_allows_the_host_is_not_sent(api, endpoint, configure):
    configure(CHECK_HEADER_DQ="Authorization: Bearer s3cret-token", CHECK_HEADER_DQ_HOSTS="127.0.0.1")
    endpoint.set("dq", json={"status": "OK"})
    check = http_check(endpoint)
    check["http"]["header_setting"] = "CHECK_HEADER_DQ"
    created = api.created(checks=[check])
    configure(CHECK_HEADER_DQ_HOSTS="dq.contoso.com")  # narrowed after the pause was made
    assert sweep.sweep(now()) == {"checked": 1}
    shown = result_of(api, created["pause_id"])
    assert shown["result"] == "error" and "which does not list 127.0.0.1" in shown["detail"]
    assert endpoint.seen("dq").calls == 0  # the check was not called at all, with or without the header


@pytest.mark.parametrize("settings, url, status", [
    ({"CHECK_ALLOWED_HOSTS": None}, "https://dq.contoso.com/api", 403),
    ({"CHECK_ALLOWED_HOSTS": "dq.contoso.com"}, "https://evil.example/api", 403),
    ({"CHECK_ALLOWED_HOSTS": "dq.contoso.com"}, "http://dq.contoso.com/api", 403),
    ({"CHECK_ALLOWED_HOSTS": "dq.contoso.com"}, "https://dq.contoso.com\\@evil.example/", 400),
    ({"CHECK_ALLOWED_HOSTS": "dq.contoso.com"}, "https://dq.contoso.com/api", 201),
])
def test_checks_call_only_allowed_hosts(api, configure, settings, url, status):
    configure(**settings)
    response = api.pause(checks=[{"name": "dq", "http": {"url": url}}])
    assert response.status_code == status, api.json(response)


def test_an_adf_run_that_does_not_exist_is_400_at_pause(api, endpoint):
    response = api.pause(checks=[adf_check("2f7fdb90-5df1-4b8e-ac2f-064cfa58202b")])
    assert response.status_code == 400 and api.json(response)["errors"][0]["field"] == "checks[0].adf_run.run_id"


def test_two_timer_instances_make_each_attempt_once(api, adf, endpoint):
    endpoint.set("dq", json={"status": "RUNNING"}, delay=0.2)
    created = [api.created(checks=[http_check(endpoint)]) for _ in range(6)]
    barrier, results = threading.Barrier(2), []

    def run():
        barrier.wait()
        results.append(sweep.sweep(now()))

    threads = [threading.Thread(target=run) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert endpoint.seen("dq").calls == 6
    assert all(api.record(p["pause_id"])["check_attempts"] == 1 for p in created)


def test_checks_never_run_on_a_page_or_a_persons_request(api, endpoint):
    endpoint.set("dq", json={"status": "OK"})
    created = api.created(checks=[http_check(endpoint)], checks_mode="gate")
    api.page("restart", created["token"])
    assert api.decide("restart", created["token"]).status_code == 409
    assert endpoint.seen("dq").calls == 0


def test_a_randomized_run_of_many_pauses_with_checks_ends_each_in_exactly_one_final_state(api, adf, endpoint):
    rng = random.Random(5)
    names = [f"c{i}" for i in range(8)]
    for name in names:
        endpoint.set(name, json={"status": "RUNNING"})
    pauses = []
    for i in range(24):
        check = http_check(endpoint, rng.choice(names))
        fields = {"checks": [check], "check_max_attempts": rng.randint(1, 4), "check_every": 60,
                  "on_timeout": rng.choice(["expire", "restart"]), "checks_mode": rng.choice(["auto", "gate"])}
        if rng.random() < 0.4:
            fields = {**fields, "callBackUri": f"{adf.url}/_standin/callbacks/r{i}"}
            pauses.append(api.json(api.pause(fields)))
        else:
            pauses.append(api.created(**fields))
    moment = now()
    for step in range(8):
        for name in names:
            endpoint.set(name, **rng.choice([{"json": {"status": "OK"}}, {"json": {"status": "RUNNING"}},
                                             {"status": 500}]))
        sweep.sweep(moment)
        for pause in rng.sample(pauses, 3):
            api.decide(rng.choice(["restart", "cancel"]), pause["token"], json_body={"reason": "r"}
                       if rng.random() < 0.5 else {})
        moment += timedelta(seconds=61)
    for _ in range(10):  # past every expiry: the timer settles the rest
        if not sweep.sweep(moment + timedelta(days=2)):
            break
    records = [api.record(p["pause_id"]) for p in pauses]
    assert all(r["status"] in ("restarted", "cancelled", "expired") for r in records), [r["status"] for r in records]
    runs = {}
    for run in adf.runs:
        runs.setdefault(run["parameters"]["pause_id"], []).append(run["runId"])
    assert all(len(ids) == 1 for ids in runs.values())
    for record in records:
        if record["mode"] == "restart":
            assert (record["status"] == "restarted") == (record["pause_id"] in runs)
    completed = [c["callbackId"] for c in adf.callbacks if c["completed"]]
    assert len(completed) == len(set(completed))


def test_an_answer_dripped_a_byte_at_a_time_is_cut_off_at_the_timeout(api, endpoint):
    """The timeout bounds the whole answer, not each read: an endpoint that keeps sending a byte
    now and then cannot hold an attempt (CHECK_TIMEOUT_SECONDS is 1 here)."""
    endpoint.set("dq", json={"status": "OK", "padding": "x" * 60}, drip=0.05)
    created = api.created(checks=[http_check(endpoint)])
    assert sweep.sweep(now()) == {"checked": 1}
    shown = result_of(api, created["pause_id"])
    assert (shown["result"], shown["detail"]) == ("error", "no whole answer within 1 s")
    [dripped] = endpoint.seen("dq").dripped
    assert not dripped["complete"] and dripped["sent"] < 60


def test_a_persons_decision_in_flight_is_never_disturbed_by_an_attempt_ending_meanwhile(api, adf, endpoint, configure):
    """Auto mode: a person approves while the timer's attempt is out asking the endpoint. The person's
    claim is in flight when the checks pass; the timer neither decides nor writes over it."""
    configure(CHECK_ALLOWED_HOSTS="127.0.0.1", CHECK_TIMEOUT_SECONDS="30")
    answer = threading.Event()  # the endpoint answers once the person's claim is in, however slow the machine
    endpoint.set("dq", json={"status": "OK"}, gate=answer)
    adf.latency["createRun"] = 3  # the person's decision is still in flight when the check answers
    created = api.created(checks=[http_check(endpoint)])
    swept, approved = [], []
    timer = threading.Thread(target=lambda: swept.append(sweep.sweep(now())))
    person = threading.Thread(target=lambda: approved.append(
        api.decide("restart", created["token"], json_body={"comment": "go"})))
    timer.start()
    try:
        wait_until(lambda: endpoint.seen("dq").calls > 0, what="the attempt asking the endpoint")
        person.start()
        wait_until(lambda: api.record(created["pause_id"])["status"] == "restarting", what="the person's claim")
    finally:
        answer.set()
        timer.join()
        if person.ident is not None:  # started
            person.join()
    assert approved[0].status_code == 200 and swept == [{"rescheduled": 1}]
    record = api.record(created["pause_id"])
    assert record["status"] == "restarted" and record["decided_by"] != "checks" and record["comment"] == "go"
    assert len(adf.runs) == 1
    assert sweep.sweep(now() + timedelta(minutes=11)) == {"already_settled": 1}  # its row was kept, then dropped


def test_checks_that_passed_but_could_not_continue_continue_at_the_next_run(api, adf, endpoint):
    endpoint.set("dq", json={"status": "OK"})
    created = api.created(checks=[http_check(endpoint)])
    adf.inject("createRun", "before", status=400, code="BadRequest")  # refused: nothing started
    assert sweep.sweep(now()) == {"retry": 1}
    record = api.record(created["pause_id"])
    assert record["status"] == "pending" and record["checks_passed"] is True and adf.runs == []
    assert sweep.sweep(now()) == {"restarted": 1}  # owed: continues at once, not at expiry
    assert endpoint.seen("dq").calls == 1 and len(adf.runs) == 1


def test_a_second_timer_never_settles_a_last_attempt_that_is_still_running(api, adf, endpoint, configure):
    # The endpoint answers the first timer's attempt only once the second timer has looked, however
    # slow the machine: no fixed delay decides the order.
    configure(CHECK_ALLOWED_HOSTS="127.0.0.1", CHECK_TIMEOUT_SECONDS="30")
    answer = threading.Event()
    endpoint.set("dq", json={"status": "OK"}, gate=answer)
    created = api.created(checks=[http_check(endpoint)], check_max_attempts=1)
    first = []
    timer = threading.Thread(target=lambda: first.append(sweep.sweep(now())))
    timer.start()
    try:
        wait_until(lambda: endpoint.seen("dq").calls > 0, what="the attempt asking the endpoint")
        assert sweep.sweep(now()) == {"rescheduled": 1}  # attempt 1 of 1 is running elsewhere: not "ran out"
    finally:
        answer.set()
        timer.join()
    assert first == [{"restarted": 1}] and api.record(created["pause_id"])["status"] == "restarted"
    assert len(adf.runs) == 1 and endpoint.seen("dq").calls == 1


def test_factory_fields_sent_along_in_callback_mode_are_not_judged(api, adf, configure):
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1", ALLOWED_FACTORIES="00000000-0000-0000-0000-0000000000aa/rg/f")
    response = api.pause({"callBackUri": f"{adf.url}/_standin/callbacks/ctx", "subscription_id": TARGET["subscription_id"]})
    assert response.status_code == 202, api.json(response)


def test_an_expect_that_is_not_an_object_is_400(api, endpoint):
    response = api.pause(checks=[{**http_check(endpoint), "expect": []}])
    assert response.status_code == 400 and api.json(response)["errors"][0]["field"] == "checks[0].expect"


def logged(caplog) -> str:
    return "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)


@pytest.mark.parametrize("behaviour", ["tls_alert", "tls_garbage"])
def test_a_check_host_whose_tls_handshake_fails_is_that_checks_error_not_the_timers(api, endpoint, caplog, behaviour):
    caplog.set_level(logging.DEBUG)
    with BadPeer(behaviour) as peer:
        check = {"name": "dq", "http": {"url": f"https://127.0.0.1:{peer.port}/dq?key=s3cr3t"}}
        created = api.created(checks=[check], check_max_attempts=2, check_every=60)
        assert sweep.sweep(now()) == {"checked": 1}
        shown = result_of(api, created["pause_id"])
        assert shown["result"] == "error" and shown["detail"].startswith("could not connect: TLS failed")
        assert sweep.sweep(now() + timedelta(seconds=61)) == {"expired": 1}  # check_max_attempts, not the timer's 5
    record = api.record(created["pause_id"])
    assert record["status"] == "expired" and "did not all pass in 2 attempts" in record["reason"]
    assert "s3cr3t" not in logged(caplog) and "s3cr3t" not in record["checks"][0]["detail"]


def test_a_check_host_that_resets_after_the_request_gave_no_answer(api, endpoint, caplog):
    caplog.set_level(logging.DEBUG)
    with BadPeer("reset_after_request") as peer:
        created = api.created(checks=[{"name": "dq", "http": {"url": f"http://127.0.0.1:{peer.port}/dq?key=s3cr3t"}}])
        assert sweep.sweep(now()) == {"checked": 1}
    shown = result_of(api, created["pause_id"])
    assert (shown["result"], shown["detail"]) == ("error", "no answer: Connection reset by peer")
    assert len(peer.received) == 1 and "s3cr3t" not in logged(caplog)


def test_a_check_host_name_that_resolves_to_loopback_is_refused_unless_its_address_is_listed(api, endpoint, configure):
    configure(CHECK_ALLOWED_HOSTS="localhost")  # the name is listed, the address it resolves to is not
    endpoint.set("dq", json={"status": "RUNNING"})
    check = http_check(endpoint)
    check["http"]["url"] = check["http"]["url"].replace("127.0.0.1", "localhost")
    created = api.created(checks=[check], check_every=60)
    assert sweep.sweep(now()) == {"checked": 1}
    shown = result_of(api, created["pause_id"])
    assert shown["result"] == "error" and shown["detail"].startswith("host localhost resolves to ")
    assert "127.0.0.1" in shown["detail"] and shown["detail"].endswith("only when CHECK_ALLOWED_HOSTS lists it")
    assert endpoint.seen("dq").calls == 0
    configure(CHECK_ALLOWED_HOSTS="localhost,127.0.0.1")
    assert sweep.sweep(now() + timedelta(seconds=61)) == {"checked": 1}
    assert result_of(api, created["pause_id"])["detail"] == '$.status is "RUNNING"' and endpoint.seen("dq").calls == 1


@pytest.mark.parametrize("damage", ["pipeline_name", "factory_no_longer_allowed"])
@pytest.mark.parametrize("mode", ["auto", "gate"])
def test_a_pause_that_could_never_continue_fails_at_its_first_attempt_and_calls_no_check_host(
        api, adf, endpoint, table, configure, damage, mode):
    from azure.data.tables import UpdateMode

    endpoint.set("dq", json={"status": "RUNNING"})
    created = api.created(checks=[http_check(endpoint)], checks_mode=mode)
    if damage == "pipeline_name":
        entity = table.get_entity(created["pause_id"], "pause")
        del entity["pipeline_name"]
        table.update_entity(entity, mode=UpdateMode.REPLACE)
    else:
        configure(ALLOWED_FACTORIES="*/*/another-factory", CHECK_ALLOWED_HOSTS="127.0.0.1",
                  CALLBACK_ALLOWED_HOSTS="127.0.0.1", CHECK_TIMEOUT_SECONDS="1")
    assert sweep.sweep(now()) == {"failed": 1}
    record = api.record(created["pause_id"])
    assert record["status"] == "failed" and record["decided_by"] == "app" and record["check_attempts"] == 0
    assert ("pipeline_name is missing" if damage == "pipeline_name" else "FactoryNotAllowed") in record["last_error"]
    assert endpoint.seen("dq").calls == 0 and adf.runs == [] and sweep.sweep(now() + timedelta(hours=1)) == {}
