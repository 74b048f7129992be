"""How the Python worker runs a function: a sync one on the worker's one thread pool, shared by every function of
the process; an async one on its event loop, without a thread of that pool.

The worker's pool (azure-functions-python-worker, `Dispatcher._sync_call_tp`) is a ThreadPoolExecutor of
PYTHON_THREADPOOL_THREAD_COUNT threads; unset (the default since Python 3.9), ThreadPoolExecutor's own default:
min(32, cores + 4). The Functions host hands the worker more than that at once (every HTTP request it accepts,
batchSize + newBatchThreshold messages per queue function), and the rest wait for a thread. The local host serves
each HTTP connection and each queue message on a thread of its own, so its functions wait here for one of as many
slots as the worker has threads: as many run at once as would in Azure on a machine like this one.
"""

import asyncio
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


class WorkerThreads:
    """The slots of one worker process's pool; `invoke` runs a function as the worker would."""

    def __init__(self, count: int | None = None) -> None:
        self._count = count
        self._slots: threading.BoundedSemaphore | None = None
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return self._semaphore()[1]

    def _semaphore(self) -> tuple[threading.BoundedSemaphore, int]:
        with self._lock:  # sized on first use: the host process has read local.settings.json by then
            if self._slots is None:
                self._count = self._count or thread_count()
                self._slots = threading.BoundedSemaphore(self._count)
            return self._slots, self._count

    def invoke(self, user_function, arguments: dict):
        """Call the function with its arguments: a sync one once a slot is free, a coroutine on an event loop."""
        if inspect.iscoroutinefunction(user_function):
            return asyncio.run(user_function(**arguments))
        slots, _ = self._semaphore()
        with slots:
            result = user_function(**arguments)
        return asyncio.run(result) if inspect.iscoroutine(result) else result


PROCESS = WorkerThreads()  # the pool of this process, as a worker process has one
