"""Pause and restart over real HTTP through the local Functions host, with concurrent clients.

The host runs in its own process (as the Functions host runs the worker), on loopback. Each
client is a thread with one keep-alive connection; a level sends a fixed number of requests,
so its throughput is requests / wall time and its latencies are per request. At every level
the same number of raw SDK operations (one insert, and the two a pause makes; read,
claim, createRun, write for restart) run from as many threads in this process: the ceiling
the app is compared with.
"""

import http.client
import json
import os
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from .child import ChildProcess
from .floors import RawOps
from .harness import (DECIDER_HEADERS, PAUSE_BODY, REPO_ROOT, SUBSCRIPTION, Stack, approve_body, new_table_name,
                      token_path)
from .stats import Samples

# Pauses go to three (tenant, subscription) targets, so the host must build exactly three ADF clients.
TARGETS = [
    {},
    {"subscription_id": "00000000-0000-0000-0000-0000000000bf"},
    {"tenant_id": "11111111-1111-1111-1111-111111111111"},
]


@dataclass
class Level:
    """What one kind of request did at one concurrency."""

    name: str
    clients: int
    samples: Samples
    wall: float

    @property
    def throughput(self) -> float:
        return len(self.samples.values) / self.wall


class Host(ChildProcess):
    """`python -m benchmarks.host` in a subprocess."""

    def __init__(self, environment: dict):
        env = {**os.environ, **environment, "PYTHONPATH": str(REPO_ROOT)}
        super().__init__("benchmarks.host", cwd=REPO_ROOT, env=env, what="benchmark host")
        url = urlsplit(self.ready["url"])
        self.host, self.port = url.hostname, url.port

    def stop(self) -> dict:
        """Stop the host; return what it counted."""
        return super().stop("stop", timeout=30)


def _drive(clients: int, work: list, request) -> tuple[Samples, float, list]:
    """Run `request(state, item)` for every item from `clients` threads; return samples, wall time, results."""
    samples = Samples("")
    results = [None] * len(work)
    cursor = iter(range(len(work)))
    lock = threading.Lock()
    errors = []

    def client():
        state = {}
        try:
            while True:
                with lock:
                    i = next(cursor, None)
                if i is None:
                    return
                started = time.perf_counter()
                results[i] = request(state, work[i])
                elapsed = time.perf_counter() - started
                with lock:
                    samples.values.append(elapsed)
        except Exception as exc:
            errors.append(exc)
        finally:
            if "connection" in state:
                state["connection"].close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed, first: {errors[0]!r}")
    return samples, wall, results


def _http(host: Host, state: dict, method: str, path: str, body: bytes, headers: dict, expect: int) -> bytes:
    connection = state.get("connection")
    if connection is None:
        connection = state["connection"] = http.client.HTTPConnection(host.host, host.port, timeout=60)
    connection.request(method, path, body, headers)
    response = connection.getresponse()
    answer = response.read()
    if response.status != expect:
        raise RuntimeError(f"{method} {path.split('/')[2]} answered {response.status}: {answer[:300]!r}")
    return answer


def run(stack: Stack, clients_levels: list, requests: int) -> tuple[list, dict]:
    """Measure every level; return the Levels and the host's census."""
    table = new_table_name("http")
    stack.use_table(table)  # the floors' tables are the host's tables
    host = Host(stack.app_environment(table))
    census = {}
    levels = []
    raw = None
    try:
        bodies = [json.dumps({**PAUSE_BODY, **TARGETS[i % len(TARGETS)]}).encode() for i in range(requests)]
        pause_headers = {"Content-Type": "application/json", "Accept": "application/json"}
        restart_headers = {"Content-Type": "application/json", "Accept": "application/json", **DECIDER_HEADERS}
        approve = approve_body()

        def pause(state, body):
            return json.loads(_http(host, state, "POST", "/api/pause", body, pause_headers, 201))

        def restart(state, created):
            return _http(host, state, "POST", token_path(created["restart_url"]), approve, restart_headers, 200)

        # Warm-up, and the client census's real test: the cold host gets a burst of concurrent first
        # requests for every target, as a scaled-out instance does; it must still build one client each.
        burst = max(clients_levels + [len(TARGETS)])
        warm = _drive(burst, bodies[:burst], pause)[2]
        _drive(burst, warm, restart)
        raw = RawOps(stack.storage, table, stack.arm, SUBSCRIPTION,
                     pool_size=max(clients_levels))
        template = raw.template(warm[0]["pause_id"])
        for clients in clients_levels:
            samples, wall, created = _drive(clients, bodies, pause)
            levels.append(Level("pause", clients, samples, wall))
            samples, wall, _ = _drive(clients, created, restart)
            levels.append(Level("restart", clients, samples, wall))
            samples, wall, _ = _drive(clients, [raw.clone(template) for _ in range(requests)],
                                      lambda state, entity: raw.insert_one(entity))
            levels.append(Level("raw_insert_one", clients, samples, wall))
            samples, wall, _ = _drive(clients, [raw.clone(template) for _ in range(requests)],
                                      lambda state, entity: raw.insert_two(entity))
            levels.append(Level("raw_insert_two", clients, samples, wall))
            pending = [raw.clone(template) for _ in range(requests)]
            for entity in pending:
                raw.insert_one(entity)
            samples, wall, _ = _drive(clients, pending,
                                      lambda state, entity: raw.restart(entity["PartitionKey"], "Numbers look right"))
            levels.append(Level("raw_restart", clients, samples, wall))
    finally:
        if raw is not None:
            raw.close()
        census = host.stop()
    names = {f"connect:{port}": f"TCP connections opened to {name}" for port, name in stack.ports.items()}
    return levels, {names.get(key, key): count for key, count in census.items()}
