"""Follow-ups: once a pause that was posted to chat channels is decided, each channel that got the
request is told what became of it ("Approved by alice@… at 14:02 UTC", with the run id).

The engine owes them with a due-index row of kind "followup" when the decision lands; the timer
posts them here, so a slow or refusing channel never delays or undoes a decision. A channel that
throttles (429) is asked again after its Retry-After; one that refuses, up to ATTEMPTS times in all;
a post whose answer was lost is recorded `unknown` and never posted again. Every outcome is kept
in the pause's `notifications` (purpose "decided"), which is also what makes a follow-up once only.
"""

import logging
from datetime import datetime, timedelta

from shared.clock import iso
from shared.errors import NotFound
from shared.lifecycle.model import SweepOutcome
from shared.notify import channels as chat
from shared.notify.message import decided
from shared.settings import get_settings
from shared.storage.due_index import FOLLOWUP, Due, get_due_index
from shared.storage.pauses import get_store
from shared.storage.records import json_field

logger = logging.getLogger(__name__)

KIND = FOLLOWUP
ATTEMPTS = 3
RETRY_SECONDS = 60  # after a refusal, before the next attempt


def owed(entity: dict) -> list:
    """The channels that got this pause's request and have not been told how it ended."""
    notes = json_field(entity, "notifications", []) or []
    told = {n.get("channel") for n in notes if n.get("purpose") == "decided"}
    return [n["channel"] for n in notes if n.get("purpose") == "request" and n.get("outcome") == "sent"
            and n.get("channel") and n["channel"] not in told]


def settle(due: Due, now: datetime) -> SweepOutcome:
    """The timer's turn: post the follow-ups one row owes; record them; drop or move the row."""
    index = get_due_index()
    row, _ = index.read_row(due)
    if row is None:
        return SweepOutcome.ALREADY_SETTLED
    try:
        stored = get_store().get(row.get("pause_id") or "")
    except NotFound:
        index.remove(due)
        return SweepOutcome.MISSING
    names = owed(stored.entity)
    if not names:
        index.remove(due)
        return SweepOutcome.ALREADY_SETTLED
    entries, later = _post_all(stored.entity, names, due.attempts + 1, now)
    if entries and not get_store().note(stored.entity["PartitionKey"], stored, entries):
        logger.error("follow-ups not recorded pause_id=%s: the pause kept changing", stored.entity["PartitionKey"])
    if later is not None:
        index.move_row(due, {"kind": KIND, "pause_id": row.get("pause_id"), "attempts": due.attempts + 1}, later)
        return SweepOutcome.RETRY
    index.remove(due)
    return SweepOutcome.NOTIFIED


def _post_all(entity: dict, names: list, attempt: int, now: datetime) -> tuple[list, datetime | None]:
    """Post to each channel; return what to record, and when to come back for the ones to try again."""
    settings = get_settings()
    message = decided(status=entity.get("status"), decided_by=entity.get("decided_by"),
                      decided_at=iso(entity.get("decided_at")), run_id=entity.get("run_id"),
                      title=(json_field(entity, "notification", {}) or {}).get("title"),
                      pipeline_name=entity.get("pipeline_name"), factory_name=entity.get("factory_name"))
    entries, later = [], None
    for name in names:
        entry = {"channel": name, "purpose": "decided", "at": iso(now)}
        try:
            chat.post(chat.channel(name, settings), message, settings)
            entries.append({**entry, "outcome": "sent"})
        except chat.ChannelUnusable as unusable:
            entries.append({**entry, "outcome": "failed", "detail": str(unusable)[:500]})
        except chat.NotPosted as failed:
            again = _again(failed, attempt, now)
            if again is None:
                entries.append({**entry, "outcome": failed.outcome, "detail": failed.detail[:500]})
            else:
                later = min(later or again, again)
                logger.warning("follow-up to channel %s not posted yet (attempt %d): %s", name, attempt, failed.detail)
    return entries, later


def _again(failed, attempt: int, now: datetime) -> datetime | None:
    """When to post again, or None: a lost answer never (it may have arrived), a throttle after its
    Retry-After, a refusal after RETRY_SECONDS until ATTEMPTS were made."""
    if failed.outcome != "failed":
        return None
    if failed.retry_after is not None:
        return now + timedelta(seconds=failed.retry_after)
    return now + timedelta(seconds=RETRY_SECONDS) if attempt < ATTEMPTS else None
