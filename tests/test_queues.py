"""The local host's queue triggers against a real Azurite queue, run as the Functions host runs them: delivery
and deletion, retries and the poison queue, batches, polling back-off, leases, and runners sharing a queue."""

import base64
import logging
import re
import threading
import time
import uuid

import azure.functions as func
import pytest

from local_dev.queue_rules import QueuesOptions
from local_dev.queues import QueueRunner, queue_functions
from local_dev.timers import SettingMissing
from local_dev.worker_threads import WorkerThreads
from tests.support import wait_until

FAST = {"max_polling_interval": 0.3, "lease_seconds": 2}


def app_with(handler, queue_name="%TEST_QUEUE%", connection="AzureWebJobsStorage") -> func.FunctionApp:
    """A FunctionApp whose one queue trigger calls `handler`."""
    bp = func.Blueprint()
    bp.queue_trigger(arg_name="msg", queue_name=queue_name, connection=connection)(handler)
    app = func.FunctionApp()
    app.register_functions(bp)
    return app


def recorder() -> tuple[list, object]:
    """A list and a queue function that appends each message it gets to it."""
    seen = []

    def record(msg: func.QueueMessage) -> None:
        seen.append(msg)
    return seen, record


def overlapping(seconds) -> tuple[object, dict]:
    """A queue function that sleeps `seconds(msg)`, and a dict whose "peak" says how many of it ran at once."""
    ran, lock = {"running": 0, "peak": 0}, threading.Lock()

    def work(msg: func.QueueMessage) -> None:
        with lock:
            ran["running"] += 1
            ran["peak"] = max(ran["peak"], ran["running"])
        time.sleep(seconds(msg))
        with lock:
            ran["running"] -= 1
    return work, ran


def received(caplog) -> list[tuple[int, int]]:
    """(messages received, messages then running) for each batch the runner logged."""
    return [(int(n), int(r)) for n, r in re.findall(r"received (\d+) messages from queue \w+, (\d+) running",
                                                    caplog.text)]


class Queue:
    """A fresh queue on the session's Azurite (base64 messages, as the app sends them), its poison queue, and
    the settings that point a runner at it."""

    def __init__(self, azurite):
        from azure.storage.queue import QueueClient, TextBase64EncodePolicy

        self.name = "q" + uuid.uuid4().hex[:20]
        self.env = {"AzureWebJobsStorage": azurite.connection_string, "TEST_QUEUE": self.name}
        self.client = QueueClient.from_connection_string(azurite.connection_string, self.name,
                                                         message_encode_policy=TextBase64EncodePolicy())
        self.raw = QueueClient.from_connection_string(azurite.connection_string, self.name)
        self.poison = QueueClient.from_connection_string(azurite.connection_string, self.name + "-poison")
        self.client.create_queue()
        self.threads = WorkerThreads(32)  # (the host's own limits under test, not the worker's)

    def runner(self, handler, threads=None, **options) -> QueueRunner:
        return QueueRunner(queue_functions(app_with(handler), self.env), QueuesOptions(**{**FAST, **options}),
                           self.env, threads or self.threads)

    def poisoned(self) -> list:
        """What the poison queue holds (nothing until the runner makes it)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.poison.peek_messages(max_messages=32)
        except ResourceNotFoundError:
            return []

    def is_empty(self) -> bool:
        return not self.raw.peek_messages() and self.raw.get_queue_properties().approximate_message_count == 0

    def close(self) -> None:
        for client in (self.client, self.raw, self.poison):
            client.close()


@pytest.fixture
def queue(azurite):
    made = Queue(azurite)
    yield made
    made.close()


def test_queue_triggers_are_found_with_their_queue_and_connection():
    [found] = queue_functions(app_with(lambda msg: None, "%DUE%", "PAUSES_STORAGE_CONNECTION"), {"DUE": "pauses-due"})
    assert (found.name, found.queue_name, found.connection, found.parameter) == (
        "<lambda>", "pauses-due", "PAUSES_STORAGE_CONNECTION", "msg")
    assert queue_functions(app_with(lambda msg: None, "due", ""), {})[0].connection == "AzureWebJobsStorage"
    with pytest.raises(SettingMissing, match="DUE"):
        queue_functions(app_with(lambda msg: None, "%DUE%"), {})


@pytest.mark.integration
def test_a_message_reaches_the_function_as_the_python_worker_builds_it_and_is_deleted_after(queue):
    received, record = recorder()
    sent = queue.client.send_message("hello")
    with queue.runner(record):
        wait_until(lambda: received and queue.is_empty())
    [message] = received
    assert isinstance(message, func.QueueMessage) and message.get_body() == b"hello"
    assert (message.id, message.dequeue_count) == (sent.id, 1)
    assert message.insertion_time == sent.inserted_on and message.expiration_time == sent.expires_on
    assert message.pop_receipt and message.time_next_visible > message.insertion_time


@pytest.mark.integration
def test_a_failing_message_is_retried_after_the_visibility_timeout_then_moved_to_the_poison_queue_intact(queue):
    attempts = []

    def fail(msg):
        attempts.append((msg.dequeue_count, time.monotonic()))
        raise RuntimeError("settling failed")

    queue.client.send_message('{"pause": "p1"}')
    with queue.runner(fail, max_dequeue_count=3, visibility_timeout=1):
        wait_until(queue.poisoned)
    assert [count for count, _ in attempts] == [1, 2, 3]
    assert all(later - earlier >= 0.9 for (_, earlier), (_, later) in zip(attempts, attempts[1:]))
    [poisoned] = queue.poisoned()
    assert poisoned.content == base64.b64encode(b'{"pause": "p1"}').decode()  # as sent, for the poison's reader
    assert queue.is_empty()


@pytest.mark.integration
def test_messages_the_host_would_not_run_go_to_the_poison_queue_unrun(queue):
    queue.client.send_message("dequeued by a worker that died")
    [taken] = next(queue.raw.receive_messages(messages_per_page=1, visibility_timeout=1).by_page())
    queue.raw.send_message("not base64!")
    handled, record = recorder()
    with queue.runner(record, max_dequeue_count=1):  # `taken` comes back dequeued twice, once too often
        wait_until(lambda: len(queue.poisoned()) == 2)
    assert handled == []
    assert {m.content for m in queue.poisoned()} == {"not base64!", taken.content}
    assert queue.is_empty()


@pytest.mark.integration
def test_at_most_a_batch_plus_the_new_batch_threshold_run_at_once(queue, caplog):
    caplog.set_level(logging.DEBUG, logger="local_dev.queues")
    # The long ones still run when the next batch comes.
    work, ran = overlapping(lambda msg: 0.05 if int(msg.get_body()) % 2 else 0.4)
    for number in range(20):
        queue.client.send_message(str(number))
    with queue.runner(work, batch_size=4, new_batch_threshold=2):
        wait_until(queue.is_empty)
    batches = received(caplog)
    assert sum(n for n, _ in batches) == 20 and max(n for n, _ in batches) == 4  # batches of batchSize
    assert max(r for _, r in batches) <= 6 and 4 < ran["peak"] <= 6  # fetched once no more than 2 still ran


@pytest.mark.integration
def test_the_messages_taken_wait_for_the_python_workers_threads(queue, caplog):
    """The host takes batchSize + newBatchThreshold messages; the worker runs as many sync functions at once as it
    has threads, the others waiting (their messages still hidden from other workers)."""
    caplog.set_level(logging.DEBUG, logger="local_dev.queues")
    work, ran = overlapping(lambda msg: 0.05)
    for number in range(12):
        queue.client.send_message(str(number))
    with queue.runner(work, threads=WorkerThreads(3), batch_size=8, new_batch_threshold=4):
        wait_until(queue.is_empty)
    assert max(r for _, r in received(caplog)) > 3 and ran["peak"] == 3


@pytest.mark.integration
def test_an_empty_queue_is_polled_less_and_less_often_until_a_message_comes(queue, caplog):
    caplog.set_level(logging.DEBUG, logger="local_dev.queues")
    received, record = recorder()

    def delays() -> list[int]:
        return [int(ms) for ms in re.findall(r"polling again in (\d+) ms", caplog.text)]

    with queue.runner(record, max_polling_interval=0.4):
        wait_until(lambda: delays().count(400) >= 2)
        before = len(delays())
        queue.client.send_message("wake up")
        wait_until(lambda: received and len(delays()) > before)
    backing_off = delays()[:before]
    assert backing_off[0] == 100 and 160 <= backing_off[1] <= 240 and 260 <= backing_off[2] <= 340
    assert backing_off == sorted(backing_off) and backing_off[-1] == 400
    assert delays()[before] == 100  # found a message: from the start again


@pytest.mark.integration
def test_runners_with_their_own_clients_share_a_queue_and_a_slow_functions_lease_is_renewed(queue):
    """Each message is handled once: a runner hides what it takes, and keeps hiding a message whose function
    runs longer than its lease."""
    handled = []

    def runner(name):
        def work(msg):
            handled.append((name, msg.get_body(), msg.dequeue_count))
            time.sleep(2.2 if msg.get_body() == b"slow" else 0.1)
        return queue.runner(work, lease_seconds=1, batch_size=4, new_batch_threshold=0)

    queue.client.send_message("slow")
    for number in range(20):
        queue.client.send_message(f"m{number}")
    with runner("a"), runner("b"):
        wait_until(lambda: len(handled) >= 21 and queue.is_empty())
    assert sorted(body for _, body, _ in handled) == sorted([b"slow"] + [f"m{n}".encode() for n in range(20)])
    assert {count for _, _, count in handled} == {1}
    assert {name for name, _, _ in handled} == {"a", "b"}


@pytest.mark.integration
def test_a_message_gone_before_the_runner_settles_it_is_left_alone(queue, caplog):
    received, record = recorder()

    def settle_it_myself(msg):
        queue.raw.delete_message(msg.id, msg.pop_receipt)  # as if another worker had taken it over
        record(msg)

    with queue.runner(settle_it_myself):
        queue.client.send_message("one")
        wait_until(lambda: len(received) == 1)
        queue.client.send_message("two")
        wait_until(lambda: len(received) == 2 and queue.is_empty())
    assert [m.get_body() for m in received] == [b"one", b"two"]
    assert "could not settle" not in caplog.text
