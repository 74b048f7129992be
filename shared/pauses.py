"""Pauses for people and pipelines: create one, show it, decide it through its link, list them.

The rules of deciding live in `shared.lifecycle.model` (the table) and `shared.lifecycle.engine` (the one
engine); the timer is `shared.sweep`. This module checks who is asking and hands over.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared import escalations, notices, pause_forms, tokens, windows
from shared.approvers import decider
from shared.checks import monitor as checks
from shared.clock import iso, utcnow
from shared.errors import AlreadyDecided, Forbidden, FormInvalid, InvalidRequest, LinkHandedOn, NotFound
from shared.schema import Problems
from shared.jsonbody import canonical
from shared.lifecycle.engine import decide
from shared.lifecycle.model import CLAIMED, Action, Actor, Audit, Status
from shared.lifecycle.plan import check_words, ensure_may_act
from shared.lifecycle.recovery import is_stale, reconcile
from shared.settings import ROUTE_PREFIX, get_settings
from shared.storage import status_index
from shared.storage.pauses import add_pause, get_store
from shared.storage.records import json_field, status_of, to_record
from shared.storage.tables import Stored, pack_json
from shared.targets import callback, identity
from shared.targets.adf import PipelineTarget, get_adf
from shared.targets.outside import OutsideCallFailed
from shared.validation import Decision, PauseRequest

logger = logging.getLogger(__name__)

__all__ = ["Audit", "approve", "cancel", "create_pause", "get_pause", "list_pauses", "open_pause"]


def links(base_url: str, pause_id: str, token: str) -> dict:
    """The URLs handed out for a new pause."""
    status_url = f"{base_url.rstrip('/')}/{ROUTE_PREFIX}/pauses/{pause_id}"
    return {**tokens.decision_links(base_url, token), "status_url": status_url}


def _check_target(request: PauseRequest, settings) -> None:
    """Refuse, before anything is stored, what could only fail later."""
    target = None
    reads_runs = any("adf_run" in check for check in request.checks or [])
    # Restart mode starts a pipeline in the factory; adf_run checks read runs there (validation
    # made sure all three factory fields are given). Callback mode otherwise names no factory the
    # app acts on, so factory fields sent along for context are not judged.
    if not request.callback_uri or reads_runs:
        target = _target(request)
        if not target.allowed_by(settings.allowed_factories):
            raise Forbidden("This app may not start pipelines in that factory (see ALLOWED_FACTORIES).")
        identity.check_tenant(request.tenant_id, settings)
    if request.callback_uri:
        callback.check(request.callback_uri)
    elif settings.check_pipeline_exists:
        problem = get_adf().check_target(target)
        if problem is not None:
            raise InvalidRequest(f"{problem.field} {problem.message}.",
                                 [{"field": problem.field, "rule": problem.rule, "message": problem.message}])
    if request.checks:
        checks.check_at_pause(request.checks, target, settings)


def _target(request: PauseRequest) -> PipelineTarget:
    return PipelineTarget(request.subscription_id, request.resource_group, request.factory_name,
                          request.pipeline_name or "", request.tenant_id)


def _terms(request: PauseRequest, form: list | None) -> dict:
    """What an approval must give and when it may start: the form, the start window, a chosen start."""
    return {**pack_json("form", None if form is None else canonical(form)),
            **pack_json("start_window", None if request.start_window is None else canonical(request.start_window)),
            **({"allow_start_at": True} if request.allow_start_at else {})}


def _provenance(request: PauseRequest) -> dict:
    """Where the pause comes from: `source` as its caller gave it, and a catalog request's entry (the app's)."""
    return {**pack_json("source", None if request.source is None else canonical(request.source)),
            **pack_json("requested_from", None if request.requested_from is None else
                        canonical(request.requested_from))}


def _later_messages(request: PauseRequest, base_url: str) -> dict:
    """What a pause keeps for the messages the timer sends about it later."""
    properties = escalations.properties(request)
    if request.channels:  # told once it is decided (shared.followups)
        properties.update(pack_json("channels", canonical(list(request.channels))))
    if request.remind_every:
        properties.update(remind_every=request.remind_every, remind_max=request.remind_max, reminders_sent=0)
    if request.remind_every or request.escalate_after:  # their fresh links go out under the same base URL
        properties["link_base"] = base_url
    return properties


def create_pause(request: PauseRequest, base_url: str, now: datetime | None = None, pause_id: str | None = None) \
        -> dict:
    """Store a new pending pause, send the approval email if asked, return its token and links (`pause_id`:
    a fresh id the caller has already written down, as a catalog request's slot does)."""
    settings = get_settings()
    channels = notices.check(request, settings)
    _check_target(request, settings)
    form = pause_forms.resolve(request.form, None if request.callback_uri else _target(request),
                               request.parameters) if request.form else None
    now = now or utcnow()
    pause_id = pause_id or tokens.new_pause_id()
    token, secret_hash = tokens.issue(pause_id)
    # A personal token per approver who may decide: same strength, only its hash is kept.
    personal = {approver: tokens.issue(pause_id) for approver in request.deciders}
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
        **_provenance(request),
        **_terms(request, form),
    }
    if request.approvers:
        properties.update({
            "required_approvals": request.required_approvals, "requested_by": request.requested_by,
            "allow_self_approval": request.allow_self_approval,
            **pack_json("approvers", canonical(request.approvers)),
            **pack_json("approver_secrets", canonical([[a, h] for a, (_, h) in personal.items()])),
        })
        if request.return_approver_links:
            properties["approver_links_returned"] = True  # whoever called could approve in their names
    elif request.requested_by:
        properties["requested_by"] = request.requested_by
    if request.checks:
        properties.update(checks.properties(request, now))
    properties.update(_later_messages(request, base_url))
    # The pause and its due-index row are written at once; if the index row fails the pause
    # is removed again, so no pause exists that the timer cannot find.
    # The timer first looks at it at expiry, or, with checks, at its next run (the first attempt).
    index_row = status_index.open_row(status_index.OPEN, pause_id, now, {})
    properties["index_key"] = index_row["RowKey"]
    etag = add_pause(pause_id, properties, now if request.checks else expires_at, index_row)
    logger.info("pause created pause_id=%s mode=%s pipeline=%s/%s expires_at=%s", pause_id, request.mode,
                request.factory_name, request.pipeline_name, iso(expires_at))
    created = {"pause_id": pause_id, "token": token, "status": Status.PENDING.value, "expires_at": iso(expires_at),
               **links(base_url, pause_id, token)}
    # A personal link is its approver's credential: it goes to the approver, not to the caller,
    # unless the caller asked for the links to deliver them itself (and the record says so).
    personal_links = {approver: tokens.decision_links(base_url, personal_token)
                      for approver, (personal_token, _) in personal.items()}
    if request.return_approver_links:
        created["approver_links"] = [{"approver": approver, **links_} for approver, links_ in personal_links.items()]
    stored = Stored({"PartitionKey": pause_id, "RowKey": "pause", **properties}, etag)
    notices.tell(request, settings, created, personal_links, stored, channels, now)
    return created


@dataclass(frozen=True)
class Link:
    """A link's pause, and whose personal link it is (None: the shared link)."""

    pause_id: str
    stored: Stored
    approver: str | None


def _load(token_text: str) -> Link:
    """Find the pause a token belongs to, checking the secret; any mismatch is a plain 404."""
    invalid = NotFound("This link is not valid. Check that it was copied completely.")
    try:
        token = tokens.parse(token_text)
    except tokens.MalformedToken:
        raise invalid from None
    try:
        stored = get_store().get(token.pause_id)
    except NotFound:
        raise invalid from None
    # The shared link, links issued later that work as it does (reminders and escalations to listed
    # addresses and channels: only the first one's hash is kept, so it cannot be sent again), personal links.
    candidates = [(None, stored.entity.get("secret_hash")),
                  *((None, digest) for digest in json_field(stored.entity, "shared_secrets", []) or []),
                  *((approver, digest) for approver, digest in json_field(stored.entity, "approver_secrets", []))]
    matched = tokens.match(token.secret, [(name or "", digest) for name, digest in candidates])
    if matched is None:
        retired = [entry for entry in json_field(stored.entity, "retired_secrets", []) or []
                   if isinstance(entry, list) and len(entry) == 3]  # damage is a 404, never a 500
        handed = tokens.match(token.secret, [(str(to), str(digest)) for _, digest, to in retired])
        if handed is not None:
            raise LinkHandedOn(f"This link no longer works: its approver handed their part on to {handed}, who has "
                               "a link of their own.", token.pause_id, handed)
        raise invalid
    return Link(token.pause_id, stored, matched or None)


def load_link(token_text: str) -> Link:
    """The pause behind a link and whose personal link it is (None: the shared one), or NotFound."""
    return _load(token_text)


def open_pause(token_text: str, caller, now: datetime | None = None, action: Action = Action.APPROVE) -> dict:
    """Return the pause behind a link for its confirmation page (of `action`), with who would decide
    through it.

    Never changes anything. The same rules as a decision apply, so the page can say at once
    "sign in first", "this link is for someone else" or "it was already decided" (a scheduled pause:
    approved already, and still open to a cancel until it starts).
    """
    link = _load(token_text)
    who = decider(link.stored.entity, link.approver, caller.principal, get_settings().approver_sign_in)
    scheduled = action is Action.CANCEL and status_of(link.stored.entity) is Status.SCHEDULED
    ensure_may_act(link.stored.entity, Actor.PERSON, now or utcnow(), Status.SCHEDULED if scheduled else Status.PENDING)
    return {**to_record(link.stored.entity), "deciding_as": who.identity, "personal_link": link.approver is not None}


def _person_decides(token_text: str, action: Action, decision: Decision, caller, now: datetime | None,
                    posted: dict | None = None) -> dict:
    now = now or utcnow()
    link = _load(token_text)
    pause_id, stored = link.pause_id, link.stored
    who = decider(stored.entity, link.approver, caller.principal, get_settings().approver_sign_in)
    check_words(stored.entity, action, decision)  # before anything else is done for this request
    audit = Audit(decided_by=who.identity, client_ip=caller.client_ip, user_agent=caller.user_agent, via=who.via)
    if stored.entity.get("status") in CLAIMED and is_stale(stored.entity, now):
        # A claim nobody finished: settle it first (the next click reconciles, the contract says).
        try:
            stored = reconcile(pause_id, stored, now)
        except OutsideCallFailed as failure:
            raise AlreadyDecided("An earlier decision on this pause was interrupted and Data Factory cannot be asked "
                                 f"about it right now ({failure.code}); it is checked again automatically.",
                                 to_record(stored.entity)) from failure
    if action is Action.APPROVE:
        decision = _approval(stored.entity, decision, posted, now)
    return decide(pause_id, stored, action, decision, audit, now)


def _approval(entity: dict, decision: Decision, posted: dict | None, now: datetime) -> Decision:
    """An approval's values checked against the pause's form, and its chosen start against the pause's
    window; said as the pause stands ("already decided", "expired") before anything about them."""
    fields = json_field(entity, "form", None)
    window = json_field(entity, "start_window", None)
    if not fields and decision.start_at_text is None:
        return decision
    ensure_may_act(entity, Actor.PERSON, now)
    tz = windows.zone(window["time_zone"]) if window else None
    values = decision.input
    if fields:
        values = pause_forms.values_from_page(fields, posted, tz) if posted is not None else \
            pause_forms.values_from_input(fields, decision.input)
    start_at = None
    if decision.start_at_text is not None:
        if entity.get("allow_start_at") is not True:
            raise InvalidRequest("This pause does not let its approver choose when it starts.", [
                {"field": "start_at", "rule": "not_allowed", "message": "needs allow_start_at on the pause"}])
        problems = Problems()
        start_at = windows.check_start_at(windows.parse_window(window) if window else None, decision.start_at_text,
                                          now, "start_at", problems)
        if start_at is None:  # the page again, the start's message by it and everything typed kept
            typed = pause_forms.as_sent(fields, posted, tz) if fields and posted is not None else {}
            raise FormInvalid("The chosen start is not possible; nothing was decided and the link still works.", {},
                              typed, problems.errors[0])
    return Decision(comment=decision.comment, input=values, start_at=start_at)


def approve(token_text: str, decision: Decision, caller, now: datetime | None = None, posted: dict | None = None) \
        -> dict:
    """Approve: count the approval, and continue the pipeline exactly once when enough have approved.

    A pause with a form takes the values from a page's POST (`posted`: every field's values) or from the
    decision's `input` (a program), checked against the form (FormInvalid: nothing decided)."""
    return _person_decides(token_text, Action.APPROVE, decision, caller, now, posted)


def cancel(token_text: str, decision: Decision, caller, now: datetime | None = None, posted: dict | None = None) \
        -> dict:
    """Cancel the pause; in callback mode the waiting activity fails with PauseCancelled."""
    return _person_decides(token_text, Action.CANCEL, decision, caller, now)


def get_pause(pause_id: str) -> dict:
    """The record of one pause, for pipelines and operators holding the function key."""
    if not tokens.PAUSE_ID_PATTERN.fullmatch(pause_id or ""):
        raise NotFound("No pause has that id.")
    return to_record(get_store().get(pause_id).entity)


def list_pauses(status: str | None, limit: int, cursor: str | None) -> dict:
    """One page of pause records, with a cursor for the next page.

    With a status, the status index is read (open pauses oldest first, decided ones newest first),
    so a page costs what it shows; without one, every stored pause is listed in storage order.
    """
    if status:
        from shared.listing import list_by_status

        return list_by_status(status, limit, cursor)
    page = get_store().page(None, limit, cursor)
    return {"items": [to_record(e) for e in page.entities], "cursor": page.cursor}
