"""Run the benchmarks and print one markdown report (`make bench`; `--help` for sizes).

Starts one in-memory Azurite and one ADF stand-in, then measures, all in this run:

1. pause and restart called in-process, against the raw SDK calls they need;
2. the same over real HTTP through the local Functions host, at several client counts;
3. restart with few and with many pauses stored;
4. the cold import of `function_app` against importing its bare libraries;
5. one timer run settling a backlog of due expiries and check attempts while ADF and the
   check endpoint take 200 ms per call, and one timer run with nothing due on the tables of 3;
6. the listing of the pending pauses with few and with many decided pauses stored;
7. a checkpoint with no hold placed, against one raw point read.
"""

import argparse
import json
import logging
import os
import platform
import sys
import time
from datetime import datetime, timezone

from . import checkpoint, coldstart, due_scale, flat, http_load, inprocess, listing, sweep
from .harness import THROTTLE_SCALE, App, Stack, new_table_name
from .stats import ms, ratio

SECTIONS = ("inprocess", "http", "flat", "cold", "sweep", "listing", "checkpoint", "scale")
GOAL_LATENCY, GOAL_FLAT, GOAL_IMPORT = 1.10, 1.2, 1.2
GOAL_SWEEP = 40  # due items settled per second: 10,000 within one 5-minute timer run
GOAL_IDLE = 1.2  # an idle timer run with the most pauses stored, against the fewest
GOAL_CHECKPOINT = 1.5  # a checkpoint with no hold, against one raw point read
GOAL_FLOOR = 1.25  # restart against a read, two conditional writes and createRun; pause against its 3 inserts at once


def _sizes(text: str) -> list:
    return [int(part.replace("_", "").replace("k", "000")) for part in text.split(",") if part.strip()]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=300,
                        help="in-process samples per operation (default 300)")
    parser.add_argument("--clients", type=_sizes, default=[1, 8, 32],
                        help="HTTP concurrency levels, comma-separated (default 1,8,32)")
    parser.add_argument("--http-requests", type=int, default=256,
                        help="requests per operation and level over HTTP (default 256)")
    parser.add_argument("--pauses", type=_sizes, default=[1000, 100000],
                        help="table sizes for the flatness check, e.g. 1k,100k (default 1000,100000)")
    parser.add_argument("--flat-samples", type=int, default=200,
                        help="restarts measured per table size (default 200)")
    parser.add_argument("--sweep", type=_sizes, default=[1000, 10000],
                        help="due-pause backlogs for one timer run, e.g. 1k,10k (default 1000,10000)")
    parser.add_argument("--idle-samples", type=int, default=60,
                        help="idle timer runs measured per table size, with --only flat,sweep (default 60)")
    parser.add_argument("--listing", type=_sizes, default=[1000, 100000],
                        help="decided pauses stored beside the 20 pending ones listed, e.g. 1k,100k "
                             "(default 1000,100000; loading 100k takes ~30 min, see benchmarks/bulk.py)")
    parser.add_argument("--listing-samples", type=int, default=100,
                        help="listings measured per table size (default 100)")
    parser.add_argument("--import-runs", type=int, default=9,
                        help="fresh interpreters per import probe; the best counts (default 9)")
    parser.add_argument("--only", type=lambda text: text.split(","), default=None,
                        help="sections to run: " + ",".join(SECTIONS))
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes, seconds not minutes (what tests/test_bench_smoke.py runs)")
    parser.add_argument("--rtt-ms", type=float, default=0,
                        help="reach Azurite and the ADF stand-in through proxies adding this round trip "
                             "time, as if they were a network away (default 0: plain loopback)")
    parser.add_argument("--arm-throttle-scale", type=float, default=THROTTLE_SCALE,
                        help="the ADF stand-in throttles as ARM does with its buckets and refill rates times this "
                             f"(default {THROTTLE_SCALE}, so the benchmarks time the app, not ARM's pace; "
                             "1: ARM's own limits)")
    parser.add_argument("--scale", type=int, default=due_scale.SIZE,
                        help=f"due items of the scale section (default {due_scale.SIZE:,}: a quarter each expiries, "
                             "callbacks and starts in two subscriptions; the scale-out settles as many expiries "
                             "and callbacks again)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON to PATH")
    options = parser.parse_args(argv)
    if options.only is None:  # --smoke leaves the scale section out: tests/test_due_work_workers.py runs its path
        options.only = [s for s in SECTIONS if s != "scale" or not options.smoke]
    if options.smoke:
        options.samples, options.clients, options.http_requests = 8, [1, 4], 8
        options.pauses, options.flat_samples, options.import_runs = [30, 100], 10, 1
        options.sweep, options.idle_samples = [40], 10
        options.listing, options.listing_samples = [20, 60], 10
        options.scale = 40
    if not options.arm_throttle_scale > 0:
        parser.error("--arm-throttle-scale must be a positive number")
    unknown = set(options.only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    return options


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _latency_rows(results: dict, rows: list) -> list:
    """Markdown rows: name, p50, p99 and the ratios to a floor."""
    lines = ["| measured | p50 | p99 | floor | p50 ratio | p99 ratio |", "|---|---:|---:|---|---:|---:|"]
    for label, name, floor_label, floor in rows:
        s = results[name]
        if floor is None:
            lines.append(f"| {label} | {ms(s.p50)} | {ms(s.p99)} | — | | |")
        else:
            f = results[floor]
            lines.append(f"| {label} | {ms(s.p50)} | {ms(s.p99)} | {floor_label} ({ms(f.p50)} / {ms(f.p99)}) | "
                         f"**{ratio(s.p50, f.p50)}** | {ratio(s.p99, f.p99)} |")
    return lines


def report_inprocess(results: dict, samples: int) -> list:
    lines = [f"### In-process (the registered functions called with `azure.functions.HttpRequest`), "
             f"{samples} samples each, interleaved", "",
             "Floors are stock SDK clients unless they say *app transport*: the same calls through the "
             "app's tuned HTTP transport (`shared.outbound.http_transport`), which isolates the cost of the "
             "app's own code.", ""]
    lines += _latency_rows(results, [
        ("pause", "pause", "1 insert: the pause entity", "raw_insert_one"),
        ("pause", "pause", "2 inserts, one after the other: index row + entity", "raw_insert_two"),
        ("pause", "pause", "2 inserts at once", "raw_insert_two_concurrently"),
        ("pause", "pause", "3 inserts at once: entity + due row + status row", "raw_insert_three_concurrently"),
        ("pause", "pause", "2 inserts one after the other, app transport", "app_transport_insert_two"),
        ("restart", "restart", "read + claim + createRun + write", "raw_restart"),
        ("restart", "restart", "read + claim + createRun + write, app transport", "app_transport_restart"),
        ("raw: 2 inserts, one after the other", "raw_insert_two", "1 insert", "raw_insert_one"),
        ("raw: 2 inserts at once", "raw_insert_two_concurrently", "1 insert", "raw_insert_one"),
        ("raw: 1 insert, app transport", "app_transport_insert_one", "1 insert", "raw_insert_one"),
    ])
    return lines


def report_http(levels: list, census: dict, requests: int) -> list:
    by_key = {(level.name, level.clients): level for level in levels}
    lines = [f"### Over HTTP through the local Functions host (loopback, {requests} requests per row; "
             "the raw SDK floor runs from as many threads in the benchmark process)", "",
             "| request | clients | req/s | p50 | p99 | floor | floor req/s | floor p99 | throughput vs floor |",
             "|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for name, floor_name, floor_label in (("pause", "raw_insert_one", "1 insert"),
                                          ("pause", "raw_insert_two", "2 inserts"),
                                          ("restart", "raw_restart", "read+claim+run+write")):
        for clients in sorted({level.clients for level in levels}):
            level, floor = by_key[(name, clients)], by_key[(floor_name, clients)]
            lines.append(f"| {name} | {clients} | {level.throughput:.0f} | {ms(level.samples.p50)} | "
                         f"{ms(level.samples.p99)} | {floor_label} | {floor.throughput:.0f} | "
                         f"{ms(floor.samples.p99)} | {level.throughput / floor.throughput:.2f}× |")
    lines += ["", "Objects the host process built over the whole HTTP run (counted by patching the SDK classes; "
              "3 pipeline targets = 3 (tenant, subscription) pairs):", "",
              "| built | count |", "|---|---:|"]
    lines += [f"| {name} | {count} |" for name, count in sorted(census.items())]
    return lines


def report_flat(results: dict, sizes: list, samples: int) -> list:
    small, large = sizes[0], sizes[-1]
    lines = [f"### Restart with {' and '.join(f'{size:,}' for size in sizes)} pauses stored "
             f"({samples} each, alternating blocks of {flat.BLOCK})", "",
             "| pauses stored | restart p50 | raw restart p50 | restart vs raw | raw point read p50 | pause p50 |",
             "|---:|---:|---:|---:|---:|---:|"]
    for size in sizes:
        r = results[size]
        lines.append(f"| {size:,} | {ms(r['restart'].p50)} | {ms(r['raw_restart'].p50)} | "
                     f"{ratio(r['restart'].p50, r['raw_restart'].p50)} | {ms(r['raw_read'].p50)} | "
                     f"{ms(r['pause'].p50)} |")
    growth = {name: results[large][name].p50 / results[small][name].p50
              for name in ("restart", "raw_restart", "raw_read", "pause")}
    lines.append(f"| **{large:,} vs {small:,}** | **{growth['restart']:.2f}×** | {growth['raw_restart']:.2f}× | | "
                 f"{growth['raw_read']:.2f}× | {growth['pause']:.2f}× |")
    return lines


def report_cold(cold: dict, runs: int) -> list:
    app, bare, first = cold["app"], cold["bare"], cold["first_calls"]
    lines = [f"### Cold import (best of {runs} fresh interpreters each)", "",
             "| import | in-interpreter | whole process | heavy modules loaded | network at import |",
             "|---|---:|---:|---|---|"]
    for label, probe in (("`function_app`", app), (f"`{coldstart.BARE}`", bare)):
        lines.append(f"| {label} | {ms(probe['seconds'])} | {ms(probe['process_seconds'])} | "
                     f"{', '.join(probe['loaded']) or 'none of ' + ', '.join(coldstart.HEAVY)} | "
                     f"{', '.join(probe['network']) or 'none'} |")
    lines.append(f"| **ratio** | **{ratio(app['seconds'], bare['seconds'])}** | "
                 f"{ratio(app['process_seconds'], bare['process_seconds'])} | | |")
    lines += ["", "After that import, in the same fresh process (one run): "
              f"first pause {ms(first['first_pause'])}, second {ms(first['second_pause'])}; "
              f"first restart {ms(first['first_restart'])}, second {ms(first['second_restart'])} "
              "(the first pause imports the ADF SDK and builds its client, to check that its pipeline exists)."]
    return lines


def report_sweep(results: dict) -> list:
    lines = [f"### One timer run against a backlog of due work (ADF answers createRun in {sweep.CREATE_RUN_MS} ms, "
             f"the check endpoint in {sweep.CHECK_MS} ms)", "",
             "Half the items are expired pauses that restart on timeout (one createRun each), half are due "
             "check attempts in auto mode that pass (one check call, then one createRun). The floor makes "
             "the same outside calls, raw, from as many threads as the timer has workers.", "",
             "| due items | of which checks | workers | seconds | settled in the run | settled/s | "
             "timer CPU per item | floor: raw outside calls, items/s | vs floor |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size, r in results.items():
        reached = "all" if r["all_in_one_run"] else f"**{r['settled']:,} only**"
        lines.append(f"| {size:,} | {r['checks']:,} | {r['concurrency']} | {r['seconds']:.1f} | {reached} | "
                     f"**{r['per_second']:.0f}** | {r['cpu_ms_per_item']:.1f} ms | {r['floor_per_second']:.0f} | "
                     f"{r['per_second'] / r['floor_per_second']:.2f}× |")
    return lines


def report_idle(results: dict, samples: int) -> list:
    sizes = list(results)
    small, large = sizes[0], sizes[-1]
    lines = [f"### One timer run with nothing due ({samples} runs per table, alternating blocks of "
             f"{sweep.IDLE_BLOCK})", "",
             "The floor is the run's one storage request, the due-index query, made raw on a stock client.", "",
             "| pauses stored | idle run p50 | p99 | floor: raw index query p50 | vs floor |",
             "|---:|---:|---:|---:|---:|"]
    for size, r in results.items():
        lines.append(f"| {size:,} | {ms(r['idle'].p50)} | {ms(r['idle'].p99)} | {ms(r['raw_query'].p50)} | "
                     f"{ratio(r['idle'].p50, r['raw_query'].p50)} |")
    lines.append(f"| **{large:,} vs {small:,}** | **{ratio(results[large]['idle'].p50, results[small]['idle'].p50)}** "
                 f"| | {ratio(results[large]['raw_query'].p50, results[small]['raw_query'].p50)} | |")
    return lines


def report_listing(results: dict, samples: int) -> list:
    sizes = list(results)
    small, large = sizes[0], sizes[-1]
    lines = [f"### Listing the {listing.PENDING} pending pauses "
             f"(`list_pauses(\"pending\", {listing.PENDING}, None)`, in-process) with "
             f"{' and '.join(f'{size:,}' for size in sizes)} decided pauses stored "
             f"({samples} each, alternating blocks of {listing.BLOCK})", "",
             f"The listing is one query of the status index's open range, then {listing.PENDING} point reads of "
             "the pauses it names, in parallel. Floors on stock clients: those same calls (query, then the reads "
             "at once), and, to show the parts, the query alone and one point read. Azurite serves requests on "
             "one thread, so there parallel reads barely overlap.", "",
             "| decided pauses | listing p50 | p99 | raw listing p50 | listing vs raw | raw index query p50 | "
             "raw point read p50 | listed exactly the pending |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size, r in results.items():
        lines.append(f"| {size:,} | {ms(r['listing'].p50)} | {ms(r['listing'].p99)} | "
                     f"{ms(r['raw_listing'].p50)} | {ratio(r['listing'].p50, r['raw_listing'].p50)} | "
                     f"{ms(r['raw_query'].p50)} | {ms(r['raw_read'].p50)} | {r['exact']} of {r['listings']} |")
    growth = {name: ratio(results[large][name].p50, results[small][name].p50)
              for name in ("listing", "raw_listing", "raw_query", "raw_read")}
    lines.append(f"| **{large:,} vs {small:,}** | **{growth['listing']}** | | {growth['raw_listing']} | | "
                 f"{growth['raw_query']} | {growth['raw_read']} | |")
    return lines


def report_checkpoint(r: dict, samples: int) -> list:
    lines = [f"### Checkpoint with no hold placed (`shared.checkpoints.reach`, in-process), {samples} samples, "
             "interleaved with its floors", "",
             f"Its callback goes out from a background thread {checkpoint.DELAY_SECONDS:g} s after each answer "
             "(CHECKPOINT_CALLBACK_DELAY_SECONDS), so those threads run while later checkpoints are timed.", ""]
    lines += _latency_rows(r, [("checkpoint", "checkpoint", "1 raw point read", "raw_read"),
                               ("checkpoint", "checkpoint", "its 2 calls raw: insert + holds query at once",
                                "raw_reach"),
                               ("raw: insert + holds query at once", "raw_reach", "1 raw point read", "raw_read")])
    lines += ["", f"Callbacks: {r['callbacks']} arrived at the ADF stand-in for {r['checkpoints']} checkpoints "
              f"({r['distinct']} distinct, {r['answered_200']} answered 200), the last seen "
              f"{r['wait_seconds']:.2f} s after the last checkpoint; {r['rows_left']} callback rows left "
              "in the due index."]
    return lines


def verdicts(data: dict, sizes: list) -> list:
    """One line per goal: met or not, with the number."""
    lines = []
    if "inprocess" in data:
        r = data["inprocess"]
        pause1 = r["pause"].p50 / r["raw_insert_one"].p50
        pause2 = r["pause"].p50 / r["raw_insert_two"].p50
        restart = r["restart"].p50 / r["raw_restart"].p50
        lines.append(f"- pause p50 ≤ {GOAL_LATENCY}× one raw insert: {'met' if pause1 <= GOAL_LATENCY else 'NOT met'} "
                     f"({pause1:.2f}×; {pause2:.2f}× its two inserts made one after the other)")
        lines.append(f"- restart p50 ≤ {GOAL_LATENCY}× its raw calls: "
                     f"{'met' if restart <= GOAL_LATENCY else 'NOT met'} ({restart:.2f}×)")
        pause3 = r["pause"].p50 / r["raw_insert_three_concurrently"].p50
        lines.append(f"- restart p50 ≤ {GOAL_FLOOR}× its floor (a point read, two conditional writes, createRun "
                     f"with ADF answering at once): {'met' if restart <= GOAL_FLOOR else 'NOT met'} ({restart:.2f}×)")
        lines.append(f"- pause p50 ≤ {GOAL_FLOOR}× its three inserts sent at once: "
                     f"{'met' if pause3 <= GOAL_FLOOR else 'NOT met'} ({pause3:.2f}×)")
    if "flat" in data:
        r = data["flat"]
        growth = r[sizes[-1]]["restart"].p50 / r[sizes[0]]["restart"].p50
        lines.append(f"- restart flat within {GOAL_FLAT}× from {sizes[0]:,} to {sizes[-1]:,} pauses: "
                     f"{'met' if growth <= GOAL_FLAT else 'NOT met'} ({growth:.2f}×)")
    if "cold" in data:
        app, bare = data["cold"]["app"], data["cold"]["bare"]
        cold = app["seconds"] / bare["seconds"]
        lazy = not {"azure.mgmt.datafactory", "azure.identity"} & set(app["loaded"])
        lines.append(f"- cold import ≤ {GOAL_IMPORT}× the bare imports: {'met' if cold <= GOAL_IMPORT else 'NOT met'} "
                     f"({cold:.2f}×); ADF SDK and azure.identity loaded only on first use: {'yes' if lazy else 'NO'}; "
                     f"network at import: {'none' if not app['network'] else 'YES'}")
    if "sweep" in data:
        slowest = min(data["sweep"].items(), key=lambda item: item[1]["per_second"])
        largest, r = max(data["sweep"].items())
        met = slowest[1]["per_second"] >= GOAL_SWEEP and r["all_in_one_run"]
        lines.append(f"- timer settles ≥ {GOAL_SWEEP} due items/s, and all {largest:,} in one run "
                     f"({r['budget_seconds']:g} s budget): {'met' if met else 'NOT met'} "
                     f"({slowest[1]['per_second']:.0f}/s at {slowest[0]:,}; "
                     f"{'all' if r['all_in_one_run'] else r['settled']} of {largest:,} in one run)")
    if "idle" in data:
        idle = data["idle"]
        small, large = idle[sizes[0]], idle[sizes[-1]]
        growth = large["idle"].p50 / small["idle"].p50
        floor_growth = large["raw_query"].p50 / small["raw_query"].p50
        over = max(r["idle"].p50 / r["raw_query"].p50 for r in idle.values())
        lines.append(f"- idle timer run flat within {GOAL_IDLE}× from {sizes[0]:,} to {sizes[-1]:,} pauses: "
                     f"{'met' if growth <= GOAL_IDLE else 'NOT met'} ({growth:.2f}×; its one raw index query "
                     f"grows {floor_growth:.2f}×, and the run costs at most {over:.2f}× that query)")
    if "listing" in data:
        r = data["listing"]
        listed = list(r)
        small, large = listed[0], listed[-1]
        growth = r[large]["listing"].p50 / r[small]["listing"].p50
        floor_growth = r[large]["raw_listing"].p50 / r[small]["raw_listing"].p50
        over = max(x["listing"].p50 / x["raw_listing"].p50 for x in r.values())
        exact = all(x["exact"] == x["listings"] for x in r.values())
        lines.append(f"- pending listing flat within {GOAL_FLAT}× from {small:,} to {large:,} decided pauses: "
                     f"{'met' if growth <= GOAL_FLAT else 'NOT met'} ({growth:.2f}×; the same calls made raw grow "
                     f"{floor_growth:.2f}×, and the listing costs at most {over:.2f}× them); every listing "
                     f"returned exactly the {listing.PENDING} pending: {'yes' if exact else 'NO'}")
    if "checkpoint" in data:
        r = data["checkpoint"]
        over = r["checkpoint"].p50 / r["raw_read"].p50
        lines.append(f"- checkpoint with no hold p50 ≤ {GOAL_CHECKPOINT}× one raw point read: "
                     f"{'met' if over <= GOAL_CHECKPOINT else 'NOT met'} ({over:.2f}×); every checkpoint called "
                     f"back once: {'yes' if r['distinct'] == r['callbacks'] == r['checkpoints'] else 'NO'} "
                     f"({r['callbacks']} callbacks for {r['checkpoints']} checkpoints)")
    if "http" in data:
        census = data["http"]["census"]
        adf_clients = census.get("DataFactoryManagementClient", 0)
        ok = census.get("TableServiceClient") == 1 and adf_clients == len(http_load.TARGETS)
        lines.append(f"- one Table service client and one ADF client per (tenant, subscription) for the process: "
                     f"{'met' if ok else 'NOT met'} ({census.get('TableServiceClient', 0)} Table service client, "
                     f"{adf_clients} ADF clients for {len(http_load.TARGETS)} targets)")
    return lines


def _json_ready(data: dict) -> dict:
    def convert(value):
        if hasattr(value, "values") and hasattr(value, "p50") and not isinstance(value, dict):
            return {"p50": value.p50, "p99": value.p99, "n": len(value.values)}
        if isinstance(value, http_load.Level):
            return {"name": value.name, "clients": value.clients, "throughput": value.throughput,
                    "p50": value.samples.p50, "p99": value.samples.p99, "n": len(value.samples.values)}
        if isinstance(value, dict):
            return {str(k): convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value
    return convert(data)


def main(argv=None) -> int:
    options = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("shared").setLevel(logging.WARNING)
    started = time.perf_counter()
    data, sections = {}, []
    # Azurite prints to the stdout it inherits: send it (and progress) to stderr, the report to stdout.
    report_out = os.dup(1)
    os.dup2(2, 1)
    try:
        data, sections = _measure(options)
    finally:
        sys.stdout.flush()
        os.dup2(report_out, 1)
        os.close(report_out)
    elapsed = time.perf_counter() - started
    header = [f"## Benchmark run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", "",
              f"Python {platform.python_version()} on {platform.machine()}, "
              f"{os.cpu_count()} CPUs, took {elapsed:.0f} s. "
              + (f"Azurite and the ADF stand-in behind {options.rtt_ms:g} ms of added round trip time. "
                 if options.rtt_ms else "Azurite and the ADF stand-in on loopback. ")
              + f"The ADF stand-in throttles with {options.arm_throttle_scale:g}× ARM's limits. "
              + "Every ratio compares numbers from this run only.", "", "Goals:", ""]
    goals = verdicts(data, options.pauses) + (due_scale.verdicts(data["scale"]) if "scale" in data else [])
    print("\n".join(header + goals + [""] + ["\n".join(s) + "\n" for s in sections]))
    if options.json:
        with open(options.json, "w", encoding="utf-8") as out:
            json.dump(_json_ready(data), out, indent=1)
    return 0


def _measure(options) -> tuple[dict, list]:
    data, sections = {}, []
    with Stack(options.rtt_ms, throttle_scale=options.arm_throttle_scale) as stack:
        _progress(f"Azurite on port {stack.azurite.port}, ADF stand-in at {stack.adf.url}")
        app = App()
        if "inprocess" in options.only:
            _progress(f"in-process: {options.samples} samples of each operation")
            data["inprocess"] = inprocess.run(stack, app, options.samples)
            sections.append(report_inprocess(data["inprocess"], options.samples))
        if "http" in options.only:
            _progress(f"HTTP: {options.http_requests} requests per operation at {options.clients} clients")
            levels, census = http_load.run(stack, options.clients, options.http_requests)
            data["http"] = {"levels": levels, "census": census}
            sections.append(report_http(levels, census, options.http_requests))
        if "flat" in options.only:
            _progress(f"flatness: {options.pauses} pauses stored")
            data["flat"], tables = flat.run(stack, app, options.pauses, options.flat_samples, progress=_progress)
            sections.append(report_flat(data["flat"], options.pauses, options.flat_samples))
            if "sweep" in options.only:
                _progress(f"idle timer runs: {options.idle_samples} on each of {options.pauses} pauses stored")
                data["idle"] = sweep.idle(stack, tables, options.idle_samples)
                sections.append(report_idle(data["idle"], options.idle_samples))
        if "listing" in options.only:
            _progress(f"listing: {listing.PENDING} pending with {options.listing} decided pauses stored")
            data["listing"] = listing.run(stack, app, options.listing, options.listing_samples, _progress)
            sections.append(report_listing(data["listing"], options.listing_samples))
        if "checkpoint" in options.only:
            _progress(f"checkpoint: {options.samples} with no hold placed")
            data["checkpoint"] = checkpoint.run(stack, app, options.samples)
            sections.append(report_checkpoint(data["checkpoint"], options.samples))
        if "sweep" in options.only:
            _progress(f"timer: backlogs of {options.sweep}")
            data["sweep"] = sweep.run(options.sweep, _progress, options.arm_throttle_scale)
            sections.append(report_sweep(data["sweep"]))
        if "scale" in options.only:  # a stack of its own, with ARM's own limits
            _progress(f"due work at scale: {options.scale:,} due at once, through the queue")
            data["scale"] = due_scale.run(_progress, options.scale, scale_size=options.scale,
                                          warmup_s=5 if options.scale >= 1000 else 1,
                                          scale_out=options.scale >= 1000)  # --smoke: the fan-out alone
            sections.append(due_scale.report(data["scale"]))
        if "cold" in options.only:
            _progress(f"cold import: best of {options.import_runs}")
            data["cold"] = coldstart.run(stack.app_environment(new_table_name("cold")), options.import_runs)
            sections.append(report_cold(data["cold"], options.import_runs))
    return data, sections


if __name__ == "__main__":
    sys.exit(main())
