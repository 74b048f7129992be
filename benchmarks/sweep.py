"""The timer against a backlog: due pauses settled per second while ADF takes 200 ms per createRun.

A table is filled with N pauses that expired within the last hour and restart on timeout
(each must start its pipeline), then one timer run (`shared.sweep.sweep`, in-process, with its
default concurrency and time budget) settles them. The floor is the same number of raw
`create_run` calls made from as many threads as the timer's workers: the ADF-bound ceiling no
timer can beat. Every run started is checked against the pauses, so speed cannot come from
skipping work.
"""

import json
import time
from concurrent.futures import ThreadPoolExecutor

from .bulk import fill
from .floors import RawOps
from .harness import SUBSCRIPTION, TARGET, App, Stack, new_table_name, pause_body

CREATE_RUN_MS = 200


def _runs_started(stack: Stack) -> list:
    import requests

    return requests.get(f"{stack.adf.url}/_standin/runs", timeout=120).json()


def _raw_create_runs(stack: Stack, table: str, count: int, threads: int) -> float:
    """Seconds for `count` raw createRun calls from `threads` threads."""
    raw = RawOps(stack.storage, table, stack.arm, SUBSCRIPTION)
    try:
        def start(i):
            raw._adf.pipelines.create_run(TARGET["resource_group"], TARGET["factory_name"], TARGET["pipeline_name"],
                                          parameters={"pause_id": f"floor-{i}"}, enforce_https=False)
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(start, range(count)))
        return time.perf_counter() - started
    finally:
        raw.close()


def run(sizes: list, progress) -> dict:
    """For each size: settled, seconds, per second, the floor's per second, and the timer's counts."""
    from shared import sweep
    from shared.settings import get_settings

    results = {}
    with Stack(create_run_ms=CREATE_RUN_MS) as stack:
        app = App()
        for size in sizes:
            table = new_table_name("sweep")
            stack.use_table(table)
            body = json.loads(pause_body())
            template_id = app.pause(json.dumps({**body, "on_timeout": "restart"}).encode())["pause_id"]
            raw = RawOps(stack.storage, table, stack.arm, SUBSCRIPTION)
            template = raw.template(template_id)
            raw.close()
            progress(f"sweep: {size:,} expired pauses into {table}")
            ids = set(fill(stack.azurite, table, template, size, expired=True))
            before = len(_runs_started(stack))
            limits = get_settings().limits
            started = time.perf_counter()
            counts = sweep.sweep()
            elapsed = time.perf_counter() - started
            runs = _runs_started(stack)[before:]
            started_for = [run["parameters"]["pause_id"] for run in runs]
            if counts.get("restarted") != size or sorted(started_for) != sorted(ids):
                raise RuntimeError(f"the timer did not settle every pause exactly once: {counts}, "
                                   f"{len(started_for)} runs for {size} pauses")
            floor_count = min(size, 2000)
            progress(f"sweep floor: {floor_count:,} raw createRun calls from {limits.sweep_concurrency} threads")
            floor = _raw_create_runs(stack, table, floor_count, limits.sweep_concurrency)
            results[size] = {"settled": size, "seconds": elapsed, "per_second": size / elapsed,
                             "floor_per_second": floor_count / floor, "counts": counts,
                             "concurrency": limits.sweep_concurrency}
    return results
