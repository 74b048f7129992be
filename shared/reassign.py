"""Reassignment: a named approver who cannot decide hands their part on, from their personal link's
page (`POST /api/reassign/{token}` with `to` and an optional `comment`).

One conditional write on the pause does it all at once: `to` takes the approver's place, the old
personal link is retired (a 409 afterwards, naming `to`), a personal link is issued for `to` (only its
hash is kept), and `reassignments` records who, to whom, when and why. Two at once: one wins, the other
finds its link retired. Then `to` is emailed the new link; if that fails the write is undone, so the
part is never left with nobody able to decide it.
"""

import logging
from datetime import datetime

from shared import tokens
from shared.approvers import NotYours, SignInRequired
from shared.clock import iso, utcnow
from shared.errors import AlreadyDecided, EmailNotSent, InvalidRequest, Unavailable
from shared.jsonbody import canonical
from shared.lifecycle.model import Actor
from shared.lifecycle.plan import ensure_may_act
from shared.pauses import load_link
from shared.settings import get_settings
from shared.storage.pauses import get_store
from shared.storage.records import json_field, to_record
from shared.storage.tables import Conflict, Stored, pack_json

logger = logging.getLogger(__name__)

FIELDS = ("approvers", "approver_secrets", "retired_secrets", "reassignments")
MAX_REASSIGNMENTS = 20  # keeps the record within Table storage's limits whatever a link holder does
_ATTEMPTS = 3


def reassign(token_text: str, to: str, comment: str | None, caller, base_url: str, now: datetime | None = None) -> dict:
    """Hand the part of the personal link's approver on to `to`; return the pause's record."""
    now = now or utcnow()
    for _ in range(_ATTEMPTS):
        link = load_link(token_text)  # a link retired meanwhile (another reassignment won) is a 409 here
        changes, new_token = _plan(link, to, comment, caller, now)
        ours = json_field(changes, "reassignments", [])[-1]
        try:
            written, etag = {**link.stored.entity, **changes}, get_store().update(link.pause_id, changes,
                                                                                    link.stored.etag)
        except (Conflict, Unavailable) as failed:
            # A 412 may be the storage SDK's retry of our own write that landed unanswered: read it back.
            current = get_store().get(link.pause_id)
            if (json_field(current.entity, "reassignments", []) or [None])[-1] != ours:
                if isinstance(failed, Unavailable):
                    raise
                continue  # an approval, a decision or another reassignment landed first: look again
            written, etag = current.entity, current.etag
        _tell(link, written, etag, to, new_token, base_url, now)
        logger.info("approver reassigned pause_id=%s", link.pause_id)
        return to_record(written)
    raise AlreadyDecided("This pause keeps changing right now; open the link again.", to_record(link.stored.entity))


def _plan(link, to: str, comment: str | None, caller, now: datetime) -> tuple[dict, str]:
    """Check who may hand what on to whom; return the write that does it and the new personal token."""
    settings, entity = get_settings(), link.stored.entity
    record = to_record(entity)
    if link.approver is None:
        raise InvalidRequest("Only a named approver's personal link can be handed on; this is the shared link.",
                             [{"field": "token", "rule": "personal_link", "message": "must be a personal link"}])
    if settings.approver_sign_in == "easyauth":
        if caller.principal is None:
            raise SignInRequired("Sign in to hand your part on.", record)
        if caller.principal.name != link.approver:
            raise NotYours("someone_else", f"This link is for {link.approver}; you are signed in as "
                                           f"{caller.principal.name}.", record)
    ensure_may_act(entity, Actor.PERSON, now)  # decided, or expired: nothing to hand on
    if len(json_field(entity, "reassignments", []) or []) >= MAX_REASSIGNMENTS:
        raise AlreadyDecided(f"This pause was handed on {MAX_REASSIGNMENTS} times already; it cannot be handed on "
                             "again (an operator can cancel it).", record)
    if any(a.get("approver") == link.approver for a in record["approvals"]):
        raise AlreadyDecided("You approved this already, and an approval cannot be handed on.", record)
    approvers = json_field(entity, "approvers", []) or []
    if to in approvers:
        _refuse("already_approver", f"{to} is an approver of this pause already")
    if to == entity.get("requested_by"):
        _refuse("requester", f"{to} asked for this, so cannot approve it")
    if settings.smtp is None:
        _refuse("smtp_not_configured", "the new approver gets their link by email, and this app has no SMTP server")
    token, digest = tokens.issue(link.pause_id)
    secrets = json_field(entity, "approver_secrets", []) or []
    retired = (json_field(entity, "retired_secrets", []) or []) + [
        [a, h, to] for a, h in secrets if a == link.approver]
    handed = (json_field(entity, "reassignments", []) or []) + [
        {"from": link.approver, "to": to, "at": iso(now), "comment": comment}]
    values = {"approvers": [to if a == link.approver else a for a in approvers],
              "approver_secrets": [[a, h] for a, h in secrets if a != link.approver] + [[to, digest]],
              "retired_secrets": retired, "reassignments": handed}
    return {key: value for name in FIELDS
            for key, value in pack_json(name, canonical(values[name]), over=entity).items()}, token


def _refuse(rule: str, message: str):
    raise InvalidRequest(f"to: {message}.", [{"field": "to", "rule": rule, "message": message}])


def _tell(link, written: dict, etag: str, to: str, token: str, base_url: str, now: datetime) -> None:
    """Email `to` their link; if that fails, undo the reassignment (the old link works again) and say so."""
    from shared.notify import email as mailer

    smtp = get_settings().smtp
    try:
        mailer.send(mailer.config(smtp), mailer.approver_email(written, sender=smtp.sender, to=to,
                                                               links=tokens.decision_links(base_url, token)))
    except (mailer.EmailFailed, ValueError) as failed:
        undone = ("Nothing was changed: your link still works." if _undo(link, written, etag) else
                  f"The reassignment stands, but {to} got no link: open your link's page again later, or ask an "
                  "operator to cancel the pause.")
        raise EmailNotSent(f"The email to {to} could not be sent ({failed}). {undone}") from None
    try:
        get_store().note(link.pause_id, Stored(written, etag),
                         [{"email": [to], "purpose": "reassigned", "at": iso(now), "outcome": "sent"}])
    except Exception:  # done and told: only the record of the email is missing, and the log says so
        logger.exception("reassignment email sent but not recorded pause_id=%s", link.pause_id)


def _undo(link, written: dict, etag: str) -> bool:
    """Put the four fields back as they were, on the pause as it is now, as long as they still hold what
    the reassignment wrote (an approval by someone else meanwhile changes other fields only)."""
    store = get_store()
    for _ in range(_ATTEMPTS):
        before = {key: value for name in FIELDS for key, value in pack_json(
            name, canonical(json_field(link.stored.entity, name, []) or []), over=written).items()}
        try:
            store.update(link.pause_id, before, etag)
            return True
        except Conflict:
            current = store.get(link.pause_id)
            if any(json_field(current.entity, name, []) != json_field(written, name, []) for name in FIELDS):
                break  # something else reassigned or decided meanwhile: leave it be
            written, etag = current.entity, current.etag
        except Exception:
            break
    logger.error("reassignment of pause_id=%s not undone after its email failed", link.pause_id)
    return False
