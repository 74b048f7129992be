"""Due work at scale: the timer puts what is due on a queue, and a queue-triggered function settles it on as
many instances as the Functions host scales that function to.

The timer (`enqueue_due`) reads only the due index, as `shared.sweep` does: each due row is leased (a
pause's row moved to the lease's end, a work row marked `queued_until`; in batch transactions) and gets
one message, sent several at a time; a leased row is not sent again while its lease lasts, so a backlog
does not fill the queue with copies, and the timer's next runs do not even read the moved rows. The queue
function (`settle`) settles one message through the same `shared.sweep.settle_due` as the timer:

- a message whose row is gone (settled, or moved by another decision) is dropped: the work is not due. A pause's
  own row is read only when the settle needs it (`_MessageRows`): a pause past its expiry is decided whichever
  message comes, by its conditional claim, so one read per item, the pause's. A message that is not its row's one
  may thus make that decision (once, as any would); anything else it would do it does not, its row being gone;
- ARM throttling (or the pacer expecting it) re-sends the message to become visible at Retry-After and
  completes this one: backpressure costs time, never a dequeue, and holds back nothing else. It goes on
  the paced queue (`<DUE_WORK_QUEUE>-paced`, settled by the same function under a second trigger): a
  fan-out's backlog on the main queue would otherwise hold it past its slot, and ARM's capacity with it;
- table storage not answering re-sends it too (15 s later): the platform's trouble, not the item's;
- a settle that leaves its row as it was ("due again next run": a send in progress elsewhere, a pause not
  written yet) re-sends it one timer period later, since the lease would keep the timer away for 15 minutes;
- any other failure is raised, so the host makes the message visible again later; on its last dequeue
  (the host's maxDequeueCount, QUEUE_MAX_DEQUEUE_COUNT here) the pause is marked failed, saying why,
  as the timer does after TIMER_ATTEMPTS, and the message completes instead of going to the poison queue.

The messages one instance settles at the same time share requests: their status-index updates go in
one transaction and their due rows' deletes in one per due hour (`shared.group_commit`), each settle
waiting for the request that carries its own, so a settled message leaves nothing unwritten behind it.

At-least-once delivery is safe: every settle is a conditional claim, so a second message for the same
item (a lost delete, a lease that ran out) finds the work done or claimed and changes nothing.
"""

import logging
import math
import time
from collections import Counter
from datetime import datetime, timedelta

from shared import sweep
from shared.clock import utcnow
from shared.errors import Unavailable, UpstreamThrottled
from shared.lifecycle import recovery
from shared.lifecycle.model import SweepOutcome
from shared.settings import get_settings
from shared.storage import status_index
from shared.storage.due_index import GroupedRemovals, get_due_index
from shared.storage.due_queue import decode_message, get_due_queue, get_paced_queue
from shared.targets import pacing

logger = logging.getLogger(__name__)

BATCH = 500  # rows leased and sent at once
STORAGE_RETRY_SECONDS = 15  # a message table storage could not serve comes back this much later
LOOK_AGAIN_SECONDS = 60  # a row a settle left as it was comes back this much later: the timer's period
# The messages an instance settles at the same time share their status-index and due-row writes.
_INDEX, _REMOVALS = status_index.Grouped(), GroupedRemovals()


def enqueue_due(now: datetime | None = None, clock=time.monotonic) -> dict:
    """Put every due item that is not on the queue already on it, within the timer's budget; counts."""
    limits = get_settings().limits
    deadline = clock() + limits.sweep_time_budget_seconds
    now = now or utcnow()
    counts: Counter = Counter()
    batch = []
    try:
        for due in sweep.due_once(now, deadline, clock, counts):
            if due.queued_until is not None and due.queued_until > now:
                counts["on_queue"] += 1
                continue
            batch.append(due)
            if len(batch) >= BATCH:
                _send(batch, now, counts)
                batch = []
        _send(batch, now, counts)
    except Unavailable as exc:
        logger.warning("timer could not read or lease the due index: %s", exc.detail)
        counts["index_unavailable"] = 1
    if counts:
        logger.info("timer enqueued %s", dict(counts))
    return dict(counts)


def _send(batch: list, now: datetime, counts: Counter) -> None:
    if not batch:
        return
    lease = timedelta(seconds=get_settings().limits.due_queue_lease_seconds)
    leased = get_due_index().lease(batch, now + lease)  # first the lease: a row is never on the queue unmarked
    sent = get_due_queue().send_many(leased)
    counts["enqueued"] += sent.sent
    if sent.failed:  # their leases run out and the timer sends them again
        counts["not_enqueued"] += len(sent.failed)


def settle(text: str, dequeue_count: int, now: datetime | None = None) -> SweepOutcome:
    """Settle the item one message names; raise (the host retries the message) only while it has dequeues left."""
    due, slot, found = decode_message(text)
    if due is None:
        logger.warning("dropped a due-work message the app did not write")
        return SweepOutcome.MISSING
    now = now or utcnow()
    found = found or _found_due(due)
    rows = _MessageRows(_REMOVALS.remove)
    try:
        read = None
        if due.kind is not None:  # a row of work: read first, its properties are the work
            read = get_due_index().read_row(due)
            row = read[0]
            if row is None:
                return SweepOutcome.ALREADY_SETTLED  # its work done, or moved on: no longer this message's
            rows = _MessageRows(_REMOVALS.remove, there=True)
            leased = row.get("queued_until")
            due = due._replace(kind=row.get("kind") or due.kind,
                               queued_until=leased if isinstance(leased, datetime) else None)
        with (pacing.background(spread=True), pacing.holding(pacing.Slot(*slot) if slot else None),
              status_index.deferring(_INDEX)):
            outcome = sweep.settle_due(due, now, rows, found, read)
        if outcome in (SweepOutcome.RESCHEDULED, SweepOutcome.RETRY) and not rows.moved:
            _look_again(due, now, slot, found)
        return outcome
    except UpstreamThrottled as throttled:
        if not _still_there(rows, due):
            return SweepOutcome.ALREADY_SETTLED  # a message that was not its row's one: the row's own defers
        # Visible again at Retry-After (whole seconds: the queue's unit), holding the ARM slot it was given, on
        # the paced queue: short, so it is taken up then, not after whatever the main queue holds by then.
        due = _out_of_sight(due, now, throttled.retry_after)
        get_paced_queue().send(due, math.ceil(throttled.retry_after), getattr(throttled, "slot", None), found)
        return SweepOutcome.DEFERRED
    except Unavailable as unavailable:
        # Table storage did not answer: not this item's failure, so no delivery is spent on it (a message
        # that failed five times would fail its pause while storage was merely slow or down). It comes back.
        logger.warning("storage unavailable settling pause_id=%s: %s", due.pause_id, unavailable.detail)
        get_due_queue().send(due, STORAGE_RETRY_SECONDS, slot, found)
        return SweepOutcome.DEFERRED
    except Exception as exc:
        if not _still_there(rows, due):
            return SweepOutcome.ALREADY_SETTLED  # not its row's message: the row's own tries again (or fails it)
        why = f"{type(exc).__name__}: {getattr(exc, 'detail', None) or exc}"
        if dequeue_count < get_settings().limits.queue_max_dequeue_count:
            logger.warning("could not settle pause_id=%s (dequeue %d): %s", due.pause_id, dequeue_count, why)
            raise
        if not recovery.give_up(due.pause_id, f"The app could not settle this pause in {dequeue_count} attempts; "
                                               f"last: {why}", now):
            raise  # it changed while being given up: one more look, if the host still has one
        get_due_index().remove(due)
        return SweepOutcome.FAILED


class _MessageRows(sweep.Rows):
    """A message's pause row, read only if the settle needs it: one read per item (the pause's) when a pause past
    its expiry is decided, which its conditional claim makes once whichever message comes. Anything else a
    settle does (move the row, re-send a callback, defer for ARM, give up) is the row's one message's to do, and
    a message may not be it: a copy delivered again, one kept past its lease (the timer sent the row again under
    a new key), one the queue SDK's retry sent twice. Such a message finds its row gone and does none of it."""

    def __init__(self, remove, there: bool | None = None):
        super().__init__(remove)
        self._there = there  # None: not read yet
        self.moved = False  # by this settle: due at its own time, under a key of its own (no look-again)

    def there(self, due) -> bool:
        if self._there is None:
            row, _ = get_due_index().read_row(due)
            self._there = row is not None
        return self._there

    def move(self, due, due_at) -> None:
        super().move(due, due_at)
        self.moved = True


def _still_there(rows: _MessageRows, due) -> bool:
    """Whether a failed settle's row is still there (storage not answering: assume so, and keep the message)."""
    try:
        return rows.there(due)
    except Exception:
        return True


def _found_due(due) -> datetime | None:
    """When the timer found a pause's own row due, for the message it sent: its lease moved it
    DUE_QUEUE_LEASE_SECONDS past that, so its key says when it was leased, not when it fell due. (A message
    sent again says so itself: a deferral may have moved the row again.)"""
    if due.kind is not None:
        return None
    return get_due_index().due_at(due) - timedelta(seconds=get_settings().limits.due_queue_lease_seconds)


def _look_again(due, now: datetime, slot, found: datetime | None) -> None:
    """A settle that left its row where it was (a send in progress elsewhere, a pause not written yet, a race
    another decision won) means "due again on the timer's next run"; but the lease keeps the timer away for
    DUE_QUEUE_LEASE_SECONDS, longer than a checkpoint's WebHook waits. The message comes back instead, one
    timer period later (unless the row was moved: then it is due at its own time, under a key of its own)."""
    row, _ = get_due_index().read_row(due)
    if row is None:
        return
    due = _out_of_sight(due, now, LOOK_AGAIN_SECONDS)
    get_due_queue().send(due, LOOK_AGAIN_SECONDS, slot, found)


def _out_of_sight(due, now: datetime, seconds: float):
    """A deferred item stays out of the timer's sight until well after its new message comes back (else the
    timer would send another); the row, as it is then, for the message to name."""
    lease = timedelta(seconds=get_settings().limits.due_queue_lease_seconds)
    needed = now + timedelta(seconds=seconds) + lease / 2
    try:
        if due.kind is None:  # a pause's own row: leased by being due later
            if get_due_index().due_at(due) >= needed:
                return due
            later = now + timedelta(seconds=seconds) + lease
            get_due_index().move(due, later)
            partition, row = get_due_index().keys(due.pause_id, later)
            return due._replace(partition_key=partition, row_key=row)
        if due.queued_until is None or due.queued_until < needed:
            get_due_index().lease([due], now + timedelta(seconds=seconds) + lease)
    except Exception as exc:  # a second message later is a no-op: tolerated
        logger.info("could not keep pause_id=%s out of the timer's sight: %s", due.pause_id, exc)
    return due
