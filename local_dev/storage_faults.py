"""LOCAL, TESTS ONLY: an HTTP proxy in front of Azurite's Table service that fails the way storage fails.

Requests are forwarded unchanged (the SharedKey signature covers the path, not the host), so
the real azure-data-tables SDK talks through it. Faults are injected for requests matching a
method and a path pattern (a regular expression, e.g. a table's name), for `count` requests
or at random:

    before   answer 503 ServerBusy without forwarding: nothing was written
    after    forward, then answer 500 OperationTimedOut: the write happened, the answer says not
    drop     forward, then close the connection unanswered: the write happened, no answer at all
    pass     forward and answer as Azurite did: no fault (to let the first `count` matches through
             before a fault injected after it applies)

    with StorageFaultProxy(azurite.port) as proxy:
        proxy.connection_string(azurite)          # what the app should use
        proxy.inject("after", methods={"PATCH", "MERGE", "PUT"}, path="pauses")
"""

import http.client
import json
import random
import re
import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from local_dev.service import ServedInThread

_ERRORS = {
    "before": (503, "ServerBusy", "The server is busy."),
    "after": (500, "OperationTimedOut", "Operation could not be completed within the specified time."),
}
WRITES = frozenset({"POST", "PUT", "PATCH", "MERGE", "DELETE"})


@dataclass
class _Rule:
    kind: str
    methods: frozenset | None
    path: str | None
    count: int | None = 1  # None: until cleared (with `rate`)
    rate: float = 1.0
    rng: random.Random = field(default_factory=random.Random)

    def matches(self, method: str, path: str) -> bool:
        return (self.methods is None or method in self.methods) and (self.path is None or bool(re.search(self.path, path)))


class StorageFaultProxy(ServedInThread):
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, fault or None)
        self._server = self._thread = None

    # Faults

    def inject(self, kind: str, *, methods=None, path: str | None = None, count: int = 1) -> None:
        """Fail the next `count` requests matching `methods` and `path` as `kind`."""
        self._add(_Rule(kind, frozenset(methods) if methods else None, path, count))

    def random_faults(self, rate: float, kinds=("before", "after", "drop"), *, methods=WRITES, path=None,
                      seed: int = 0) -> None:
        """From now on fail each matching request with probability `rate`, as one of `kinds` chosen at random."""
        rng = random.Random(seed)
        for kind in kinds:
            self._add(_Rule(kind, frozenset(methods) if methods else None, path, None, rate / len(kinds), rng))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def _add(self, rule: _Rule) -> None:
        if rule.kind not in ("before", "after", "drop", "pass"):
            raise ValueError("kind must be before, after, drop or pass")
        with self._lock:
            self._rules.append(rule)

    def _fault_for(self, method: str, path: str) -> str | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path) and (rule.rate >= 1 or rule.rng.random() < rule.rate):
                    if rule.count is not None:
                        rule.count -= 1
                        if rule.count <= 0:
                            self._rules.remove(rule)
                    fault = None if rule.kind == "pass" else rule.kind
                    self.log.append((method, path, fault))
                    return fault
            self.log.append((method, path, None))
            return None

    def faults_seen(self) -> int:
        with self._lock:
            return sum(1 for *_, fault in self.log if fault)

    # Serving

    def connection_string(self, azurite) -> str:
        """Azurite's connection string, with the table endpoint through this proxy."""
        return azurite.connection_string.replace(f":{azurite.port}/", f":{self.port}/")

    @property
    def port(self) -> int:
        return self._server.server_port

    def start(self) -> "StorageFaultProxy":
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                fault = proxy._fault_for(self.command, self.path)
                if fault == "before":
                    return self._error(fault)
                upstream = http.client.HTTPConnection(*proxy.target, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    payload = response.read()
                finally:
                    upstream.close()
                if fault == "after":
                    return self._error(fault)
                if fault == "drop":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return None
                self.send_response(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return None

            def _error(self, fault):
                status, code, message = _ERRORS[fault]
                payload = json.dumps({"odata.error": {"code": code, "message": {"lang": "en-US", "value": message}}})
                self.send_response(status)
                self.send_header("Content-Type", "application/json;odata=minimalmetadata;streaming=true;charset=utf-8")
                self.send_header("x-ms-error-code", code)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload.encode())

            do_GET = do_POST = do_PUT = do_PATCH = do_MERGE = do_DELETE = do_HEAD = _forward

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # A client that hangs up (its read timeout ran out, as the tests intend) is not an error
                # of the proxy; anything else is still printed.
                if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
                    super().handle_error(request, client_address)

        self.serve_in_thread(Server(("127.0.0.1", 0), Handler), name="storage-faults")
        return self


