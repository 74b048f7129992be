"""The app's own queue function in two local host processes (as `make run WORKERS=2` runs it): due pauses
put on the queue by the timer are settled once each, also when one worker is killed (SIGKILL) in the
middle: its messages come back after their lease to the other, a claim it left is reconciled, and no
pause is started twice or lost."""

import json
import signal
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from local_dev.queue_worker import QueueWorkers
from shared import due_work
from shared.storage.due_index import get_due_index
from tests.support import wait_until

pytestmark = pytest.mark.integration

COUNT = 40


def make_due(api, table, count: int, **fields) -> list:
    """Restart-on-timeout pauses whose expiry has passed (as if made an hour ago): really due, for workers
    that settle them at the moment they run."""
    from azure.data.tables import UpdateMode

    past = datetime.now(timezone.utc) - timedelta(minutes=5)
    ids = []
    for _ in range(count):
        created = api.created(expires_in=60, on_timeout="restart", **fields)
        entity = table.get_entity(created["pause_id"], "pause")
        entity["expires_at"] = past
        table.update_entity(entity, mode=UpdateMode.REPLACE)
        get_due_index().add(created["pause_id"], past)
        ids.append(created["pause_id"])
    return ids


def test_a_worker_killed_in_the_middle_loses_nothing_and_starts_nothing_twice(api, adf, table, configure,
                                                                               tmp_path):
    configure(DUE_WORK_QUEUE=f"due-{uuid.uuid4().hex[:12]}", STALE_CLAIM_SECONDS="2", RUN_LOOKUP_RETRY_SECONDS="0")
    adf.latency["createRun"] = 0.3  # runs in flight when the worker dies
    ids = make_due(api, table, COUNT)
    host_json = tmp_path / "host.json"
    host_json.write_text(json.dumps({"extensions": {"queues": {"maxPollingInterval": "00:00:00.2", "batchSize": 4,
                                                               "newBatchThreshold": 2, "visibilityTimeout": "00:00:01"}}}))
    with QueueWorkers(2, ["--host-json", str(host_json), "--lease", "2"]) as workers:
        assert due_work.enqueue_due() == {"enqueued": COUNT}
        wait_until(lambda: len(adf.runs) >= 3, seconds=30, what="the first runs")
        doomed = workers.processes[0]
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()

        def all_started():
            due_work.enqueue_due()  # the timer: rows a reconciliation moved come due again
            time.sleep(0.2)
            return {run["parameters"]["pause_id"] for run in adf.runs} >= set(ids)
        wait_until(all_started, seconds=60, what="every pause started")
        wait_until(lambda: all(api.record(i)["status"] == "restarted" for i in ids), seconds=30,
                   what="every pause recorded")
    started = [run["parameters"]["pause_id"] for run in adf.runs]
    assert sorted(started) == sorted(ids)  # once each: none lost, none twice


SECOND_SUBSCRIPTION = "00000000-0000-0000-0000-0000000000ab"


def test_starts_go_at_the_pace_a_scaled_down_arm_allows_without_429s_or_failures(api, table, configure, tmp_path):
    """ARM's write bucket scaled down (8, then 4 a second per subscription and identity): 16 starts in each
    of two subscriptions, due at once, all started once, at about the rate allowed, hardly a 429."""
    import requests

    from local_dev.adf_standin import AdfStandin
    from local_dev.arm_throttle import Throttle
    from tests.support import TARGET, create_pipeline

    with AdfStandin(throttle=Throttle(writes=8, writes_per_second=4)) as standin:
        for subscription in (TARGET["subscription_id"], SECOND_SUBSCRIPTION):
            create_pipeline(standin, subscription=subscription, parameters=("day", "n"))
        time.sleep(0.5)  # the two writes each subscription's pipeline took are back
        configure(ARM_ENDPOINT=standin.url, DUE_WORK_QUEUE=f"due-{uuid.uuid4().hex[:12]}",
                  ARM_WRITES_PER_SECOND="4", ARM_WRITES_LOW_WATER="3")
        ids = make_due(api, table, 16)
        ids += make_due(api, table, 16, subscription_id=SECOND_SUBSCRIPTION)
        host_json = tmp_path / "host.json"
        host_json.write_text(json.dumps({"extensions": {"queues": {"maxPollingInterval": "00:00:00.2"}}}))
        with QueueWorkers(1, ["--host-json", str(host_json), "--lease", "30"]):
            assert due_work.enqueue_due() == {"enqueued": 32}
            wait_until(lambda: len(standin.runs) >= 32, seconds=60, what="every start")
            wait_until(lambda: all(api.record(i)["status"] == "restarted" for i in ids), seconds=30,
                       what="every pause recorded")
        counts = requests.get(f"{standin.url}/_standin/throttling", timeout=5).json()
    assert sorted(run["parameters"]["pause_id"] for run in standin.runs) == sorted(ids)  # once each
    create_runs = [row for row in counts if row["operation"] == "createRun"]
    assert len(create_runs) == 2 and all(row["answered"] == 16 for row in create_runs)
    assert sum(row["throttled"] for row in create_runs) <= 1  # under 5 % of 32
    # What ARM allowed from the first start to the last, per subscription: 8 at once, then 4 a second. The pace
    # kept is most of it (measured from the runs' own start times: the worker process's start is not the pace).
    for subscription in {run["subscription"] for run in standin.runs}:
        starts = sorted(datetime.fromisoformat(run["runStart"].replace("Z", "+00:00")).timestamp()
                        for run in standin.runs if run["subscription"] == subscription)
        allowed = 8 + 4 * (starts[-1] - starts[0])
        assert 16 / allowed >= 0.5, f"16 starts in {starts[-1] - starts[0]:.1f} s, {allowed:.0f} allowed"
