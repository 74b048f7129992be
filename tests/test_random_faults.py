"""Many approvals, cancels and expiries while ADF, the WebHook receiver and storage fail at random.

Whatever happened on the way, once the faults stop and the timer has run, the promises of
"Exactly once, also when things break" must hold:

- the runs ADF started are exactly the pauses recorded with a run id (one run per pause at most);
- no WebHook receiver saw two different outcomes (every callback it did not refuse is identical);
- no pause is left non-final, and no request was ever answered 500.
"""

import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from local_dev.storage_faults import StorageFaultProxy
from shared import sweep
from shared.lifecycle.model import FINAL

pytestmark = pytest.mark.integration

SEEDS = (11, 12)
PAUSES = 36
ADF_FAULTS = [
    None, None, None,
    ("createRun", "before", 503), ("createRun", "after", 500), ("createRun", "after", 504), ("createRun", "drop", 0),
    ("createRun", "late", 0), ("createRun", "before", 400), ("queryPipelineRuns", "before", 403),
    ("callback", "before", 400), ("callback", "after", 503), ("callback", "drop", 0), ("callback", "late", 0),
    ("callback", "before", 500),
]


def _expire_soon(table, pause_id, seconds):
    """Bring a pause's expiry close (the API's minimum is a minute), with the due row the app would have."""
    from shared.storage.due_index import get_due_index

    moment = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    entity = table.get_entity(pause_id, "pause")
    entity["expires_at"] = moment
    table.update_entity(entity)
    get_due_index().add(pause_id, moment)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_faults_keep_every_promise(api, adf, configure, azurite, table, seed):
    # Real clocks throughout (ADF's run times and the app's claims must agree), with short waits.
    rng = random.Random(seed)
    with StorageFaultProxy(azurite.port) as storage:
        configure(AzureWebJobsStorage=storage.connection_string(azurite), CALLBACK_ALLOWED_HOSTS="127.0.0.1",
                  ARM_READ_TIMEOUT_SECONDS="0.5", CALLBACK_READ_TIMEOUT_SECONDS="0.5", ARM_RETRY_TOTAL="1",
                  STORAGE_RETRY_TOTAL="1", STALE_CLAIM_SECONDS="2", CALLBACK_REDELIVERY_SECONDS="0.3",
                  RUN_LOOKUP_RETRY_SECONDS="0.2")
        pauses = []
        for i in range(PAUSES):
            fields = {"on_timeout": rng.choice(["expire", "restart"])}
            if rng.random() < 0.5:
                fields["callBackUri"] = f"{adf.url}/_standin/callbacks/seed{seed}-{i}"
                created = api.json(api.pause(fields))
            else:
                created = api.created(**fields)
            if rng.random() < 0.5:
                _expire_soon(table, created["pause_id"], rng.uniform(0.5, 3))
            pauses.append({**created, "mode": "callback" if "callBackUri" in fields else "restart"})

        storage.random_faults(0.15, seed=seed)
        answers = []

        def act(pause):
            local = random.Random(f"{seed}-{pause['pause_id']}")
            fault = local.choice(ADF_FAULTS)
            if fault:
                operation, kind, status = fault
                adf.inject(operation, kind, status=status or 500, seconds=1.5)
            for _ in range(local.choice([0, 1, 1, 2, 3])):
                action = "restart" if local.random() < 0.7 else "cancel"
                body = {"reason": "no"} if action == "cancel" else {"comment": "yes"}
                answers.append(api.decide(action, pause["token"], json_body=body).status_code)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(act, pauses))
        for _ in range(3):  # the timer runs while things still fail
            sweep.sweep()
            time.sleep(1)
        assert storage.faults_seen() > 0

        storage.clear()
        adf.reset_faults()
        quiet = 0
        for _ in range(60):  # until stale claims are reconciled and unconfirmed callbacks re-sent
            time.sleep(0.5)
            quiet = quiet + 1 if not sweep.sweep() else 0
            if quiet == 3:
                break
        else:
            pytest.fail("the timer never ran out of work")
        # Two days on: every expiry is due, and every claim made with the faults on is stale.
        later = datetime.now(timezone.utc) + timedelta(days=2)
        for _ in range(5):
            if not sweep.sweep(later):
                break
        else:
            pytest.fail("the timer never ran out of work two days on")

    assert 500 not in answers and answers, answers
    records = {p["pause_id"]: api.record(p["pause_id"]) for p in pauses}
    assert all(record["status"] in FINAL for record in records.values()), \
        {pid: r["status"] for pid, r in records.items() if r["status"] not in FINAL}

    # Runs at ADF = pauses recorded with a run id: one each, and the same one.
    runs = {}
    for run in adf.runs:
        runs.setdefault(run["parameters"].get("pause_id"), []).append(run["runId"])
    assert all(len(ids) == 1 for ids in runs.values()), {pid: (ids, records.get(pid)) for pid, ids in runs.items()
                                                         if len(ids) > 1}
    recorded = {pid: r["run_id"] for pid, r in records.items() if r["run_id"]}
    started = {pid: ids[0] for pid, ids in runs.items()}
    assert started == recorded, {pid: (records.get(pid, {}).get("status"), records.get(pid, {}).get("last_error"))
                                 for pid in set(started) ^ set(recorded) | {p for p in started if started[p] != recorded.get(p)}}
    for pid, record in records.items():
        if record["mode"] == "restart" and record["status"] == "restarted":
            assert record["run_id"], record

    # No receiver saw two outcomes: leaving aside callbacks it refused (a 4xx other than 409: not
    # taken, so the pause rightly went back to pending), every callback to one activity is identical.
    # A completed activity was completed once, with what the record says.
    by_activity = {}
    for call in adf.callbacks:
        refused = isinstance(call["status"], int) and 400 <= call["status"] < 500 and call["status"] != 409
        if not refused:
            by_activity.setdefault(call["callbackId"], []).append(call)
    for calls in by_activity.values():
        assert len({repr(call["body"]) for call in calls}) == 1, calls
        assert sum(call["completed"] for call in calls) <= 1
    expected = {"restarted": "Output", "cancelled": "PauseCancelled", "expired": "PauseExpired"}
    for pause in pauses:
        record = records[pause["pause_id"]]
        calls = by_activity.get(f"seed{seed}-{pauses.index(pause)}", [])
        if pause["mode"] == "callback" and calls and record["status"] in expected:
            body = calls[0]["body"]
            seen = "Output" if "Output" in body else body["Error"]["ErrorCode"]
            assert seen == expected[record["status"]], (record, body)
