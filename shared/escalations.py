"""Escalation: once, `escalate_after` seconds after a pause was made, if it still waits, widen the circle.

`escalate_to.approvers` join the pause's approvers (each with a personal link of their own, emailed
to them; `required_approvals` stays as it was), `escalate_to.email` is emailed the request and
`escalate_to.channels` get it posted, both with fresh links that work as the shared one. The app
keeps only hashes of links, so everyone escalated to gets new ones, valid from the conditional write
that claims the escalation (`escalated_at`, the new approvers and the new hashes at once): two timer
instances never escalate twice, and an approval landing meanwhile makes the claim look again.
"""

import logging
import uuid
from datetime import datetime, timedelta

from shared import outreach, tokens
from shared.clock import iso
from shared.errors import InvalidRequest
from shared.jsonbody import canonical
from shared.lifecycle.model import ASKED_NO_MORE, Status, SweepOutcome
from shared.notify import channels as chat
from shared.storage.due_index import ESCALATION, Due, DueIndex, get_due_index
from shared.storage.pauses import get_store, settles_work
from shared.storage.records import fit_notifications, json_field
from shared.storage.tables import AlreadyExists, Conflict, Stored, pack_json

logger = logging.getLogger(__name__)

KIND = ESCALATION
PURPOSE = "escalation"
IN_FLIGHT_SECONDS = 60  # a decision being recorded: look again this much later


def check(request, settings) -> None:
    """Refuse, before anything is stored, an escalation that could not reach whom it names."""
    plan = request.escalate_to
    if not plan:
        return
    if (plan.get("approvers") or plan.get("email")) and settings.smtp is None:
        message = "the app cannot send email: SMTP_HOST and SMTP_FROM are not set"
        raise InvalidRequest(f"escalate_to emails its approvers and addresses, but {message}.",
                             [{"field": "escalate_to", "rule": "smtp_not_configured", "message": message}])
    if plan.get("channels") and request.approvers and settings.approver_sign_in != "easyauth":
        message = ("carry only links that work as the shared one, and without sign-in named approvers decide only "
                   "through their personal links: escalate to approvers instead, or turn sign-in on "
                   "(APPROVER_SIGN_IN=easyauth)")
        raise InvalidRequest(f"escalate_to.channels {message}.", [
            {"field": "escalate_to.channels", "rule": "approvers_need_sign_in", "message": message}])
    for name in plan.get("channels") or ():
        try:
            chat.channel(name, settings)
        except chat.ChannelUnusable as unusable:
            raise InvalidRequest(f"escalate_to.channels: {unusable}.", [
                {"field": "escalate_to.channels", "rule": "channel", "message": str(unusable)}]) from None


def properties(request) -> dict:
    """What a pause keeps of its escalation plan."""
    if not request.escalate_after:
        return {}
    return {"escalate_after": request.escalate_after, **pack_json("escalate_to", canonical(request.escalate_to))}


def schedule(request, pause_id: str, now: datetime) -> None:
    if request.escalate_after:
        get_due_index().add_work(KIND, pause_id, now + timedelta(seconds=request.escalate_after),
                                 row_id=DueIndex.work_id(KIND, pause_id))


@settles_work
def settle(due: Due, row: dict, stored: Stored, now: datetime) -> SweepOutcome:
    """The timer's turn: escalate the pause this row stands for, if it still waits."""
    index = get_due_index()
    pause_id, entity = row.get("pause_id"), stored.entity
    plan = json_field(entity, "escalate_to", None)
    if entity.get("status") in ASKED_NO_MORE or entity.get("escalated_at") or not isinstance(plan, dict) or \
            outreach.past_expiry(entity, now):
        index.remove(due)
        return SweepOutcome.ALREADY_SETTLED
    if entity.get("status") != Status.PENDING:  # a decision in flight: if it does not land, escalate then
        try:
            index.move_row(due, {"kind": KIND, "pause_id": pause_id}, now + timedelta(seconds=IN_FLIGHT_SECONDS))
        except AlreadyExists:  # another timer instance moved it there first
            index.remove(due)
        return SweepOutcome.RESCHEDULED
    approvers = json_field(entity, "approvers", []) or []
    # Someone may have become an approver meanwhile (a part handed on to them): they have a link already.
    added = [a for a in plan.get("approvers") or () if isinstance(a, str) and a not in approvers]
    fresh = {approver: tokens.issue(pause_id) for approver in added}
    addresses, names = list(plan.get("email") or ()), list(plan.get("channels") or ())
    shared = tokens.issue(pause_id) if addresses or names else None
    claim = f"being sent ({uuid.uuid4().hex[:12]})"
    claimed = _claim(pause_id, stored, _claim_changes(entity, now, added, fresh, addresses, names, shared, claim),
                     claim)
    if claimed is None:
        return SweepOutcome.RETRY  # an approval or another timer instance got there first: look again
    escalated = claimed.entity
    subject = f"Escalated: {outreach.title_of(entity)}"
    entries = outreach.email_approvers(escalated, {a: token for a, (token, _) in fresh.items()}, PURPOSE, subject,
                                       now)
    if shared:
        entries += outreach.email_shared(escalated, addresses, shared[0], PURPOSE, subject, now)
        again: list = []
        entries += outreach.post(names, outreach.request_message(escalated, shared[0], subject), PURPOSE, now,
                                 again)
        try:  # a channel that refused or throttled is asked again later, with fresh links (shared.reposts)
            outreach.owe_again(pause_id, PURPOSE, 0, again, 1, now)
        except Exception:
            logger.exception("could not owe a refused escalation post again pause_id=%s", pause_id)
    index.remove(due)  # only now: escalated_at keeps a second escalation out, a lost row loses nothing sent
    try:  # the claim's "being sent" entries become what happened (left "unknown" if this fails)
        results = iter(entries)
        if not get_store().renote(pause_id, claimed, lambda kept: [
                next(results, note) if note.get("detail") == claim else note for note in kept]):
            logger.error("escalation not recorded pause_id=%s: the pause kept changing", pause_id)
    except Exception:  # sent: only their record is missing, and the log says so
        logger.exception("escalation sent but not recorded pause_id=%s", pause_id)
    logger.info("escalated pause_id=%s approvers=%d at=%s", pause_id, len(fresh), iso(now))
    return SweepOutcome.ESCALATED


def _claim_changes(entity: dict, now: datetime, added: list, fresh: dict, addresses: list, names: list, shared,
                   claim: str) -> dict:
    """The claim's one write: escalated_at, the new approvers and hashes, the channels owed a follow-up, and
    each message as `unknown` ("being sent"), so a crash or a lost record never sends one twice and leaves
    every channel owed its follow-up."""
    at = iso(now)
    pending = [{"email": [a], "purpose": PURPOSE, "at": at, "outcome": "unknown", "detail": claim} for a in fresh]
    if addresses:
        pending.append({"email": addresses, "purpose": PURPOSE, "at": at, "outcome": "unknown", "detail": claim})
    pending += [{"channel": n, "purpose": PURPOSE, "at": at, "outcome": "unknown", "detail": claim} for n in names]
    notes = (json_field(entity, "notifications", []) or []) + pending
    written = {"escalated_at": now, "escalation_claim": claim,
               **pack_json("notifications", canonical(fit_notifications(notes)), over=entity)}
    if fresh:
        approvers = json_field(entity, "approvers", []) or []
        written.update(pack_json("approvers", canonical(approvers + added), over=entity))
    if names:  # told once it is decided, as the request's channels are (shared.followups)
        told = json_field(entity, "channels", []) or []
        written.update(pack_json("channels", canonical(told + [n for n in names if n not in told]), over=entity))
    return {**written, **outreach.new_links(entity, {a: h for a, (_, h) in fresh.items()}, shared and shared[1])}


def _claim(pause_id: str, stored: Stored, written: dict, claim: str) -> Stored | None:
    """Write the claim on the pause as read; None if something else changed it first. A write whose answer
    came back 412 after the SDK retried it may have landed: the pause read back says whose it is."""
    store = get_store()
    try:
        return Stored({**stored.entity, **written}, store.update(pause_id, written, stored.etag))
    except Conflict:
        current = store.get(pause_id)
        return current if current.entity.get("escalation_claim") == claim else None
