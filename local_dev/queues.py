"""Run a FunctionApp's queue-triggered functions against Azure Queue storage (Azurite), as the Functions host does.

The host's queue extension (Microsoft.Azure.WebJobs.Extensions.Storage.Queues 5.x: QueueListener, QueueProcessor,
QueuesOptions) does this, and so does this module, with host.json's `extensions.queues` settings:

- A poll receives up to `batchSize` messages, each hidden from other workers for 10 minutes (renewed halfway while
  its function runs), and runs them at once; the next poll comes as soon as no more than `newBatchThreshold` are
  still running, so at most batchSize + newBatchThreshold are taken together; a sync function runs on one of the
  Python worker's threads (`local_dev.worker_threads`: cores + 4 by default), the rest waiting for one.
- A poll that finds nothing waits 100 ms, then about twice as long each time (±20 % at random) up to
  `maxPollingInterval`; a poll that finds messages starts again at 100 ms.
- A function that returns: its message is deleted. One that raises: its message is visible again after
  `visibilityTimeout`; once its dequeue count has reached `maxDequeueCount`, it is copied to `<queue>-poison`
  (created if missing) and deleted. A message received with a dequeue count over the maximum (its workers died)
  and one whose body is not base64 (`messageEncoding`) go to the poison queue without running.

Several runners (threads, processes: `make run WORKERS=2`) may share a queue: each message is received by one at a
time, and again only if its runner neither deletes nor renews it — at least once, as in Azure.
"""

import contextlib
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import azure.functions as func
from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage

from local_dev.queue_rules import (PollingBackoff, QueuesOptions, check_queue_name, decode_body, poison_queue_name,
                                   queue_service)
from local_dev.service import Service
from local_dev.timers import resolve_settings
from local_dev.worker_threads import PROCESS, WorkerThreads

logger = logging.getLogger(__name__)

QUEUE_TRIGGER = "queueTrigger"
DEFAULT_CONNECTION = "AzureWebJobsStorage"
# What storage answers when a message was taken over or removed meanwhile: nothing left to do, as for the host.
LOST_MESSAGE = {"PopReceiptMismatch", "MessageNotFound", "QueueNotFound", "QueueBeingDeleted", "QueueDisabled"}


@dataclass(frozen=True)
class QueueFunction:
    name: str
    queue_name: str
    connection: str  # the app setting, or prefix of `__` settings, that names the storage account
    parameter: str
    user_function: Callable


def queue_functions(function_app: func.FunctionApp, env=os.environ) -> list[QueueFunction]:
    """The queue-triggered functions registered on `function_app`, queue names' `%SETTING%`s resolved."""
    function_app.functions_bindings = None  # get_functions() refuses to index twice otherwise
    found = []
    for function in function_app.get_functions():
        trigger = function.get_trigger()
        if trigger.type == QUEUE_TRIGGER:
            name = function.get_function_name()
            queue = check_queue_name(resolve_settings(trigger.queue_name, f"the queue trigger of {name}", env), name)
            found.append(QueueFunction(name, queue, trigger.connection or DEFAULT_CONNECTION, trigger.name,
                                       function.get_user_function()))
    return found


class QueueRunner(Service):
    """Runs each queue function until stopped: one listener (a polling thread and a pool of workers) per function,
    one storage client per connection setting."""

    def __init__(self, functions: list[QueueFunction], options: QueuesOptions = QueuesOptions(), env=os.environ,
                 threads: WorkerThreads = PROCESS):
        self.functions, self.options, self._env, self._threads = functions, options, env, threads
        self._stop = threading.Event()
        self._services: dict = {}
        self._listeners: list = []

    def start(self) -> "QueueRunner":
        for function in self.functions:
            if function.connection not in self._services:  # (client, credential)
                pool = self.options.concurrency * len(self.functions) + 2
                self._services[function.connection] = queue_service(function.connection, self._env, pool)
            listener = _Listener(function, self._services[function.connection][0], self.options, self._stop,
                                 self._threads)
            self._listeners.append(listener)
            listener.start()
        return self

    def stop(self) -> None:
        """Stop polling, let running functions finish and settle their messages (as the host does), close clients."""
        self._stop.set()
        for listener in self._listeners:
            listener.stop()
        for service, credential in self._services.values():
            service.close()
            if credential is not None:
                credential.close()
        self._listeners, self._services = [], {}


class _Listener:
    """One function's queue: the polling loop, the functions running in a pool, their messages' leases."""

    def __init__(self, function: QueueFunction, service, options: QueuesOptions, stop: threading.Event,
                 threads: WorkerThreads):
        self.function, self.options, self._stop, self._threads = function, options, stop, threads
        self.queue = service.get_queue_client(function.queue_name)
        poison = poison_queue_name(function.queue_name)
        self.poison = service.get_queue_client(poison) if poison else None
        self._pool = ThreadPoolExecutor(options.concurrency, thread_name_prefix=f"queue-{function.name}")
        self._running = 0
        self._settled = threading.Condition()
        self._leases = _Leases(self.queue, options.lease_seconds)
        self._thread = threading.Thread(target=self._poll, name=f"queue-{function.name}-poll", daemon=True)
        self._missing_logged = False

    def start(self) -> None:
        self._leases.start()
        self._thread.start()

    def stop(self) -> None:
        with self._settled:
            self._settled.notify_all()
        self._thread.join()
        self._pool.shutdown(wait=True)
        self._leases.close()
        for client in (self.queue, self.poison):
            if client is not None:
                client.close()

    def _poll(self) -> None:
        backoff, found = PollingBackoff(self.options.max_polling_interval), False
        while not self._stop.is_set():
            with self._settled:  # the next batch once no more than newBatchThreshold still run
                self._settled.wait_for(lambda: self._running <= self.options.threshold or self._stop.is_set())
            batch = self._receive()
            if batch:
                with self._settled:
                    self._running += len(batch)
                    logger.debug("%s: received %d messages from queue %s, %d running", self.function.name,
                                 len(batch), self.queue.queue_name, self._running)
                for message in batch:
                    self._pool.submit(self._handle, message)
                found = True
                continue
            delay = backoff.next_delay(found)
            found = False
            logger.debug("%s: queue %s empty, polling again in %.0f ms", self.function.name, self.queue.queue_name,
                         delay * 1000)
            self._stop.wait(delay)

    def _receive(self) -> list:
        """Up to batchSize messages, hidden from other workers for the lease; none when the queue cannot be read."""
        try:
            pages = self.queue.receive_messages(messages_per_page=self.options.batch_size,
                                                visibility_timeout=self.options.lease_seconds).by_page()
            return list(next(pages, []))
        except ResourceNotFoundError:
            if not self._missing_logged:  # as the host: wait for the queue to be made, polling with back-off
                logger.info("%s: queue %s does not exist yet", self.function.name, self.queue.queue_name)
                self._missing_logged = True
        except AzureError as error:  # storage down or refusing: try again after the back-off
            logger.warning("%s: cannot read queue %s: %s", self.function.name, self.queue.queue_name,
                           str(error).splitlines()[0] if str(error) else type(error).__name__)
        except Exception:  # anything else must not end the polling either
            logger.exception("%s: cannot read queue %s", self.function.name, self.queue.queue_name)
        return []

    def _handle(self, message) -> None:
        """Run the function on one message and settle the message; storage errors are logged, not raised."""
        try:
            body = decode_body(message.content, self.options.message_encoding)
            if message.dequeue_count > self.options.max_dequeue_count or body is None:
                why = "is not base64" if body is None else f"was dequeued {message.dequeue_count} times"
                self._to_poison(message, message.pop_receipt, why)
                return
            self._leases.hold(message)
            try:
                succeeded = self._run(message, body)
            finally:
                pop_receipt = self._leases.release(message)
            self._settle(message, pop_receipt, succeeded)
        except Exception:  # a storage error settling it: the message comes back after its lease
            logger.exception("%s: could not settle message %s", self.function.name, message.id)
        finally:
            with self._settled:
                self._running -= 1
                self._settled.notify_all()

    def _run(self, message, body: bytes) -> bool:
        """Call the function with the azure.functions.QueueMessage the Python worker builds; True if it returned."""
        argument = QueueMessage(id=message.id, body=body, dequeue_count=message.dequeue_count,
                                expiration_time=message.expires_on, insertion_time=message.inserted_on,
                                time_next_visible=message.next_visible_on, pop_receipt=message.pop_receipt)
        started = time.perf_counter()
        try:
            self._threads.invoke(self.function.user_function, {self.function.parameter: argument})
        except Exception:
            logger.exception("Executed 'Functions.%s' (Failed, MessageId=%s, DequeueCount=%s, Duration=%.0fms)",
                             self.function.name, message.id, message.dequeue_count,
                             (time.perf_counter() - started) * 1000)
            return False
        logger.info("Executed 'Functions.%s' (Succeeded, MessageId=%s, DequeueCount=%s, Duration=%.0fms)",
                    self.function.name, message.id, message.dequeue_count, (time.perf_counter() - started) * 1000)
        return True

    def _settle(self, message, pop_receipt: str, succeeded: bool) -> None:
        if succeeded:
            self._forget(message, pop_receipt)
        elif self.poison is None:
            pass  # no poison queue (a name ending in -poison, or too long): left hidden for the lease, as the host
        elif message.dequeue_count >= self.options.max_dequeue_count:
            self._to_poison(message, pop_receipt, f"has reached MaxDequeueCount of {self.options.max_dequeue_count}")
        else:
            with _unless_lost(message):
                self.queue.update_message(message.id, pop_receipt=pop_receipt,
                                          visibility_timeout=self.options.visibility_timeout_seconds)

    def _to_poison(self, message, pop_receipt: str, why: str) -> None:
        """Copy the message, its body as it was sent, to the poison queue (made if missing); delete it here."""
        if self.poison is None:
            return
        logger.warning("%s: message %s %s: moving it to queue '%s'", self.function.name, message.id, why,
                       self.poison.queue_name)
        try:
            self.poison.send_message(message.content)
        except ResourceNotFoundError:
            try:
                self.poison.create_queue()
            except ResourceExistsError:
                pass
            self.poison.send_message(message.content)
        self._forget(message, pop_receipt)

    def _forget(self, message, pop_receipt: str) -> None:
        with _unless_lost(message):
            self.queue.delete_message(message.id, pop_receipt)


@contextlib.contextmanager
def _unless_lost(message):
    """Ignore storage's answer that the message was taken over or is gone: someone else has it, as the host does."""
    try:
        yield
    except HttpResponseError as error:
        if getattr(error, "error_code", None) not in LOST_MESSAGE:
            raise
        logger.debug("message %s: %s", message.id, error.error_code)


class _Leases:
    """Keeps the messages whose functions run hidden from other workers: each lease is renewed halfway through,
    as the host renews its 10 minutes, so a long function is not handed to a second worker meanwhile."""

    def __init__(self, queue, seconds: int):
        self._queue, self._seconds = queue, seconds
        self._held: dict = {}  # message id -> [pop receipt, when to renew]
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="queue-leases", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Once no function runs any more."""
        self._closed.set()
        self._thread.join()

    def hold(self, message) -> None:
        with self._lock:
            self._held[message.id] = [message.pop_receipt, time.monotonic() + self._seconds / 2]

    def release(self, message) -> str:
        """Stop renewing; return the message's current pop receipt (each renewal changes it)."""
        with self._lock:
            return self._held.pop(message.id)[0]

    def _renew(self) -> None:
        while not self._closed.wait(min(1.0, self._seconds / 4)):
            with self._lock:
                for message_id, lease in self._held.items():
                    if time.monotonic() >= lease[1]:
                        self._extend(message_id, lease)

    def _extend(self, message_id: str, lease: list) -> None:
        try:
            updated = self._queue.update_message(message_id, pop_receipt=lease[0], visibility_timeout=self._seconds)
        except AzureError as error:
            logger.warning("message %s: could not renew its lease: %s", message_id, error)
            lease[1] = time.monotonic() + self._seconds / 2
            return
        lease[0], lease[1] = updated.pop_receipt, time.monotonic() + self._seconds / 2

