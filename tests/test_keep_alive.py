"""local_dev.keep_alive: stand-ins keep HTTP/1.1 connections open as Azure's endpoints do, and still frame every
request and answer right (a body the app did not read, a chunked body, an app that fails, a client that says close)."""

import http.client
import socket

import pytest
from werkzeug.wrappers import Request, Response

from local_dev.keep_alive import MAX_BODY, close_kept
from tests.support import keep_alive_server


@Request.application
def _app(request):
    if request.path == "/fail":
        raise RuntimeError("the app failed")
    if request.path == "/echo":
        return Response(request.get_data(), content_type="application/octet-stream")
    return Response(f"{request.method} {request.path}")  # (the body, if any, left unread)


@pytest.fixture()
def server():
    with keep_alive_server(_app) as (served, _):
        yield served


def _connection(server) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=5)


def _ask(connection, method, path, body=None, headers=None):
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response.status, response.getheader("Connection"), response.read()


def test_one_connection_carries_many_requests_even_when_a_body_is_left_unread(server):
    connection = _connection(server)
    try:
        assert _ask(connection, "POST", "/ignored", body=b"x" * 5000) == (200, None, b"POST /ignored")
        assert _ask(connection, "POST", "/echo", body=b"abc") == (200, None, b"abc")
        assert _ask(connection, "GET", "/next") == (200, None, b"GET /next")
        first = connection.sock
        assert _ask(connection, "GET", "/again") == (200, None, b"GET /again") and connection.sock is first
        (kept,) = server.kept_connections
        # Nagle's algorithm off: the body's write would otherwise wait for the client's delayed ACK of the headers'.
        assert kept.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        connection.close()


@pytest.mark.parametrize("path, headers, body, status", [
    ("/a", {"Connection": "close"}, None, 200),  # the client's own wish
    ("/echo", {"Transfer-Encoding": "chunked"}, b"3\r\nabc\r\n0\r\n\r\n", 200),  # no length: served as werkzeug does
    ("/fail", {}, None, 500),
    ("/a", {"Content-Length": str(MAX_BODY + 1)}, None, 413),
])
def test_a_connection_whose_next_request_could_be_misread_is_closed(server, path, headers, body, status):
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=5) as raw:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        raw.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + (body or b""))
        answer = b""
        while chunk := raw.recv(65536):  # until the server closes the connection
            answer += chunk
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:80]
    assert b"connection: close" in answer.lower()
    if path == "/echo":
        assert answer.endswith(b"\r\n\r\nabc")


def test_a_stopped_server_closes_the_connections_clients_keep_idle(server):
    connection = _connection(server)
    try:
        assert _ask(connection, "GET", "/a")[0] == 200
        close_kept(server)
        assert connection.sock.recv(1) == b""  # the server's side is shut: the client sees the end
    finally:
        connection.close()


def test_a_body_cut_short_is_no_request(server):
    """A client that sends less than it declared and stops: nothing reaches the app (a truncated JSON body must not be
    taken for a whole one), and the connection is closed."""
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=5) as raw:
        raw.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b'{"a":1}')
        raw.shutdown(socket.SHUT_WR)
        assert raw.recv(65536) == b""


def test_a_client_sending_all_of_a_body_too_large_still_reads_the_413():
    """The server stops writing and drops what still comes: closing with the body unread would reset the
    connection, and a client still sending it would see the reset (a broken pipe) instead of the answer."""
    # (lingering until the client closes, however slow this machine is: it ends as soon as the client does)
    with keep_alive_server(_app, linger_seconds=30) as (server, _), \
            socket.create_connection(("127.0.0.1", server.server_port), timeout=30) as raw:
        raw.sendall(f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n".encode())
        raw.sendall(b"x" * (MAX_BODY + 1))
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ") and b"connection: close" in answer.lower()


def test_an_http_1_0_client_asking_to_keep_the_connection_is_told_it_is_kept(server):
    """HTTP/1.0 connections close unless the answer says keep-alive: without it the client reads until the end."""
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=5) as raw:
        for _ in range(2):
            raw.sendall(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += raw.recv(1)
            assert head.startswith(b"HTTP/1.1 200 ") and b"connection: keep-alive" in head.lower()
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            body = b""
            while len(body) < length:
                body += raw.recv(length - len(body))
            assert body == b"GET /a"
