"""Telling people about a pause that already waits (reminders, escalation): email each named approver their
own fresh links, email listed addresses and post to channels links that work as the shared ones, and say
what to record of each message.

The app keeps only hashes of the links it handed out, so it can never send a link again: whoever is told
later gets new ones. The caller stores their hashes (`approver_secrets`, `shared_secrets`) in the same
conditional write that claims the message, so a link is valid before anyone can hold it.
"""

import logging
from datetime import datetime

from shared import tokens
from shared.clock import iso
from shared.notify import channels as chat
from shared.notify.message import Message, approval_request
from shared.settings import get_settings
from shared.storage.records import json_field

logger = logging.getLogger(__name__)


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
        approved=len(json_field(entity, "approvals", []) or []))


def post(names: list, message: Message, purpose: str, now: datetime) -> list:
    """Post `message` to each channel once (a lost answer is `unknown`, never posted again); return the entries."""
    settings = get_settings()
    entries = []
    for name in names:
        entry = {"channel": name, "purpose": purpose, "at": iso(now)}
        try:
            chat.post(chat.channel(name, settings), message, settings)
            entries.append({**entry, "outcome": "sent"})
        except chat.ChannelUnusable as unusable:
            entries.append({**entry, "outcome": "failed", "detail": str(unusable)[:500]})
        except chat.NotPosted as failed:
            logger.warning("%s post to channel %s failed: %s (%s)", purpose, name, failed.detail, failed.outcome)
            entries.append({**entry, "outcome": failed.outcome, "detail": failed.detail[:500]})
    return entries
