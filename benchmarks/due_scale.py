"""Due work at scale: 10,000 items due at once, spread through the queue, at the pace ARM allows.

The table holds 10,000 pauses whose expiry passed within the last hour: 2,500 that simply expire,
2,500 in callback mode (each expiry calls its WebHook back, at the ADF stand-in), and 2,500 that
restart on timeout in each of two subscriptions (each starts a run). The stand-in takes 200 ms per
createRun and throttles as ARM does, with ARM's own buckets (writes: 200 at once, then 10 a second
per subscription and identity). The timer (`shared.due_work.enqueue_due`, here in the bench process,
once a minute as in Azure) puts every item on the queue; `local_dev.queue_worker` processes run the
app's queue function (`settle_due_work`) as the Functions host does.

Measured from the moment the timer first runs: when the expiries and callbacks were all settled; how
fast the starts went against what ARM allows in that time (200 + 10/s per subscription); the share
of createRun calls ARM throttled; and, from the stand-in's records and the pauses, that every pause
ended once (one run or one callback each, none failed, none left claimed).

Scale-out: the 5,000 expiries and callbacks alone, settled by one worker process, then two, two and one (the
means compared, so that a machine slower in one part of the section weighs on both alike): the
timer fills the queue first, then the workers start, and their rate is measured from the first decision
to the last (the timer's enqueue, one instance's work, is timed apart). Then the starts alone (half as many),
settled by two worker processes pacing the same buckets: several instances must keep to ARM's pace together.
CPU per item: the workers' CPU time per settled expiry, against the raw SDK calls one needs (read the
message and the pause, the conditional write that decides it, the status-index transaction, delete the
due row and the message) made from as many threads on SDK clients with nothing of the app's but its HTTP
transport (`shared.outbound.http_transport`: a keep-alive pool as large as the threads; stock clients keep
10 connections and open and discard one per request beyond them, which would make the floor dearer).
"""

import os
import time
from datetime import datetime, timezone

from .bulk import fill
from .harness import REPO_ROOT, SUBSCRIPTIONS, App, Stack, new_table_name
from .sweep import _create_tables, _template

CREATE_RUN_MS = 200
SCALE_OUT_ORDER = (1, 2, 2, 1)  # worker processes of each scale-out run, in turn
SIZE = 10_000
POLL_S = 5
TIMER_S = 60


def _get_json(url: str):
    import requests

    return requests.get(url, timeout=120).json()


def _load(stack: Stack, app: App, table: str, size: int, starts: bool, progress, seed: int = 10,
          quick: bool = True) -> dict:
    """The due pauses, by kind: their ids (without `quick`, the starts alone)."""
    templates = new_table_name("template")
    stack.use_table(templates, CALLBACK_ALLOWED_HOSTS="127.0.0.1")
    plain = _template(app, stack, templates)
    callback = _template(app, stack, templates, callBackUri=f"{stack.adf.url}/_standin/callbacks/template")
    restart = [_template(app, stack, templates, on_timeout="restart", subscription_id=s) for s in SUBSCRIPTIONS]
    quarter = size // 4
    _create_tables(stack, table)
    if not quick:
        progress(f"due at scale: {quarter:,} starts in each of two subscriptions into {table}")
        return {f"start-{number}": fill(stack.azurite, table, template, quarter, seed=seed + number, due="expired")
                for number, template in enumerate(restart)}

    def own_callback(entity, pause_id):
        entity["callback_uri"] = f"{stack.adf.url}/_standin/callbacks/{pause_id}"

    progress(f"due at scale: {quarter:,} expiries, {quarter:,} callbacks"
             + (f", {quarter:,} starts in each of two subscriptions" if starts else "") + f" into {table}")
    # Seeds of their own per load: pause ids (and so callback ids) never meet those of an earlier load.
    ids = {"expiry": fill(stack.azurite, table, plain, quarter, seed=seed, due="expired"),
           "callback": fill(stack.azurite, table, callback, quarter, seed=seed + 1, due="expired", vary=own_callback)}
    if starts:
        for number, template in enumerate(restart):
            ids[f"start-{number}"] = fill(stack.azurite, table, template, quarter, seed=seed + 2 + number,
                                          due="expired")
    return ids


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _CpuSampler:
    """The CPU seconds of each group of processes that share this machine's cores (the workers, Azurite, the
    stand-in, this process), sampled twice a second, so that what each spent between two moments known only
    afterwards (the first and the last decision) can be read: the machine's own limit on scale-out."""

    def __init__(self, groups: dict):
        import threading

        self._groups, self._samples = groups, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "_CpuSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            try:
                cpu = {group: sum(_cpu_seconds(pid) for pid in pids) for group, pids in self._groups.items()}
            except OSError:  # a process ended: the window of interest is over
                return
            self._samples.append((time.time(), cpu))
            if self._stop.wait(0.5):
                return

    def between(self, start: float, end: float) -> dict:
        """group -> CPU seconds spent from the sample nearest `start` to the one nearest `end`."""
        first = min(self._samples, key=lambda sample: abs(sample[0] - start))[1]
        last = min(self._samples, key=lambda sample: abs(sample[0] - end))[1]
        return {group: last[group] - first[group] for group in first}


def _decisions(stack: Stack, table: str, ids: dict) -> dict:
    """kind -> [(status, decided_at, run_id)] of every pause, read at the end."""
    from concurrent.futures import ThreadPoolExecutor

    from azure.data.tables import TableClient

    with TableClient.from_connection_string(stack.azurite.connection_string, table) as client:
        def read(pause_id):
            entity = client.get_entity(pause_id, "pause", select=["status", "decided_at", "run_id"])
            return entity.get("status"), entity.get("decided_at"), entity.get("run_id")
        with ThreadPoolExecutor(10) as pool:  # as many as the stock client's pool keeps: none reopened
            return {kind: list(pool.map(read, found)) for kind, found in ids.items()}


def _settle(stack: Stack, table: str, ids: dict, workers: int, progress, limit_s: float,
            warmup_s: float = 5, enqueue_first: bool = False) -> dict:
    """Run the timer and `workers` worker processes until every pause is final (or `limit_s` passed). With
    `enqueue_first` the timer's first run fills the queue before the workers start (what the workers settle,
    measured apart from the timer's single-instance enqueue)."""
    from local_dev.queue_worker import QueueWorkers
    from shared import due_work

    queue = "due-" + table[-12:]
    # Azurite is one Node process, and under this load a point read may take seconds: the workers wait
    # for it rather than count a slow answer as storage down (Azure answers in milliseconds).
    stack.use_table(table, CALLBACK_ALLOWED_HOSTS="127.0.0.1", DUE_WORK_QUEUE=queue,
                    STORAGE_READ_TIMEOUT_SECONDS="30")
    wanted_runs = sum(len(v) for k, v in ids.items() if k.startswith("start"))
    wanted_callbacks = len(ids.get("callback", ()))
    mine = set(ids.get("callback", ()))  # the stand-in keeps the session's callbacks: this load's only
    timer_runs, enqueue_s = [], None
    if enqueue_first:
        enqueue_s = time.time()
        timer_runs.append(due_work.enqueue_due())
        enqueue_s = time.time() - enqueue_s
    seen = len(_get_json(f"{stack.adf.url}/_standin/callbacks"))  # earlier loads': looked at once, before the workers
    with QueueWorkers(workers, ["--lease", "60"]) as running, _CpuSampler({
            "workers": [process.pid for process in running.processes], "Azurite": [stack.azurite.pid],
            "stand-in": [stack.adf.pid], "bench": [os.getpid()]}) as sampler:
        time.sleep(warmup_s)  # they import the app and start polling: their CPU until then is not the items'
        # (With the queue filled first they settle from the start: their CPU counts from their start, import
        # included, about a second each.)
        cpu_before = 0 if enqueue_first else sum(_cpu_seconds(process.pid) for process in running.processes)
        started = time.time()
        next_timer = started + (TIMER_S if enqueue_first else 0)
        callbacks = 0
        runs_before = sum(row["answered"] for row in _get_json(f"{stack.adf.url}/_standin/throttling")
                          if row["operation"] == "createRun")
        while time.time() - started < limit_s:
            if time.time() >= next_timer:
                timer_runs.append(due_work.enqueue_due())
                next_timer += TIMER_S
            runs = sum(row["answered"] for row in _get_json(f"{stack.adf.url}/_standin/throttling")
                       if row["operation"] == "createRun") - runs_before
            # Only the callbacks since the last look: the stand-in answers the workers' callbacks meanwhile.
            arrived = _get_json(f"{stack.adf.url}/_standin/callbacks?skip={seen}")
            seen, callbacks = seen + len(arrived), callbacks + sum(call["callbackId"] in mine for call in arrived)
            if runs >= wanted_runs and callbacks >= wanted_callbacks:
                decided = _decisions(stack, table, ids)
                if all(status not in ("pending", "restarting", "expiring") for rows in decided.values()
                       for status, _, _ in rows):
                    break
            progress(f"due at scale ({workers} worker{'s' * (workers > 1)}): {runs:,}/{wanted_runs:,} runs, "
                     f"{callbacks:,}/{wanted_callbacks:,} callbacks after {time.time() - started:.0f} s")
            time.sleep(POLL_S)
        cpu = sum(_cpu_seconds(process.pid) for process in running.processes) - cpu_before
    return {"started": started, "timer_runs": timer_runs, "cpu_seconds": cpu, "enqueue_seconds": enqueue_s,
            "decided": _decisions(stack, table, ids), "cpu": sampler}


def _when(decided_at, started: float) -> float:
    moment = decided_at if isinstance(decided_at, datetime) else datetime.fromisoformat(str(decided_at))
    return moment.replace(tzinfo=moment.tzinfo or timezone.utc).timestamp() - started


def _report(stack: Stack, ids: dict, outcome: dict, throttling: list) -> dict:
    started, decided = outcome["started"], outcome["decided"]
    statuses = {kind: sorted({status for status, _, _ in rows}) for kind, rows in decided.items()}
    runs = _get_json(f"{stack.adf.url}/_standin/runs")
    callbacks = _get_json(f"{stack.adf.url}/_standin/callbacks")
    # The stand-in keeps every run and callback of the session: only this load's pauses are this load's.
    mine = {p for v in ids.values() for p in v}
    run_pauses = [run["parameters"].get("pause_id") for run in runs if run["parameters"].get("pause_id") in mine]
    callback_ids = [call["callbackId"] for call in callbacks if call["callbackId"] in mine]
    result = {"statuses": statuses, "cpu_seconds": outcome["cpu_seconds"],
              "runs_once_each": sorted(run_pauses) == sorted(p for k, v in ids.items() if k.startswith("start")
                                                             for p in v),
              "callbacks_once_each": sorted(callback_ids) == sorted(ids.get("callback", ())),
              "timer_runs": outcome["timer_runs"]}
    quick = [_when(at, started) for kind in ("expiry", "callback") for _, at, _ in decided.get(kind, ())]
    if quick:  # (the starts alone have none)
        result["expiries_and_callbacks"] = len(quick)
        result["expiries_and_callbacks_seconds"] = max(quick)
        result["expiries_and_callbacks_per_second"] = len(quick) / max(quick)
    for number, subscription in enumerate(SUBSCRIPTIONS):
        kind = f"start-{number}"
        if kind not in decided:
            continue
        last = max(_when(at, started) for _, at, _ in decided[kind])
        allowed = 200 + 10 * last
        calls = next((row for row in throttling if row["operation"] == "createRun"
                      and row["subscription"] == subscription.lower()), {"answered": 0, "throttled": 0})
        result[kind] = {"starts": len(decided[kind]), "seconds": last, "allowed_by_arm": allowed,
                        "share_of_allowed": len(decided[kind]) / allowed,
                        "create_run_calls": calls["answered"] + calls["throttled"],
                        "throttled_share": calls["throttled"] / max(1, calls["answered"] + calls["throttled"])}
    return result


def _floor_cpu_per_item(stack: Stack, count: int = 400, threads: int = 24) -> float:
    """CPU seconds per expiry of the raw calls it needs (see the module's docstring)."""
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    from azure.core import MatchConditions
    from azure.data.tables import TableServiceClient, UpdateMode
    from azure.storage.queue import QueueClient

    from shared.outbound import http_transport

    def transport():
        return http_transport(connection_timeout=10, read_timeout=60)

    name, connection = new_table_name("floor"), stack.azurite.connection_string
    with TableServiceClient.from_connection_string(connection, transport=transport()) as service, \
            QueueClient.from_connection_string(connection, f"floor-{uuid.uuid4().hex[:8]}",
                                               transport=transport()) as queue:
        pauses, index, status = (service.create_table(name + suffix) for suffix in ("", "expiry", "status"))
        entity = {"status": "pending", "mode": "restart", "expires_at": datetime.now(timezone.utc), "x": "y" * 1500}
        queue.create_queue()
        for i in range(count):
            pauses.create_entity({"PartitionKey": f"p{i}", "RowKey": "pause", **entity})
            index.create_entity({"PartitionKey": "h", "RowKey": f"r{i}"})
            queue.send_message(f"m{i}")

        def settle(i):
            [message] = queue.receive_messages(max_messages=1)
            stored = pauses.get_entity(f"p{i}", "pause")
            pauses.update_entity({"PartitionKey": f"p{i}", "RowKey": "pause", "status": "expired"},
                                 mode=UpdateMode.MERGE, etag=stored.metadata["etag"],
                                 match_condition=MatchConditions.IfNotModified)
            status.submit_transaction([("upsert", {"PartitionKey": "s", "RowKey": f"d{i}"})])
            index.delete_entity("h", f"r{i}")
            queue.delete_message(message)

        cpu = time.process_time()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(settle, range(count)))
        cpu = time.process_time() - cpu
        queue.delete_queue()
        for suffix in ("", "expiry", "status"):
            service.delete_table(name + suffix)
    return cpu / count


def run(progress, size: int = SIZE, limit_s: float = 1200, scale_size: int | None = None,
        warmup_s: float = 5, scale_out: bool = True) -> dict:
    """The whole scenario with ARM's limits and one worker; then the scale-out of expiries and callbacks
    (`scale_size` items of four kinds' worth, so half of it: expiries and callbacks)."""
    results = {}
    with Stack(create_run_ms=CREATE_RUN_MS, throttle_scale=1) as stack:
        app = App()
        table = new_table_name("scale")
        ids = _load(stack, app, table, size, True, progress)
        before = _get_json(f"{stack.adf.url}/_standin/throttling")
        outcome = _settle(stack, table, ids, 1, progress, limit_s, warmup_s)
        results["all"] = _report(stack, ids, outcome, _throttled_since(stack, before))
        runs = []
        # One, two, two, one: a machine that slows down or speeds up during the section weighs on both alike.
        for number, workers in enumerate(SCALE_OUT_ORDER if scale_out else ()):
            _get_json_delete(f"{stack.adf.url}/_standin/runs")
            table = new_table_name("scale")
            ids = _load(stack, app, table, scale_size or size, False, progress, seed=100 * (number + 1))
            outcome = _settle(stack, table, ids, workers, progress, limit_s, warmup_s, enqueue_first=True)
            report = _report(stack, ids, outcome, [])
            # The workers' rate: from the first decision to the last (their start-up and the enqueue apart).
            moments = [_when(at, outcome["started"]) for kind in ("expiry", "callback")
                       for _, at, _ in outcome["decided"][kind]]
            report["span_seconds"] = max(moments) - min(moments)
            report["expiries_and_callbacks_per_second"] = len(moments) / report["span_seconds"]
            report["enqueue_seconds"] = outcome["enqueue_seconds"]
            report["cpu_ms_per_item"] = 1000 * outcome["cpu_seconds"] / (len(ids["expiry"]) + len(ids["callback"]))
            window = outcome["cpu"].between(outcome["started"] + min(moments), outcome["started"] + max(moments))
            report["window_cpu_ms_per_item"] = {group: 1000 * seconds / len(moments)
                                                for group, seconds in window.items()}
            report["workers"] = workers
            runs.append(report)
        for workers in (1, 2) if scale_out else ():
            results[f"workers-{workers}"] = _mean([run for run in runs if run["workers"] == workers])
        results["scale_out_runs"] = runs
        if scale_out:
            results["floor_cpu_ms_per_item"] = 1000 * _floor_cpu_per_item(stack)
            results["starts-2-workers"] = _starts(stack, app, size // 2, progress, limit_s, warmup_s)
    return results


def _mean(runs: list) -> dict:
    """The scale-out runs of one worker count as one: the mean of their rates and CPU per item."""
    def mean(values):
        return sum(values) / len(values)
    first = runs[0]
    return {**first, **{key: mean([run[key] for run in runs])
                        for key in ("span_seconds", "expiries_and_callbacks_per_second", "cpu_ms_per_item")},
            "window_cpu_ms_per_item": {group: mean([run["window_cpu_ms_per_item"][group] for run in runs])
                                       for group in first["window_cpu_ms_per_item"]}}


def _starts(stack: Stack, app: App, size: int, progress, limit_s: float, warmup_s: float) -> dict:
    """The starts alone (a quarter of `size` in each of two subscriptions, due at once), settled by two worker
    processes pacing the same buckets: their pace against ARM's, and their 429s."""
    _get_json_delete(f"{stack.adf.url}/_standin/runs")
    table = new_table_name("scale")
    ids = _load(stack, app, table, size, True, progress, seed=1000, quick=False)
    before = _get_json(f"{stack.adf.url}/_standin/throttling")
    outcome = _settle(stack, table, ids, 2, progress, limit_s, warmup_s)
    return _report(stack, ids, outcome, _throttled_since(stack, before))


def _get_json_delete(url: str) -> None:
    import requests

    requests.delete(url, timeout=60)


def _throttled_since(stack: Stack, before: list) -> list:
    after = _get_json(f"{stack.adf.url}/_standin/throttling")
    earlier = {(row["operation"], row["subscription"]): row for row in before}
    return [{**row, **{key: row[key] - earlier.get((row["operation"], row["subscription"]), {}).get(key, 0)
                       for key in ("answered", "throttled")}} for row in after]


if __name__ == "__main__":
    import json
    import sys

    os.chdir(REPO_ROOT)
    size = int(sys.argv[1]) if len(sys.argv) > 1 else SIZE
    scale_size = int(sys.argv[2]) if len(sys.argv) > 2 else None
    print(json.dumps(run(lambda text: print(text, file=sys.stderr, flush=True), size, scale_size=scale_size),
                     indent=2, default=str))


def verdicts(r: dict) -> list:
    """The issue's goals, met or not, with the numbers."""
    lines = []
    everything = r["all"]
    quick = everything["expiries_and_callbacks_seconds"]
    lines.append(f"- 10,000 due at once, one worker: expiries and callbacks settled within 300 s: "
                 f"{'met' if quick <= 300 else 'NOT met'} ({quick:.0f} s)")
    shares = [everything[k]["share_of_allowed"] for k in ("start-0", "start-1") if k in everything]
    lines.append(f"- starts at ≥ 85 % of what ARM allows: {'met' if shares and min(shares) >= 0.85 else 'NOT met'} "
                 f"({', '.join(f'{share:.0%}' for share in shares)})")
    throttled = [everything[k]["throttled_share"] for k in ("start-0", "start-1") if k in everything]
    lines.append(f"- 429s under 5 % of createRun calls: {'met' if throttled and max(throttled) < 0.05 else 'NOT met'} "
                 f"({', '.join(f'{share:.1%}' for share in throttled)})")
    final = all(statuses in (["expired"], ["restarted"]) for statuses in everything["statuses"].values())
    once = everything["runs_once_each"] and everything["callbacks_once_each"]
    lines.append(f"- exactly one run or callback each, none failed, none claimed: "
                 f"{'met' if final and once else 'NOT met'} ({everything['statuses']})")
    if "workers-2" not in r:
        return lines
    one, two = r["workers-1"], r["workers-2"]
    gain = two["expiries_and_callbacks_per_second"] / one["expiries_and_callbacks_per_second"]
    lines.append(f"- two workers ≥ 1.7× one: {'met' if gain >= 1.7 else 'NOT met'} ({gain:.2f}×; {_ceiling(r)})")
    starts = r.get("starts-2-workers")
    if starts:
        shares = [starts[k]["throttled_share"] for k in ("start-0", "start-1")]
        paces = [starts[k]["share_of_allowed"] for k in ("start-0", "start-1")]
        once = starts["runs_once_each"] and all(s == ["restarted"] for s in starts["statuses"].values())
        lines.append(f"- starts with two workers pacing the same buckets: 429s under 5 %, ≥ 85 % of ARM's rate, once "
                     f"each: {'met' if max(shares) < 0.05 and min(paces) >= 0.85 and once else 'NOT met'} "
                     f"({', '.join(f'{share:.1%}' for share in shares)} throttled; "
                     f"{', '.join(f'{pace:.0%}' for pace in paces)} of ARM's rate)")
    cpu = one["cpu_ms_per_item"] / r["floor_cpu_ms_per_item"]
    lines.append(f"- worker CPU per item ≤ 1.3× its raw calls: {'met' if cpu <= 1.3 else 'NOT met'} ({cpu:.2f}×: "
                 f"{one['cpu_ms_per_item']:.1f} ms against {r['floor_cpu_ms_per_item']:.1f} ms)")
    return lines


def _ceiling(r: dict) -> str:
    """What this machine's cores allow two workers at most, from what every process spent per item with two."""
    cores, two = os.cpu_count() or 1, r["workers-2"]["window_cpu_ms_per_item"]
    ceiling = 1000 * cores / sum(two.values()) / r["workers-1"]["expiries_and_callbacks_per_second"]
    gain = r["workers-2"]["expiries_and_callbacks_per_second"] / r["workers-1"]["expiries_and_callbacks_per_second"]
    spent = ", ".join(f"{group} {ms:.1f}" for group, ms in two.items())
    return (f"the {cores} cores allow two at most {ceiling:.2f}×: each item took {sum(two.values()):.1f} ms of CPU "
            f"({spent} ms); two workers reached {gain / ceiling:.0%} of that")


def report(r: dict) -> list:
    everything = r["all"]
    lines = [f"### Due work at scale: 10,000 due at once through the queue (ADF answers createRun in "
             f"{CREATE_RUN_MS} ms; ARM's own limits)", "",
             "| what | items | settled within | rate | what ARM allowed | 429s of createRun |",
             "|---|---:|---:|---:|---:|---:|",
             f"| expiries and callbacks | {everything['expiries_and_callbacks']:,} | "
             f"{everything['expiries_and_callbacks_seconds']:.0f} s | "
             f"{everything['expiries_and_callbacks_per_second']:.1f}/s | | |"]
    for number in (0, 1):
        s = everything.get(f"start-{number}")
        if s:
            lines.append(f"| starts, subscription {number + 1} | {s['starts']:,} | {s['seconds']:.0f} s | "
                         f"{s['starts'] / s['seconds']:.1f}/s | {s['share_of_allowed']:.0%} of "
                         f"{s['allowed_by_arm']:.0f} | "
                         f"{s['throttled_share']:.1%} of {s['create_run_calls']:,} |")
    if "workers-2" not in r:
        return lines
    lines += ["", "| worker processes | expiries and callbacks | first to last decision | per second | "
                  "worker CPU per item | CPU per item meanwhile: workers, Azurite, stand-in, bench |",
              "|---:|---:|---:|---:|---:|---:|"]
    for w in r.get("scale_out_runs") or [r["workers-1"], r["workers-2"]]:
        spent = " + ".join(f"{ms:.1f}" for ms in w["window_cpu_ms_per_item"].values())
        lines.append(f"| {w.get('workers', '')} | {w['expiries_and_callbacks']:,} | {w['span_seconds']:.1f} s | "
                     f"{w['expiries_and_callbacks_per_second']:.1f} | {w['cpu_ms_per_item']:.1f} ms | {spent} ms |")
    one, two = r["workers-1"], r["workers-2"]
    lines.append(f"\nMeans (runs in the order {', '.join(map(str, SCALE_OUT_ORDER))}): one worker "
                 f"{one['expiries_and_callbacks_per_second']:.1f} items/s, "
                 f"two {two['expiries_and_callbacks_per_second']:.1f}.")
    lines.append(f"\nRaw SDK calls of one expiry (on the app's HTTP transport): "
                 f"{r['floor_cpu_ms_per_item']:.1f} ms of CPU.")
    starts = r.get("starts-2-workers")
    if starts:
        lines += ["", "| starts, two worker processes | items | settled within | what ARM allowed | "
                      "429s of createRun |", "|---|---:|---:|---:|---:|"]
        for number in (0, 1):
            s = starts[f"start-{number}"]
            lines.append(f"| subscription {number + 1} | {s['starts']:,} | {s['seconds']:.0f} s | "
                         f"{s['share_of_allowed']:.0%} of {s['allowed_by_arm']:.0f} | "
                         f"{s['throttled_share']:.1%} of {s['create_run_calls']:,} |")
    return lines
