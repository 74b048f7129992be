"""Reminders: while a pause waits, whoever was asked and has not acted is reminded every `remind_every`
seconds, at most `remind_max` times; never once the pause is decided.

Each channel that got the request gets a short reminder (the request above it carries the links). Each
named approver who was emailed the request and has not approved yet is emailed again, with fresh
personal links of their own: the app keeps only the hashes of the first ones, so it cannot send those
again (both stay valid). A reminder is claimed with one conditional write on the pause (the count and
the new links' hashes together), so two timer instances never send the same one; every message is
recorded in `notifications` (purpose "reminder").
"""

import logging
from datetime import datetime, timedelta

from shared import people, tokens
from shared.clock import as_utc, iso
from shared.jsonbody import canonical
from shared.lifecycle.model import FINAL, Status, SweepOutcome
from shared.lifecycle.plan import count
from shared.notify import channels as chat
from shared.notify.message import reminder
from shared.settings import get_settings
from shared.storage.due_index import REMINDER, Due, get_due_index
from shared.storage.pauses import get_store, work_and_pause
from shared.storage.records import json_field
from shared.storage.tables import AlreadyExists, Conflict, pack_json

logger = logging.getLogger(__name__)

KIND = REMINDER


def waiting_on(entity: dict) -> list:
    """The named approvers who were emailed the request (or took a part over by reassignment) and have
    not approved yet."""
    notes = json_field(entity, "notifications", []) or []
    asked = [note for note in notes if note.get("purpose") == "request" and note.get("outcome") == "sent"]
    emailed = {people.key(address) for note in asked for address in note.get("email") or ()}
    emailed |= {r.get("to") for r in json_field(entity, "reassignments", []) or [] if isinstance(r, dict)}
    approved = {a.get("approver") for a in json_field(entity, "approvals", []) or [] if isinstance(a, dict)}
    requester, self_ok = entity.get("requested_by"), entity.get("allow_self_approval") is True
    return [a for a in json_field(entity, "approvers", []) or []
            if a in emailed and a not in approved and (self_ok or a != requester)]


def settle(due: Due, now: datetime) -> SweepOutcome:
    """The timer's turn: send the reminder this row stands for, and schedule the next one."""
    index = get_due_index()
    row, stored = work_and_pause(due)
    if row is None:
        return SweepOutcome.ALREADY_SETTLED
    if stored is None:
        return SweepOutcome.MISSING
    pause_id = row.get("pause_id")
    entity = stored.entity
    sent, most, every = (count(entity.get(name)) for name in ("reminders_sent", "remind_max", "remind_every"))
    expires_at = entity.get("expires_at")
    if entity.get("status") in FINAL or sent >= most or not every or \
            (isinstance(expires_at, datetime) and now >= as_utc(expires_at)):  # the timer expires it, not us
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
    secrets = (json_field(entity, "approver_secrets", []) or []) + [[a, digest] for a, (_, digest) in fresh.items()]
    try:  # the claim: this interval's reminder is ours to send, and the links it carries are valid
        get_store().update(pause_id, {"reminders_sent": sent + 1, "next_reminder_at": later,
                                      **pack_json("approver_secrets", canonical(secrets), over=entity)}, stored.etag)
    except Conflict:
        return SweepOutcome.RETRY  # an approval or another timer instance got there first: look again
    if sent + 1 < most:  # moved before sending: a failure from here on never sends this one again
        _reschedule(index, due, pause_id, later)
    else:
        index.remove(due)
    entries = _emails(entity, fresh, now) + _posts(entity, sent + 1, now)
    try:
        if entries and not get_store().note(pause_id, stored, entries):
            logger.error("reminders not recorded pause_id=%s: the pause kept changing", pause_id)
    except Exception:  # sent: only their record is missing, and the log says so
        logger.exception("reminders sent but not recorded pause_id=%s", pause_id)
    logger.info("reminder %d of %d sent pause_id=%s emails=%d", sent + 1, most, pause_id, len(fresh))
    return SweepOutcome.REMINDED


def _reschedule(index, due: Due, pause_id: str, at: datetime) -> None:
    try:
        index.move_row(due, {"kind": KIND, "pause_id": pause_id}, at)
    except AlreadyExists:  # another timer instance moved it there first
        index.remove(due)


def _emails(entity: dict, fresh: dict, now: datetime) -> list:
    """Email each approver their fresh links; return what to record."""
    if not fresh:
        return []
    from shared.notify import email as mailer

    settings = get_settings()
    smtp, notification = settings.smtp, json_field(entity, "notification", {}) or {}
    title = notification.get("title") or f"Approval needed: {entity.get('pipeline_name') or 'pipeline'}"
    entries = []
    for approver, (token, _) in fresh.items():
        entry = {"email": [approver], "purpose": "reminder", "at": iso(now)}
        try:
            if smtp is None:
                raise mailer.EmailFailed("no SMTP server is configured (SMTP_HOST)")
            links = tokens.decision_links(entity.get("link_base") or settings.public_base_url or "", token)
            mailer.send(mailer.config(smtp), mailer.approver_email(entity, sender=smtp.sender, to=approver,
                                                                   links=links, subject=f"Reminder: {title}"))
            entries.append({**entry, "outcome": "sent"})
        except (mailer.EmailFailed, ValueError) as failed:
            logger.warning("reminder email to an approver failed: %s", failed)
            entries.append({**entry, "outcome": "failed", "detail": str(failed)[:500]})
    return entries


def _posts(entity: dict, number: int, now: datetime) -> list:
    """Remind each channel that got the request; return what to record."""
    notes = json_field(entity, "notifications", []) or []
    names = [n["channel"] for n in notes if n.get("purpose") == "request" and n.get("outcome") == "sent"
             and n.get("channel")]
    if not names:
        return []
    settings = get_settings()
    approved = len(json_field(entity, "approvals", []) or [])
    message = reminder(title=(json_field(entity, "notification", {}) or {}).get("title"),
                       pipeline_name=entity.get("pipeline_name"), factory_name=entity.get("factory_name"),
                       number=number, approved=approved, required=entity.get("required_approvals"),
                       expires_at=iso(entity.get("expires_at")))
    entries = []
    for name in names:
        entry = {"channel": name, "purpose": "reminder", "at": iso(now)}
        try:
            chat.post(chat.channel(name, settings), message, settings)
            entries.append({**entry, "outcome": "sent"})
        except chat.ChannelUnusable as unusable:
            entries.append({**entry, "outcome": "failed", "detail": str(unusable)[:500]})
        except chat.NotPosted as failed:  # a reminder is not re-sent: the next one is due anyway
            entries.append({**entry, "outcome": failed.outcome, "detail": failed.detail[:500]})
    return entries
