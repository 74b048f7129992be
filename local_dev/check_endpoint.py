"""LOCAL, TESTS AND BENCHMARKS ONLY: an HTTP endpoint that automated checks can poll.

Each path answers what it was told to (`set`): a status, a JSON body or raw bytes, after a delay,
or a redirect; every request is counted and its headers kept, so tests can see what the app sent.
Connections stay open between requests, as a real endpoint's do, so the app's pooled connections are
used again (only an answer dripped a byte at a time is streamed, and its connection closed).

    with CheckEndpoint() as endpoint:
        endpoint.set("dq", json={"status": "RUNNING"})
        url = endpoint.url("dq")              # http://127.0.0.1:<port>/checks/dq
"""

import json
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from local_dev.keep_alive import QuietKeepAliveHandler
from local_dev.service import ServedInThread


@dataclass
class Answer:
    status: int = 200
    json: object = None
    body: bytes | None = None
    delay: float = 0.0
    location: str | None = None
    drip: float = 0.0  # send the body a byte at a time, this many seconds apart
    gate: threading.Event | None = None  # answer only once the test sets it (at most 30 s)


@dataclass
class Seen:
    calls: int = 0
    headers: list = field(default_factory=list)
    bodies: list = field(default_factory=list)
    dripped: list = field(default_factory=list)  # per dripped answer: bytes sent, and whether all went


class _Handler(QuietKeepAliveHandler):
    """Whole answers on a connection kept open; a dripped one as werkzeug streams it (it closes the connection),
    since a kept connection's answer goes whole."""

    def setup(self) -> None:
        super().setup()
        self.server.endpoint.connected()

    def run_wsgi(self) -> None:
        if self.server.endpoint.drips(unquote(urlsplit(self.path).path)):  # the path as the app reads it
            return WSGIRequestHandler.run_wsgi(self)
        return super().run_wsgi()


class CheckEndpoint(ServedInThread):
    def __init__(self, delay: float = 0.0):
        self.default_delay = delay
        self._answers: dict[str, Answer] = {}
        self._seen: dict[str, Seen] = {}
        self._lock = threading.Lock()
        self._server = self._thread = None
        self.connections = 0  # accepted, over the endpoint's life

    def connected(self) -> None:
        with self._lock:
            self.connections += 1

    def set(self, name: str, status: int = 200, json=None, body: bytes | None = None, delay: float | None = None,
            location: str | None = None, drip: float = 0.0, gate: threading.Event | None = None) -> None:
        with self._lock:
            self._answers[name] = Answer(status, json, body, self.default_delay if delay is None else delay, location,
                                         drip, gate)

    def seen(self, name: str) -> Seen:
        with self._lock:
            return self._seen.setdefault(name, Seen())

    def drips(self, path: str) -> bool:
        with self._lock:
            answer = self._answers.get(path.removeprefix("/checks/"))
        return answer is not None and bool(answer.drip)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/checks/{name}"

    @Request.application
    def _app(self, request):
        name = request.path.removeprefix("/checks/")
        with self._lock:
            answer = self._answers.get(name, Answer(404, {"error": "no such check"}))
            seen = self._seen.setdefault(name, Seen())
            seen.calls += 1
            seen.headers.append(dict(request.headers))
            seen.bodies.append(request.get_data(as_text=True))
        if answer.gate is not None:
            answer.gate.wait(30)
        if answer.delay:
            time.sleep(answer.delay)
        headers = {"Location": answer.location} if answer.location else None
        if answer.drip:
            body = answer.body if answer.body is not None else json.dumps(answer.json).encode()
            record = {"sent": 0, "complete": False}
            with self._lock:
                seen.dripped.append(record)

            def slowly():
                for byte in body:
                    yield bytes([byte])
                    record["sent"] += 1
                    time.sleep(answer.drip)
                record["complete"] = True

            return Response(slowly(), status=answer.status, content_type="application/json", direct_passthrough=True,
                            headers={"Content-Length": str(len(body))})
        if answer.body is not None:
            return Response(answer.body, status=answer.status, headers=headers, content_type="application/json")
        return Response(json.dumps(answer.json) if answer.json is not None else "", status=answer.status,
                        headers=headers, content_type="application/json")

    def start(self) -> "CheckEndpoint":
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_Handler)
        self._server.endpoint = self
        self.serve_in_thread(self._server)
        return self


