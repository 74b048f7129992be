"""The local ADF stand-in in a process of its own: `python -m benchmarks.standin`.

In the benchmark process its request threads would share one interpreter lock with the code
being timed; in Azure, ARM is another machine. Prints one JSON line with the URL, then
serves until a line (or EOF) arrives on stdin.
"""

import json
import sys

from local_dev.adf_standin import AdfStandin

from .child import ChildProcess


class StandinProcess(ChildProcess):
    """Start the stand-in in a subprocess; `.url` is where it listens."""

    def __init__(self, cwd, env: dict):
        super().__init__("benchmarks.standin", cwd=cwd, env=env, what="ADF stand-in")
        self.url = self.ready["url"]


def main() -> None:
    with AdfStandin() as standin:
        print(json.dumps({"url": standin.url}), flush=True)
        sys.stdin.readline()


if __name__ == "__main__":
    main()
