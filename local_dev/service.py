"""The one start/stop shape of every local tool (Azurite, the stand-ins, servers, the timers).

    with Tool() as tool:   # started; stopped when the block ends, also when it raises

A tool whose start fails half-way is stopped too, so a test that cannot start a server leaves no
process or socket behind. Each tool's `stop` must therefore cope with a start that did not finish.
"""


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
