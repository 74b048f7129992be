"""shared.clients promises that what a `built_once` getter builds (a Table client, the ADF gateway, a session)
is built once per process and argument list, the 16 latest kept, also when many threads ask for it first at the
same moment; that `cache_clear()` forgets it so the next call builds afresh from the current settings; and that
the process's one `scheduler()` runs delayed jobs on a single thread in the order of their moments, a failing
job logged without stopping the others.
"""

import logging
import threading
import time

import pytest

from shared.clients import Deadline, Scheduler, built_once, scheduler
from tests.support import wait_until


class Builder:
    """A build function that counts its calls and returns a new object each time."""

    def __init__(self, seconds=0.0):
        self.seconds, self.calls, self.lock = seconds, [], threading.Lock()

    def __call__(self, *args):
        with self.lock:
            self.calls.append(args)
        time.sleep(self.seconds)  # a slow build widens the window in which other threads miss the cache
        return object()


def test_a_getter_builds_once_per_argument_list_and_returns_the_same_object():
    build = Builder()
    get = built_once(build)
    first = get("table", 1)
    assert get("table", 1) is first
    assert get("table", 2) is not first and get("other", 1) is not first
    assert build.calls == [("table", 1), ("table", 2), ("other", 1)]


def test_concurrent_first_calls_build_once_and_all_get_that_one():
    build = Builder(seconds=0.1)
    get = built_once(build)
    start, got = threading.Barrier(32), []

    def first_call():
        start.wait()
        got.append(get("storage"))

    threads = [threading.Thread(target=first_call) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(got) == 32 and len({id(item) for item in got}) == 1
    assert build.calls == [("storage",)]


def test_cache_clear_forgets_so_the_next_call_builds_afresh():
    build = Builder()
    get = built_once(build)
    before = get()
    get.cache_clear()
    after = get()
    assert after is not before and get() is after
    assert len(build.calls) == 2


def test_the_16_latest_argument_lists_are_kept_and_older_ones_rebuilt():
    build = Builder()
    get = built_once(build)
    kept = [get(n) for n in range(17)]  # the 17th pushes out the first
    assert get(16) is kept[16] and get(1) is kept[1]
    assert get(0) is not kept[0]
    assert len(build.calls) == 18


def test_a_build_that_fails_is_not_cached_and_is_tried_again():
    attempts = []

    @built_once
    def get():
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("settings not there yet")
        return object()

    with pytest.raises(RuntimeError):
        get()
    built = get()
    assert get() is built and len(attempts) == 2


def test_a_getter_keeps_the_build_functions_name_and_docstring():
    def table_client(name):
        """The Table client for `name`."""
        return name

    get = built_once(table_client)
    assert (get.__name__, get.__doc__) == ("table_client", "The Table client for `name`.")


def test_the_process_has_one_scheduler_on_one_thread():
    assert scheduler() is scheduler() and isinstance(scheduler(), Scheduler)
    threads, done = [], threading.Event()
    for _ in range(3):
        scheduler().at(time.monotonic(), lambda: threads.append(threading.current_thread().name))
    scheduler().at(time.monotonic(), done.set)
    assert done.wait(5)
    assert threads == ["scheduled-jobs"] * 3


def test_scheduled_jobs_run_in_the_order_of_their_moments_and_a_failing_one_stops_none(caplog):
    caplog.set_level(logging.ERROR, logger="shared.clients")
    ran, done, now = [], threading.Event(), time.monotonic()

    def fail():
        raise RuntimeError("job failed on purpose")

    scheduler().at(now + 0.2, done.set)
    scheduler().at(now + 0.1, lambda: ran.append("later"))
    scheduler().at(now + 0.05, fail)
    scheduler().at(now, lambda: ran.append("first"))
    assert done.wait(5)
    assert ran == ["first", "later"]
    [failure] = [r for r in caplog.records if "scheduled job failed" in r.getMessage()]
    assert "job failed on purpose" in str(failure.exc_info[1])


def _readable_at_once(sock) -> bool:
    import select

    return bool(select.select([sock], [], [], 0)[0])


def test_a_read_its_deadline_ends_finds_it_expired(monkeypatch):
    """Callers tell a read cut short by the deadline from other failures by `expired`, read after the read ends:
    so it is true before any socket is shut, however slowly the scheduler's thread gets through them."""
    import socket

    from shared import clients

    shut, seen = clients._shut, []

    def slow_shut(sock):
        seen.append(expiring.expired)
        time.sleep(0.1)
        shut(sock)

    monkeypatch.setattr(clients, "_shut", slow_shut)
    pairs = [socket.socketpair() for _ in range(2)]
    try:
        expiring = Deadline(0.01)
        with expiring:
            for pair in pairs:
                expiring.watch(pair[0])
            wait_until(lambda: all(_readable_at_once(pair[0]) for pair in pairs), what="the sockets shut")
        assert seen == [True, True]
    finally:
        for pair in pairs:
            for sock in pair:
                sock.close()


def test_a_deadline_shuts_its_calls_sockets_when_it_passes_and_never_once_finished():
    import socket

    pairs = [socket.socketpair() for _ in range(3)]
    try:
        expiring, finished = Deadline(0.05), Deadline(0.05)
        with expiring:
            expiring.watch(pairs[0][0])
            # Shut: a read in progress ends at once. (Waited for itself: `expired` turns true just before the
            # scheduler's thread shuts the sockets, and a loaded machine once read it in between.)
            wait_until(lambda: _readable_at_once(pairs[0][0]), what="the scheduler shutting the socket")
            assert expiring.expired
            expiring.watch(pairs[1][0])  # a socket met after the time was up is shut as it is met
            assert _readable_at_once(pairs[1][0])
        with finished:
            finished.watch(pairs[2][0])
            finished.finish()
            finished._expire()  # as the scheduler does when the time is up
        assert not finished.expired and not _readable_at_once(pairs[2][0])  # may be serving another call now
    finally:
        for pair in pairs:
            for sock in pair:
                sock.close()


def test_what_a_getter_forgets_is_closed_the_least_recently_used_first():
    class Client:
        def __init__(self, name):
            self.name, self.closed = name, False

        def close(self):
            self.closed = True

    get = built_once(Client)
    first, second = get("first"), get("second")
    get("first")  # used again: "second" is now the least recently used
    more = [get(f"n{i}") for i in range(15)]  # 17 in all: one must go
    assert second.closed and not first.closed and not any(client.closed for client in more)
    assert get("second") is not second  # built again when asked again
    get.cache_clear()
    assert first.closed and all(client.closed for client in more)
    assert built_once(lambda: object())() is not None  # nothing to close is fine too


def test_a_forgotten_thread_pool_finishes_what_it_runs_first():
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    pools = built_once(lambda: ThreadPoolExecutor(max_workers=2))
    ended = threading.Event()
    pools().submit(lambda: (time.sleep(0.2), ended.set()))
    pools.cache_clear()  # as a test's reset does: the write in flight ends before the clients close
    assert ended.is_set()


def test_a_pooled_connection_idle_too_long_is_opened_anew_before_use(monkeypatch):
    """A NAT may drop an idle connection without a word (Azure's after 4 minutes): a POST sent on it would go
    unanswered, an outcome unknown. One idle longer than IDLE_SECONDS is closed and opened again instead."""
    from werkzeug.wrappers import Request, Response

    from shared import clients, outbound
    from tests.support import keep_alive_server

    with keep_alive_server(Request.application(lambda request: Response("ok"))) as (server, opened):
        pool = outbound._pool_classes(False)["http"]("127.0.0.1", server.server_port, maxsize=1)
        try:
            for _ in range(2):
                assert pool.request("POST", "/", body=b"{}").status == 200
            assert len(opened) == 1  # kept and used again while fresh
            now = time.monotonic()
            monkeypatch.setattr(clients, "_idle_clock", lambda: now + clients.IDLE_SECONDS + 1)
            assert pool.request("POST", "/", body=b"{}").status == 200
            assert len(opened) == 2
        finally:
            pool.close()
