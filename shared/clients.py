"""What every outside client of the app shares: one HTTP transport recipe, things built once per
process, and one scheduler thread for delayed work.
"""

import functools
import threading

# Keep-alive connections per storage (or ARM) host: one per thread the Functions Python worker
# runs sync invocations on (at most 32), so a busy instance reuses connections, not reopens them.
POOL_SIZE = 32


def http_transport(*, connection_timeout: float, read_timeout: float):
    """The HTTP transport of the app's SDK clients: the SDK's own, on a session built here.

    - urllib3 retries nothing (as azure-core configures its own sessions): every retry is the
      SDK policy's decision, made knowing the method and whether a request may have had effect.
    - The keep-alive pool holds POOL_SIZE connections instead of requests' 10, so 32
      concurrent invocations do not open (and throw away) a connection each.
    - requests looks for proxies and a CA bundle in the environment on every request, a scan
      of every environment variable: ~10 % of a Table call here, more on Azure with its many
      app settings. Without a proxy configured, the CA bundle it would find (if any) is read
      once, here, and given to the transport; with a proxy (whose use can depend on the host,
      through NO_PROXY) requests keeps deciding per request.

    The timeouts are given here: a client handed a transport no longer builds one from its
    own keyword arguments.
    """
    from urllib.request import getproxies

    from azure.core.pipeline.transport import RequestsTransport
    from requests import Session
    from urllib3.util import Retry

    from shared.targets import outbound

    options = {"connection_timeout": connection_timeout, "read_timeout": read_timeout}
    session = Session()
    session.trust_env = bool(getproxies())
    if not session.trust_env:
        # What requests itself would take from the environment: REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE.
        with Session() as probe:
            verify = probe.merge_environment_settings("https://localhost/", {}, None, True, None)["verify"]
        options.update(connection_verify=verify, use_env_settings=False)
    # Its connections tell a call tracked with `outbound.tracking()` whether a request was sent.
    adapter = outbound.adapter(pool_maxsize=POOL_SIZE,
                               max_retries=Retry(total=False, redirect=False, raise_on_status=False))
    for prefix in ("https://", "http://"):
        session.mount(prefix, adapter)
    return RequestsTransport(session=session, session_owner=True, **options)


def built_once(build):
    """Cache what `build(*args)` returns for the process's life (per arguments, the 16 latest);
    concurrent first calls build it once.

    (functools.lru_cache alone runs `build` in every thread that misses at the same time: a
    cold instance hit by 32 requests built 32 Table clients.) `cache_clear()` forgets it.
    """
    lock = threading.Lock()
    cached = functools.lru_cache(maxsize=16)(build)

    @functools.wraps(build)
    def get(*args):
        with lock:
            return cached(*args)

    get.cache_clear = cached.cache_clear
    return get


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
        import time

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
