"""`make bench` at tiny sizes: every section runs and reports, in seconds.

Timings on a shared machine are too noisy to assert on here; what is asserted is what does
not depend on timing: the report's shape, one SDK client per target, lazy heavy imports and
no network at import time.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """Run the benchmark once with --smoke; yield (markdown report, numbers)."""
    numbers = tmp_path_factory.mktemp("bench") / "bench.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.run", "--smoke", "--json", str(numbers)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, json.loads(numbers.read_text())


def check_bench_prints_one_markdown_report_with_every_section(bench):
    report, _ = bench
    assert report.startswith("## Benchmark run")
    for heading in ("### In-process", "### Over HTTP", "### Restart with", "### Cold import",
                    "### One timer run against a backlog", "### One timer run with nothing due",
                    "### Listing the 20 pending pauses", "### Checkpoint with no hold placed"):
        assert heading in report
    assert "Azurite Table service" not in report  # Azurite's own chatter goes to stderr


def check_bench_measures_the_app_and_its_floors(bench):
    _, numbers = bench
    for name in ("pause", "raw_insert_one", "raw_insert_two", "restart", "raw_restart"):
        assert numbers["inprocess"][name]["n"] == 8
        assert 0 < numbers["inprocess"][name]["p50"] <= numbers["inprocess"][name]["p99"]
    levels = {(level["name"], level["clients"]) for level in numbers["http"]["levels"]}
    assert levels == {(name, clients) for name in ("pause", "restart", "raw_insert_one", "raw_insert_two", "raw_restart")
                      for clients in (1, 4)}
    assert set(numbers["flat"]) == {"30", "100"}
    timer = numbers["sweep"]["40"]
    assert timer["counts"] == {"restarted": 40} and timer["checks"] == 20
    assert timer["per_second"] > 0 and timer["floor_per_second"] > 0
    assert set(numbers["idle"]) == {"30", "100"}
    assert all(r[name]["n"] == 10 for r in numbers["idle"].values() for name in ("idle", "raw_query"))


def check_bench_lists_exactly_the_pending_pauses_and_calls_every_checkpoint_back(bench):
    report, numbers = bench
    listing = numbers["listing"]
    assert set(listing) == {"20", "60"}
    for size, r in listing.items():
        # The app made the 20 pending (their open rows); the loader the decided ones (a decision row each).
        assert (r["pauses"], r["open_rows"], r["decided_rows"]) == (int(size) + 20, 20, int(size))
        assert r["listings"] == 10 and r["exact"] == 10  # every listing: exactly the 20 pending ids
        for name in ("listing", "raw_listing", "raw_query", "raw_read"):
            assert r[name]["n"] == 10 and 0 < r[name]["p50"] <= r[name]["p99"]
    checkpoint = numbers["checkpoint"]
    assert checkpoint["checkpoint"]["n"] == checkpoint["raw_read"]["n"] == checkpoint["raw_reach"]["n"] == 8
    assert 0 < checkpoint["checkpoint"]["p50"] <= checkpoint["checkpoint"]["p99"]
    # Warm-up and measured checkpoints alike: each called back once, and its due-index row deleted.
    assert checkpoint["checkpoints"] == 8 + 20
    assert checkpoint["callbacks"] == checkpoint["distinct"] == checkpoint["answered_200"] == 8 + 20
    assert checkpoint["rows_left"] == 0
    assert "every listing returned exactly the 20 pending: yes" in report
    assert "every checkpoint called back once: yes (28 callbacks for 28 checkpoints)" in report


def check_host_builds_one_table_client_and_one_adf_client_per_target(bench):
    _, numbers = bench
    census = numbers["http"]["census"]
    assert census["TableServiceClient"] == 1
    assert census["TableClient"] == 7  # one per table (pauses, due and status index, holds, keys, catalog, requests)
    assert census["DataFactoryManagementClient"] == 3  # three (tenant, subscription) targets
    # Kept alive: at most three per client (a pause writes three rows at once), not one per request.
    assert census["TCP connections opened to Azurite"] <= 3 * 4


def check_cold_import_loads_no_adf_sdk_or_identity_and_touches_no_network(bench):
    _, numbers = bench
    app = numbers["cold"]["app"]
    assert not {"azure.mgmt.datafactory", "azure.identity", "re2"} & set(app["loaded"])  # forms load RE2 when used
    assert app["network"] == []


def test_one_smoke_run_of_the_bench_measures_every_section(bench):
    """One test, so that pytest-xdist runs the bench (module fixture, ~20 s) once, on one worker, and not
    once per worker that would take one of several tests."""
    check_bench_prints_one_markdown_report_with_every_section(bench)
    check_bench_measures_the_app_and_its_floors(bench)
    check_bench_lists_exactly_the_pending_pauses_and_calls_every_checkpoint_back(bench)
    check_host_builds_one_table_client_and_one_adf_client_per_target(bench)
    check_cold_import_loads_no_adf_sdk_or_identity_and_touches_no_network(bench)
