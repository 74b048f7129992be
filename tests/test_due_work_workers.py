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


def make_due(api, table, count: int) -> list:
    """Restart-on-timeout pauses whose expiry has passed (as if made an hour ago): really due, for workers
    that settle them at the moment they run."""
    from azure.data.tables import UpdateMode

    past = datetime.now(timezone.utc) - timedelta(minutes=5)
    ids = []
    for _ in range(count):
        created = api.created(expires_in=60, on_timeout="restart")
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
