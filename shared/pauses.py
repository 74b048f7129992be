"""The pause lifecycle: create, show, approve (restart) and cancel.

Every decision is a conditional write on the entity's ETag, so when many people (or one
impatient double click) act on the same link at once, exactly one wins and the rest get 409.
"""

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from . import tokens
from .adf import PipelineTarget, TriggerFailed, get_trigger
from .errors import (AlreadyDecided, Expired, Forbidden, InvalidRequest, NotFound, Unavailable,
                     UpstreamFailed)
from .settings import ROUTE_PREFIX, get_settings
from .store import Conflict, get_store, pack_json, unpack_json
from .validation import Decision, PauseRequest

logger = logging.getLogger(__name__)

STATUSES = ("pending", "restarting", "restarted", "cancelled", "expired", "failed")
_CLAIM_ATTEMPTS = 3


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


def links(base_url: str, pause_id: str, token: str | None = None) -> dict:
    api = f"{base_url.rstrip('/')}/{ROUTE_PREFIX}"
    urls = {"status_url": f"{api}/pauses/{pause_id}"}
    if token:
        urls = {"restart_url": f"{api}/restart/{token}", "cancel_url": f"{api}/cancel/{token}", **urls}
    return urls


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
    """Store a new pending pause and return its token and links."""
    settings = get_settings()
    if not _factory_allowed(settings.allowed_factories, request):
        raise Forbidden("This app may not start pipelines in that factory (see ALLOWED_FACTORIES).")
    now = now or utcnow()
    pause_id = tokens.new_pause_id()
    token, secret_hash = tokens.issue(pause_id)
    expires_at = now + timedelta(seconds=request.expires_in)
    properties = {
        "status": "pending", "mode": request.mode, "secret_hash": secret_hash,
        "subscription_id": request.subscription_id, "resource_group": request.resource_group,
        "factory_name": request.factory_name, "pipeline_name": request.pipeline_name,
        "tenant_id": request.tenant_id, "on_timeout": request.on_timeout,
        "created_at": now, "expires_at": expires_at,
        **pack_json("parameters", json.dumps(request.parameters, ensure_ascii=False, separators=(",", ":"))),
        **pack_json("data", request.data_json),
        **pack_json("notification", json.dumps(request.notification, ensure_ascii=False)),
        **pack_json("source", None if request.source is None else json.dumps(request.source, ensure_ascii=False)),
    }
    get_store().add(pause_id, properties)
    logger.info("pause created pause_id=%s mode=%s pipeline=%s/%s expires_at=%s", pause_id, request.mode,
                request.factory_name, request.pipeline_name, iso(expires_at))
    return {"pause_id": pause_id, "token": token, "status": "pending", "expires_at": iso(expires_at),
            **links(base_url, pause_id, token)}


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


def _ensure_open(entity: dict, now: datetime) -> None:
    """Raise AlreadyDecided or Expired unless the pause can still be decided."""
    status = entity.get("status")
    if status != "pending":
        record = to_record(entity)
        when = f" at {record['decided_at']}" if record["decided_at"] else ""
        raise AlreadyDecided(f"This pause {_DECIDED_WORDS.get(status, status)}{when}.", record)
    if now >= entity["expires_at"]:
        raise Expired(f"This pause expired at {iso(entity['expires_at'])}; nothing can be started from "
                      "this link any more.", to_record(entity))


def open_pause(token_text: str, now: datetime | None = None) -> dict:
    """Return the pause behind a link for its confirmation page; never changes anything."""
    _, stored = _load(token_text)
    _ensure_open(stored.entity, now or utcnow())
    return to_record(stored.entity)


def _decision_fields(decision: Decision, audit: Audit, now: datetime, text_field: str) -> dict:
    return {
        "decided_at": now, text_field: decision.comment, **pack_json(
            "input", None if decision.input is None else json.dumps(decision.input, ensure_ascii=False)),
        "decided_by": audit.decided_by, "client_ip": audit.client_ip,
        "user_agent": (audit.user_agent or "")[:512] or None,
    }


def _claim(pause_id: str, stored, changes: dict, now: datetime) -> str:
    """Conditionally apply `changes` to a pending pause; return the new ETag.

    A lost race re-reads: if the winner has decided, this caller gets 409; if the winner
    gave the pause back (ADF failed), this caller may try again.
    """
    store = get_store()
    for _ in range(_CLAIM_ATTEMPTS):
        _ensure_open(stored.entity, now)
        try:
            return store.update(pause_id, changes, stored.etag)
        except Conflict:
            stored = store.get(pause_id)
    _ensure_open(stored.entity, now)
    raise AlreadyDecided("This pause is being decided by someone else right now.", to_record(stored.entity))


def approve(token_text: str, decision: Decision, audit: Audit, now: datetime | None = None) -> dict:
    """Claim the pause, start its pipeline once, and record the run id."""
    now = now or utcnow()
    pause_id, stored = _load(token_text)
    etag = _claim(pause_id, stored, {"status": "restarting", "claimed_at": now}, now)
    entity = stored.entity
    target = PipelineTarget(entity["subscription_id"], entity["resource_group"], entity["factory_name"],
                            entity["pipeline_name"], entity.get("tenant_id"))
    parameters = {**_json_field(entity, "parameters", {}), "pause_id": pause_id}
    store = get_store()
    try:
        run_id = get_trigger().start_run(target, parameters)
    except TriggerFailed as exc:
        logger.warning("restart failed pause_id=%s code=%s status=%s detail=%s", pause_id, exc.code,
                       exc.status, exc)
        # Give the pause back so the same link works again once ADF does.
        store.update(pause_id, {"status": "pending", "last_error": f"{exc.code or 'Error'}: {exc}"[:1000]}, etag)
        raise UpstreamFailed(f"Azure Data Factory did not start the pipeline ({exc.code or 'error'}). "
                             "Nothing was started; the link still works, so try again in a moment.") from exc
    try:
        store.update(pause_id, {"status": "restarted", "run_id": run_id,
                                **_decision_fields(decision, audit, now, "comment")}, etag)
    except (Conflict, Unavailable):
        # The run has started, so the approver gets success; the record stays "restarting".
        logger.error("run started but not recorded pause_id=%s run_id=%s", pause_id, run_id)
    logger.info("pause decided pause_id=%s action=approve outcome=restarted run_id=%s", pause_id, run_id)
    return to_record({**entity, "status": "restarted", "run_id": run_id, "decided_at": now,
                      "comment": decision.comment})


def cancel(token_text: str, decision: Decision, audit: Audit, now: datetime | None = None) -> dict:
    """Mark the pause cancelled; the first decision wins."""
    now = now or utcnow()
    pause_id, stored = _load(token_text)
    changes = {"status": "cancelled", **_decision_fields(decision, audit, now, "reason")}
    _claim(pause_id, stored, changes, now)
    logger.info("pause decided pause_id=%s action=cancel outcome=cancelled", pause_id)
    return to_record({**stored.entity, **changes})


def get_pause(pause_id: str) -> dict:
    """The record of one pause, for pipelines and operators holding the function key."""
    if not tokens.PAUSE_ID_PATTERN.fullmatch(pause_id or ""):
        raise NotFound("No pause has that id.")
    return to_record(get_store().get(pause_id).entity)


def list_pauses(status: str | None, limit: int, cursor: str | None) -> dict:
    """One page of pause records (in storage order), with a cursor for the next page."""
    if status is not None and status not in STATUSES:
        raise InvalidRequest("Unknown status.", [{"field": "status", "rule": "enum",
                                                  "message": "must be one of " + ", ".join(STATUSES)}])
    page = get_store().page(status, limit, cursor)
    return {"items": [to_record(e) for e in page.entities], "cursor": page.cursor}
