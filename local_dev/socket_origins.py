"""For the tests: say where a socket that was never closed was made.

A socket the garbage collector finds open raises a ResourceWarning (an error under the tests'
`filterwarnings = error`) in whichever test happens to be running then, often far from the code
that leaked it, and only now and then (when it sits in a reference cycle). `install()` remembers a
short stack for every socket made from then on, and when one is finalized unclosed writes that stack
to stderr, which pytest shows with the failing test: the leak names its origin.
"""

import socket
import sys
import threading
import traceback

_origins: dict = {}
_installed = False


def install() -> None:
    """Call once pytest has set its own unraisable hook (this one hands on to it)."""
    global _installed
    if _installed:
        return
    _installed = True
    made, closed = socket.socket.__init__, socket.socket.close

    def init(self, *args, **kwargs):
        made(self, *args, **kwargs)
        _origins[id(self)] = (threading.current_thread().name, traceback.extract_stack(limit=30)[:-1])

    def close(self):
        _origins.pop(id(self), None)
        closed(self)

    socket.socket.__init__, socket.socket.close = init, close
    previous = sys.unraisablehook

    def hook(unraisable):
        found = isinstance(unraisable.object, socket.socket) and _origins.pop(id(unraisable.object), None)
        if found:
            thread, stack = found
            sys.stderr.write(f"unclosed {unraisable.object!r} was made in thread {thread} at:\n"
                             + "".join(traceback.format_list(stack)))
        previous(unraisable)

    sys.unraisablehook = hook
