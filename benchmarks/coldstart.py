"""Cold start: import `function_app` in fresh interpreters, against importing the bare libraries.

Each probe is a new `python -c` process that times its import with perf_counter (so the
interpreter's own start-up is left out) and reports which heavy SDKs ended up loaded and
whether anything resolved a name or opened a connection during the import. Best of N per probe: the least
disturbed run is the best estimate of the real cost on a noisy machine.
"""

import json
import os
import subprocess
import sys
import time

from .harness import REPO_ROOT, SETTING_NAMES

BARE = "azure.functions, azure.data.tables, jinja2"
HEAVY = ("azure.mgmt.datafactory", "azure.identity", "azure.data.tables", "jinja2", "re2")

_PROBE = r"""
import json, socket, sys, time
attempts = []
def watch(original):
    def watched(*args, **kwargs):
        attempts.append(original.__name__ + repr(args[-1:])[:80])
        return original(*args, **kwargs)
    return watched
socket.socket.connect = watch(socket.socket.connect)
socket.getaddrinfo = watch(socket.getaddrinfo)
started = time.perf_counter()
import {modules}
elapsed = time.perf_counter() - started
print(json.dumps({{"seconds": elapsed, "network": attempts,
                   "loaded": [m for m in {heavy!r} if m in sys.modules]}}))
"""

# After a cold import, the first pause and the first restart: where the lazy imports are paid.
_FIRST_CALLS = r"""
import json, time
started = time.perf_counter()
import function_app
imported = time.perf_counter()
from benchmarks.harness import App, approve_body, pause_body
app = App()
t0 = time.perf_counter()
created = app.pause(pause_body())
t1 = time.perf_counter()
created2 = app.pause(pause_body())
t2 = time.perf_counter()
app.restart(created["token"], approve_body())
t3 = time.perf_counter()
app.restart(created2["token"], approve_body())
t4 = time.perf_counter()
print(json.dumps({"import": imported - started, "first_pause": t1 - t0, "second_pause": t2 - t1,
                  "first_restart": t3 - t2, "second_restart": t4 - t3}))
"""


def _python(code: str, environment: dict | None = None) -> tuple[dict | None, float]:
    inherited = {name: value for name, value in os.environ.items() if name not in SETTING_NAMES}
    env = {**inherited, **(environment or {}), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"probe failed: {done.stderr[-2000:]}")
    lines = done.stdout.strip().splitlines()
    return (json.loads(lines[-1]) if lines else None), wall


def probe(modules: str, environment: dict, runs: int) -> dict:
    """Best-of-`runs` import time of `modules`, the best process wall time, and what was loaded."""
    code = _PROBE.format(modules=modules, heavy=HEAVY)
    best, best_wall, last = None, None, None
    for _ in range(runs):
        result, wall = _python(code, environment)
        best = result["seconds"] if best is None else min(best, result["seconds"])
        best_wall = wall if best_wall is None else min(best_wall, wall)
        last = result
    return {"seconds": best, "process_seconds": best_wall, "loaded": last["loaded"], "network": last["network"]}


def run(environment: dict, runs: int) -> dict:
    """Probe the app and the bare libraries alternately (so drift hits both), then the first calls."""
    _python("import function_app", environment)  # compile the .pyc files once, outside the timing
    app = probe("function_app", environment, 1)
    bare = probe(BARE, environment, 1)
    for _ in range(runs - 1):
        again = probe("function_app", environment, 1)
        app["seconds"] = min(app["seconds"], again["seconds"])
        app["process_seconds"] = min(app["process_seconds"], again["process_seconds"])
        again = probe(BARE, environment, 1)
        bare["seconds"] = min(bare["seconds"], again["seconds"])
        bare["process_seconds"] = min(bare["process_seconds"], again["process_seconds"])
    first, _ = _python(_FIRST_CALLS, environment)
    return {"app": app, "bare": bare, "first_calls": first}
