"""Pick free loopback ports and wait for servers to listen on them."""

import random
import socket
import time
from pathlib import Path

LOWEST = 11000  # above the fixed ports `make run` and UseDevelopmentStorage use (1025, 7071-7073, 10000-10002)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on `host` that nothing listens on right now, from below the kernel's ephemeral range when
    there is room: outgoing connections take their local ports from that range, and one took a port picked there
    before the server it was picked for bound it (Azurite: EADDRINUSE, a test session's worker lost)."""
    first = _ephemeral_start()
    for _ in range(50 if first > LOWEST + 1000 else 0):
        port = random.randint(LOWEST, first - 1)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0  # not Linux, or not readable: let the kernel pick


def wait_for_port(host: str, port: int, timeout: float = 30.0, process=None) -> None:
    """Block until something accepts connections on host:port, or raise TimeoutError.

    When `process` (a Popen) is given, fail early if it exits before listening.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout} s")
