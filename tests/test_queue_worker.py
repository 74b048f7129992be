"""Local host processes sharing a queue (`make run WORKERS=2`): each message is handled once while its
worker lives, and one whose worker died comes back after its lease to another, as in Azure."""

import contextlib
import json
import os
import time

import pytest

from local_dev.queue_rules import read_queues_options
from local_dev.queue_worker import QueueWorkers
from local_dev.queues import QueueRunner, queue_functions
from tests.queue_apps import app
from tests.support import wait_until
from tests.test_queues import Queue

LEASE = 1  # seconds a message stays hidden while its function runs; renewed halfway


@pytest.fixture
def shared_queue(azurite, monkeypatch, tmp_path):
    """A queue, the settings a worker process inherits to reach it, and the file its function marks."""
    queue = Queue(azurite)
    marks = tmp_path / "marks"
    marks.touch()
    for name, value in {**queue.env, "QUEUE_TEST_MARKS": str(marks)}.items():
        monkeypatch.setenv(name, value)
    host_json = tmp_path / "host.json"
    # Small batches, so that neither process takes every message before the other's next poll.
    host_json.write_text(json.dumps({"extensions": {"queues": {"maxPollingInterval": "00:00:00.3", "batchSize": 4,
                                                               "newBatchThreshold": 0}}}))
    queue.marks, queue.host_json = marks, host_json
    yield queue
    queue.close()


def marked(queue) -> list[tuple[int, str, int]]:
    """(pid, body, dequeue count) for each call of tests.queue_apps's function, in any process."""
    lines = queue.marks.read_text(encoding="utf-8").splitlines()
    return [(int(pid), body, int(count)) for pid, body, count in (line.split() for line in lines)]


def worker(queue) -> QueueWorkers:
    return QueueWorkers(1, ["--app", "tests.queue_apps:app", "--host-json", str(queue.host_json),
                            "--lease", str(LEASE)])


def runner_here(queue) -> QueueRunner:
    return QueueRunner(queue_functions(app), read_queues_options(queue.host_json, lease_seconds=LEASE))


@pytest.mark.integration
def test_worker_processes_share_a_queue_and_each_message_is_handled_once(shared_queue):
    with worker(shared_queue) as workers:
        shared_queue.client.send_message("probe")
        wait_until(lambda: marked(shared_queue), seconds=30)  # the worker process polls
        [(child, _, _)] = marked(shared_queue)
        assert child == workers.processes[0].pid
        with runner_here(shared_queue):
            for number in range(30):
                shared_queue.client.send_message(f"m{number}")
            wait_until(lambda: len(marked(shared_queue)) >= 31 and shared_queue.is_empty())
    handled = marked(shared_queue)[1:]
    assert sorted(body for _, body, _ in handled) == sorted(f"m{number}" for number in range(30))
    assert {pid for pid, _, _ in handled} == {child, os.getpid()}
    assert {count for _, _, count in handled} == {1}


@pytest.mark.integration
def test_a_message_whose_worker_died_comes_back_after_its_lease_to_another_worker(shared_queue):
    with worker(shared_queue) as workers, contextlib.ExitStack() as here:
        shared_queue.client.send_message("block")  # never returns on its first delivery
        wait_until(lambda: marked(shared_queue), seconds=30)
        here.enter_context(runner_here(shared_queue))
        time.sleep(LEASE * 1.5)  # while its worker lives, the worker renews the lease: nobody else gets it
        assert [body for _, body, _ in marked(shared_queue)] == ["block"]
        workers.processes[0].kill()  # SIGKILL: no delete, no release
        wait_until(lambda: len(marked(shared_queue)) == 2 and shared_queue.is_empty())
    first, second = marked(shared_queue)
    assert first[1:] == ("block", 1) and first[0] != os.getpid()
    assert second == (os.getpid(), "block", 2)
