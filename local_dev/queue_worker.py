"""More local host processes that run only the app's queue triggers, so several share each queue.

`make run WORKERS=2` starts one beside the main process (which serves HTTP, the timers and the queue triggers),
as a Function App scaled out to two instances has two hosts polling the same queues. Each worker inherits the
main process's environment (local.settings.json already loaded) and stops with it.

    python -m local_dev.queue_worker [--app function_app:app] [--host-json host.json] [--lease 600] [--name NAME]
"""

import argparse
import importlib
import logging
import os
import signal
import subprocess
import sys
import threading

from local_dev.azurite import REPO_ROOT
from local_dev.queue_rules import LEASE_SECONDS, read_queues_options
from local_dev.queues import QueueRunner, queue_functions
from local_dev.service import Service, stop_with_parent

SHUTDOWN_TIMEOUT_S = 15.0

logger = logging.getLogger(__name__)


def parse_args(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run only the app's queue triggers (one more local host).")
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument("--host-json", default=str(REPO_ROOT / "host.json"), help="host.json with extensions.queues")
    parser.add_argument("--lease", type=int, default=LEASE_SECONDS,
                        help="seconds a message stays hidden from other workers while its function runs (renewed)")
    parser.add_argument("--name", default=f"worker {os.getpid()}", help="how this process's log lines start")
    return parser.parse_args(argv)


def load_app(spec: str):
    """The FunctionApp named by `module:attribute`."""
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute or "app")


def main(argv=None) -> int:
    options = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"[%(asctime)s] {options.name} %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    functions = queue_functions(load_app(options.app))
    settings = read_queues_options(options.host_json, lease_seconds=options.lease)
    with QueueRunner(functions, settings):
        logger.info("running the queue triggers: %s", ", ".join(f"{f.name} ({f.queue_name})" for f in functions))
        stop.wait()
        logger.info("stopping")
    return 0


class QueueWorkers(Service):
    """`count` queue-only local host processes (`python -m local_dev.queue_worker`), stopped with the block:
    SIGTERM lets each finish the functions it runs and settle their messages, then SIGKILL."""

    def __init__(self, count: int, args=()):
        self.count, self.args = count, list(args)
        self.processes: list[subprocess.Popen] = []

    def start(self) -> "QueueWorkers":
        for number in range(2, self.count + 2):
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "local_dev.queue_worker", "--name", f"worker {number}", *self.args],
                cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                # Its own process group: Ctrl-C in the terminal reaches the main process, which stops this one.
                start_new_session=True, preexec_fn=stop_with_parent))
        return self

    def stop(self) -> None:
        processes, self.processes = self.processes, []
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=SHUTDOWN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == "__main__":
    sys.exit(main())
