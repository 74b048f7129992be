"""Telling people a new pause waits for them: the approval email and the chat channels' posts.

A pause exists only if everyone asked for was told. What could only fail later is refused first
(`check`: no SMTP server, a channel not set up, approvers nobody reaches); when an email or a post
fails after the pause was stored, a row of the lifecycle cancels it (NOT_NOTIFIED: nobody holds a
live link, and a WebHook waiting on it gets this request's 502 instead of a callback). Every post
is recorded on the pause (`notifications`).
"""

import logging
from datetime import datetime

from shared import escalations, people, reminders
from shared.clients import built_once
from shared.clock import iso, utcnow
from shared.errors import AlreadyDecided, ChannelNotSent, EmailNotSent, InvalidRequest
from shared.jsonbody import canonical
from shared.lifecycle.engine import decide
from shared.lifecycle.model import APP, FINAL, Action, Audit
from shared.notify import channels as chat
from shared.notify.message import approval_request, asked_for
from shared.storage.records import json_field
from shared.storage.due_index import FOLLOWUP, get_due_index
from shared.storage.pauses import get_store
from shared.storage.tables import Stored, pack_json
from shared.validation import Decision, PauseRequest

logger = logging.getLogger(__name__)


def check(request: PauseRequest, settings) -> dict:
    """Refuse, before anything is stored, a pause that could not be told to everyone asked for; return
    the channels it posts to (name -> channel)."""
    if request.emails and settings.smtp is None:
        raise InvalidRequest("Email was asked for, but this app has no SMTP server configured (SMTP_HOST).",
                             [{"field": "notify", "rule": "smtp_not_configured",
                               "message": "the app cannot send email: SMTP_HOST and SMTP_FROM are not set"}])
    _check_reachable(request, settings)
    escalations.check(request, settings)
    found = {}
    for name in request.channels:
        try:
            found[name] = chat.channel(name, settings)
        except chat.ChannelUnusable as unusable:
            raise InvalidRequest(f"notify.channels: {unusable}.", [
                {"field": "notify.channels", "rule": "channel", "message": str(unusable)}]) from None
    return found


def _emailed(request: PauseRequest) -> set:
    """The addresses the approval email goes to (lower case); `notify.email` defaults to the approvers."""
    if not request.emails:
        return set()
    return {people.key(address) for address in request.notify.get("email") or request.deciders}


def _check_reachable(request: PauseRequest, settings) -> None:
    """Refuse a pause some named approver could never decide: without sign-in a named approver decides
    only through their personal link, so each must be emailed it or the caller must ask for the links;
    and a channel, read by many, carries only the shared links, which such approvers cannot use."""
    if not request.approvers or settings.approver_sign_in == "easyauth":
        return
    if request.channels:
        message = ("carry only the shared links, and without sign-in named approvers decide only through their "
                   "personal links: email those (notify.email) or turn sign-in on (APPROVER_SIGN_IN=easyauth)")
        raise InvalidRequest(f"notify.channels {message}.", [{"field": "notify.channels",
                                                              "rule": "approvers_need_sign_in", "message": message}])
    if request.return_approver_links:
        return
    emailed = _emailed(request)
    unreached = [approver for approver in request.deciders if approver not in emailed]
    if unreached:
        message = (f"would not reach {', '.join(unreached)}: without sign-in a named approver decides only through "
                   "their personal link, so email it (notify) or ask for the links (return_approver_links) and "
                   "deliver them yourself")
        raise InvalidRequest(f"notify {message}.", [{"field": "notify", "rule": "approvers_unreached",
                                                     "message": message}])


def tell(request: PauseRequest, settings, created: dict, personal: dict, stored: Stored, channels: dict,
         now: datetime) -> None:
    """Email and post the new pause, and record every message on it (one write); if any fails, cancel
    it (recording what was sent) and raise the 502 that says which."""
    sent = _send_email(settings, request, created, personal, stored, now) if request.emails else []
    if channels:
        sent = _post(settings, request, created, stored, channels, now, sent)
    pause_id = stored.entity["PartitionKey"]
    if sent:
        _keep(pause_id, stored, sent)
    for later in (reminders, escalations):
        try:
            later.schedule(request, pause_id, now)
        except Exception:  # the pause and its links stand; only this later work is lost, and the log says so
            logger.exception("could not schedule the %s of pause_id=%s", later.KIND, pause_id)


def _keep(pause_id: str, stored: Stored, sent: list) -> None:
    """Record the messages on the pause. They were sent: a failure here is logged, never the caller's error.
    A pause decided while they were being sent owes its channels the follow-up the timer may already
    have looked for and not found owed."""
    try:
        written = get_store().note(pause_id, stored, sent)
    except Exception:
        logger.exception("messages sent but not recorded pause_id=%s", pause_id)
        return
    if written is None:
        logger.error("messages sent but not recorded pause_id=%s (the pause kept changing)", pause_id)
    elif written.get("status") in FINAL and any(entry.get("channel") for entry in sent):
        try:
            get_due_index().add_work(FOLLOWUP, pause_id, utcnow())
        except Exception:
            logger.exception("could not schedule the chat follow-up of pause_id=%s", pause_id)


def _cancel(stored: Stored, why: str, now: datetime, sent: list) -> str:
    """End a pause nobody could be told about, recording what was sent; say what became of it."""
    pause_id = stored.entity["PartitionKey"]
    try:
        decide(pause_id, stored, Action.NOT_NOTIFIED, Decision(comment=why), Audit(decided_by=APP), now,
               also=pack_json("notifications", canonical(sent)))
    except AlreadyDecided as decided:  # the timer (checks, a quick expiry) or a person got there meanwhile
        try:
            _keep(pause_id, get_store().get(pause_id), sent)
        except Exception:  # only the record of what was sent is missing; the answer must still say what happened
            logger.exception("messages sent but not recorded pause_id=%s", pause_id)
        status = decided.pause["status"]
        if status in FINAL:
            return f"meanwhile the pause was decided ({status}), so do not pause again for it"
        return f"meanwhile the pause became {status}"
    except Exception:  # storage failing: whoever was told holds live links until it expires or is decided
        logger.exception("could not cancel pause_id=%s after a failed notice", pause_id)
        return ("the pause could not be cancelled just now (storage failed), so the links already sent stay "
                "live until it is decided or expires")
    return "the pause was cancelled, so no live link exists"


def _emails(request: PauseRequest, created: dict, personal: dict) -> list[tuple[list, dict, dict | None]]:
    """(recipients, links, quorum) per email: each approver gets their own links; anyone else listed
    in notify.email gets the shared ones."""
    listed = _emailed(request)
    quorum = {"required": request.required_approvals, "approvers": request.deciders} if personal else None
    emails = [([approver], link, {**quorum, "you": approver}) for approver, link in personal.items()
              if approver in listed]
    others = [address for address in request.notify.get("email") or () if people.key(address) not in personal]
    if others:
        emails.append((others, created, quorum))
    return emails


def _send_email(settings, request: PauseRequest, created: dict, personal: dict, stored: Stored,
                now: datetime) -> list:
    """Email the links and return what to record; if that fails, cancel the pause so no live link is
    left behind."""
    from shared.notify import email as mailer

    smtp = settings.smtp
    config = mailer.config(smtp)
    emails, sent = _emails(request, created, personal), []
    try:
        for recipients, links_, quorum in emails:
            message = mailer.build_approval_email(
                sender=smtp.sender, to=recipients, subject=request.notify.get("subject"),
                title=request.notification.get("title"), message=request.notification.get("message"),
                pipeline_name=request.pipeline_name, factory_name=request.factory_name,
                expires_at=created["expires_at"], restart_url=links_["restart_url"], cancel_url=links_["cancel_url"],
                quorum=quorum, requested_by=request.requested_by, checks=len(request.checks or ()),
                asks=asked_for(json_field(stored.entity, "form", None)))
            mailer.send(config, message)
            sent.append({"email": recipients, "purpose": "request", "at": iso(utcnow()), "outcome": "sent"})
    except (mailer.EmailFailed, ValueError) as exc:  # ValueError: SMTP_FROM is not a usable address
        logger.warning("approval email failed pause_id=%s: %s", created["pause_id"], exc)
        failed = [recipients for recipients, _, _ in emails][len(sent)]
        sent.append({"email": failed, "purpose": "request", "at": iso(utcnow()), "outcome": "failed",
                     "detail": str(exc)[:500]})
        after = _cancel(stored, "The approval email could not be sent.", now, sent)
        raise EmailNotSent(f"The approval email could not be sent ({exc}); {after}. Fix the email settings "
                           "and pause again.") from exc
    logger.info("approval email sent pause_id=%s emails=%d", created["pause_id"], len(emails))
    return sent


@built_once
def _posters():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=16, thread_name_prefix="channel-post")


def _post(settings, request: PauseRequest, created: dict, stored: Stored, channels: dict, now: datetime,
          sent: list) -> list:
    """Post the request, with the shared links, to each channel; return `sent` with the posts added."""
    message = approval_request(
        title=request.notification.get("title"), message=request.notification.get("message"),
        pipeline_name=request.pipeline_name, factory_name=request.factory_name, requested_by=request.requested_by,
        approvers=tuple(request.deciders), required=request.required_approvals if request.approvers else None,
        checks=len(request.checks or ()), expires_at=created["expires_at"], restart_url=created["restart_url"],
        cancel_url=created["cancel_url"], asks=asked_for(json_field(stored.entity, "form", None)))
    posts = list(sent)
    # All at once: one slow channel (up to its timeouts and a 429's wait) does not add to another's,
    # so the caller (an ADF Web activity, with its own timeout) hears back within one post's time.
    started = {name: _posters().submit(chat.post, target, message, settings) for name, target in channels.items()}
    failures = []
    for name, posting in started.items():
        entry = {"channel": name, "purpose": "request"}
        try:
            posting.result()
            posts.append({**entry, "at": iso(utcnow()), "outcome": "sent"})
        except Exception as exc:  # NotPosted says how it failed; anything else left its fate unknown
            failed = exc if isinstance(exc, chat.NotPosted) else chat.NotPosted(name, "unknown", type(exc).__name__)
            logger.warning("channel post failed pause_id=%s: %s (%s)", created["pause_id"], failed, failed.outcome)
            posts.append({**entry, "at": iso(utcnow()), "outcome": failed.outcome, "detail": failed.detail[:500]})
            failures.append(failed)
    if failures:  # every post is recorded, also those that went through next to the failed one
        first = failures[0]
        after = _cancel(stored, f"The request could not be posted to channel {first.channel}.", now, posts)
        raise ChannelNotSent(f"Channel {first.channel} did not take the request ({first.detail}); {after}. Fix the "
                             f"channel (app setting {chat.setting_name(first.channel)}) and pause again.")
    return posts
