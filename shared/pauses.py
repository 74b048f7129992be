"""Pauses for people and pipelines: create one, show it, decide it through its link, list them.

The rules of deciding live in `shared.lifecycle` (the table) and `shared.decisions` (the one
engine); the timer is `shared.sweep`. This module checks who is asking and hands over.
"""

import logging
from datetime import datetime, timedelta

from . import callback, identity, tokens
from .adf import PipelineTarget, get_adf
from .decisions import Audit, decide, ensure_may_act, is_stale, reconcile
from .errors import AlreadyDecided, EmailNotSent, Forbidden, InvalidRequest, NotFound
from .jsonbody import canonical
from .lifecycle import CLAIMED, Action, Actor, Status
from .outside import OutsideCallFailed
from .records import iso, to_record, utcnow
from .settings import ROUTE_PREFIX, get_settings
from .store import add_pause, get_store, pack_json
from .validation import Decision, PauseRequest

logger = logging.getLogger(__name__)

__all__ = ["Audit", "approve", "cancel", "create_pause", "get_pause", "list_pauses", "open_pause"]


def links(base_url: str, pause_id: str, token: str) -> dict:
    """The URLs handed out for a new pause."""
    api = f"{base_url.rstrip('/')}/{ROUTE_PREFIX}"
    return {"restart_url": f"{api}/restart/{token}", "cancel_url": f"{api}/cancel/{token}",
            "status_url": f"{api}/pauses/{pause_id}"}


def _factory_allowed(patterns, target: PauseRequest) -> bool:
    if not patterns:
        return True
    wanted = (target.subscription_id.lower(), target.resource_group.lower(), target.factory_name.lower())
    for pattern in patterns:
        parts = [p.strip().lower() for p in pattern.split("/")]
        if len(parts) == 3 and all(p in ("*", w) for p, w in zip(parts, wanted)):
            return True
    return False


def _check_target(request: PauseRequest, settings) -> None:
    """Refuse, before anything is stored, what could only fail at approval time."""
    if request.callback_uri:
        callback.check(request.callback_uri)
        return
    if not _factory_allowed(settings.allowed_factories, request):
        raise Forbidden("This app may not start pipelines in that factory (see ALLOWED_FACTORIES).")
    identity.check_tenant(request.tenant_id, settings)
    if settings.check_pipeline_exists:
        target = PipelineTarget(request.subscription_id, request.resource_group, request.factory_name,
                                request.pipeline_name, request.tenant_id)
        problem = get_adf().check_target(target)
        if problem is not None:
            raise InvalidRequest(f"{problem.field} {problem.message}.",
                                 [{"field": problem.field, "rule": problem.rule, "message": problem.message}])


def create_pause(request: PauseRequest, base_url: str, now: datetime | None = None) -> dict:
    """Store a new pending pause, send the approval email if asked, return its token and links."""
    settings = get_settings()
    if request.notify and settings.smtp is None:
        raise InvalidRequest("Email was asked for, but this app has no SMTP server configured (SMTP_HOST).",
                             [{"field": "notify", "rule": "smtp_not_configured",
                               "message": "the app cannot send email: SMTP_HOST and SMTP_FROM are not set"}])
    _check_target(request, settings)
    now = now or utcnow()
    pause_id = tokens.new_pause_id()
    token, secret_hash = tokens.issue(pause_id)
    expires_at = now + timedelta(seconds=request.expires_in)
    properties = {
        "status": Status.PENDING.value, "mode": request.mode, "secret_hash": secret_hash,
        "subscription_id": request.subscription_id, "resource_group": request.resource_group,
        "factory_name": request.factory_name, "pipeline_name": request.pipeline_name,
        "tenant_id": request.tenant_id, "on_timeout": request.on_timeout, "callback_uri": request.callback_uri,
        "created_at": now, "expires_at": expires_at,
        **pack_json("parameters", canonical(request.parameters)),
        **pack_json("data", request.data_json),
        **pack_json("notification", canonical(request.notification)),
        **pack_json("source", None if request.source is None else canonical(request.source)),
    }
    # The pause and its due-index row are written at once; if the index row fails the pause
    # is removed again, so no pause exists that the timer cannot find.
    etag = add_pause(pause_id, properties, expires_at)
    logger.info("pause created pause_id=%s mode=%s pipeline=%s/%s expires_at=%s", pause_id, request.mode,
                request.factory_name, request.pipeline_name, iso(expires_at))
    created = {"pause_id": pause_id, "token": token, "status": Status.PENDING.value, "expires_at": iso(expires_at),
               **links(base_url, pause_id, token)}
    if request.notify:
        _send_approval_email(settings, request, created, etag, now)
    return created


def _send_approval_email(settings, request: PauseRequest, created: dict, etag: str, now: datetime) -> None:
    """Email the links; if that fails, cancel the pause so no live link is left behind."""
    from . import mailer

    smtp = settings.smtp
    config = mailer.SmtpConfig(host=smtp.host, port=smtp.port, username=smtp.username, password=smtp.password,
                               sender=smtp.sender, starttls=smtp.starttls)
    try:
        message = mailer.build_approval_email(
            sender=smtp.sender, to=request.notify["email"], subject=request.notify.get("subject"),
            title=request.notification.get("title"), message=request.notification.get("message"),
            pipeline_name=request.pipeline_name, factory_name=request.factory_name,
            expires_at=created["expires_at"], restart_url=created["restart_url"], cancel_url=created["cancel_url"])
        mailer.send(config, message)
    except (mailer.EmailFailed, ValueError) as exc:  # ValueError: SMTP_FROM is not a usable address
        logger.warning("approval email failed pause_id=%s: %s", created["pause_id"], exc)
        # Nobody holds the links yet, so nothing can race this: no callback, the pause just ends.
        get_store().update(created["pause_id"], {"status": Status.CANCELLED.value, "decided_at": now,
                                                 "decided_by": "app",
                                                 "reason": "The approval email could not be sent."}, etag)
        raise EmailNotSent(f"The approval email could not be sent ({exc}). The pause was cancelled, so no "
                           "live link exists; fix the email settings and pause again.") from exc
    logger.info("approval email sent pause_id=%s recipients=%d", created["pause_id"], len(request.notify["email"]))


def _load(token_text: str):
    """Find the pause a token belongs to, checking the secret; any mismatch is a plain 404."""
    try:
        token = tokens.parse(token_text)
    except tokens.MalformedToken:
        raise NotFound("This link is not valid. Check that it was copied completely.") from None
    stored = get_store().get(token.pause_id)
    if not tokens.secret_matches(token.secret, stored.entity.get("secret_hash", "")):
        raise NotFound("This link is not valid. Check that it was copied completely.")
    return token.pause_id, stored


def open_pause(token_text: str, now: datetime | None = None) -> dict:
    """Return the pause behind a link for its confirmation page; never changes anything."""
    _, stored = _load(token_text)
    ensure_may_act(stored.entity, Actor.PERSON, now or utcnow())
    return to_record(stored.entity)


def _person_decides(token_text: str, action: Action, decision: Decision, audit: Audit, now: datetime | None) -> dict:
    now = now or utcnow()
    pause_id, stored = _load(token_text)
    if stored.entity.get("status") in CLAIMED and is_stale(stored.entity, now):
        # A claim nobody finished: settle it first (the next click reconciles, the contract says).
        try:
            stored = reconcile(pause_id, stored, now)
        except OutsideCallFailed as failure:
            raise AlreadyDecided("An earlier decision on this pause was interrupted and Data Factory cannot be asked "
                                 f"about it right now ({failure.code}); it is checked again automatically.",
                                 to_record(stored.entity)) from failure
    return decide(pause_id, stored, action, decision, audit, now)


def approve(token_text: str, decision: Decision, audit: Audit, now: datetime | None = None) -> dict:
    """Claim the pause and continue the pipeline exactly once."""
    return _person_decides(token_text, Action.APPROVE, decision, audit, now)


def cancel(token_text: str, decision: Decision, audit: Audit, now: datetime | None = None) -> dict:
    """Cancel the pause; in callback mode the waiting activity fails with PauseCancelled."""
    return _person_decides(token_text, Action.CANCEL, decision, audit, now)


def get_pause(pause_id: str) -> dict:
    """The record of one pause, for pipelines and operators holding the function key."""
    if not tokens.PAUSE_ID_PATTERN.fullmatch(pause_id or ""):
        raise NotFound("No pause has that id.")
    return to_record(get_store().get(pause_id).entity)


def list_pauses(status: str | None, limit: int, cursor: str | None) -> dict:
    """One page of pause records (in storage order), with a cursor for the next page."""
    page = get_store().page(status, limit, cursor)
    return {"items": [to_record(e) for e in page.entities], "cursor": page.cursor}
