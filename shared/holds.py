"""Holds: an operator's "pause matching runs at their next checkpoint" — place, end, match, list.

Stored by `shared.storage.holds`. A hold changes status exactly once (two operators releasing at
once: one wins); a hold whose `expires_at` has passed counts as released (by expiry) wherever it
is read, and the timer and the listings then write that down.
"""

import logging
import uuid
from datetime import datetime, timedelta

from shared.clock import utcnow
from shared.errors import HoldEnded
from shared.storage.holds import ACTIVE, CANCELLED, EXPIRY, RELEASED, SCOPE_PARTS, Hold, get_holds, wildcard_match
from shared.storage.tables import Conflict

logger = logging.getLogger(__name__)

__all__ = ["ACTIVE", "CANCELLED", "EXPIRY", "RELEASED", "SCOPE_PARTS", "Hold", "end_hold", "get", "listed", "matching",
           "new_hold", "wildcard_match", "write_down_expiry"]


def get(hold_id: str) -> Hold:
    """One hold as stored (NotFound if there is none)."""
    return get_holds().get(hold_id)


def new_hold(scope: dict, reason: str, expires_in: int | None, created_by: str | None,
             now: datetime | None = None) -> Hold:
    now = now or utcnow()
    hold = Hold(hold_id=uuid.uuid4().hex, scope={part: value.lower() for part, value in scope.items()},
                reason=reason, status=ACTIVE, created_at=now, created_by=created_by,
                expires_at=now + timedelta(seconds=expires_in) if expires_in else None)
    get_holds().add(hold)
    logger.info("hold placed hold_id=%s scope=%s by=%s", hold.hold_id, hold.scope, created_by)
    return hold


def end_hold(hold_id: str, status: str, ended_by: str | None, comment: str | None,
             now: datetime | None = None) -> Hold:
    """Release or cancel an active hold exactly once; 409 if it had ended (an expired hold: released already)."""
    now = now or utcnow()
    store = get_holds()
    for _ in range(3):
        hold = store.get(hold_id)
        if (hold.status, hold.ended_at, hold.ended_by) == (status, now, ended_by):
            return hold  # our own write landed unanswered: the storage SDK's retry met a 412
        if not hold.active_at(now):
            shown = hold.record(now)
            raise HoldEnded(f"This hold was already {shown['status']} at {shown['ended_at']}"
                            f"{' by ' + shown['ended_by'] if shown['ended_by'] else ''}.", hold=shown)
        try:
            ended = store.end(hold, status, now, ended_by, comment)
        except Conflict:
            continue
        logger.info("hold %s hold_id=%s by=%s", status, hold_id, ended_by)
        return ended
    raise HoldEnded("This hold is being changed by someone else right now.", hold=store.get(hold_id).record(now))


def write_down_expiry(hold: Hold) -> None:
    """Record that an active hold's expiry released it (best effort: reading it says so already)."""
    try:
        current = hold if hold.etag else get_holds().get(hold.hold_id)
        if current.status == ACTIVE and current.expires_at is not None:
            get_holds().end(current, RELEASED, current.expires_at, EXPIRY, "The hold expired.")
    except Conflict:  # another reader wrote it down first (every settle held by it may try at once): done
        logger.debug("expiry of hold_id=%s written down by another reader", hold.hold_id)
    except Exception as exc:  # storage failed: the next reader tries again
        logger.info("expiry of hold_id=%s not written down now: %s", hold.hold_id,
                    getattr(exc, "detail", None) or repr(exc))


def matching(target: dict, now: datetime) -> list[Hold]:
    """The active holds whose scope matches a run (one range query)."""
    return [hold for hold in get_holds().active() if hold.active_at(now) and hold.matches(target)]


def listed(status: str, limit: int, now: datetime | None = None) -> list[dict]:
    """Holds by status, as they are now: an active hold past its expiry is listed as released (and
    written down as such), never as active."""
    now = now or utcnow()
    stored_active = get_holds().active()
    for hold in stored_active:
        if not hold.active_at(now):
            write_down_expiry(hold)
    if status == ACTIVE:
        shown = [hold for hold in stored_active if hold.active_at(now)]
        shown.sort(key=lambda hold: hold.created_at or now, reverse=True)
    else:
        expired = [hold for hold in stored_active if hold.status_at(now) == status]
        shown = expired + get_holds().ended(status, limit)
    return [hold.record(now) for hold in shown[:limit]]
