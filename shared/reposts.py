"""Reminders and escalations a channel refused or throttled, posted again by the timer.

A channel that answered 429 is asked again after its Retry-After, one that refused after a minute, a
bounded number of times (`shared.outreach.owe_again`); one whose answer was lost never (it may have the
message). Never once the pause is decided or expired: a reminder then would be wrong. Each try is
claimed on its row first (a conditional write), so two timer instances never post the same one, and a
try cut off by a crash is recorded `unknown`, never made again. An escalation's post carries the
request's links, so it gets fresh ones that work as the shared one (only their hash is kept, written
before the post).
"""

import json
import logging
from datetime import datetime

from shared import outreach, tokens
from shared.clock import iso
from shared.errors import NotFound
from shared.lifecycle.model import Status, SweepOutcome
from shared.reminders import reminder_message
from shared.storage.due_index import REPOST, Due, get_due_index
from shared.storage.pauses import get_store
from shared.storage.tables import Conflict

logger = logging.getLogger(__name__)

KIND = REPOST


def settle(due: Due, now: datetime, read: tuple | None = None) -> SweepOutcome:
    """The timer's turn: post once more what the channels of this row refused. `read`: the row and its ETag,
    when the caller has read it already."""
    index = get_due_index()
    row, etag = read or index.read_row(due)
    if row is None:
        return SweepOutcome.ALREADY_SETTLED
    pause_id, purpose = row.get("pause_id") or "", row.get("purpose")
    try:
        names = [name for name in json.loads(row.get("channels") or "[]") if isinstance(name, str)]
        stored = get_store().get(pause_id)
    except (ValueError, NotFound):  # not a row the app wrote, or its pause is gone
        index.remove(due)
        return SweepOutcome.MISSING
    entity, tries = stored.entity, int(row.get("tries") or 0)
    if isinstance(row.get("sending_at"), datetime):  # a try that was claimed and never finished: maybe posted
        _record(pause_id, stored, [{"channel": name, "purpose": purpose, "at": iso(now),
                                     "outcome": "unknown", "detail": "posting again was cut off"} for name in names])
        index.remove(due)
        return SweepOutcome.ALREADY_SETTLED
    if entity.get("status") != Status.PENDING or purpose not in ("reminder", "escalation") or not names or \
            outreach.past_expiry(entity, now):
        index.remove(due)  # decided, expired or deciding: a reminder now would say something untrue
        return SweepOutcome.ALREADY_SETTLED
    message = _message(pause_id, stored, purpose, int(row.get("number") or 0))
    if message is None:
        return SweepOutcome.RETRY  # the pause changed while its fresh links were stored: look again
    try:
        index.take_send(due, etag, tries + 1, now)
    except Conflict:
        return SweepOutcome.RETRY  # another timer instance took this try
    again: list = []
    entries = outreach.post(names, message, purpose, now, again)
    outreach.owe_again(pause_id, purpose, int(row.get("number") or 0), again, tries + 1, now)
    index.remove(due)
    _record(pause_id, stored, entries)
    return SweepOutcome.NOTIFIED


def _message(pause_id: str, stored, purpose: str, number: int):
    """What to post: the reminder as it was, or the escalation with fresh shared-strength links (their hash
    stored first, on the pause as read); None if the pause changed meanwhile."""
    entity = stored.entity
    if purpose == "reminder":
        return reminder_message(entity, number)
    token, digest = tokens.issue(pause_id)
    written = outreach.new_links(entity, {}, digest)
    try:
        get_store().update(pause_id, written, stored.etag)
    except Conflict:
        return None
    return outreach.request_message({**entity, **written}, token, f"Escalated: {outreach.title_of(entity)}")


def _record(pause_id: str, stored, entries: list) -> None:
    try:
        if entries and not get_store().note(pause_id, stored, entries):
            logger.error("reposts not recorded pause_id=%s: the pause kept changing", pause_id)
    except Exception:  # posted: only their record is missing, and the log says so
        logger.exception("reposts made but not recorded pause_id=%s", pause_id)
