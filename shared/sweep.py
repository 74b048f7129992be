"""The timer: settle everything that is due, concurrently, within a time budget, one pause never stopping it.

It reads only the due index (rows keyed by when a pause next needs the timer), a page at a
time, and hands each row to a pool of SWEEP_CONCURRENCY workers. It stops taking rows when
SWEEP_TIME_BUDGET_SECONDS is spent (below the Functions timeout); whatever it did not reach is
still due at the next run. Each row is settled on its own: any exception is counted on the row
and the row stays due; after TIMER_ATTEMPTS the pause is marked failed. Two instances may run
at once: every decision is a conditional write, so each pause is settled once.
"""

import contextlib
import logging
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import datetime

from shared import checkpoints, escalations, followups, outbox, reminders, reposts
from shared.checks import monitor as checks
from shared.clock import from_iso, iso, utcnow
from shared.errors import (AlreadyDecided, Forbidden, NotFound, OutcomeUnknown, Unavailable, UpstreamFailed,
                           UpstreamThrottled)
from shared.lifecycle import calls, engine, recovery
from shared.lifecycle.model import CLAIMED, FINAL, ON_TIMEOUT, TIMER_AUDIT, Action, Mode, Status, SweepOutcome
from shared.settings import get_settings
from shared.storage import backfill, status_index
from shared.storage.due_index import Due, get_due_index
from shared.storage.pauses import MISSING_GRACE, get_store
from shared.storage.records import json_field, moment, status_of
from shared.storage.tables import Conflict, Stored
from shared.targets import pacing
from shared.targets.outside import OutsideCallFailed, Throttled
from shared.validation import Decision

logger = logging.getLogger(__name__)

_LOOKS = 3  # a due pause is re-read at most this often when others decide it at the same moment


class _NotSettled(Exception):
    """The pause could not be settled this time: count it, try again next run."""


class Rows:
    """What a settle does with the due row it came from: remove it (through `remove`, if given) or move it.

    The timer's rows were just read by its range query: there. A caller that has not read its row (a queue
    message, `shared.due_work`) says whether it is still there, read when first asked; a move of a row that is
    gone is not made (whatever moved it owns the pause's next visit; a move here would fork a second row)."""

    def __init__(self, remove=None):
        self.remove = remove or get_due_index().remove

    def there(self, due: Due) -> bool:
        return True

    def move(self, due: Due, due_at: datetime) -> None:
        if self.there(due):
            get_due_index().move(due, due_at)


# What one due row needs, by what its pause is now. Each handler settles or moves the row and says
# what it did, or returns None when the pause changed under it and must be read again.

def _final(due: Due, stored: Stored, now: datetime, rows: Rows) -> SweepOutcome | None:
    """A final pause: re-send its unconfirmed callback, if any; else the row is done."""
    entity = stored.entity
    if entity.get("mode") in (Mode.CALLBACK, Mode.CHECKPOINT) and entity.get("callback_confirmed") is False:
        resend_at = recovery.resend_due(entity)
        if resend_at is not None and now < resend_at:  # another of its rows (its expiry's, a lease's): not yet
            rows.move(due, resend_at)
            return SweepOutcome.RESCHEDULED
        try:
            result = recovery.redeliver(due.pause_id, stored, now)
        except Conflict:
            return None  # another timer instance took this re-send
        if isinstance(result, datetime):
            rows.move(due, result)
            return SweepOutcome.RESCHEDULED
        rows.remove(due)
        status_index.settled(due.pause_id, entity, drop_open=False)  # its decision row, if that was lost
        return SweepOutcome.REDELIVERED if result else SweepOutcome.UNDELIVERED
    rows.remove(due)
    status_index.settled(due.pause_id, entity, drop_open=False)  # its decision row, if that was lost
    if followups.owed(entity):  # its follow-ups' row was lost (a write that failed): owe them again
        get_due_index().add_work(followups.KIND, due.pause_id, now)
    return SweepOutcome.ALREADY_SETTLED


def _claimed(due: Due, stored: Stored, now: datetime, rows: Rows) -> SweepOutcome | None:
    """A decision in flight: wait until it is stale, then reconcile it."""
    if not recovery.is_stale(stored.entity, now):
        # A decision is in flight (or its process just died): look again once it is stale.
        rows.move(due, moment(stored.entity, "claimed_at") + engine.stale_after())
        return SweepOutcome.RESCHEDULED
    try:
        status = recovery.reconcile(due.pause_id, stored, now).entity.get("status")
    except Throttled as throttled:  # ARM's backpressure on the run lookup: later, not a failed attempt
        raise UpstreamThrottled(f"Azure throttled looking up the run ({throttled.code}).",
                                throttled.retry_after) from throttled
    except OutsideCallFailed as failure:
        raise _NotSettled(failure.summary) from failure
    if status in FINAL:
        rows.remove(due)
        return SweepOutcome.FAILED if status == Status.FAILED else SweepOutcome.RECONCILED
    return None  # released (or claimed anew by a click meanwhile): look at it as it is now


def _held(due: Due, stored: Stored, now: datetime, rows: Rows) -> SweepOutcome | None:
    """A held checkpoint: settle it by its holds (a releaser that died, a hold that expired)."""
    try:
        result = checkpoints.settle(due.pause_id, stored, now)
    except AlreadyDecided:
        return None  # a releaser got there first: look again
    except (UpstreamFailed, Forbidden) as failure:  # its callback was refused: still held, try again
        raise _NotSettled(failure.detail) from failure
    if isinstance(result, datetime):
        rows.move(due, result)
        return SweepOutcome.STILL_HELD
    if result.get("callback_confirmed") is False:
        rows.move(due, engine.redelivery_due(now, 1))
        return SweepOutcome.UNCONFIRMED
    rows.remove(due)
    return SweepOutcome.CHECKPOINT_SETTLED


def _pending(due: Due, stored: Stored, now: datetime, rows: Rows) -> SweepOutcome | None:
    """A pending pause: its checks before expiry, its on_timeout after."""
    if now < moment(stored.entity, "expires_at"):
        return _checks_due(due, stored, now, rows)
    return _expire(due, stored, now, rows)


def _checks_due(due: Due, stored: Stored, now: datetime, rows: Rows) -> SweepOutcome | None:
    """Make the check attempt that is due, or settle what the checks owe; else look again later."""
    entity, expires_at = stored.entity, moment(stored.entity, "expires_at")
    owed, check_due = checks.owed(entity, now), checks.next_due(entity)
    if owed is not None or (check_due is not None and check_due <= now and not checks.in_flight_until(entity, now)):
        try:
            outcome, next_due = (checks.settle_owed(due.pause_id, stored, owed, now) if owed else
                                 checks.attempt(due.pause_id, stored, now))
        except Conflict:
            return None  # another timer instance took this attempt
        if next_due is None:
            rows.remove(due)
        else:
            rows.move(due, min(next_due, expires_at))
        return outcome
    # An attempt running elsewhere: look again when it must have ended (it decides, or died).
    later = checks.in_flight_until(entity, now) or check_due or expires_at
    rows.move(due, min(later, expires_at))
    return SweepOutcome.RESCHEDULED


def _scheduled(due: Due, stored: Stored, now: datetime, rows: Rows) -> SweepOutcome | None:
    """A pause decided outside its start window: wait for start_at, then continue it as it was decided
    (the approver's words and values, recorded when it was scheduled)."""
    entity = stored.entity
    start_at = moment(entity, "start_at")
    if now < start_at:
        rows.move(due, start_at)
        return SweepOutcome.RESCHEDULED
    decision = Decision(comment=entity.get("comment"), input=json_field(entity, "input", None))
    return _continue(due, stored, Action.START_SCHEDULED, decision, now, rows, SweepOutcome.STARTED)


def _continue(due: Due, stored: Stored, action: Action, decision: Decision, now: datetime, rows: Rows,
              done: SweepOutcome) -> SweepOutcome | None:
    """Carry out the timer's decision on a pause; move or remove its row by what came of it."""
    calls.pace_start(due.pause_id, stored.entity, action, now)
    try:
        record = engine.decide(due.pause_id, stored, action, decision, TIMER_AUDIT, now)
    except AlreadyDecided:
        return None  # a last-second click or another timer instance: look again
    except OutcomeUnknown:
        rows.move(due, now + engine.stale_after())  # the claim stays: it is reconciled once stale
        return SweepOutcome.RESCHEDULED
    except UpstreamThrottled:
        raise  # backpressure, not a failed attempt: the caller defers the item
    except (UpstreamFailed, Forbidden) as failure:
        raise _NotSettled(failure.detail) from failure
    if record.get("callback_confirmed") is False:
        rows.move(due, engine.redelivery_due(now, 1))  # this row becomes the re-send's
        return SweepOutcome.UNCONFIRMED
    if record.get("status") == Status.SCHEDULED:  # decided outside its window: this row becomes its start's
        rows.move(due, from_iso(record["start_at"]))  # the same key as the start row the engine added
        return SweepOutcome.SCHEDULED
    rows.remove(due)
    return done


def _expire(due: Due, stored: Stored, now: datetime, rows: Rows) -> SweepOutcome | None:
    """Nobody decided in time: settle the pause by its on_timeout."""
    entity = stored.entity
    action = ON_TIMEOUT.get(entity.get("on_timeout"), ON_TIMEOUT["expire"])
    words = (None if action is Action.RESTART_ON_TIMEOUT else
             f"Nobody decided before {iso(moment(entity, 'expires_at'))}.")
    return _continue(due, stored, action, Decision(comment=words), now, rows,
                     SweepOutcome.RESTARTED if action is Action.RESTART_ON_TIMEOUT else SweepOutcome.EXPIRED)


# The table: what each status of the lifecycle needs from the timer.
_HANDLERS = {**{status: _final for status in FINAL}, **{status: _claimed for status in CLAIMED},
             Status.HELD: _held, Status.PENDING: _pending, Status.SCHEDULED: _scheduled}


def settle_due(due: Due, now: datetime, rows: Rows | None = None, found_due: datetime | None = None,
               read: tuple | None = None) -> SweepOutcome:
    """Do whatever the pause behind one due row needs now; remove or move the row accordingly (through `rows`,
    if given). `found_due`: when the row was found due, if its key no longer says so (a lease). `read`: a work
    row and its ETag, when the caller has read it already."""
    work = _WORK.get(due.kind)
    if work is not None:
        return work(due, now, read)
    rows = rows or Rows()
    for _ in range(_LOOKS):
        try:
            stored = get_store().get(due.pause_id)
        except NotFound:
            if not rows.there(due):
                return SweepOutcome.ALREADY_SETTLED
            if now - (found_due or get_due_index().due_at(due)) < MISSING_GRACE:
                # A pause and its first row are written at once: the row may be read before the
                # pause is there. Only a row older than any write in flight is left by its pause.
                return SweepOutcome.RESCHEDULED
            rows.remove(due)
            return SweepOutcome.MISSING
        if not _decided_by_itself(stored.entity, now) and not rows.there(due):
            return SweepOutcome.ALREADY_SETTLED  # settled, or moved by another decision: not this row's turn
        outcome = _HANDLERS[status_of(stored.entity)](due, stored, now, rows)
        if outcome is not None:
            return outcome
    return SweepOutcome.RETRY


def _decided_by_itself(entity: dict, now: datetime) -> bool:
    """A pause past its expiry, or past the start of its window, needs one thing whichever of its rows comes:
    the decision its record says, taken by a conditional claim (so once). Everything else a row does (move
    itself, re-send a callback, look at checks or holds) is its own row's to do."""
    try:
        status = status_of(entity)
        return ((status == Status.PENDING and now >= moment(entity, "expires_at"))
                or (status == Status.SCHEDULED and now >= moment(entity, "start_at")))
    except Exception:  # a damaged record: its row's handler says so
        return False


# Rows that carry work of their own, each settled by its module (with the row, if the caller read it).
_WORK = {outbox.KIND: outbox.settle, followups.KIND: followups.settle, reminders.KIND: reminders.settle,
         escalations.KIND: escalations.settle, reposts.KIND: reposts.settle}


class _Removals:
    """Rows of settled pauses, deleted in batch transactions of up to 100 rows of one partition
    (rows share a partition per due hour): one request per hundred settled pauses, not one each.
    A row whose delete is lost stays due, and the next run finds its pause settled and drops it."""

    BATCH = 100

    def __init__(self):
        self._lock = threading.Lock()
        self._waiting: dict[str, list] = {}

    def add(self, due: Due) -> None:
        with self._lock:
            rows = self._waiting.setdefault(due.partition_key, [])
            rows.append(due)
            full = len(rows) >= self.BATCH
            if full:
                del self._waiting[due.partition_key]
        if full:
            self._delete(rows)

    def flush(self) -> None:
        with self._lock:
            waiting, self._waiting = list(self._waiting.values()), {}
        for rows in waiting:
            self._delete(rows)

    @staticmethod
    def _delete(rows: list) -> None:
        try:
            get_due_index().remove_many(rows)
        except Exception as exc:
            logger.warning("timer could not delete %d settled due-index rows (the next run will): %s", len(rows),
                           getattr(exc, "detail", None) or exc)


def _visit(due: Due, now: datetime | None, removals: _Removals | None = None,
           index: status_index.Deferred | None = None) -> SweepOutcome:
    """Settle one row; never raises. A failure is counted on the row; too many mark the pause failed."""
    moment_now = now or utcnow()
    try:
        with status_index.deferring(index) if index is not None else contextlib.nullcontext(), pacing.background():
            return settle_due(due, moment_now, Rows(removals.add if removals else None))
    except UpstreamThrottled as throttled:  # ARM's backpressure costs time, never an attempt
        return _defer(due, moment_now, throttled.retry_after)
    except Exception as exc:  # one bad pause never stops the timer
        why = f"{type(exc).__name__}: {getattr(exc, 'detail', None) or exc}"
        level = logging.WARNING if isinstance(exc, (_NotSettled, Unavailable)) else logging.ERROR
        logger.log(level, "timer could not settle pause_id=%s attempt=%d: %s", due.pause_id, due.attempts + 1, why,
                   exc_info=level == logging.ERROR)
        try:
            attempts = get_due_index().count_attempt(due, why)
            if attempts < get_settings().limits.timer_attempts:
                return SweepOutcome.RETRY
            if not recovery.give_up(due.pause_id, f"The timer could not settle this pause in {attempts} attempts; "
                                                   f"last: {why}", moment_now):
                return SweepOutcome.RETRY
            get_due_index().remove(due)
            return SweepOutcome.FAILED
        except Exception:
            logger.exception("timer could not count the failure pause_id=%s", due.pause_id)
            return SweepOutcome.RETRY


def _defer(due: Due, now: datetime, seconds: float) -> SweepOutcome:
    """Come back to a row after `seconds` (ARM asked the app to slow down), its attempts untouched."""
    from datetime import timedelta

    try:
        get_due_index().move(due, now + timedelta(seconds=seconds))
    except Exception as exc:  # the row stays due as it was: the next run looks again
        logger.warning("timer could not defer pause_id=%s: %s", due.pause_id, getattr(exc, "detail", None) or exc)
    return SweepOutcome.DEFERRED


def due_once(now: datetime, deadline: float, clock, counts: Counter):
    """Every row due at `now`, one per pause (its other rows wait for the next run), until `clock()` reaches
    `deadline`; then `left_due` is counted and the rest stays due."""
    seen = set()
    for due in get_due_index().due(now):
        if clock() >= deadline:
            counts["left_due"] = 1
            return
        if due.pause_id not in seen:
            seen.add(due.pause_id)
            yield due


def sweep(now: datetime | None = None, clock=time.monotonic) -> dict:
    """Settle everything due (at `now`, else at each moment), and return counts by outcome.

    `left_due: 1` in the counts means the budget ran out with rows still due.
    """
    limits = get_settings().limits
    deadline = clock() + limits.sweep_time_budget_seconds
    counts: Counter = Counter()
    in_flight, removals, index_updates = set(), _Removals(), status_index.Deferred()

    def collect(done):
        for future in done:
            counts[future.result().value] += 1

    backfilled = backfill.backfill()  # pauses stored before the status index: a page per run
    if backfilled:
        counts["backfilled"] = backfilled
    with ThreadPoolExecutor(max_workers=limits.sweep_concurrency, thread_name_prefix="sweep") as pool:
        try:
            for due in due_once(now or utcnow(), deadline, clock, counts):
                if len(in_flight) >= 2 * limits.sweep_concurrency:
                    done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    collect(done)
                in_flight.add(pool.submit(_visit, due, now, removals, index_updates))
        except Unavailable as exc:
            logger.warning("timer could not read the due index: %s", exc.detail)
            counts["index_unavailable"] = 1
        collect(wait(in_flight)[0])
    removals.flush()
    index_updates.flush()
    if counts:
        logger.info("timer settled %s", dict(counts))
    return dict(counts)

