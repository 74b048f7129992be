"""The local ADF stand-in in a process of its own: `python -m benchmarks.standin`.

In the benchmark process its request threads would share one interpreter lock with the code
being timed; in Azure, ARM is another machine. Prints one JSON line with the URL, then
serves until a line (or EOF) arrives on stdin.
"""

import json
import subprocess
import sys

from local_dev.adf_standin import AdfStandin


class StandinProcess:
    """Start the stand-in in a subprocess; `.url` is where it listens."""

    def __init__(self, cwd, env: dict):
        self._process = subprocess.Popen([sys.executable, "-m", "benchmarks.standin"], cwd=cwd, env=env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self._process.stdout.readline()
        if not line:
            self._process.wait(timeout=10)
            raise RuntimeError(f"the ADF stand-in exited with {self._process.returncode} before serving")
        self.url = json.loads(line)["url"]

    def stop(self) -> None:
        try:
            self._process.stdin.close()
            self._process.wait(timeout=15)
        finally:
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> "StandinProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def main() -> None:
    with AdfStandin() as standin:
        print(json.dumps({"url": standin.url}), flush=True)
        sys.stdin.readline()


if __name__ == "__main__":
    main()
