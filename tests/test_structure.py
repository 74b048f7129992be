"""The shape of the code, checked like behaviour: small modules and functions, and no module reaching
into another's private names. (The import layers are import-linter's contracts in pyproject.toml,
run by `make test`, and by the last test here.)"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ("shared", "pause_pipeline", "restart_pipeline", "console", "holds_api", "expire_pauses", "api_docs",
       "reassign_approver", "catalog_api")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def app_modules():
    files = [ROOT / "function_app.py"]
    for package in APP:
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("path", app_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES


def test_no_function_is_over_60_lines():
    long = []
    for path in app_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}() is {lines} lines")
    assert not long, "\n".join(long)


def _project(name: str) -> bool:
    return name.split(".")[0] in APP


def private_uses(source: str, here: str) -> list[str]:
    """Names starting with _ taken from another project module: imported, or read off a module."""
    tree, found = ast.parse(source), []
    modules = {}  # local name -> project module it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and _project(node.module) and node.module != here:
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{here}:{node.lineno} imports {node.module}.{alias.name}")
                modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _project(alias.name):
                    modules[alias.asname or alias.name.split(".")[0]] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            if node.attr.startswith("_") and not node.attr.startswith("__"):
                found.append(f"{here}:{node.lineno} reads {modules[node.value.id]}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    found = [use for path in app_modules() for use in private_uses(path.read_text(), module_name(path))]
    assert not found, "\n".join(found)


def test_the_private_name_check_sees_both_kinds_of_use():
    sample = "from shared.storage.tables import _hidden\nfrom shared import clock\nclock._secret()\nclock.utcnow()\n"
    assert private_uses(sample, "shared.probe") == ["shared.probe:1 imports shared.storage.tables._hidden",
                                                    "shared.probe:3 reads shared.clock._secret"]


def test_the_import_layers_are_kept():
    """import-linter's contracts (pyproject.toml) hold: `make test` runs them too, this says so in pytest."""
    import subprocess
    import sys

    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(ROOT), "PATH": str(lint.parent)})
    assert result.returncode == 0, result.stdout[-3000:]


def test_every_module_of_shared_sits_in_a_layer():
    """A module no layer names would escape the layers contract: each must be in one (or below one)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [layers] = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    named = {part.strip().strip("()") for layer in layers for part in layer.replace("|", ":").split(":")}
    modules = [module_name(path) for path in app_modules()
               if module_name(path).startswith("shared.") and path.name != "__init__.py"]  # packages hold no code
    outside = [m for m in modules if not any(m == n or m.startswith(n + ".") for n in named)]
    assert not outside, outside


def test_every_module_has_its_test_file():
    missing = []
    for path in app_modules():
        if not path.is_relative_to(ROOT / "shared") or path.name == "__init__.py":
            continue
        if not (ROOT / "tests" / f"test_{path.stem}.py").exists():
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, missing
