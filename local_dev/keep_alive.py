"""A werkzeug request handler that keeps HTTP/1.1 connections open, as Azure's endpoints do.

werkzeug's development server closes every connection after one answer (`Connection: close`), since
`http.server` cannot tell where an unread request body ends. A stand-in doing that makes every client open
a new connection per call: a cost (and a path through the client's pool) that the service it stands in
for does not have. This handler reads the whole body first (by its Content-Length), hands it to the app
from memory, and answers with a Content-Length, so the next request on the connection starts where this
one ended. A request it cannot frame that way (a chunked body) is served as werkzeug serves it, and the
connection closed.
"""

import contextlib
import io
import socket
import sys
import threading
import time

from werkzeug.serving import WSGIRequestHandler

MAX_BODY = 16 * 1024 * 1024  # a larger request is answered 413 and its connection closed
LINGER_SECONDS = 2.0  # how long what a client still sends of a refused body is read and dropped
_LOCK = threading.Lock()


def close_kept(server) -> None:
    """Shut the connections a stopped server still has open (clients keep idle ones in their pools), so that
    their handler threads end and close them."""
    with _LOCK:
        kept = list(server.__dict__.get("kept_connections", ()))
    for connection in kept:
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)


class KeepAliveHandler(WSGIRequestHandler):
    """Serves each request on a connection the client may use again (unless it said otherwise)."""

    protocol_version = "HTTP/1.1"
    max_body = MAX_BODY  # a server standing in for a service with another limit sets its own
    linger_seconds = LINGER_SECONDS
    # The headers and the body go in two writes: with Nagle's algorithm the second waits for the client's
    # delayed ACK of the first on a connection that stays open (0.2 s an answer here), as no real server does.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        with _LOCK:
            self.server.__dict__.setdefault("kept_connections", set()).add(self.connection)

    def finish(self) -> None:
        with _LOCK:
            self.server.__dict__.get("kept_connections", set()).discard(self.connection)
        super().finish()

    def run_wsgi(self) -> None:
        length = self.headers.get("Content-Length")
        framed = length is None or (length.isascii() and length.isdigit())
        if self.headers.get("Transfer-Encoding") or not framed:
            return super().run_wsgi()  # (closes the connection: its end cannot be told)
        if length is not None and int(length) > self.max_body:
            self.close_connection = True
            self._answer("413 Content Too Large", [], [b""])
            return self._linger()
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = self.rfile.read(int(length)) if length else b""
        if len(body) < int(length or 0):  # the client went away mid-body: no request to answer (as werkzeug: none)
            self.close_connection = True
            return None
        environ = self.environ = self.make_environ()
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        environ["wsgi.input_terminated"] = True
        answered = {}

        def start_response(status, headers, exc_info=None):
            if exc_info and answered:
                raise exc_info[1].with_traceback(exc_info[2])
            answered.update(status=status, headers=headers)
            return lambda data: answered.setdefault("written", []).append(data)

        try:
            chunks = self.server.app(environ, start_response)
            try:
                data = answered.get("written", []) + list(chunks)
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()
        except OSError as error:  # the app dropped the connection itself
            self.close_connection = True
            return self.connection_dropped(error, environ)
        except Exception:  # as werkzeug does: a 500, and the error logged
            self.close_connection = True
            self.log_error("Error on request: %r", sys.exc_info()[1])
            return self._answer("500 Internal Server Error", [("Content-Type", "text/plain")],
                                [b"Internal Server Error"])
        self._answer(answered["status"], answered["headers"], data)

    def _linger(self) -> None:
        """After refusing a body it will not read: stop writing, then read and drop what the client still sends
        (until it closes, or for linger_seconds). Closing a socket with unread data resets the connection, and a
        reset can reach the client before it has read the answer."""
        deadline = time.monotonic() + self.linger_seconds
        with contextlib.suppress(OSError):  # (a timeout included)
            self.connection.shutdown(socket.SHUT_WR)
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(65536):
                    break

    def _answer(self, status: str, headers: list, data: list) -> None:
        code, _, reason = status.partition(" ")
        body = b"".join(data)
        try:
            self.send_response(int(code), reason)
            names = set()
            for name, value in headers:
                if name.lower() == "connection":
                    continue  # this handler says whether the connection stays open
                names.add(name.lower())
                self.send_header(name, value)
            if "content-length" not in names and int(code) not in (204, 304) and not 100 <= int(code) < 200:
                self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            elif self.request_version == "HTTP/1.0":  # (kept only when it asked): say so, or it reads to the end
                self.send_header("Connection", "keep-alive")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()
        except OSError as error:  # the client went away (or the app shut the connection: a dropped answer)
            self.close_connection = True
            self.connection_dropped(error, getattr(self, "environ", None))


class QuietKeepAliveHandler(KeepAliveHandler):
    """The same, without werkzeug's access log (stand-ins in tests, the local host: the app logs its requests)."""

    def log_request(self, code="-", size="-") -> None:
        pass
