"""The timer against a backlog of due work, and the cost of a timer run with nothing due.

Backlog: a table holds N due items, half of them pauses that expired within the last hour and
restart on timeout (each starts its pipeline), half of them pending pauses in auto checks mode
whose check attempt fell due (each calls a check endpoint, which answers OK, then starts its
pipeline). ADF answers createRun in 200 ms and the check endpoint answers in 200 ms, both from
processes of their own. One timer run (`shared.sweep.sweep`, in-process, with its default
concurrency and time budget) settles them. The floor makes the same outside calls (a createRun
per item, plus a check GET per check item) from as many threads as the timer's workers: the
ceiling no timer can beat. Every run started is checked against the pauses, and every check
pause must have been checked once, so speed cannot come from skipping or repeating work.

Idle: one timer run with nothing due, on tables holding few and many pending pauses (the
flatness tables). It makes one query, of the due index up to now, so it must not grow with the
table; its floor is that same query made raw on a stock client. (Azurite filters every row of a
table for any query, so there the floor itself grows with the rows the index holds.)
"""

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

from .bulk import fill
from .checkserver import CheckServerProcess
from .floors import RawOps
from .harness import REPO_ROOT, SUBSCRIPTION, TARGET, THROTTLE_SCALE, App, Stack, new_table_name, pause_body
from .stats import Samples

CREATE_RUN_MS = 200
CHECK_MS = 200
IDLE_BLOCK = 10


def _runs_started(stack: Stack) -> list:
    import requests

    return requests.get(f"{stack.adf.url}/_standin/runs", timeout=120).json()


def _floor(stack: Stack, table: str, check_url: str, count: int, threads: int) -> float:
    """Seconds for the backlog's outside calls, made raw from `threads` threads: `count` createRun
    calls, every other one after a GET of the check."""
    import requests

    raw = RawOps(stack.storage, table, stack.arm, SUBSCRIPTION)
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=threads))
    try:
        def settle(i):
            if i % 2:
                session.get(check_url, timeout=30).raise_for_status()
            raw._adf.pipelines.create_run(TARGET["resource_group"], TARGET["factory_name"], TARGET["pipeline_name"],
                                          parameters={"pause_id": f"floor-{i}"}, enforce_https=False)
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(settle, range(count)))
        return time.perf_counter() - started
    finally:
        session.close()
        raw.close()


def _template(app: App, stack: Stack, table: str, **changes) -> dict:
    """A stored pause made by the app from the bench body with `changes`, to clone."""
    pause_id = app.pause(json.dumps({**json.loads(pause_body()), **changes}).encode())["pause_id"]
    raw = RawOps(stack.storage, table, stack.arm, SUBSCRIPTION)
    try:
        return raw.template(pause_id)
    finally:
        raw.close()


def _create_tables(stack: Stack, table: str) -> None:
    """The pauses table, its due index and its status index, as the app would make them on first use."""
    from azure.data.tables import TableServiceClient

    with TableServiceClient.from_connection_string(stack.azurite.connection_string) as service:
        for name in (table, table + "expiry", table + "status"):
            service.create_table(name)


def run(sizes: list, progress, throttle_scale: float = THROTTLE_SCALE) -> dict:
    """For each size: settled, seconds, per second, the floor's per second, and the timer's counts."""
    from shared import sweep
    from shared.settings import get_settings

    results = {}
    with Stack(create_run_ms=CREATE_RUN_MS, throttle_scale=throttle_scale) as stack:
        app = App()
        for size in sizes:
            table = new_table_name("sweep")
            checker = CheckServerProcess(REPO_ROOT, {**os.environ, "PYTHONPATH": str(REPO_ROOT)}, CHECK_MS)
            try:
                # The templates live in a table of their own: their rows must not be due in the measured one.
                templates = new_table_name("template")
                stack.use_table(templates, CHECK_ALLOWED_HOSTS="127.0.0.1")
                expiring = _template(app, stack, templates, on_timeout="restart")
                checked = _template(app, stack, templates, checks=[
                    {"name": "quality", "http": {"url": checker.url},
                     "expect": {"json": {"path": "$.status", "equals": "OK"}}}])
                # The timer settling due work itself (no queue): one process, as the section measures.
                stack.use_table(table, CHECK_ALLOWED_HOSTS="127.0.0.1", DUE_WORK_QUEUE="")
                _create_tables(stack, table)
                progress(f"sweep: {size - size // 2:,} expired pauses and {size // 2:,} due checks into {table}")
                expired_ids = set(fill(stack.azurite, table, expiring, size - size // 2, seed=1, due="expired"))
                check_ids = set(fill(stack.azurite, table, checked, size // 2, seed=2, due="check"))
                ids = expired_ids | check_ids
                before = len(_runs_started(stack))
                limits = get_settings().limits
                started, cpu = time.perf_counter(), time.process_time()
                counts = sweep.sweep()
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
                floor_count = min(size, 2000)
                progress(f"sweep floor: the outside calls of {floor_count:,} items from "
                         f"{limits.sweep_concurrency} threads")
                floor = _floor(stack, table, checker.url, floor_count, limits.sweep_concurrency)
            finally:
                calls = checker.calls()
            runs = _runs_started(stack)[before:]
            started_for = [run["parameters"]["pause_id"] for run in runs if run["parameters"]["pause_id"] in ids]
            settled = counts.get("restarted", 0)
            check_calls = calls - floor_count // 2
            # What the run reached it settled exactly once (one run per pause, one call per check pause);
            # what the budget left it did not touch.
            if (set(counts) - {"restarted", "left_due"} or len(started_for) != settled
                    or len(set(started_for)) != settled or check_calls != len(check_ids & set(started_for))):
                raise RuntimeError(f"the timer did not settle each item it reached exactly once: {counts}, "
                                   f"{len(started_for)} runs and {check_calls} checks for {size} items")
            results[size] = {"settled": settled, "checks": size // 2, "all_in_one_run": settled == size,
                             "seconds": elapsed, "per_second": settled / elapsed,
                             "floor_per_second": floor_count / floor, "counts": counts,
                             "cpu_ms_per_item": 1000 * cpu / max(1, settled),
                             "concurrency": limits.sweep_concurrency,
                             "budget_seconds": limits.sweep_time_budget_seconds}
    return results


def idle(stack: Stack, tables: dict, samples: int) -> dict:
    """size -> {"idle": Samples of one timer run with nothing due, "raw_query": Samples of its one
    index query made raw}, on tables of that many pauses, in alternating blocks."""
    from azure.data.tables import TableClient

    from shared import sweep
    from shared.clock import utcnow
    from shared.storage.due_index import DueIndex

    results = {size: {"idle": Samples(f"idle sweep {size}"), "raw_query": Samples(f"raw index query {size}")}
               for size in tables}
    raw = {size: TableClient.from_connection_string(stack.storage, table_name=table + "expiry")
           for size, table in tables.items()}

    def query(client):
        partition, row = DueIndex.keys("~", utcnow())
        return list(client.query_entities("PartitionKey le @p and RowKey le @r", parameters={"p": partition, "r": row},
                                          select=["PartitionKey", "RowKey", "attempts"], results_per_page=1000))

    try:
        for _ in range(max(1, samples // IDLE_BLOCK)):
            for size, table in tables.items():
                stack.use_table(table)
                if sweep.sweep() != {} or query(raw[size]):  # untimed: builds the clients; and nothing may be due
                    raise RuntimeError(f"the idle timer run found work in the {size:,} table")
                for _ in range(IDLE_BLOCK):
                    results[size]["idle"].time(sweep.sweep)
                    results[size]["raw_query"].time(query, raw[size])
    finally:
        for client in raw.values():
            client.close()
    return results
