"""The pause lifecycle: create, show, approve, cancel, and settle on expiry.

Every decision first *claims* the pause with a conditional write on the entity's ETag, so
when many people (or one impatient double click, or two timer instances) act at once, exactly
one wins and the rest get 409. Only the winner then calls out (ADF or the WebHook callback);
if that call fails the pause is given back (`pending`) and the same link works again.
"""

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from . import callback, tokens
from .adf import PipelineTarget, TriggerFailed, get_trigger
from .errors import (AlreadyDecided, EmailNotSent, Expired, Forbidden, InvalidRequest, NotFound, Unavailable,
                     UpstreamFailed)
from .jsonbody import canonical
from .settings import ROUTE_PREFIX, get_settings
from .store import Conflict, add_pause, get_expiry_index, get_store, pack_json, unpack_json
from .validation import Decision, PauseRequest

logger = logging.getLogger(__name__)

_CLAIM_ATTEMPTS = 3
# After this many failed attempts to settle an expired pause (ADF or callback down), give up.
MAX_TIMEOUT_ATTEMPTS = 5
TIMER = "expiry timer"
# A claim older than this whose outcome was never recorded belonged to a process that died.
STALE_CLAIM = timedelta(minutes=10)


@dataclass(frozen=True)
class Audit:
    """Who acted, as far as the request tells."""

    decided_by: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


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


def create_pause(request: PauseRequest, base_url: str, now: datetime | None = None) -> dict:
    """Store a new pending pause, send the approval email if asked, return its token and links."""
    settings = get_settings()
    if request.callback_uri:
        callback.check_uri(request.callback_uri, settings.callback_allowed_hosts)
    elif not _factory_allowed(settings.allowed_factories, request):
        raise Forbidden("This app may not start pipelines in that factory (see ALLOWED_FACTORIES).")
    if request.notify and settings.smtp is None:
        raise InvalidRequest("Email was asked for, but this app has no SMTP server configured (SMTP_HOST).",
                             [{"field": "notify", "rule": "smtp_not_configured",
                               "message": "the app cannot send email: SMTP_HOST and SMTP_FROM are not set"}])
    now = now or utcnow()
    pause_id = tokens.new_pause_id()
    token, secret_hash = tokens.issue(pause_id)
    expires_at = now + timedelta(seconds=request.expires_in)
    properties = {
        "status": "pending", "mode": request.mode, "secret_hash": secret_hash,
        "subscription_id": request.subscription_id, "resource_group": request.resource_group,
        "factory_name": request.factory_name, "pipeline_name": request.pipeline_name,
        "tenant_id": request.tenant_id, "on_timeout": request.on_timeout, "callback_uri": request.callback_uri,
        "created_at": now, "expires_at": expires_at,
        **pack_json("parameters", canonical(request.parameters)),
        **pack_json("data", request.data_json),
        **pack_json("notification", canonical(request.notification)),
        **pack_json("source", None if request.source is None else canonical(request.source)),
    }
    # The pause and its expiry-index row are written at once; if the index row fails the pause
    # is removed again, so no pause exists that the expiry timer cannot find.
    etag = add_pause(pause_id, properties, expires_at)
    logger.info("pause created pause_id=%s mode=%s pipeline=%s/%s expires_at=%s", pause_id, request.mode,
                request.factory_name, request.pipeline_name, iso(expires_at))
    created = {"pause_id": pause_id, "token": token, "status": "pending", "expires_at": iso(expires_at),
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
        get_store().update(created["pause_id"], {"status": "cancelled", "decided_at": now, "decided_by": "app",
                                                 "reason": "The approval email could not be sent."}, etag)
        raise EmailNotSent(f"The approval email could not be sent ({exc}). The pause was cancelled, so no "
                           "live link exists; fix the email settings and pause again.") from exc
    logger.info("approval email sent pause_id=%s recipients=%d", created["pause_id"], len(request.notify["email"]))


def _json_field(entity: dict, name: str, default=None):
    text = unpack_json(entity, name)
    return default if text is None else json.loads(text)


def to_record(entity: dict) -> dict:
    """The public view of a stored pause: everything but the secret hash."""
    return {
        "pause_id": entity["PartitionKey"],
        "status": entity.get("status"),
        "mode": entity.get("mode"),
        "tenant_id": entity.get("tenant_id"),
        "subscription_id": entity.get("subscription_id"),
        "resource_group": entity.get("resource_group"),
        "factory_name": entity.get("factory_name"),
        "pipeline_name": entity.get("pipeline_name"),
        "parameters": _json_field(entity, "parameters", {}),
        "data": _json_field(entity, "data"),
        "on_timeout": entity.get("on_timeout"),
        "created_at": iso(entity.get("created_at")),
        "expires_at": iso(entity.get("expires_at")),
        "decided_at": iso(entity.get("decided_at")),
        "decided_by": entity.get("decided_by"),
        "comment": entity.get("comment"),
        "reason": entity.get("reason"),
        "input": _json_field(entity, "input"),
        "run_id": entity.get("run_id"),
        "client_ip": entity.get("client_ip"),
        "user_agent": entity.get("user_agent"),
        "last_error": entity.get("last_error"),
        "notification": _json_field(entity, "notification", {}),
        "source": _json_field(entity, "source"),
    }


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


_DECIDED_WORDS = {
    "restarting": "is being restarted right now",
    "restarted": "was already approved and restarted",
    "cancelled": "was already cancelled",
    "expired": "has expired",
    "failed": "has failed",
}


def _ensure_open(entity: dict, now: datetime, *, expired_ok: bool = False) -> None:
    """Raise AlreadyDecided or Expired unless the pause can still be decided.

    People may act until `expires_at`; the timer (`expired_ok`) only after it.
    """
    status = entity.get("status")
    if status != "pending":
        record = to_record(entity)
        when = f" at {record['decided_at']}" if record["decided_at"] else ""
        raise AlreadyDecided(f"This pause {_DECIDED_WORDS.get(status, status)}{when}.", record)
    if expired_ok:
        if now < entity["expires_at"]:
            raise AlreadyDecided("This pause has not expired yet.", to_record(entity))
    elif now >= entity["expires_at"]:
        raise Expired(f"This pause expired at {iso(entity['expires_at'])}; nothing can be started from "
                      "this link any more.", to_record(entity))


def open_pause(token_text: str, now: datetime | None = None) -> dict:
    """Return the pause behind a link for its confirmation page; never changes anything."""
    _, stored = _load(token_text)
    _ensure_open(stored.entity, now or utcnow())
    return to_record(stored.entity)


def _decision_fields(decision: Decision, audit: Audit, now: datetime, text_field: str) -> dict:
    return {
        "decided_at": now, text_field: decision.comment,
        **pack_json("input", None if decision.input is None else canonical(decision.input)),
        "decided_by": audit.decided_by, "client_ip": audit.client_ip,
        "user_agent": (audit.user_agent or "")[:512] or None,
    }


def _claim(pause_id: str, stored, changes: dict, now: datetime, *, expired_ok: bool = False):
    """Conditionally apply `changes` to a pending pause; return (new ETag, entity read).

    A lost race re-reads: if the winner has decided, this caller gets 409; if the winner
    gave the pause back (ADF failed), this caller may try again.
    """
    store = get_store()
    for _ in range(_CLAIM_ATTEMPTS):
        _ensure_open(stored.entity, now, expired_ok=expired_ok)
        try:
            return store.update(pause_id, changes, stored.etag), stored.entity
        except Conflict:
            stored = store.get(pause_id)
    _ensure_open(stored.entity, now, expired_ok=expired_ok)
    raise AlreadyDecided("This pause is being decided by someone else right now.", to_record(stored.entity))


def _settle(pause_id: str, stored, now: datetime, *, claim_status: str, final_status: str, call, final: dict,
            expired_ok: bool = False) -> dict:
    """Claim the pause, make the one outside call, then record the outcome.

    `call(entity)` starts the run or calls back and returns fields to record (e.g. the run id);
    if it raises TriggerFailed or CallbackFailed the pause goes back to `pending` (502).
    """
    store = get_store()
    etag, entity = _claim(pause_id, stored, {"status": claim_status, "claimed_at": now}, now, expired_ok=expired_ok)
    try:
        outcome = call(entity)
    except Forbidden:
        # The callback host is no longer allowed: give the pause back untouched and say so.
        store.update(pause_id, {"status": "pending"}, etag)
        raise
    except (TriggerFailed, callback.CallbackFailed) as exc:
        code = getattr(exc, "code", None) or ("CallbackFailed" if isinstance(exc, callback.CallbackFailed) else "Error")
        attempts = int(entity.get("attempts") or 0) + 1
        logger.warning("outside call failed pause_id=%s action=%s attempt=%d code=%s detail=%s", pause_id,
                       final_status, attempts, code, exc)
        # Give the pause back so the same link works again once the other side does.
        store.update(pause_id, {"status": "pending", "attempts": attempts,
                                "last_error": f"{code}: {exc}"[:1000]}, etag)
        target = "The callback to Data Factory" if entity.get("mode") == "callback" else "Azure Data Factory"
        raise UpstreamFailed(f"{target} failed ({code}). Nothing was started; the link still works, so try "
                             "again in a moment.", attempts=attempts) from exc
    changes = {"status": final_status, **final, **outcome}
    try:
        store.update(pause_id, changes, etag)
    except (Conflict, Unavailable):
        # The outside call happened, so the caller gets success; the record keeps the claim status.
        logger.error("outcome not recorded pause_id=%s status=%s changes=%s", pause_id, final_status,
                     sorted(changes))
    logger.info("pause decided pause_id=%s action=%s outcome=%s", pause_id, final_status, outcome or "-")
    return to_record({**entity, **changes})


def _restart_call(pause_id: str, decision: Decision):
    """The outside call of an approval: start the pipeline, or call the waiting WebHook back."""
    def call(entity: dict) -> dict:
        if entity.get("mode") == "callback":
            record = {**to_record(entity), "status": "restarted", "comment": decision.comment,
                      "input": decision.input}
            _call_back(entity, callback.approved_payload(record))
            return {}
        target = _target(entity)
        parameters = {**_json_field(entity, "parameters", {}), "pause_id": pause_id}
        started = utcnow()
        try:
            return {"run_id": get_trigger().start_run(target, parameters)}
        except TriggerFailed as exc:
            if not exc.ambiguous:
                raise
            # The request reached ADF but no answer came back: if the run exists, keep it, or
            # giving the pause back would let the next click start a second one.
            run_id = get_trigger().find_run(target, pause_id, since=started - timedelta(minutes=1))
            if run_id is None:
                raise
            logger.warning("createRun gave no answer but the run exists pause_id=%s run_id=%s", pause_id, run_id)
            return {"run_id": run_id}
    return call


def _target(entity: dict) -> PipelineTarget:
    return PipelineTarget(entity["subscription_id"], entity["resource_group"], entity["factory_name"],
                          entity["pipeline_name"], entity.get("tenant_id"))


def _failure_call(code: str, message: str):
    """The outside call of a cancel or expiry: fail the waiting WebHook activity (callback mode only)."""
    def call(entity: dict) -> dict:
        if entity.get("mode") == "callback":
            _call_back(entity, callback.failed_payload(code, message))
        return {}
    return call


def _call_back(entity: dict, payload: dict) -> None:
    # Checked again at call time: the allow-list may have been narrowed since the pause was made.
    uri = callback.check_uri(entity.get("callback_uri"), get_settings().callback_allowed_hosts)
    callback.post(uri, payload)


def approve(token_text: str, decision: Decision, audit: Audit, now: datetime | None = None) -> dict:
    """Claim the pause and continue the pipeline exactly once."""
    now = now or utcnow()
    pause_id, stored = _load(token_text)
    return _settle(pause_id, stored, now, claim_status="restarting", final_status="restarted",
                   call=_restart_call(pause_id, decision), final=_decision_fields(decision, audit, now, "comment"))


def cancel(token_text: str, decision: Decision, audit: Audit, now: datetime | None = None) -> dict:
    """Cancel the pause; in callback mode the waiting activity fails with PauseCancelled."""
    now = now or utcnow()
    pause_id, stored = _load(token_text)
    who = audit.decided_by or "the approver"
    message = decision.comment or f"Cancelled by {who}."
    return _settle(pause_id, stored, now, claim_status="cancelled", final_status="cancelled",
                   call=_failure_call("PauseCancelled", message), final=_decision_fields(decision, audit, now, "reason"))


def settle_expired(pause_id: str, now: datetime) -> str:
    """Settle one pause past its expiry by its `on_timeout`; return what happened."""
    stored = get_store().get(pause_id)
    entity = stored.entity
    if entity.get("status") == "restarting" and now - entity.get("claimed_at", now) > STALE_CLAIM:
        outcome = _reconcile(pause_id, stored, now)
        if outcome != "released":
            return outcome
        stored = get_store().get(pause_id)
        entity = stored.entity
    if entity.get("status") != "pending":
        return "already_settled"
    if now < entity["expires_at"]:
        return "not_due"
    audit = Audit(decided_by=TIMER)
    try:
        if entity.get("on_timeout") == "restart":
            _settle(pause_id, stored, now, claim_status="restarting", final_status="restarted", expired_ok=True,
                    call=_restart_call(pause_id, Decision()), final=_decision_fields(Decision(), audit, now, "comment"))
            return "restarted"
        message = f"Nobody decided before {iso(entity['expires_at'])}."
        _settle(pause_id, stored, now, claim_status="expired", final_status="expired", expired_ok=True,
                call=_failure_call("PauseExpired", message),
                final={**_decision_fields(Decision(comment=message), audit, now, "reason")})
        return "expired"
    except UpstreamFailed as exc:
        if exc.extra.get("attempts", 0) < MAX_TIMEOUT_ATTEMPTS:
            return "retry"
        _give_up(pause_id, now)
        return "failed"


def _reconcile(pause_id: str, stored, now: datetime) -> str:
    """Settle a claim whose process died before recording the outcome (still `restarting`).

    Restart mode asks ADF whether the run was started: if so it is recorded, else the claim is
    released and the pause settles by its policy. A callback's outcome cannot be asked for, so
    such a pause is marked failed for a person to look at.
    """
    entity = stored.entity
    store = get_store()
    if entity.get("mode") == "callback":
        store.update(pause_id, {"status": "failed", "decided_at": now, "decided_by": TIMER,
                                "last_error": "The approval was interrupted; the callback may not have been made."},
                     stored.etag)
        return "failed"
    try:
        run_id = get_trigger().find_run(_target(entity), pause_id, since=entity["claimed_at"] - timedelta(minutes=1))
    except TriggerFailed:
        return "retry"
    if run_id:
        store.update(pause_id, {"status": "restarted", "run_id": run_id, "decided_at": entity["claimed_at"]},
                     stored.etag)
        logger.warning("interrupted approval reconciled pause_id=%s run_id=%s", pause_id, run_id)
        return "reconciled"
    store.update(pause_id, {"status": "pending"}, stored.etag)
    return "released"


def _give_up(pause_id: str, now: datetime) -> None:
    stored = get_store().get(pause_id)
    try:
        _claim(pause_id, stored, {"status": "failed", "decided_at": now, "decided_by": TIMER}, now, expired_ok=True)
        logger.error("pause failed pause_id=%s after %d attempts to settle it", pause_id, MAX_TIMEOUT_ATTEMPTS)
    except AlreadyDecided:
        pass


def sweep(now: datetime | None = None, limit: int = 500) -> dict:
    """Settle every pause whose expiry has passed, reading only the expiry index's due rows.

    Safe to run in two places at once: each pause is claimed with an ETag condition, so
    only one sweeper settles it; the other sees it decided and moves on.
    """
    now = now or utcnow()
    index, counts = get_expiry_index(), {}
    for due in index.due(now, limit):
        try:
            outcome = settle_expired(due.pause_id, now)
        except NotFound:
            outcome = "missing"  # an index row whose pause was never written
        except AlreadyDecided:
            outcome = "already_settled"  # another sweeper or a last-second click won
        except Conflict:
            outcome = "retry"  # changed under us while reconciling; look again next run
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome != "retry":
            try:
                index.remove(due)
            except NotFound:
                pass  # another sweeper removed it first
    if counts:
        logger.info("expiry sweep settled %s", counts)
    return counts


def get_pause(pause_id: str) -> dict:
    """The record of one pause, for pipelines and operators holding the function key."""
    if not tokens.PAUSE_ID_PATTERN.fullmatch(pause_id or ""):
        raise NotFound("No pause has that id.")
    return to_record(get_store().get(pause_id).entity)


def list_pauses(status: str | None, limit: int, cursor: str | None) -> dict:
    """One page of pause records (in storage order), with a cursor for the next page."""
    page = get_store().page(status, limit, cursor)
    return {"items": [to_record(e) for e in page.entities], "cursor": page.cursor}
