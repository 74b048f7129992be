"""The one start/stop shape of every local tool (Azurite, the stand-ins, servers, the timers).

    with Tool() as tool:   # started; stopped when the block ends, also when it raises

A tool that serves sockets from a thread (a werkzeug or socketserver server) hands its server to
`serve_in_thread`, and `stop` shuts it down, closes its listening socket, waits for the thread and shuts
the connections its clients keep open (`local_dev.keep_alive`).

A tool whose start fails half-way is stopped too, so a test that cannot start a server leaves no
process or socket behind. Each tool's `stop` must therefore cope with a start that did not finish.
"""

import ctypes
import signal
import sys
import threading

from local_dev.keep_alive import close_kept


def stop_with_parent() -> None:
    """In a child process (Popen's preexec_fn): get SIGINT (a clean shutdown; Azurite saves its data) if the parent
    dies without stopping it. A test run or `make run` killed from outside would otherwise leave it running. Linux only.
    """
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)


class Service:
    def start(self) -> "Service":
        """Start; return self once ready."""
        return self

    def stop(self) -> None:
        """Stop, whatever state a start left behind."""

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


class ServedInThread(Service):
    """A Service whose server (socketserver-like: serve_forever, shutdown, server_close) runs in a
    daemon thread; `stop` is safe before any start and when called twice."""

    _server = None
    _thread = None

    # serve_forever notices a shutdown only between polls: a test stopping its servers waited up to half a
    # second per server at socketserver's default. A poll costs one select() call.
    def serve_in_thread(self, server, name: str | None = None, poll_interval: float = 0.05) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll_interval},
                                        name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self._thread.join()
            close_kept(server)
