"""How the Python worker runs a function: a sync one on the worker's one thread pool, shared by every function of
the process; an async one on its event loop, without a thread of that pool.

The worker's pool (azure-functions-python-worker, `Dispatcher._sync_call_tp`) is a ThreadPoolExecutor of
PYTHON_THREADPOOL_THREAD_COUNT threads; unset (the default since Python 3.9), ThreadPoolExecutor's own default:
min(32, cores + 4). The Functions host hands the worker more than that at once (every HTTP request it accepts,
batchSize + newBatchThreshold messages per queue function), and the rest wait for a thread. The local host serves
each HTTP connection and each queue message on a thread of its own; its functions run here instead, on a pool of as
many threads as the worker has, in the order they came: as many run at once as would in Azure on a machine like this.
"""

import asyncio
import inspect
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

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
    """One worker process's pool; `invoke` runs a function as the worker would: a sync one on a thread of the pool,
    in the order the calls came (the waiting caller gets its result or its exception), a coroutine at once."""

    def __init__(self, count: int | None = None) -> None:
        self._count = count
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return self._started()[1]

    def _started(self) -> tuple[ThreadPoolExecutor, int]:
        with self._lock:  # made on first use: the host process has read local.settings.json by then
            if self._pool is None:
                self._count = self._count or thread_count()
                self._pool = ThreadPoolExecutor(self._count, thread_name_prefix="python-worker")
            return self._pool, self._count

    def invoke(self, user_function, arguments: dict):
        """Call the function with its arguments; return what it returned, or raise what it raised."""
        if inspect.iscoroutinefunction(user_function):
            return asyncio.run(user_function(**arguments))
        pool, _ = self._started()
        result = pool.submit(user_function, **arguments).result()
        return asyncio.run(result) if inspect.iscoroutine(result) else result

    def __enter__(self) -> "WorkerThreads":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Let the calls under way finish, then end the threads (a pool not closed ends with the process)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


PROCESS = WorkerThreads()  # the pool of this process, as a worker process has one
