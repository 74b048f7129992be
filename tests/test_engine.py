"""The five promises of "Exactly once, also when things break", each shown under injected faults.

Faults come from the outside, never from patching the app: the strict ADF stand-in (its
createRun, queryPipelineRuns and WebHook callback endpoint fail as ADF does) and a proxy in
front of Azurite that fails storage requests before or after they are carried out.
"""

import time
from datetime import datetime, timedelta, timezone

import pytest
from azure.data.tables import UpdateMode

from shared import sweep
from shared.storage.due_index import get_due_index
from shared.targets.adf import PipelineTarget, get_adf
from tests.support import TARGET, sdk_client

pytestmark = pytest.mark.integration

FAST = {"ARM_READ_TIMEOUT_SECONDS": "0.5", "CALLBACK_READ_TIMEOUT_SECONDS": "0.5", "ARM_RETRY_TOTAL": "0",
        "RUN_LOOKUP_RETRY_SECONDS": "0.1"}
UPDATES = {"PUT", "PATCH", "MERGE"}


@pytest.fixture
def hook(configure, adf):
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1", **FAST)
    return lambda name="activity": f"{adf.url}/_standin/callbacks/{name}"


@pytest.fixture
def storage(storage, configure):
    configure(STORAGE_RETRY_TOTAL="1", **FAST)
    return storage


def pauses_path(api):
    """Requests on the pauses table itself, not its due index (`<table>expiry`)."""
    return rf"/{api.table_name}(?:\(|\?|$)"


def at(created, seconds=1):
    return datetime.fromisoformat(created["expires_at"].replace("Z", "+00:00")) + timedelta(seconds=seconds)


def runs_for(adf, pause_id):
    return [run for run in adf.runs if run["parameters"].get("pause_id") == pause_id]


def interrupt(table, pause_id, minutes_ago, status="restarting", action="approve"):
    """What a process that died mid-decision leaves behind: a claim with no outcome."""
    entity = table.get_entity(pause_id, "pause")
    entity.update(status=status, claimed_at=datetime.now(timezone.utc) - timedelta(minutes=minutes_ago),
                  claim_action=action, claim_id="dead-process")
    table.update_entity(entity)


# 1. createRun is never repeated blindly.

@pytest.mark.parametrize("kind, status", [("after", 500), ("after", 503), ("after", 504), ("drop", 500),
                                          ("late", 500), ("garbled", 500), ("truncated", 500)])
def test_promise_1_create_run_that_may_have_started_is_looked_up_not_repeated(api, adf, configure, kind, status):
    configure(**FAST)
    created = api.created()
    adf.inject("createRun", kind, status=status, seconds=2)
    response = api.decide("restart", created["token"])
    assert response.status_code == 200
    [run] = runs_for(adf, created["pause_id"])  # exactly one, though the answer was lost or a 5xx
    record = api.record(created["pause_id"])
    assert api.json(response)["run_id"] == run["runId"] == record["run_id"]
    assert record["status"] == "restarted" and "found and recorded" in record["last_error"]
    assert api.decide("restart", created["token"]).status_code == 409
    assert len(adf.runs) == 1


def test_promise_1_adf_that_cannot_be_reached_starts_nothing_and_the_link_works_again(refused_port, api, adf,
                                                                                      configure):
    created = api.created()
    configure(ARM_ENDPOINT=f"http://127.0.0.1:{refused_port}", **FAST)
    response = api.decide("restart", created["token"])
    assert response.status_code == 502 and "Nothing was started" in api.json(response)["detail"]
    assert api.record(created["pause_id"])["status"] == "pending"
    configure(ARM_ENDPOINT=adf.url, **FAST)
    assert api.decide("restart", created["token"]).status_code == 200 and len(adf.runs) == 1


def test_promise_1_a_5xx_without_a_run_gives_the_pause_back_after_looking(api, adf, configure):
    configure(**FAST)
    created = api.created()
    adf.inject("createRun", "before", status=503, code="ServiceUnavailable")
    response = api.decide("restart", created["token"])
    assert response.status_code == 502 and "link still works" in api.json(response)["detail"]
    record = api.record(created["pause_id"])
    assert record["status"] == "pending" and "ServiceUnavailable" in record["last_error"]
    assert api.decide("restart", created["token"]).status_code == 200
    assert len(adf.runs) == 1


def test_promise_1_throttling_is_the_one_refusal_repeated_since_arm_did_not_process_it(api, adf):
    created = api.created()
    adf.inject("createRun", "before", status=429, code="SubscriptionRequestsThrottled", retry_after=0)
    assert api.decide("restart", created["token"]).status_code == 200
    assert len(adf.runs) == 1


def test_promise_1_when_adf_cannot_be_asked_the_claim_is_kept_and_reconciled_later(api, adf, configure):
    configure(STALE_CLAIM_SECONDS="600", **FAST)
    created = api.created()
    adf.inject("createRun", "after", status=504, code="GatewayTimeout")
    adf.inject("queryPipelineRuns", "before", status=403, code="AuthorizationFailed")
    response = api.decide("restart", created["token"])
    assert response.status_code == 502 and api.json(response)["code"] == "outcome_unknown"
    assert "do not start the pipeline by hand" in api.json(response)["detail"]
    record = api.record(created["pause_id"])
    assert record["status"] == "restarting"
    assert "GatewayTimeout" in record["last_error"] and "AuthorizationFailed" in record["last_error"]
    # Every further click is told it is in hand; nothing is started again.
    assert api.decide("restart", created["token"]).status_code == 409
    assert api.decide("cancel", created["token"]).status_code == 409
    # Once stale (not only at expiry, a day away), the timer asks ADF again, finds the run, records it.
    assert sweep.sweep(datetime.now(timezone.utc) + timedelta(minutes=11)) == {"reconciled": 1}
    record = api.record(created["pause_id"])
    assert record["status"] == "restarted" and record["run_id"] == adf.runs[0]["runId"]
    assert len(adf.runs) == 1


def test_promise_1_the_lookup_pages_newest_first_and_stops_where_the_claim_began(api, adf, configure):
    configure(RUN_LOOKUP_MAX_PAGES="3")
    adf.page_size = 2
    try:
        client = sdk_client(adf)
        target = PipelineTarget(**TARGET)
        since = datetime.now(timezone.utc) - timedelta(seconds=1)
        mine = client.pipelines.create_run(TARGET["resource_group"], TARGET["factory_name"], TARGET["pipeline_name"],
                                           parameters={"pause_id": "p" * 32}, enforce_https=False).run_id
        for n in range(3):  # newer runs of other pauses: the run sought is on the second page
            client.pipelines.create_run(TARGET["resource_group"], TARGET["factory_name"], TARGET["pipeline_name"],
                                        parameters={"pause_id": f"{n}" * 32}, enforce_https=False)
        assert get_adf().find_run(target, "p" * 32, since) == mine
        assert get_adf().find_run(target, "q" * 32, since) is None  # read to the end: surely none
        configure(RUN_LOOKUP_MAX_PAGES="1")
        from shared.targets.outside import Unknown
        with pytest.raises(Unknown) as incomplete:  # the bound ends the search without an answer
            get_adf().find_run(target, "q" * 32, since)
        assert incomplete.value.code == "RunLookupIncomplete"
    finally:
        adf.page_size = 100


# 2. A callback that may have arrived is never followed by a different outcome.

@pytest.mark.parametrize("kind", ["after", "drop", "late", "garbled"])
def test_promise_2_a_callback_that_may_have_arrived_is_decided_and_only_ever_resent_identically(api, hook, adf,
                                                                                               kind):
    created = api.json(api.pause({"callBackUri": hook(), "data": {"rows": 5}}))
    adf.inject("callback", kind, status=503, seconds=2)
    response = api.decide("restart", created["token"], json_body={"comment": "ok"})
    assert response.status_code == 202
    assert api.json(response) == {"pause_id": created["pause_id"], "status": "restarted", "run_id": None,
                                  "callback_confirmed": False}
    record = api.record(created["pause_id"])
    assert record["status"] == "restarted" and record["callback_confirmed"] is False and record["last_error"]
    # The links now answer like any decided pause: no Error can follow the Output.
    assert api.decide("cancel", created["token"], json_body={"reason": "changed my mind"}).status_code == 409
    assert api.decide("restart", created["token"]).status_code == 409
    # The timer re-sends the identical bytes; the completed activity answers 409: delivered.
    assert sweep.sweep(datetime.now(timezone.utc) + timedelta(minutes=2)) == {"redelivered": 1}
    assert api.record(created["pause_id"])["callback_confirmed"] is True
    bodies = [c["body"] for c in adf.callbacks]
    assert len(bodies) == 2 and bodies[0] == bodies[1] and "Output" in bodies[0]
    assert [c["completed"] for c in adf.callbacks] == [True, False]
    assert sweep.sweep(datetime.now(timezone.utc) + timedelta(days=2)) == {"already_settled": 1}
    assert len(adf.callbacks) == 2


def test_promise_2_an_expiry_callback_without_answer_is_recorded_and_resent(api, hook, adf):
    created = api.json(api.pause({"callBackUri": hook("exp"), "expires_in": 60}))
    adf.inject("callback", "after", status=500)
    assert sweep.sweep(at(created)) == {"unconfirmed": 1}
    record = api.record(created["pause_id"])
    assert record["status"] == "expired" and record["callback_confirmed"] is False
    assert sweep.sweep(at(created, 3600)) == {"redelivered": 1}
    first, again = adf.callbacks
    assert first["body"] == again["body"] and first["body"]["Error"]["ErrorCode"] == "PauseExpired"


def test_promise_2_resending_is_bounded_and_says_when_it_gave_up(api, hook, adf, configure):
    configure(CALLBACK_REDELIVERY_ATTEMPTS="3", CALLBACK_ALLOWED_HOSTS="127.0.0.1", **FAST)
    created = api.json(api.pause({"callBackUri": hook("bounded")}))
    adf.inject("callback", "before", status=503)
    adf.inject("callback", "before", count=10, status=404)
    assert api.decide("restart", created["token"]).status_code == 202
    moment = datetime.now(timezone.utc)
    outcomes = [sweep.sweep(moment + timedelta(hours=hours)) for hours in (1, 2, 3)]
    assert outcomes == [{"rescheduled": 1}, {"undelivered": 1}, {}]
    record = api.record(created["pause_id"])
    assert record["status"] == "restarted" and record["callback_confirmed"] is False
    assert "gave up re-sending" in record["last_error"]
    assert len(adf.callbacks) == 3 and len({str(c["body"]) for c in adf.callbacks}) == 1


def test_promise_2_a_webhook_that_already_completed_is_told_nothing_else(api, hook, adf):
    created = api.json(api.pause({"callBackUri": hook("done")}))
    assert api.decide("restart", created["token"]).status_code == 200
    other = api.json(api.pause({"callBackUri": hook("done")}))  # the same activity, already completed
    response = api.decide("cancel", other["token"])
    assert response.status_code == 409 and "already completed" in api.json(response)["detail"]
    assert api.record(other["pause_id"])["status"] == "failed"
    assert [c["completed"] for c in adf.callbacks] == [True, False]


# 3. No claim outlives an error.

def test_promise_3_a_garbled_answer_from_adf_ends_true_not_stuck(api, adf, configure):
    configure(**FAST)
    created = api.created()
    adf.inject("createRun", "garbled")
    adf.inject("queryPipelineRuns", "garbled")  # and the lookup cannot be read either
    response = api.decide("restart", created["token"])
    assert response.status_code == 502 and api.json(response)["code"] == "outcome_unknown"
    record = api.record(created["pause_id"])
    assert record["status"] == "restarting" and record["last_error"]
    assert sweep.sweep(at(created)) == {"reconciled": 1}
    assert api.record(created["pause_id"])["run_id"] == adf.runs[0]["runId"]


def test_promise_3_storage_failing_after_the_run_started_tells_the_truth_and_is_reconciled(api, adf, storage, azurite):
    created = api.created()
    storage.inject("after", methods=UPDATES, path=pauses_path(api), count=1)  # the claim: landed, answer lost
    storage.inject("before", methods=UPDATES, path=pauses_path(api), count=1000)  # every write of the outcome fails
    response = api.decide("restart", created["token"])
    assert response.status_code == 200  # the run did start: that is the truth to tell
    [run] = adf.runs
    assert api.json(response)["run_id"] == run["runId"]
    storage.clear()
    assert api.record(created["pause_id"])["status"] == "restarting"
    # The index tells the truth too: claimed, and no decision filed.
    assert listed(api, "restarting") == [created["pause_id"]] and decision_rows(azurite, api) == []
    assert sweep.sweep(at(created)) == {"reconciled": 1}
    record = api.record(created["pause_id"])
    assert record["status"] == "restarted" and record["run_id"] == run["runId"] and len(adf.runs) == 1
    assert listed(api, "restarted") == [created["pause_id"]] and decision_rows(azurite, api) == ["restarted"]


def test_a_run_reconciled_while_its_answer_was_late_stays_filed_as_restarted(api, adf, azurite):
    """The timer finds the run of a claim whose createRun answer is late and records it; the late
    decision's own write then meets a changed pause, and must not take the true index rows back."""
    import threading

    created = api.created(expires_in=60)
    adf.inject("createRun", "late", seconds=2.0)  # the run is made at once, its answer comes later
    answered = []
    clicking = threading.Thread(target=lambda: answered.append(api.decide("restart", created["token"])))
    clicking.start()
    deadline = time.monotonic() + 10
    while not adf.runs and time.monotonic() < deadline:
        time.sleep(0.02)
    [run] = adf.runs
    assert sweep.sweep(datetime.now(timezone.utc) + timedelta(minutes=11)) == {"reconciled": 1}
    clicking.join()
    assert answered[0].status_code == 200 and api.json(answered[0])["run_id"] == run["runId"]
    assert api.record(created["pause_id"])["status"] == "restarted" and len(adf.runs) == 1
    assert listed(api, "restarted") == [created["pause_id"]] and decision_rows(azurite, api) == ["restarted"]
    assert listed(api, "restarting") == [] and listed(api, "pending") == []


def test_promise_3_a_callback_whose_outcome_was_not_recorded_is_listed_as_claimed_then_failed_once(
        api, adf, storage, hook, azurite):
    created = api.json(api.pause({"callBackUri": hook("unrecorded"), "expires_in": 60}))
    storage.inject("after", methods=UPDATES, path=pauses_path(api), count=1)  # the claim: landed, answer lost
    storage.inject("before", methods=UPDATES, path=pauses_path(api), count=1000)  # every write of the outcome fails
    assert api.decide("restart", created["token"]).status_code in (200, 202)
    storage.clear()
    assert listed(api, "restarting") == [created["pause_id"]] and decision_rows(azurite, api) == []
    assert sweep.sweep(at(created, 700)) == {"failed": 1}  # a callback's arrival cannot be asked: failed
    assert listed(api, "failed") == [created["pause_id"]] and decision_rows(azurite, api) == ["failed"]


def listed(api, status):
    return [item["pause_id"] for item in api.json(api.list(status=status))["items"]]


def decision_rows(azurite, api):
    """The statuses of the status index's decision rows, read straight from Azurite."""
    from azure.data.tables import TableClient

    with TableClient.from_connection_string(azurite.connection_string, f"{api.table_name}status") as index:
        rows = index.query_entities("RowKey ge @low and RowKey lt @high", parameters={"low": "decided|",
                                                                                     "high": "decided|~"})
        return sorted(row["status"] for row in rows)


def test_promise_3_a_give_back_that_storage_refuses_says_so_and_is_released_later(api, adf, storage, configure):
    created = api.created()
    adf.inject("createRun", "before", status=400, code="BadRequest")
    storage.inject("after", methods=UPDATES, path=pauses_path(api), count=1)  # the claim lands
    storage.inject("before", methods=UPDATES, path=pauses_path(api), count=1000)  # the give-back does not
    response = api.decide("restart", created["token"])
    assert response.status_code == 502 and "released automatically" in api.json(response)["detail"]
    storage.clear()
    assert sweep.sweep(at(created)) == {"expired": 1}  # released (no run in ADF), then settled
    assert adf.runs == []


# 4. No pause is ever stuck.

def test_promise_4_a_claim_young_at_expiry_is_rescheduled_not_dropped(api, adf, table):
    created = api.created(expires_in=60, on_timeout="restart")
    interrupt(table, created["pause_id"], minutes_ago=0)
    claimed_at = table.get_entity(created["pause_id"], "pause")["claimed_at"]
    assert sweep.sweep(at(created)) == {"rescheduled": 1}
    [due] = list(get_due_index().due(claimed_at + timedelta(minutes=10, seconds=1)))
    assert due.pause_id == created["pause_id"]
    assert sweep.sweep(claimed_at + timedelta(minutes=10, seconds=1)) == {"restarted": 1}
    [run] = adf.runs
    assert api.record(created["pause_id"])["run_id"] == run["runId"]


def test_promise_4_the_next_click_reconciles_a_stale_claim(api, adf, table):
    created = api.created()
    run_id = sdk_client(adf).pipelines.create_run(TARGET["resource_group"], TARGET["factory_name"],
                                                  TARGET["pipeline_name"], parameters={"pause_id": created["pause_id"]},
                                                  enforce_https=False).run_id
    interrupt(table, created["pause_id"], minutes_ago=11)
    response = api.decide("restart", created["token"])
    assert response.status_code == 409 and api.json(response)["run_id"] == run_id
    assert api.record(created["pause_id"])["status"] == "restarted" and len(adf.runs) == 1


@pytest.mark.parametrize("status, action", [("cancelling", "cancel"), ("expiring", "expire")])
def test_promise_4_a_stale_callback_claim_of_any_action_ends_failed_with_the_reason(api, hook, adf, table, status,
                                                                                   action):
    created = api.json(api.pause({"callBackUri": hook(), "expires_in": 60}))
    interrupt(table, created["pause_id"], minutes_ago=11, status=status, action=action)
    assert sweep.sweep(at(created)) == {"failed": 1}
    record = api.record(created["pause_id"])
    assert record["status"] == "failed" and "whether it arrived is unknown" in record["last_error"]
    assert adf.callbacks == []


def test_promise_4_storage_blips_on_every_kind_of_write_are_absorbed(api, adf, storage):
    for kind in ("before", "after", "drop"):
        storage.inject(kind, methods={"POST"}, path=pauses_path(api))  # the pause insert
        created = api.created()
        storage.inject(kind, methods=UPDATES, path=pauses_path(api))   # the claim
        assert api.decide("restart", created["token"]).status_code == 200
        assert len(runs_for(adf, created["pause_id"])) == 1
        assert api.record(created["pause_id"])["status"] == "restarted"
    assert storage.faults_seen() == 6


# 5. One bad pause never stops the timer.

def test_promise_5_damaged_and_refused_pauses_are_counted_while_the_rest_settle(api, adf, table, hook, configure):
    good = [api.created(expires_in=60) for _ in range(3)]
    damaged = api.created(expires_in=60)
    entity = table.get_entity(damaged["pause_id"], "pause")
    del entity["expires_at"]  # as if deleted by hand in Storage Explorer
    table.update_entity(entity, mode=UpdateMode.REPLACE)
    refused = api.created(expires_in=60, on_timeout="restart")
    moved = api.json(api.pause({"callBackUri": hook("moved"), "expires_in": 60}))
    configure(CALLBACK_ALLOWED_HOSTS="*.svc.datafactory.azure.com", **FAST)  # its host is no longer allowed
    adf.inject("createRun", "before", count=100, status=400, code="BadRequest")
    moment = at(good[-1], 60)
    timer = api.functions["expire_pauses"].get_user_function()
    assert sweep.sweep(moment) == {"expired": 3, "retry": 3}
    for _ in range(3):
        assert sweep.sweep(moment) == {"retry": 3}
    assert sweep.sweep(moment) == {"failed": 3}
    for pause in (damaged, refused, moved):
        record = api.record(pause["pause_id"])
        assert record["status"] == "failed" and "5 attempts" in record["last_error"]
    assert "expires_at is missing" in api.record(damaged["pause_id"])["last_error"]
    assert all(api.record(p["pause_id"])["status"] == "expired" for p in good)
    assert timer(None) is None and sweep.sweep(moment) == {}


def test_promise_5_a_stray_row_in_the_due_index_is_skipped_not_fatal(api, azurite, app_env):
    from azure.data.tables import TableClient

    created = api.created(expires_in=60)
    partition, _ = get_due_index().keys(created["pause_id"], at(created))
    with TableClient.from_connection_string(azurite.connection_string, app_env + "expiry") as index:
        index.create_entity({"PartitionKey": partition, "RowKey": "not-a-row-of-ours", "attempts": "many"})
    assert sweep.sweep(at(created)) == {"expired": 1}


def test_promise_5_the_timer_function_never_raises_even_when_storage_is_down(api, configure, registered_functions):
    configure(AzureWebJobsStorage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=AAAA;"
                                  "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;")
    assert registered_functions["expire_pauses"].get_user_function()(None) is None


def test_promise_5_a_time_budget_leaves_the_rest_due_for_the_next_run(api, configure):
    created = [api.created(expires_in=60) for _ in range(30)]
    configure(SWEEP_CONCURRENCY="2", SWEEP_TIME_BUDGET_SECONDS="5")
    ticks = iter(range(10 ** 6))
    first = sweep.sweep(at(created[-1]), clock=lambda: next(ticks) * 0.5)  # 10 rows fit the budget
    assert first.get("left_due") == 1 and 0 < first["expired"] < 30
    second = sweep.sweep(at(created[-1]))
    assert second == {"expired": 30 - first["expired"]}
    assert all(api.record(p["pause_id"])["status"] == "expired" for p in created)


def test_promise_5_two_timers_at_once_settle_each_pause_once(api, adf):
    import threading

    created = [api.created(expires_in=60, on_timeout="restart") for _ in range(12)]
    barrier, results = threading.Barrier(2), []

    def run():
        barrier.wait()
        results.append(sweep.sweep(at(created[-1])))

    threads = [threading.Thread(target=run) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(run["parameters"]["pause_id"] for run in adf.runs) == sorted(p["pause_id"] for p in created)
    assert sum(r.get("restarted", 0) for r in results) == 12


# What a call needs is checked before anything is claimed: a pause that can never make its call
# ends failed in the first run that meets it, with no claim and no outside call.

def _damage(table, pause_id, field):
    entity = table.get_entity(pause_id, "pause")
    del entity[field]  # as if deleted by hand in Storage Explorer
    table.update_entity(entity, mode=UpdateMode.REPLACE)


@pytest.mark.parametrize("field", ["pipeline_name", "factory_name", "subscription_id"])
def test_a_click_on_a_pause_whose_pipeline_field_is_gone_fails_it_at_once_naming_the_field(api, adf, table, field):
    created = api.created()
    _damage(table, created["pause_id"], field)
    response = api.decide("restart", created["token"])
    assert response.status_code == 409 and field in api.json(response)["detail"]
    record = api.record(created["pause_id"])
    assert record["status"] == "failed" and f"{field} is missing" in record["last_error"]
    assert record["decided_by"] == "app" and record["run_id"] is None and adf.runs == []
    assert table.get_entity(created["pause_id"], "pause").get("claimed_at") is None  # never claimed
    assert [p["pause_id"] for p in api.json(api.list(status="failed"))["items"]] == [created["pause_id"]]


def test_the_timer_fails_a_damaged_restart_on_timeout_pause_in_its_first_run(api, adf, table):
    created = api.created(expires_in=60, on_timeout="restart")
    _damage(table, created["pause_id"], "pipeline_name")
    assert sweep.sweep(at(created)) == {"already_settled": 1}
    record = api.record(created["pause_id"])
    assert record["status"] == "failed" and "pipeline_name is missing" in record["last_error"]
    assert adf.runs == [] and sweep.sweep(at(created)) == {}


def test_a_damaged_callback_pause_fails_at_once_and_nothing_is_sent(api, adf, table, hook):
    created = api.json(api.pause({"callBackUri": hook(), "expires_in": 60}))
    _damage(table, created["pause_id"], "callback_uri")
    response = api.decide("cancel", created["token"], form={"reason": "no"})
    assert response.status_code == 409 and "callback_uri" in api.json(response)["detail"]
    assert api.record(created["pause_id"])["status"] == "failed" and adf.callbacks == []


def test_a_factory_no_longer_allowed_fails_the_pause_before_any_run_starts(api, adf, configure):
    by_click = api.created()
    by_timer = api.created(expires_in=60, on_timeout="restart")
    configure(ALLOWED_FACTORIES="*/*/another-factory")
    response = api.decide("restart", by_click["token"])
    assert response.status_code == 409 and "ALLOWED_FACTORIES" in api.json(response)["detail"]
    assert sweep.sweep(at(by_timer)) == {"already_settled": 1}
    for created in (by_click, by_timer):
        record = api.record(created["pause_id"])
        assert record["status"] == "failed" and record["last_error"].startswith("FactoryNotAllowed")
        assert "adf-test" in record["last_error"]
    assert adf.runs == []


def test_cancelling_a_pause_whose_factory_is_no_longer_allowed_still_works(api, adf, configure):
    created = api.created()
    configure(ALLOWED_FACTORIES="*/*/another-factory")
    response = api.decide("cancel", created["token"], form={"reason": "not needed"})
    assert response.status_code == 200 and api.record(created["pause_id"])["status"] == "cancelled"
