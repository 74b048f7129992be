"""The local ADF stand-in in a process of its own: `python -m benchmarks.standin`.

In the benchmark process its request threads would share one interpreter lock with the code
being timed; in Azure, ARM is another machine. Prints one JSON line with the URL, then
serves until a line (or EOF) arrives on stdin. It throttles as ARM does, with ARM's buckets
and refill rates times `--throttle-scale`.
"""

import argparse
import json
import sys

from local_dev.adf_standin import AdfStandin
from local_dev.arm_throttle import Throttle

from .child import ChildProcess


class StandinProcess(ChildProcess):
    """Start the stand-in in a subprocess; `.url` is where it listens."""

    def __init__(self, cwd, env: dict, create_run_ms: float = 0, throttle_scale: float = 1):
        super().__init__("benchmarks.standin", ("--create-run-ms", create_run_ms, "--throttle-scale", throttle_scale),
                         cwd=cwd, env=env, what="ADF stand-in")
        self.url = self.ready["url"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--create-run-ms", type=float, default=0, help="time ADF takes to answer createRun")
    parser.add_argument("--throttle-scale", type=float, default=1, help="ARM's throttling limits times this")
    options = parser.parse_args(argv)
    with AdfStandin(latency={"createRun": options.create_run_ms / 1000},
                    throttle=Throttle().scaled(options.throttle_scale)) as standin:
        print(json.dumps({"url": standin.url}), flush=True)
        sys.stdin.readline()


if __name__ == "__main__":
    main()
