"""infra/ checked where Azure cannot be reached: every Bicep file parses, checkov passes, the custom
Data Factory role grants exactly what the app's code calls, azd's hook reads only what the template
outputs, and the deployed package holds only the app. (The app settings the template sets are held
against the app's in tests/test_infra_settings.py.)"""

import ast
import json
import os
import re
import subprocess
import time
from fnmatch import fnmatch
from pathlib import Path

import pytest
from pycep import BicepParser

from local_dev.arm_actions import action_of, app_actions, sdk_calls

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
CHECKOV = ROOT / ".venv-infra" / "bin" / "checkov"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))


def parse(path: Path) -> dict:
    return BicepParser().parse(file_path=path)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_bicep_file_parses(path):
    try:
        parse(path)
    except Exception as exc:  # pycep raises lark's errors, or ValueError for what its validator refuses
        pytest.fail(f"{path.relative_to(ROOT)} does not parse: {type(exc).__name__}: {exc}", pytrace=False)


def test_checkov_passes_on_infra():
    """No failed check, no file checkov could not parse; a skip is an inline `//checkov:skip=ID:reason`."""
    if not CHECKOV.is_file():
        message = f"checkov not found at {CHECKOV.relative_to(ROOT)}: run `make deps` (it builds .venv-infra)"
        if in_ci():
            pytest.fail(f"{message}. CI=true, so the infra check must run.", pytrace=False)
        pytest.skip(message)
    started = time.monotonic()
    # --skip-download: no request to Prisma Cloud for guidelines (there is no internet here).
    result = subprocess.run([str(CHECKOV), "-d", str(INFRA), "--framework", "bicep", "--quiet", "--compact",
                             "-o", "json", "--skip-download"], capture_output=True, text=True, timeout=300,
                            cwd=ROOT, check=False)
    elapsed = time.monotonic() - started
    assert result.stdout.strip(), f"checkov printed nothing ({result.returncode}): {result.stderr[-2000:]}"
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    [report] = [r for r in reports if r.get("check_type") == "bicep"]
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}): {c['check_name']}"
              for c in report["results"].get("failed_checks", [])]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0, f"checkov could not parse some files: {summary}"
    assert summary["passed"] > 0 and result.returncode == 0, (summary, result.stderr[-2000:])
    # checkov's own errors (a check that crashed on a resource) go to stderr: none may hide a finding.
    assert "Failed to run check" not in result.stderr, result.stderr[-2000:]
    print(f"checkov: {summary['passed']} passed, {summary['skipped']} skipped in {elapsed:.1f} s")


def test_every_checkov_skip_gives_its_reason():
    skips = [(path, line) for path in BICEP_FILES for line in path.read_text().splitlines() if "checkov:skip" in line]
    assert skips
    bad = [f"{path.relative_to(ROOT)}: {line.strip()}" for path, line in skips
           if not re.search(r"//checkov:skip=CKV2?_[A-Z]+_\d+:\S.{10,}", line)]
    assert not bad, "a skip needs `//checkov:skip=<ID>:<reason>`:\n" + "\n".join(bad)


# --- The custom role: exactly the Data Factory actions the code calls ------------------------------

def role_actions() -> set[str]:
    [role] = [r for r in parse(INFRA / "app" / "adf-role.bicep")["resources"].values()
              if r["type"] == "Microsoft.Authorization/roleDefinitions"]
    permissions = role["config"]["properties"]["permissions"]
    assert all(not p.get("notActions") and not p.get("dataActions") for p in permissions)
    return {action.lower() for p in permissions for action in p["actions"]}


def test_custom_role_grants_exactly_the_data_factory_actions_the_app_calls():
    derived = {action.lower() for action in app_actions()}
    granted = role_actions()
    assert granted == derived, (f"infra/app/adf-role.bicep grants actions the app does not call: {granted - derived}; "
                                f"the app calls actions it does not grant: {derived - granted}")


def test_the_derived_actions_follow_arm_rules():
    base = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DataFactory/factories/f"
    assert action_of("POST", base + "/pipelines/p/createRun") == \
        "Microsoft.DataFactory/factories/pipelines/createrun/action"
    assert action_of("POST", base + "/queryPipelineRuns") == "Microsoft.DataFactory/factories/querypipelineruns/action"
    assert action_of("GET", base + "/pipelineruns/r") == "Microsoft.DataFactory/factories/pipelineruns/read"
    assert action_of("GET", base + "/pipelines") == "Microsoft.DataFactory/factories/pipelines/read"
    assert action_of("PUT", base) == "Microsoft.DataFactory/factories/write"
    assert action_of("DELETE", base + "/pipelines/p") == "Microsoft.DataFactory/factories/pipelines/delete"


def test_a_new_sdk_call_in_the_code_is_a_new_action(tmp_path):
    """What makes the role test fail when the code starts calling something else."""
    (tmp_path / "more.py").write_text("def cancel(client, rg, f, run):\n"
                                      "    client.pipeline_runs.cancel(rg, f, run)\n"
                                      "    client.pipelines.items()  # not an SDK operation\n")
    assert [(c.group, c.operation) for c in sdk_calls(tmp_path)] == [("pipeline_runs", "cancel")]
    assert app_actions(tmp_path) == {"Microsoft.DataFactory/factories/pipelineruns/cancel/action"}


def test_the_adf_standin_knows_every_operation_the_app_calls():
    from local_dev.adf_standin import _ACTIONS, APP_ROLE

    known = {action.lower() for action in _ACTIONS.values()}
    assert {action.lower() for action in APP_ROLE} <= known


# --- azd: the hook and the package ----------------------------------------------------------------

def test_the_hook_reads_only_what_the_template_outputs():
    script = INFRA / "hooks" / "store-function-key.sh"
    outputs = set(parse(INFRA / "main.bicep")["outputs"])
    needed = set(re.findall(r'^: "\$\{(\w+):\?', script.read_text(), re.M))
    assert needed and needed <= outputs, needed - outputs
    subprocess.run(["sh", "-n", str(script)], check=True, capture_output=True, timeout=30)
    assert "./infra/hooks/store-function-key.sh" in (ROOT / "azure.yaml").read_text()


def funcignore_patterns() -> list[str]:
    lines = [line.strip() for line in (ROOT / ".funcignore").read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    # The matcher below knows names and globs (matched against each part of a path), no more.
    assert not [p for p in patterns if p.startswith("!") or "/" in p.rstrip("/") or "**" in p], patterns
    return [p.rstrip("/") for p in patterns]


def deployed(relative: str, patterns: list[str]) -> bool:
    return not any(fnmatch(part, pattern) for part in Path(relative).parts for pattern in patterns)


def test_the_deployed_package_holds_only_the_app():
    """function_app.py, host.json, requirements.txt, shared/, templates/ and the packages function_app.py
    imports its blueprints from: no tests, tools, docs or local data."""
    imported = {node.module.split(".")[0] for node in ast.walk(ast.parse((ROOT / "function_app.py").read_text()))
                if isinstance(node, ast.ImportFrom) and node.module and (ROOT / node.module.split(".")[0]).is_dir()}
    expected = {"function_app.py", "host.json", "requirements.txt", "shared", "templates", *imported}
    patterns = funcignore_patterns()
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True,
                             timeout=30).stdout.split()
    kept = {Path(name).parts[0] for name in tracked if deployed(name, patterns)}
    assert kept == expected, f"deployed but not the app: {kept - expected}; left out: {expected - kept}"
    # What git ignores is local (virtualenvs, Azurite's data, azd's environments): never deployed either.
    local = [line.strip().rstrip("/") for line in (ROOT / ".gitignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert not [name for name in local if deployed(name, patterns)], local
