"""LOCAL, TESTS ONLY: TCP servers that fail an HTTP client the way broken or hostile peers do.

Each connection is handled by `behaviour`, and what the client sent is kept (`received`, one
bytes object per connection), so tests can tell whether a request arrived:

    tls_alert            answer the TLS ClientHello with a fatal handshake_failure alert
    tls_garbage          answer the TLS ClientHello with bytes that are not TLS (an HTTP answer)
    tls_silent           read the TLS ClientHello and never answer it (a handshake that times out)
    reset_after_request  read the whole HTTP request, then reset the connection (RST)
    tls_garbage_after_request  (needs `tls`) complete the handshake, read the request, then write
                         bytes that are not TLS on the connection: a TLS error after the request left
    short_after_request  read the whole HTTP request, then answer 200 with a body shorter than its
                         Content-Length and close the connection
    drip_after_request   read the whole HTTP request, then answer a status line and a header one byte
                         every 50 ms (each read gets something; the answer never ends) for up to 10 s

    with BadPeer("tls_alert") as peer:
        url = f"https://127.0.0.1:{peer.port}/cb"
"""

import os
import socket
import ssl
import struct
import threading

from local_dev.service import Service

# A TLS record: alert (21), TLS 1.2, 2 bytes: fatal (2), handshake_failure (40).
HANDSHAKE_FAILURE_ALERT = b"\x15\x03\x03\x00\x02\x02\x28"
BEHAVIOURS = ("tls_alert", "tls_garbage", "tls_silent", "reset_after_request", "tls_garbage_after_request",
              "drip_after_request", "short_after_request")
DRIP_SECONDS, DRIP_EVERY = 10.0, 0.05


class BadPeer(Service):
    def __init__(self, behaviour: str, tls: ssl.SSLContext | None = None):
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour must be one of {BEHAVIOURS}")
        if behaviour == "tls_garbage_after_request" and tls is None:
            raise ValueError("tls_garbage_after_request needs a server TLS context")
        self.behaviour, self._tls = behaviour, tls
        self.received: list[bytes] = []
        self._lock = threading.Lock()
        self._listener = self._thread = None
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def start(self) -> "BadPeer":
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            self._stopping.set()
            self._thread.join()
            self._listener.close()
            self._listener = None


    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    received = getattr(self, f"_{self.behaviour}")(conn)
                except OSError:
                    received = b""
            with self._lock:
                self.received.append(received)

    @staticmethod
    def _first_record(conn) -> bytes:
        """The client's first TLS record (its ClientHello)."""
        head = _read_exactly(conn, 5)
        return head + _read_exactly(conn, struct.unpack("!H", head[3:5])[0])

    def _tls_alert(self, conn) -> bytes:
        hello = self._first_record(conn)
        conn.sendall(HANDSHAKE_FAILURE_ALERT)
        return hello

    def _tls_garbage(self, conn) -> bytes:
        hello = self._first_record(conn)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        return hello

    def _tls_silent(self, conn) -> bytes:
        hello = self._first_record(conn)
        try:
            while conn.recv(65536):  # until the client gives up and closes
                pass
        except OSError:
            pass
        return hello

    def _reset_after_request(self, conn) -> bytes:
        request = _read_request(conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
        return request

    def _short_after_request(self, conn) -> bytes:
        request = _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nok")
        return request

    def _drip_after_request(self, conn) -> bytes:
        request = _read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
        for _ in range(int(DRIP_SECONDS / DRIP_EVERY)):  # until the client hangs up (a send then fails)
            if self._stopping.wait(DRIP_EVERY):
                break
            conn.sendall(b"x")
        return request

    def _tls_garbage_after_request(self, conn) -> bytes:
        with self._tls.wrap_socket(conn, server_side=True) as secure:
            request = _read_request(secure)
            os.write(secure.fileno(), b"\x00" * 64)  # past TLS, straight onto the TCP connection
        return request


def _read_exactly(conn, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the client closed the connection")
        data += chunk
    return data


def _read_request(conn) -> bytes:
    """An HTTP request's head and its Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if len(body) < length:
        body += _read_exactly(conn, length - len(body))
    return head + b"\r\n\r\n" + body
