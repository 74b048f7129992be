"""Reminders: while a pause waits, whoever was asked and has not acted is reminded every `remind_every`
seconds, at most `remind_max` times; never once the pause is decided.

Each channel that got the request gets a short reminder (the request above it carries the links). Each
named approver who was emailed the request and has not approved yet is emailed again, with fresh
personal links of their own; without named approvers, the listed addresses get fresh links that work as
the shared one. The app keeps only the hashes of the first links, so it cannot send those again (all stay
valid). A reminder is claimed with one conditional write on the pause (the count and
the new links' hashes together), so two timer instances never send the same one; every message is
recorded in `notifications` (purpose "reminder").
"""

import logging
from datetime import datetime, timedelta

from shared import outreach, people, tokens
from shared.clock import as_utc, iso
from shared.lifecycle.model import ASKED_NO_MORE, Status, SweepOutcome
from shared.lifecycle.plan import count
from shared.notify.message import reminder
from shared.storage.due_index import REMINDER, Due, DueIndex, get_due_index
from shared.storage.pauses import get_store, settles_work
from shared.storage.records import json_field
from shared.storage.tables import AlreadyExists, Conflict, Stored

logger = logging.getLogger(__name__)

KIND = REMINDER
PURPOSE = "reminder"


def schedule(request, pause_id: str, now: datetime) -> None:
    """Owe a new pause its first reminder (one row per pause: every timer instance names it alike)."""
    if request.remind_every:
        get_due_index().add_work(KIND, pause_id, now + timedelta(seconds=request.remind_every),
                                 row_id=DueIndex.work_id(KIND, pause_id))


def _asked(entity: dict) -> list:
    """The messages that asked for a decision and went out: the request, and the escalation's."""
    notes = json_field(entity, "notifications", []) or []
    return [note for note in notes if note.get("purpose") in ("request", "escalation") and note.get("outcome") == "sent"]


def waiting_on(entity: dict) -> list:
    """The named approvers who were emailed the request (or their escalation, or took a part over by
    reassignment) and have not approved yet."""
    emailed = {people.key(address) for note in _asked(entity) for address in note.get("email") or ()}
    emailed |= {r.get("to") for r in json_field(entity, "reassignments", []) or [] if isinstance(r, dict)}
    if entity.get("escalated_at"):  # added by escalation: reminded with fresh links even if that email failed
        emailed |= set((json_field(entity, "escalate_to", {}) or {}).get("approvers") or ())
    approved = {a.get("approver") for a in json_field(entity, "approvals", []) or [] if isinstance(a, dict)}
    requester, self_ok = entity.get("requested_by"), entity.get("allow_self_approval") is True
    return [a for a in json_field(entity, "approvers", []) or []
            if a in emailed and a not in approved and (self_ok or a != requester)]


def listed(entity: dict) -> list:
    """Without named approvers, the addresses that were emailed the shared links (anyone holding them decides)."""
    if json_field(entity, "approvers", []):
        return []
    return list(dict.fromkeys(address for note in _asked(entity) for address in note.get("email") or ()))


def channels_asked(entity: dict) -> list:
    return list(dict.fromkeys(note["channel"] for note in _asked(entity) if note.get("channel")))


@settles_work
def settle(due: Due, row: dict, stored: Stored, now: datetime) -> SweepOutcome:
    """The timer's turn: send the reminder this row stands for, and schedule the next one."""
    index = get_due_index()
    pause_id = row.get("pause_id")
    entity = stored.entity
    sent, most, every = (count(entity.get(name)) for name in ("reminders_sent", "remind_max", "remind_every"))
    if entity.get("status") in ASKED_NO_MORE or sent >= most or not every or outreach.past_expiry(entity, now):
        index.remove(due)
        return SweepOutcome.ALREADY_SETTLED
    later, next_at = now + timedelta(seconds=every), entity.get("next_reminder_at")
    if isinstance(next_at, datetime) and now < as_utc(next_at):  # this interval's reminder went already
        _reschedule(index, due, pause_id, as_utc(next_at))
        return SweepOutcome.RESCHEDULED
    if entity.get("status") != Status.PENDING:  # a decision in flight, or a checkpoint: look again later
        _reschedule(index, due, pause_id, later)
        return SweepOutcome.RESCHEDULED
    fresh = {approver: tokens.issue(pause_id) for approver in waiting_on(entity)}
    addresses = listed(entity)
    shared = tokens.issue(pause_id) if addresses else None
    written = {"reminders_sent": sent + 1, "next_reminder_at": later,
               **outreach.new_links(entity, {a: digest for a, (_, digest) in fresh.items()}, shared and shared[1])}
    try:  # the claim: this interval's reminder is ours to send, and the links it carries are valid
        get_store().update(pause_id, written, stored.etag)
    except Conflict:
        return SweepOutcome.RETRY  # an approval or another timer instance got there first: look again
    if sent + 1 < most:  # moved before sending: a failure from here on never sends this one again
        _reschedule(index, due, pause_id, later)
    else:
        index.remove(due)
    subject = f"Reminder: {outreach.title_of(entity)}"
    entries = outreach.email_approvers(entity, {a: token for a, (token, _) in fresh.items()}, PURPOSE, subject, now)
    if shared:
        entries += outreach.email_shared(entity, addresses, shared[0], PURPOSE, subject, now)
    again: list = []
    entries += outreach.post(channels_asked(entity), reminder_message(entity, sent + 1), PURPOSE, now, again)
    try:  # a channel that refused or throttled gets this reminder again later (shared.reposts)
        outreach.owe_again(pause_id, PURPOSE, sent + 1, again, 1, now)
    except Exception:
        logger.exception("could not owe a refused reminder again pause_id=%s", pause_id)
    try:
        if entries and not get_store().note(pause_id, stored, entries):
            logger.error("reminders not recorded pause_id=%s: the pause kept changing", pause_id)
    except Exception:  # sent: only their record is missing, and the log says so
        logger.exception("reminders sent but not recorded pause_id=%s", pause_id)
    logger.info("reminder %d of %d sent pause_id=%s approvers=%d", sent + 1, most, pause_id, len(fresh))
    return SweepOutcome.REMINDED


def _reschedule(index, due: Due, pause_id: str, at: datetime) -> None:
    try:
        index.move_row(due, {"kind": KIND, "pause_id": pause_id}, at)
    except AlreadyExists:  # another timer instance moved it there first
        index.remove(due)


def reminder_message(entity: dict, number: int):
    """Reminder `number` of a stored pause, as a channel shows it."""
    return reminder(title=(json_field(entity, "notification", {}) or {}).get("title"),
                    pipeline_name=entity.get("pipeline_name"), factory_name=entity.get("factory_name"),
                    number=number, approved=len(json_field(entity, "approvals", []) or []),
                    required=entity.get("required_approvals"), expires_at=iso(entity.get("expires_at")))
