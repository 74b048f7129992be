"""What every client of the app shares: things built once per process, one scheduler thread for
delayed work, and deadlines on a call's whole answer that it watches. (The HTTP transport they
share is `shared.outbound.http_transport`.)
"""

import functools
import logging
import threading
import time

# Keep-alive connections per storage (or ARM) host: one per thread the Functions Python worker
# runs sync invocations on (at most 32), so a busy instance reuses connections, not reopens them.
POOL_SIZE = 32


def built_once(build):
    """Cache what `build(*args)` returns for the process's life (per arguments, the 16 latest);
    concurrent first calls build it once. `cache_clear()` forgets them all.

    (functools.lru_cache alone runs `build` in every thread that misses at the same time: a
    cold instance hit by 32 requests built 32 Table clients.) What is forgotten, by eviction or
    `cache_clear`, is closed if it can be (clients and sessions hold pooled connections, which
    would otherwise be left open until the garbage collector finds them); a connection in use goes
    back, when its call ends, to its forgotten pool, which closes it when the pool itself is freed.
    """
    lock = threading.Lock()
    cached: dict = {}

    @functools.wraps(build)
    def get(*args):
        with lock:
            if args in cached:
                cached[args] = cached.pop(args)  # most recently used last
                return cached[args]
            value = cached[args] = build(*args)
            forgotten = [cached.pop(next(iter(cached)))] if len(cached) > BUILT_ONCE_MAX else []
        _close(forgotten)
        return value

    def cache_clear():
        with lock:
            forgotten = list(cached.values())
            cached.clear()
        _close(forgotten)

    get.cache_clear = cache_clear
    return get


BUILT_ONCE_MAX = 16


class OneAtATime:
    """A credential whose get_token runs one call at a time: concurrent first uses (approvals in a
    tenant, a cold instance's first storage calls) then cost one token request, not one each (the
    later callers find the token cached).

    Anything but ClientAuthenticationError from acquiring a token is turned into one: a request
    that has no token has not been sent.
    """

    def __init__(self, credential):
        self._credential = credential
        self._lock = threading.Lock()

    def get_token(self, *scopes, **kwargs):
        from azure.core.exceptions import ClientAuthenticationError

        with self._lock:
            try:
                return self._credential.get_token(*scopes, **kwargs)
            except ClientAuthenticationError:
                raise
            except Exception as exc:
                raise ClientAuthenticationError(f"could not get a token: {type(exc).__name__}: {exc}") from exc

    def close(self):
        close = getattr(self._credential, "close", None)
        if close:
            close()


def _close(values) -> None:
    for value in values:
        # A client or session closes; a thread pool finishes what it runs (a write in flight would
        # otherwise open a connection on a client being closed, which nobody closes again).
        close = getattr(value, "close", None) or getattr(value, "shutdown", None)
        if callable(close):
            try:
                close()
            except Exception:  # closing is a courtesy to the connections; never the caller's failure
                logging.getLogger(__name__).warning("could not close a forgotten %s", type(value).__name__)


class Scheduler:
    """One thread that runs jobs at given moments (time.monotonic()): a burst of delayed work
    costs heap entries, not a sleeping thread each. A job runs on the scheduler's thread, so it
    must be quick; one that blocks hands itself to a pool."""

    def __init__(self, name: str):
        self._name, self._heap, self._order = name, [], 0
        self._lock = threading.Condition()
        self._thread = None

    def at(self, moment: float, job) -> None:
        import heapq

        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._order += 1
            heapq.heappush(self._heap, (moment, self._order, job))
            self._lock.notify()

    def _run(self) -> None:
        import heapq
        import logging

        while True:
            with self._lock:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._lock.wait(None if not self._heap else self._heap[0][0] - time.monotonic())
                _, _, job = heapq.heappop(self._heap)
            try:
                job()
            except Exception:  # one job's failure must not stop the others
                logging.getLogger(__name__).exception("scheduled job failed in %s", self._name)


@built_once
def scheduler() -> Scheduler:
    """The process's one scheduler."""
    return Scheduler("scheduled-jobs")


class Deadline:
    """A wall-clock limit on one call's whole answer (`watch=deadline.watch` in `shared.outbound.request`).
    A socket's timeout limits each read, so a peer sending a byte now and then could hold a call for
    ever; when the time is up this shuts the call's socket down, which ends any read in progress.
    Call `finish()` once the answer is read, before the response hands its connection back to the pool."""

    def __init__(self, seconds: float):
        self.expired = self._finished = False
        self._sockets, self._lock = [], threading.Lock()
        self._seconds = seconds

    def __enter__(self) -> "Deadline":
        # One scheduler thread watches every deadline (a thread each cost the timer ~3 %).
        scheduler().at(time.monotonic() + self._seconds, self._expire)
        return self

    def __exit__(self, *exc_info) -> None:
        self.finish()

    def finish(self) -> None:
        """The answer is read: from now on its connection may serve another call, so never shut it."""
        with self._lock:
            self._finished = True

    def watch(self, sock) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True  # first: a read its shutdown ends finds the deadline expired, and says so
            for sock in self._sockets:
                _shut(sock)


def _shut(sock) -> None:
    import socket

    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


IDLE_SECONDS = 100  # a pooled connection idle longer is closed, not used: Azure's NAT forgets one idle 4 minutes
_idle_clock = time.monotonic


class FreshEnough:
    """Mixed into a urllib3 pool: a connection idle too long is opened anew before use (a NAT may have dropped it
    unsaid, and a POST sent on it would go unanswered: an outcome unknown where a fresh connection just works)."""

    def _put_conn(self, conn) -> None:
        if conn is not None:
            conn.idle_since = _idle_clock()
        super()._put_conn(conn)

    def _get_conn(self, timeout=None):
        conn = super()._get_conn(timeout)
        since = getattr(conn, "idle_since", None)
        if since is not None and _idle_clock() - since > IDLE_SECONDS:
            conn.close()  # (as urllib3 does with one it finds dropped: the next request connects again)
        return conn
