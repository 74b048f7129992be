"""Serve the app through the local Functions host in its own process, counting the clients it builds.

    python -m benchmarks.host      (app settings in the environment)

Prints one JSON line with the URL once it listens; on a line on stdin (or EOF) it stops and
prints one JSON line with what it counted: SDK clients constructed (Table service, Table,
Data Factory, Azure credentials) and outgoing TCP connections by port.
"""

import json
import socket
import sys
import threading
from collections import Counter

from .harness import REPO_ROOT


class Census:
    """Counts constructions of the SDK clients and outgoing connections, from any thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self.counts = Counter()

    def add(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def count_constructions(self, cls, key: str) -> None:
        original = cls.__init__

        def counting_init(instance, *args, **kwargs):
            if type(instance) is cls:
                self.add(key)
            original(instance, *args, **kwargs)

        cls.__init__ = counting_init

    def count_connections(self) -> None:
        original = socket.socket.connect

        def counting_connect(sock, address):
            self.add(f"connect:{address[1]}" if isinstance(address, tuple) else "connect:other")
            return original(sock, address)

        socket.socket.connect = counting_connect


def install(census: Census) -> None:
    """Count what the app builds: patched on the classes before the app imports them."""
    from azure.data.tables import TableClient, TableServiceClient
    from azure.mgmt.datafactory import DataFactoryManagementClient

    census.count_constructions(TableServiceClient, "TableServiceClient")
    census.count_constructions(TableClient, "TableClient")
    census.count_constructions(DataFactoryManagementClient, "DataFactoryManagementClient")
    census.count_connections()


def main() -> None:
    import logging

    from local_dev.functions_host import build_wsgi_app, serve

    census = Census()
    install(census)
    import function_app

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("local_dev.functions_host").setLevel(logging.WARNING)
    server = serve(build_wsgi_app(function_app.app, REPO_ROOT / "host.json"), "127.0.0.1", 0)
    print(json.dumps({"url": server.url}), flush=True)
    sys.stdin.readline()
    server.stop()
    print(json.dumps(dict(census.counts)), flush=True)


if __name__ == "__main__":
    main()
