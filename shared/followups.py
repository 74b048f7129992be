"""Follow-ups: once a pause that was posted to chat channels is decided, each channel that got the
request (or its escalation) is told what became of it ("Approved by alice@… at 14:02 UTC", with the run id).

The engine owes them with a due-index row of kind "followup" when the decision lands; the timer
posts them here, so a slow or refusing channel never delays or undoes a decision. A channel that
throttles (429) is asked again after its Retry-After; one that refuses, up to ATTEMPTS times in all;
a post whose answer was lost is recorded `unknown` and never posted again. Every outcome is kept
in the pause's `notifications` (purpose "decided"), which is also what makes a follow-up once only:
the entries are written first, `unknown` ("being posted"), with a conditional write on the pause,
so a post cut off by a crash, or one another timer instance is making, is never made twice.
"""

import logging
import uuid
from datetime import datetime, timedelta

from shared.clock import iso
from shared.jsonbody import canonical
from shared.lifecycle.engine import stale_after
from shared.lifecycle.model import CLAIMED, FINAL, SweepOutcome
from shared.lifecycle.plan import count
from shared.notify import channels as chat
from shared.notify.message import decided
from shared.settings import get_settings
from shared.storage.due_index import FOLLOWUP, Due, get_due_index
from shared.storage.pauses import get_store, settles_work
from shared.storage.records import json_field
from shared.storage.tables import Conflict, Stored, pack_json

logger = logging.getLogger(__name__)

KIND = FOLLOWUP
ATTEMPTS = 3         # a channel that refuses (or cannot be read from its setting) is tried this often
THROTTLED_TRIES = 10  # a channel that keeps throttling (429), this often
RETRY_SECONDS = 60   # after a refusal, before the next attempt


def owed(entity: dict) -> list:
    """The channels that were posted the request (or may have been: its answer was lost) and have not
    been told how it ended."""
    notes = json_field(entity, "notifications", []) or []
    told = {n.get("channel") for n in notes if n.get("purpose") == "decided"}
    asked = [n["channel"] for n in notes if n.get("purpose") in ("request", "escalation")
             and n.get("outcome") in ("sent", "unknown") and n.get("channel")]
    return [name for name in dict.fromkeys(asked) if name not in told]


@settles_work
def settle(due: Due, row: dict, stored: Stored, now: datetime) -> SweepOutcome:
    """The timer's turn: post the follow-ups one row owes; record them; drop or move the row."""
    index = get_due_index()
    pause_id = row.get("pause_id")
    status = stored.entity.get("status")
    if status in CLAIMED:  # its decision is being recorded (or will be reconciled): look once it must be
        index.move_row(due, {"kind": KIND, "pause_id": pause_id, "tries": row.get("tries") or 0}, now + stale_after())
        return SweepOutcome.RESCHEDULED
    names = owed(stored.entity) if status in FINAL else []  # pending again: the decision did not land
    if not names:
        index.remove(due)
        return SweepOutcome.ALREADY_SETTLED
    claim = f"being posted ({uuid.uuid4().hex[:12]})"
    claimed = _claim(pause_id, stored, names, claim, now)
    if claimed is None:
        return SweepOutcome.RETRY  # the pause changed (or another instance claimed these): look again
    tries = count(row.get("tries")) + 1
    results, later = _post_all(stored.entity, names, tries, now)
    settled = get_store().renote(pause_id, claimed, lambda kept: [
        results.get(note["channel"], note) if note.get("detail") == claim else note
        for note in kept if not (note.get("detail") == claim and note["channel"] not in results)])
    if settled is None:  # the claims stay "unknown": never posted again
        logger.error("follow-ups not recorded pause_id=%s: the pause kept changing", pause_id)
    if later is not None:
        index.move_row(due, {"kind": KIND, "pause_id": pause_id, "tries": tries}, later)
        return SweepOutcome.RETRY
    index.remove(due)
    return SweepOutcome.NOTIFIED


def _claim(pause_id: str, stored: Stored, names: list, claim: str, now: datetime) -> Stored | None:
    """Write the follow-ups as `unknown` before posting them, on the pause as read (a conditional write)."""
    notes = json_field(stored.entity, "notifications", []) or []
    entries = [{"channel": name, "purpose": "decided", "at": iso(now), "outcome": "unknown", "detail": claim}
               for name in names]
    written = pack_json("notifications", canonical(notes + entries), over=stored.entity)
    try:
        return Stored({**stored.entity, **written}, get_store().update(pause_id, written, stored.etag))
    except Conflict:
        return None


def _post_all(entity: dict, names: list, tries: int, now: datetime) -> tuple[dict, datetime | None]:
    """Post to each channel; return the entry to record per channel posted (or given up on), and when
    to come back for the others (they are left out of the entries, so they are owed again)."""
    settings = get_settings()
    message = decided(status=entity.get("status"), decided_by=entity.get("decided_by"),
                      decided_at=iso(entity.get("decided_at")), run_id=entity.get("run_id"),
                      title=(json_field(entity, "notification", {}) or {}).get("title"),
                      pipeline_name=entity.get("pipeline_name"), factory_name=entity.get("factory_name"))
    results, later = {}, None
    for name in names:
        entry = {"channel": name, "purpose": "decided", "at": iso(now)}
        try:
            chat.post(chat.channel(name, settings), message, settings)
            results[name] = {**entry, "outcome": "sent"}
            continue
        except chat.ChannelUnusable as unusable:  # a setting not resolved yet (a Key Vault reference): a refusal
            failure, retry_after, outcome = str(unusable), None, "failed"
        except chat.NotPosted as failed:
            failure, retry_after, outcome = failed.detail, failed.retry_after, failed.outcome
        again = _again(outcome, retry_after, tries, now)
        if again is None:
            results[name] = {**entry, "outcome": outcome, "detail": failure[:500]}
        else:
            later = min(later or again, again)
            logger.warning("follow-up to channel %s not posted yet (try %d): %s", name, tries, failure)
    return results, later


def _again(outcome: str, retry_after: float | None, tries: int, now: datetime) -> datetime | None:
    """When to post again, or None: a lost answer never (it may have arrived), a throttle after its
    Retry-After, a refusal after RETRY_SECONDS, each a bounded number of times."""
    if outcome != "failed":
        return None
    if retry_after is not None:
        return now + timedelta(seconds=max(retry_after, 1)) if tries < THROTTLED_TRIES else None
    return now + timedelta(seconds=RETRY_SECONDS) if tries < ATTEMPTS else None
