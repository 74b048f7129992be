"""The local ADF stand-in in a process of its own: `python -m benchmarks.standin`.

In the benchmark process its request threads would share one interpreter lock with the code
being timed; in Azure, ARM is another machine. Prints one JSON line with the URL, then
serves until a line (or EOF) arrives on stdin.
"""

import argparse
import json
import sys

from local_dev.adf_standin import AdfStandin

from .child import ChildProcess


class StandinProcess(ChildProcess):
    """Start the stand-in in a subprocess; `.url` is where it listens."""

    def __init__(self, cwd, env: dict, create_run_ms: float = 0):
        super().__init__("benchmarks.standin", ("--create-run-ms", create_run_ms), cwd=cwd, env=env,
                         what="ADF stand-in")
        self.url = self.ready["url"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--create-run-ms", type=float, default=0, help="time ADF takes to answer createRun")
    options = parser.parse_args(argv)
    with AdfStandin(latency={"createRun": options.create_run_ms / 1000}) as standin:
        print(json.dumps({"url": standin.url}), flush=True)
        sys.stdin.readline()


if __name__ == "__main__":
    main()
