"""Telling people about a pause that already waits (reminders, escalation): email each named approver their
own fresh links, email listed addresses and post to channels links that work as the shared ones, and say
what to record of each message; owe the channels that refused one a try again later (`owe_again`, posted
by `shared.reposts`).

The app keeps only hashes of the links it handed out, so it can never send a link again: whoever is told
later gets new ones. The caller stores their hashes (`approver_secrets`, `shared_secrets`) in the same
conditional write that claims the message, so a link is valid before anyone can hold it.
"""

import json
import logging
import uuid
from datetime import datetime, timedelta

from shared import tokens
from shared.clock import as_utc, iso
from shared.jsonbody import canonical
from shared.notify import channels as chat
from shared.notify.message import Message, approval_request, asked_for
from shared.settings import get_settings
from shared.storage.due_index import REPOST, DueIndex, get_due_index
from shared.storage.records import json_field
from shared.storage.tables import pack_json

logger = logging.getLogger(__name__)


def new_links(entity: dict, personal: dict, shared: str | None = None) -> dict:
    """The fields that make links issued now valid: `personal` (approver -> hash) joins approver_secrets,
    `shared` (a hash) joins the links that work as the shared one. Written with the claim of the message."""
    written = {}
    if personal:
        secrets = (json_field(entity, "approver_secrets", []) or []) + [[a, h] for a, h in personal.items()]
        written.update(pack_json("approver_secrets", canonical(secrets), over=entity))
    if shared:
        written.update(pack_json("shared_secrets", canonical((json_field(entity, "shared_secrets", []) or [])
                                                             + [shared]), over=entity))
    return written


def past_expiry(entity: dict, now: datetime) -> bool:
    """Whether the pause's links have expired (the timer expires it; nobody is told anything more)."""
    expires_at = entity.get("expires_at")
    return isinstance(expires_at, datetime) and now >= as_utc(expires_at)


def title_of(entity: dict) -> str:
    notification = json_field(entity, "notification", {}) or {}
    return " ".join((notification.get("title") or "").split()) or \
        f"Approval needed: {entity.get('pipeline_name') or 'pipeline'}"


def links_of(entity: dict, token: str) -> dict:
    """A token's approve and cancel links, under the base URL the pause was created with."""
    return tokens.decision_links(entity.get("link_base") or get_settings().public_base_url or "", token)


def email_approvers(entity: dict, fresh: dict, purpose: str, subject: str, now: datetime) -> list:
    """Email each approver in `fresh` (approver -> their new token) their own links; return the entries."""
    return [_email(entity, [approver], links_of(entity, token), purpose, subject, now, you=approver)
            for approver, token in fresh.items()]


def email_shared(entity: dict, addresses: list, token: str, purpose: str, subject: str, now: datetime) -> list:
    """Email `addresses` (one message) links of `token`, which works as the shared link; return the entries."""
    if not addresses:
        return []
    return [_email(entity, list(addresses), links_of(entity, token), purpose, subject, now)]


def _email(entity: dict, to: list, links: dict, purpose: str, subject: str, now: datetime, you=None) -> dict:
    from shared.notify import email as mailer

    smtp = get_settings().smtp
    entry = {"email": to, "purpose": purpose, "at": iso(now)}
    try:
        if smtp is None:
            raise mailer.EmailFailed("no SMTP server is configured (SMTP_HOST)")
        mailer.send(mailer.config(smtp), mailer.stored_email(entity, sender=smtp.sender, to=to, links=links,
                                                             subject=subject, you=you))
        return {**entry, "outcome": "sent"}
    except (mailer.EmailFailed, ValueError) as failed:  # ValueError: SMTP_FROM is not a usable address
        logger.warning("%s email failed pause_id=%s: %s", purpose, entity.get("PartitionKey"), failed)
        return {**entry, "outcome": "failed", "detail": str(failed)[:500]}


def request_message(entity: dict, token: str, heading: str) -> Message:
    """The request as a channel shows it, headed `heading`, with links of `token` (shared-link strength)."""
    links = links_of(entity, token)
    approvers = json_field(entity, "approvers", []) or []
    notification = json_field(entity, "notification", {}) or {}
    return approval_request(
        title=heading, message=notification.get("message"), pipeline_name=entity.get("pipeline_name"),
        factory_name=entity.get("factory_name"), requested_by=entity.get("requested_by"),
        approvers=tuple(approvers), required=entity.get("required_approvals") if approvers else None,
        checks=len(json_field(entity, "checks", []) or []), expires_at=iso(entity.get("expires_at")),
        restart_url=links["restart_url"], cancel_url=links["cancel_url"],
        approved=len(json_field(entity, "approvals", []) or []), asks=asked_for(json_field(entity, "form", None)))


def post(names: list, message: Message, purpose: str, now: datetime, again: list | None = None) -> list:
    """Post `message` to each channel once (a lost answer is `unknown`, never posted again); return the entries.
    Each channel that refused (or throttled) is added to `again` as (name, its Retry-After or None)."""
    settings = get_settings()
    entries = []
    for name in names:
        entry = {"channel": name, "purpose": purpose, "at": iso(now)}
        try:
            chat.post(chat.channel(name, settings), message, settings)
            entries.append({**entry, "outcome": "sent"})
            continue
        except chat.ChannelUnusable as unusable:  # a setting not resolved yet (a Key Vault reference): a refusal
            outcome, detail, retry_after = "failed", str(unusable), None
        except chat.NotPosted as failed:
            logger.warning("%s post to channel %s failed: %s (%s)", purpose, name, failed.detail, failed.outcome)
            outcome, detail, retry_after = failed.outcome, failed.detail, failed.retry_after
        entries.append({**entry, "outcome": outcome, "detail": detail[:500]})
        if outcome == "failed" and again is not None:
            again.append((name, retry_after))
    return entries


ATTEMPTS = 3          # a channel that refuses a reminder or an escalation is tried this often in all
THROTTLED_TRIES = 10  # one that keeps throttling (429), this often
RETRY_SECONDS = 60    # after a refusal, before the next try


def owe_again(pause_id: str, purpose: str, number: int, again: list, tries: int, now: datetime) -> bool:
    """Owe the channels in `again` (from `post`) the same message later: after the longest Retry-After, or
    RETRY_SECONDS after a refusal; a bounded number of tries. A row of the due index (`shared.reposts`).
    Return whether one is owed."""
    throttled = [seconds for _, seconds in again if seconds is not None]
    if not again or tries >= (THROTTLED_TRIES if len(throttled) == len(again) else ATTEMPTS):
        return False
    wait = max(max(throttled, default=0), 1) if len(throttled) == len(again) else RETRY_SECONDS
    partition, row = DueIndex.keys(uuid.uuid4().hex, now + timedelta(seconds=wait))
    get_due_index().add_row({"PartitionKey": partition, "RowKey": row, "kind": REPOST, "pause_id": pause_id,
                             "purpose": purpose, "number": number, "tries": tries,
                             "channels": json.dumps([name for name, _ in again])})
    return True
