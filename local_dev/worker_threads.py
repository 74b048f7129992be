"""How the Python worker runs a function: a sync one on the worker's one thread pool, shared by every function of
the process; an async one on its event loop, without a thread of that pool.

The worker's pool (azure-functions-python-worker, `Dispatcher._sync_call_tp`) is a ThreadPoolExecutor of
PYTHON_THREADPOOL_THREAD_COUNT threads; unset (the default since Python 3.9), ThreadPoolExecutor's own default:
min(32, cores + 4). The Functions host hands the worker more than that at once (every HTTP request it accepts,
batchSize + newBatchThreshold messages per queue function), and the rest wait for a thread. The local host serves
each HTTP connection and each queue message on a thread of its own; its functions wait here for one of as many slots
as the worker has threads, in the order they came: as many run at once as would in Azure on a machine like this.
"""

import asyncio
import collections
import inspect
import logging
import os
import threading

logger = logging.getLogger(__name__)

SETTING = "PYTHON_THREADPOOL_THREAD_COUNT"


def thread_count(env=os.environ) -> int:
    """The worker's pool size: the setting when it is a whole number from 1, else (as the worker, with a warning for
    a bad value) ThreadPoolExecutor's default."""
    value = (env.get(SETTING) or "").strip()
    if value:
        if value.isascii() and value.isdigit() and int(value) >= 1:
            return int(value)
        logger.warning("%s must be a whole number from 1, not %r: using the default", SETTING, value)
    return min(32, (os.cpu_count() or 1) + 4)


class _SlotsInOrder:
    """A counting semaphore that hands a freed slot to the longest waiter (threading.Semaphore lets a thread just
    arriving take it first, which left some calls waiting far longer than the worker's queue would)."""

    def __init__(self, count: int) -> None:
        self._free, self._waiting, self._lock = count, collections.deque(), threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                return
            handed = threading.Event()
            self._waiting.append(handed)
        handed.wait()

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.popleft().set()  # the slot passes to the oldest waiter, never back to the pool
            else:
                self._free += 1


class WorkerThreads:
    """The threads of one worker process; `invoke` runs a function as the worker would: a sync one once one of them
    is free, in the order the calls came, a coroutine at once.

    The function runs on its caller's thread (the HTTP connection's, the queue message's, the timer's: daemon
    threads), holding a slot: a real pool's threads would keep the process alive after its servers stopped.
    """

    def __init__(self, count: int | None = None) -> None:
        self._count = count
        self._slots: _SlotsInOrder | None = None
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return self._started()[1]

    def _started(self) -> tuple[_SlotsInOrder, int]:
        with self._lock:  # sized on first use: the host process has read local.settings.json by then
            if self._slots is None:
                self._count = self._count or thread_count()
                self._slots = _SlotsInOrder(self._count)
            return self._slots, self._count

    def invoke(self, user_function, arguments: dict):
        """Call the function with its arguments; return what it returned, or raise what it raised."""
        if inspect.iscoroutinefunction(user_function):
            return asyncio.run(user_function(**arguments))
        slots, _ = self._started()
        with slots:
            result = user_function(**arguments)
        return asyncio.run(result) if inspect.iscoroutine(result) else result


PROCESS = WorkerThreads()  # the pool of this process, as a worker process has one
