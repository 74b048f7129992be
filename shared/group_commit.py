"""Group commit: writes from threads settling items at the same time, sent together in one request.

The queue function settles many messages at once on one instance (a batch of 16, and more as they
finish). Each settled pause ends with a status-index transaction and the delete of its due row: one
request each, the same small rows every time. Here the first thread to find no request in flight
sends its own write; whoever adds while that request is out waits, and the next request carries
every write gathered meanwhile (up to the batch limit). Under load a request carries many; alone, a
write goes at once, as it did on its own. Every caller returns only once the request carrying its
write has been answered (and raises what that request raised), so nothing is left unsent when the
function completes its message, and nothing waits on a timer.
"""

import threading
from typing import Callable


class GroupCommit:
    """`add(items)` sends `items` with whatever other threads add meanwhile: `send(all_items)` is called
    with at most `limit` items (one caller's items are never split), one request at a time."""

    def __init__(self, send: Callable[[list], None], limit: int):
        self._send = send
        self._limit = limit
        self._lock = threading.Lock()
        self._waiting: list[_Write] = []
        self._sending = False

    def add(self, items: list) -> None:
        if not items:
            return
        if len(items) > self._limit:
            raise ValueError(f"at most {self._limit} items go in one request")
        write = _Write(items)
        with self._lock:
            self._waiting.append(write)
            write.leads, self._sending = not self._sending, True
        if not write.leads:
            write.woken.wait()  # its request was answered, or it is to send the next one
        if write.leads:
            self._send_next()
        if write.error is not None:
            raise write.error

    def _send_next(self) -> None:
        """Send the writes waiting (the leader's first: it heads the line), then hand the lead to the first
        write still waiting, so no caller sends for others for longer than its own request."""
        with self._lock:
            batch, size = [], 0
            while self._waiting and size + len(self._waiting[0].items) <= self._limit:
                batch.append(self._waiting.pop(0))
                size += len(batch[-1].items)
        error = None
        try:
            self._send([item for write in batch for item in write.items])
        except Exception as exc:  # each caller whose write it carried raises it
            error = exc
        with self._lock:  # what gathered meanwhile goes next, sent by the first write waiting
            after = self._waiting[0] if self._waiting else None
            self._sending = after is not None
        if after is not None:
            after.leads = True
            after.woken.set()
        for write in batch:
            write.leads, write.error = False, error
            write.woken.set()


class _Write:
    __slots__ = ("items", "woken", "leads", "error")

    def __init__(self, items: list):
        self.items = items
        self.woken = threading.Event()
        self.leads = False
        self.error: Exception | None = None
