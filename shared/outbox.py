"""Callbacks owed to a WebHook right after it was answered: sent by the app, guaranteed by the timer.

A checkpoint with no hold answers its WebHook `202` and calls it back at once. ADF does not
document whether a callback may arrive before the WebHook's own request has been answered, so the
callback is sent shortly after the answer (CHECKPOINT_CALLBACK_DELAY_SECONDS), in the background. What guarantees it is a row in the due index, written before the answer and deleted once
the callback is delivered: if the process dies first, the timer finds the row due and sends it.

Each send is taken with a conditional write on the row (`sends`), so the thread and the timer (or
two timer instances) never send at the same time. A send whose outcome is unknown is followed only
by the identical bytes (the contract's rule 2: a completed WebHook refuses a repeat with 409),
bounded by CALLBACK_REDELIVERY_ATTEMPTS, as is one surely not delivered for a passing reason (no
connection, 408, 429); one refused for good (another 4xx) is logged and dropped.
"""

import logging
import time
import uuid
from datetime import datetime, timedelta

from shared.clients import built_once, scheduler
from shared.clock import utcnow
from shared.lifecycle.engine import redelivery_due
from shared.lifecycle.model import SweepOutcome
from shared.settings import get_settings
from shared.storage.due_index import Due, DueIndex, get_due_index
from shared.storage.tables import Conflict
from shared.targets import callback
from shared.targets.outside import Refused, Unknown

logger = logging.getLogger(__name__)

KIND = "callback"


def backstop_due(now: datetime) -> datetime:
    """When the timer takes over a callback the thread has not delivered."""
    limits = get_settings().limits
    return now + timedelta(seconds=limits.checkpoint_callback_delay_seconds) + callback.send_window()


def add(callback_uri: str, payload: bytes, now: datetime) -> tuple[Due, str]:
    """Owe a callback: its row, due when the timer should take over; returns the row and its ETag."""
    callback_id = uuid.uuid4().hex
    partition, row = DueIndex.keys(callback_id, backstop_due(now))
    etag = get_due_index().add_row({"PartitionKey": partition, "RowKey": row, "kind": KIND,
                                    "callback_uri": callback_uri, "payload": payload.decode("utf-8"), "sends": 0})
    return Due(callback_id, partition, row, 0, KIND), etag


def drop(due: Due) -> None:
    """No callback is owed after all (the checkpoint was held instead)."""
    get_due_index().remove(due)


@built_once
def _senders():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="checkpoint-callback")


def send_soon(due: Due, etag: str, callback_uri: str, payload: bytes) -> None:
    """Send the callback in the background once the WebHook's request has been answered."""
    delay = get_settings().limits.checkpoint_callback_delay_seconds
    entity = {"sends": 0, "callback_uri": callback_uri, "payload": payload.decode("utf-8")}
    scheduler().at(time.monotonic() + delay, lambda: _senders().submit(_send_logged, due, etag, entity))


def _send_logged(due: Due, etag: str, entity: dict) -> None:
    try:
        send(due, etag, entity, utcnow())
    except Exception as exc:  # the row stays due: the timer sends it
        logger.warning("checkpoint callback not sent now (the timer will) id=%s: %s", due.pause_id,
                       getattr(exc, "detail", None) or exc)


def send(due: Due, etag: str, entity: dict, now: datetime) -> SweepOutcome:
    """Claim and make one send; then delete the row, or move it for the next identical send."""
    limits = get_settings().limits
    sends = int(entity.get("sends") or 0) + 1
    get_due_index().take_send(due, etag, sends, now)
    payload, uri = entity.get("payload") or "", entity.get("callback_uri") or ""
    try:
        callback.deliver(uri, payload.encode("utf-8"))
    except Refused as refused:
        if not refused.transient or sends >= limits.callback_redelivery_attempts:
            logger.error("checkpoint callback refused id=%s after %d send(s): %s; dropped (the run's WebHook "
                         "times out)", due.pause_id, sends, refused.summary)
            get_due_index().remove(due)
            return SweepOutcome.UNDELIVERED
        # Surely not delivered (no connection, throttled): the same bytes go again a little later.
        logger.warning("checkpoint callback not delivered id=%s: %s; sent again later", due.pause_id,
                       refused.summary)
        _again(due, entity, sends, refused.summary, now)
        return SweepOutcome.RETRY
    except Unknown as unknown:
        if sends >= limits.callback_redelivery_attempts:
            logger.error("checkpoint callback unconfirmed after %d sends id=%s: %s; gave up", sends, due.pause_id,
                         unknown.summary)
            get_due_index().remove(due)
            return SweepOutcome.UNDELIVERED
        logger.warning("checkpoint callback outcome unknown id=%s: %s; the same bytes are sent again later",
                       due.pause_id, unknown.summary)
        _again(due, entity, sends, unknown.summary, now)
        return SweepOutcome.UNCONFIRMED
    get_due_index().remove(due)
    logger.info("checkpoint called back id=%s sends=%d", due.pause_id, sends)
    return SweepOutcome.REDELIVERED if sends > 1 else SweepOutcome.CHECKPOINT_CONTINUED


def _again(due: Due, entity: dict, sends: int, why: str, now: datetime) -> None:
    """Move the row to the next send of the same bytes, backing off as a pause's callback does."""
    get_due_index().move_row(due, {"kind": KIND, "callback_uri": entity.get("callback_uri") or "",
                                   "payload": entity.get("payload") or "", "sends": sends, "last_error": why[:1000]},
                             redelivery_due(now, sends))


def settle(due: Due, now: datetime, read: tuple | None = None) -> SweepOutcome:
    """The timer's turn: send a callback the thread did not deliver (unless a send is running now). `read`: the
    row and its ETag, when the caller has read it already."""
    entity, etag = read or get_due_index().read_row(due)
    if entity is None:
        return SweepOutcome.ALREADY_SETTLED
    sending_at = entity.get("sending_at")
    if isinstance(sending_at, datetime) and now - sending_at < callback.send_window():
        return SweepOutcome.RESCHEDULED  # a send in progress; due again next run
    try:
        return send(due, etag, entity, now)
    except Conflict:
        return SweepOutcome.RESCHEDULED
