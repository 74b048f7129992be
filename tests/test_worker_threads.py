"""local_dev.worker_threads: functions run as the Python worker runs them, sync ones on its one pool of threads."""

import asyncio
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import azure.functions as func
import pytest
import requests

from local_dev.functions_host import build_wsgi_app, serve
from local_dev.worker_threads import WorkerThreads, _SlotsInOrder, thread_count
from tests.support import wait_until


@pytest.mark.parametrize("value, expected", [
    (None, min(32, (os.cpu_count() or 1) + 4)),  # the worker's default since Python 3.9: ThreadPoolExecutor's
    ("3", 3), (" 40 ", 40),
    ("0", None), ("-1", None), ("two", None), ("2.5", None), ("", None),  # the worker warns and uses its default
])
def test_the_pool_is_the_setting_or_the_workers_default(value, expected, caplog):
    env = {} if value is None else {"PYTHON_THREADPOOL_THREAD_COUNT": value}
    assert thread_count(env) == (expected or thread_count({}))
    assert ("PYTHON_THREADPOOL_THREAD_COUNT must be" in caplog.text) == (expected is None and bool(value))


class Blocking:
    """A function that holds its thread until released, counting how many run at once."""

    def __init__(self):
        self.running, self.peak, self.release = 0, 0, threading.Event()
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.release.wait(10)
        with self._lock:
            self.running -= 1
        return "done"


def test_sync_functions_share_the_threads_and_a_coroutine_takes_none():
    work = Blocking()

    async def asynchronous():
        await asyncio.sleep(0)
        return "async"

    threads = WorkerThreads(2)
    with ThreadPoolExecutor(7) as pool:
        results = [pool.submit(threads.invoke, work, {}) for _ in range(6)]
        wait_until(lambda: work.running == 2, what="both slots taken")
        # (from a thread, as the host calls: pytest's own thread may be running an event loop, Playwright's)
        assert pool.submit(threads.invoke, asynchronous, {}).result(timeout=10) == "async"  # every thread held
        time.sleep(0.05)
        assert work.running == 2  # the other four wait
        work.release.set()
        assert [result.result() for result in results] == ["done"] * 6
        assert threads.count == 2
    assert work.peak == 2


def test_the_host_answers_every_request_running_no_more_functions_at_once_than_the_worker_has_threads(tmp_path):
    work = Blocking()
    bp = func.Blueprint()

    @bp.route(route="work", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    def handler(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(work())

    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(bp)
    (tmp_path / "host.json").write_text(json.dumps({"version": "2.0"}))
    with serve(build_wsgi_app(app, tmp_path / "host.json", WorkerThreads(3))) as server:
        def ask(_):
            with requests.Session() as session:
                return session.get(f"{server.url}/api/work", timeout=10).text
        with ThreadPoolExecutor(8) as pool:
            answers = pool.map(ask, range(8))
            wait_until(lambda: work.running == 3, what="three requests running")
            time.sleep(0.05)
            assert work.running == 3  # the other five wait for a thread
            work.release.set()
            assert list(answers) == ["done"] * 8
    assert work.peak == 3


def test_a_functions_exception_reaches_its_caller_and_the_thread_serves_the_next():
    def fail():
        raise ValueError("the function's own error")

    threads = WorkerThreads(1)
    with pytest.raises(ValueError, match="own error"):
        threads.invoke(fail, {})
    assert threads.invoke(lambda n: n + 1, {"n": 1}) == 2  # the slot was given back


def test_a_freed_thread_goes_to_the_call_that_has_waited_longest():
    threads, first, order = WorkerThreads(1), Blocking(), []

    def record(n):
        order.append(n)
    with ThreadPoolExecutor(8) as callers:
        held = callers.submit(threads.invoke, first, {})
        wait_until(lambda: first.running == 1, what="the one thread taken")
        waiting = []
        for n in range(5):  # each queued before the next is submitted
            waiting.append(callers.submit(threads.invoke, record, {"n": n}))
            wait_until(lambda: len(threads._slots._waiting) == n + 1, what=f"call {n} waiting")
        first.release.set()
        held.result(timeout=10)
        [call.result(timeout=10) for call in waiting]
    assert order == list(range(5))


def test_a_freed_slot_is_handed_to_the_waiter_not_taken_by_a_caller_arriving_just_then():
    """What a plain semaphore does not do: released and at once asked for again by the same thread, it would give
    the slot back to that thread, ahead of the one that had waited."""
    slots, order = _SlotsInOrder(1), []

    def waiter():
        with slots:
            order.append("waiter")

    slots.__enter__()
    thread = threading.Thread(target=waiter)
    thread.start()
    try:
        wait_until(lambda: len(slots._waiting) == 1, what="the waiter queued")
        slots.__exit__(None, None, None)
        with slots:  # arriving just as the slot was freed
            order.append("arriving")
    finally:
        thread.join(10)
    assert order == ["waiter", "arriving"]

