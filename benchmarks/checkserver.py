"""The local check endpoint in a process of its own: `python -m benchmarks.checkserver`.

Like the ADF stand-in, it answers from another process, so its threads do not share the
timer's interpreter lock. Prints one JSON line with the check's URL; a line on stdin makes it
answer with one JSON line, how many calls it served, and stop.
"""

import argparse
import json
import sys

from local_dev.check_endpoint import CheckEndpoint

from .child import ChildProcess

NAME = "quality"


class CheckServerProcess(ChildProcess):
    """Start the endpoint in a subprocess; `.url` is a check that answers {"status": "OK"} after `delay_ms`."""

    def __init__(self, cwd, env: dict, delay_ms: float = 0):
        super().__init__("benchmarks.checkserver", ("--delay-ms", delay_ms), cwd=cwd, env=env, what="check endpoint")
        self.url = self.ready["url"]

    def calls(self) -> int:
        """Stop it; return how many calls it served."""
        return self.stop("calls").get("calls", -1)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delay-ms", type=float, default=0, help="time the check takes to answer")
    options = parser.parse_args(argv)
    with CheckEndpoint(delay=options.delay_ms / 1000) as endpoint:
        endpoint.set(NAME, json={"status": "OK"})
        print(json.dumps({"url": endpoint.url(NAME)}), flush=True)
        if sys.stdin.readline():
            print(json.dumps({"calls": endpoint.seen(NAME).calls}), flush=True)


if __name__ == "__main__":
    main()
