"""The expiry sweep, driven with an injected clock instead of sleeps."""

import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from shared import pauses, sweep
from shared.settings import Limits
from shared.web.http import Caller

pytestmark = pytest.mark.integration


def later(created, seconds=1):
    """A moment `seconds` after the pause's expiry."""
    return datetime.fromisoformat(created["expires_at"].replace("Z", "+00:00")) + timedelta(seconds=seconds)


def test_expire_policy_marks_the_pause_expired_and_starts_nothing(api, adf):
    created = api.created(expires_in=60)
    assert sweep.sweep(later(created)) == {"expired": 1}
    record = api.record(created["pause_id"])
    assert record["status"] == "expired" and record["decided_by"] == "expiry timer" and record["decided_at"]
    assert adf.runs == []
    assert api.page("restart", created["token"]).status_code == 410


def test_restart_policy_restarts_as_if_approved(api, adf):
    created = api.created(expires_in=60, on_timeout="restart", parameters={"day": "d"})
    assert sweep.sweep(later(created)) == {"restarted": 1}
    [run] = adf.runs
    assert run["parameters"] == {"day": "d", "pause_id": created["pause_id"]}
    record = api.record(created["pause_id"])
    assert record["status"] == "restarted" and record["run_id"] == run["runId"]


def test_callback_pause_expiry_calls_back_with_pause_expired(api, configure, adf):
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1")
    created = api.json(api.pause({"callBackUri": f"{adf.url}/_standin/callbacks/a1", "expires_in": 60}))
    assert sweep.sweep(later(created)) == {"expired": 1}
    [call] = adf.callbacks
    assert call["body"]["Error"]["ErrorCode"] == "PauseExpired" and call["body"]["StatusCode"] == "400"
    assert api.record(created["pause_id"])["status"] == "expired"


def test_callback_restart_on_timeout_continues_the_run(api, configure, adf):
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1")
    created = api.json(api.pause({"callBackUri": f"{adf.url}/_standin/callbacks/a2", "expires_in": 60,
                                  "on_timeout": "restart"}))
    sweep.sweep(later(created))
    assert adf.callbacks[0]["body"]["StatusCode"] == "200"


def test_sweep_touches_only_what_is_due_and_nothing_twice(api, adf):
    due = [api.created(expires_in=60) for _ in range(3)]
    not_due = [api.created(expires_in=7200) for _ in range(5)]
    decided = api.created(expires_in=60)
    api.decide("cancel", decided["token"])
    now = later(due[0], 5)
    assert sweep.sweep(now) == {"expired": 3, "already_settled": 1}
    assert all(api.record(p["pause_id"])["status"] == "pending" for p in not_due)
    assert api.record(decided["pause_id"])["status"] == "cancelled"
    assert sweep.sweep(now) == {}  # the index rows of settled pauses are gone


def test_sweep_reads_the_index_not_the_table(api):
    from shared.storage.due_index import get_due_index

    created = [api.created(expires_in=60 + 10 * i) for i in range(4)]
    index = get_due_index()
    assert {d.pause_id for d in index.due(later(created[1]))} == {p["pause_id"] for p in created[:2]}
    assert list(index.due(later(created[0], -30))) == []


def test_a_link_used_after_expiry_is_410_before_the_timer_runs(api, adf):
    created = api.created(expires_in=60)
    response = pauses_approve_at(created, later(created))
    assert response == "expired"
    assert api.record(created["pause_id"])["status"] == "pending"


def pauses_approve_at(created, now):
    from shared.errors import Expired
    from shared.validation import Decision

    try:
        pauses.approve(created["token"], Decision(), Caller(None, None, None), now=now)
    except Expired:
        return "expired"
    return "approved"


def test_two_sweepers_at_once_settle_each_pause_once(api, adf):
    created = [api.created(expires_in=60, on_timeout="restart") for _ in range(6)]
    now = later(created[-1])
    barrier, results = threading.Barrier(2), []

    def run():
        barrier.wait()
        results.append(sweep.sweep(now))

    threads = [threading.Thread(target=run) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(adf.runs) == 6
    assert sorted(run["parameters"]["pause_id"] for run in adf.runs) == sorted(p["pause_id"] for p in created)
    assert sum(r.get("restarted", 0) for r in results) == 6


def test_adf_down_at_expiry_retries_then_gives_up_as_failed(api, adf):
    created = api.created(expires_in=60, on_timeout="restart")
    now = later(created)
    adf.inject("createRun", "before", count=100, status=400, code="BadRequest")  # refused: surely not started
    for attempt in range(Limits().timer_attempts - 1):
        assert sweep.sweep(now) == {"retry": 1}
        assert api.record(created["pause_id"])["status"] == "pending"
    assert sweep.sweep(now) == {"failed": 1}
    assert api.record(created["pause_id"])["status"] == "failed"
    assert sweep.sweep(now) == {}
    assert adf.runs == []


def test_index_row_without_a_pause_is_dropped(api, table):
    from shared.storage.due_index import get_due_index

    index = get_due_index()
    moment = datetime(2026, 1, 1, tzinfo=timezone.utc)
    index.add("f" * 32, moment)
    # A row a moment old may belong to a pause still being written: it is kept a while.
    assert sweep.sweep(moment + timedelta(seconds=1)) == {"rescheduled": 1}
    assert sweep.sweep(moment + sweep.MISSING_GRACE + timedelta(seconds=1)) == {"missing": 1}
    assert list(index.due(moment + timedelta(days=1))) == []


@pytest.mark.parametrize("setting, declared, resolved", [
    ("0 */5 * * * *", "%PAUSE_SWEEP_SCHEDULE%", "0 */5 * * * *"),  # by reference: the host resolves it
    (None, "0 */1 * * * *", "0 */1 * * * *"),                      # not set: the contract's default
    ("  ", "0 */1 * * * *", "0 */1 * * * *"),
])
def test_the_timers_schedule_is_the_app_setting_or_every_minute(setting, declared, resolved):
    """What the worker declares when it indexes the functions, in a fresh interpreter with the
    environment App Service gives it, and what the host (here: the local one) then runs."""
    import os
    import subprocess
    import sys

    from local_dev.timers import resolve_schedule

    env = {k: v for k, v in os.environ.items() if k != "PAUSE_SWEEP_SCHEDULE"}
    if setting is not None:
        env["PAUSE_SWEEP_SCHEDULE"] = setting
    probe = ("import function_app; print([f.get_trigger().schedule for f in function_app.app.get_functions()"
             " if f.get_function_name() == 'expire_pauses'][0])")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).parent.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == declared
    assert resolve_schedule(declared, env) == resolved


def test_the_local_host_refuses_a_schedule_naming_a_missing_setting_as_azure_does():
    from local_dev.timers import ScheduleSettingMissing, resolve_schedule
    from shared.settings import DEFAULT_SWEEP_SCHEDULE

    with pytest.raises(ScheduleSettingMissing, match="PAUSE_SWEEP_SCHEDULE"):
        resolve_schedule("%PAUSE_SWEEP_SCHEDULE%", {})
    example = json.loads((Path(__file__).parent.parent / "local.settings.json.example").read_text())
    assert example["Values"]["PAUSE_SWEEP_SCHEDULE"] == DEFAULT_SWEEP_SCHEDULE == "0 */1 * * * *"


def _interrupt(table, pause_id, minutes_ago=30):
    """What a process that died mid-approval leaves behind: a claim with no outcome."""
    entity = table.get_entity(pause_id, "pause")
    entity["status"] = "restarting"
    entity["claimed_at"] = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    table.update_entity(entity)


def _start_run_directly(adf, pause_id):
    """Start the run the dead process had asked for, through the real SDK."""
    from azure.core.credentials import AccessToken
    from azure.mgmt.datafactory import DataFactoryManagementClient

    class Token:
        def get_token(self, *scopes, **kwargs):
            return AccessToken("t", 4102444800)

    client = DataFactoryManagementClient(Token(), "00000000-0000-0000-0000-0000000000aa", base_url=adf.url)
    return client.pipelines.create_run("rg-data", "adf-test", "Load_Sales", parameters={"pause_id": pause_id},
                                       enforce_https=False).run_id


def test_interrupted_approval_whose_run_started_is_recorded_not_repeated(api, adf, table):
    created = api.created(expires_in=60)
    run_id = _start_run_directly(adf, created["pause_id"])
    _interrupt(table, created["pause_id"])
    assert sweep.sweep(later(created)) == {"reconciled": 1}
    record = api.record(created["pause_id"])
    assert record["status"] == "restarted" and record["run_id"] == run_id
    assert len(adf.runs) == 1


def test_interrupted_approval_without_a_run_settles_by_its_policy(api, adf, table):
    created = api.created(expires_in=60, on_timeout="restart")
    _interrupt(table, created["pause_id"])
    assert sweep.sweep(later(created)) == {"restarted": 1}
    [run] = adf.runs
    assert api.record(created["pause_id"])["run_id"] == run["runId"]


def test_interrupted_callback_approval_is_marked_failed(api, adf, table, configure):
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1")
    created = api.json(api.pause({"callBackUri": f"{adf.url}/_standin/callbacks/x", "expires_in": 60}))
    _interrupt(table, created["pause_id"])
    assert sweep.sweep(later(created)) == {"failed": 1}
    assert api.record(created["pause_id"])["status"] == "failed" and adf.callbacks == []


def test_settled_rows_go_in_batches_and_a_batch_with_a_row_gone_goes_again_without_it(api, table, monkeypatch):
    """Over 100 settled pauses of one due hour: their index rows are deleted a hundred per request,
    and a batch refused because another timer deleted one of its rows still deletes the rest, in a batch."""
    from shared.storage import due_index as due_module
    from shared.storage.due_index import get_due_index

    index = get_due_index()
    moment = datetime(2026, 1, 1, 10, tzinfo=timezone.utc)
    ids = [f"{i:032x}" for i in range(1, 131)]
    for number, pause_id in enumerate(ids):  # rows whose pauses are gone: each is settled as missing
        index.add(pause_id, moment + timedelta(seconds=number))
    requests, real, singles, real_remove = [], due_module.submit, [], index.remove

    def counted(table_client, operations):
        requests.append(len(operations))
        if len(requests) == 2:  # the second batch: another timer instance deleted one of its rows first
            table_client.delete_entity(operations[0][1]["PartitionKey"], operations[0][1]["RowKey"])
        return real(table_client, operations)

    def single(due):
        singles.append(due.pause_id)
        return real_remove(due)

    monkeypatch.setattr(due_module, "submit", counted)
    monkeypatch.setattr(index, "remove", single)
    assert sweep.sweep(moment + timedelta(hours=1)) == {"missing": 130}
    # Azure refuses the whole batch, naming the row gone: it is deleted alone (found gone), the rest in a batch.
    assert requests == [100, 30, 29] and len(singles) == 1
    assert list(index.due(moment + timedelta(days=1))) == []


def test_the_timer_knows_what_every_status_of_the_lifecycle_needs():
    from shared.lifecycle.model import Status
    from shared.sweep import _HANDLERS

    assert set(_HANDLERS) == set(Status)
