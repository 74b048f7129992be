"""A benchmark helper in a process of its own: it prints one JSON line when ready, then runs
until its stdin sends a line or closes. Keeps servers off the benchmark's interpreter lock."""

import json
import subprocess
import sys


class ChildProcess:
    """Start `python -m module *args`; `.ready` is the JSON line it printed when ready."""

    def __init__(self, module: str, args=(), *, cwd, env: dict, what: str):
        self._process = subprocess.Popen([sys.executable, "-m", module, *map(str, args)], cwd=cwd, env=env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self._process.stdout.readline()
        if not line:
            self._process.wait(timeout=10)
            raise RuntimeError(f"the {what} exited with {self._process.returncode} before it was ready")
        self.ready = json.loads(line)

    @property
    def pid(self) -> int:
        return self._process.pid

    def stop(self, message: str | None = None, timeout: float = 15) -> dict:
        """Ask the child to stop (`message` first, else EOF); return the JSON line it answers, if any."""
        try:
            if message is None:
                self._process.stdin.close()
                answer = {}
            else:
                self._process.stdin.write(message + "\n")
                self._process.stdin.flush()
                answer = json.loads(self._process.stdout.readline() or "{}")
            self._process.wait(timeout=timeout)
            return answer
        finally:
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
