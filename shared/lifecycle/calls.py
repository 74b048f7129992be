"""What each outside call of the lifecycle needs and sends: the pipeline to start, the WebHook's exact
bytes, and the one call itself.

Everything a call needs is read and checked before anything is claimed (`ready`): a record that
lacks it (a field deleted by hand) or a factory ALLOWED_FACTORIES no longer admits can never be
called, and the pause then ends failed with no claim, instead of failing inside the claim, where
a failure reads as "maybe sent".
"""

import logging
from datetime import datetime

from shared.clock import iso
from shared.errors import DamagedRecord
from shared.lifecycle.model import ALREADY_COMPLETED, WINDOWED, Action, Audit, Call, Mode, Rule, rule_for
from shared.settings import get_settings
from shared.storage.records import json_field_strict, mode_of, moment, pause_id_of, text
from shared.targets import callback
from shared.targets.adf import PipelineTarget, get_adf, pacing_key
from shared.targets.outside import OutsideCallFailed, Unknown
from shared.validation import Decision
from shared.windows import next_start, parse_window

logger = logging.getLogger(__name__)

ACTIVITY_COMPLETED = ("Data Factory answered 409: the WebHook activity waiting on this pause had already completed "
                      "(it may have timed out), so this decision reached nobody.")


def target_of(entity: dict) -> PipelineTarget:
    return PipelineTarget(text(entity, "subscription_id"), text(entity, "resource_group"),
                          text(entity, "factory_name"), text(entity, "pipeline_name"), entity.get("tenant_id"))


def run_parameters(entity: dict, decision: Decision) -> dict:
    """The parameters of the run a restart-mode pause starts: its own, then the values its approver gave
    on its form (typed as the form says), then `pause_id`."""
    parameters = json_field_strict(entity, "parameters", {})
    form = json_field_strict(entity, "form", None)
    if form:  # the form's values are the answer for its fields: one left empty is not sent (ADF's default applies)
        asked = {field.get("name") for field in form if isinstance(field, dict)}
        parameters = {**{k: v for k, v in parameters.items() if k not in asked}, **(decision.input or {})}
    return {**parameters, "pause_id": pause_id_of(entity)}


def payload(rule: Rule, entity: dict, decision: Decision, audit: Audit) -> bytes | dict | None:
    """What the call sends, built before anything is claimed: a run's parameters, or the exact bytes a
    WebHook receives for this decision."""
    if rule.call is Call.START_RUN:
        return run_parameters(entity, decision)
    if rule.call is not Call.CALL_BACK:
        return None
    text(entity, "callback_uri")
    if mode_of(entity) is Mode.CHECKPOINT:
        return checkpoint_payload(entity, rule, decision, audit)
    if rule.error_code is None:
        return callback.approved_payload({"pause_id": pause_id_of(entity), "status": rule.result.value,
                                          "comment": decision.comment, "input": decision.input,
                                          "data": json_field_strict(entity, "data")})
    if rule.error_code == "PauseExpired":
        message = decision.comment or f"Nobody decided before {iso(moment(entity, 'expires_at'))}."
    else:
        message = decision.comment or f"Cancelled by {audit.decided_by or 'the approver'}."
    return callback.failed_payload(rule.error_code, message)


def checkpoint_payload(entity: dict, rule: Rule, decision: Decision, audit: Audit) -> bytes:
    """What a held checkpoint's WebHook receives: continue (`held: true`, who released it) or HoldCancelled."""
    if rule.error_code is not None:
        words = decision.comment or "an operator cancelled the hold"
        return callback.failed_payload(rule.error_code, f"Hold cancelled by {audit.decided_by or 'an operator'}: "
                                                        f"{words}")
    return callback.checkpoint_payload({"held": True, "checkpoint": entity.get("checkpoint"),
                                        "hold_ids": json_field_strict(entity, "hold_ids", []),
                                        "released_by": audit.decided_by, "comment": decision.comment})


def call(rule: Rule, pause_id: str, entity: dict, payload: bytes | dict | None) -> dict:
    """Make the rule's one outside call with what `ready` built; return what to record. Only Refused or
    Unknown escape."""
    try:
        if rule.call is Call.START_RUN:
            return {"run_id": get_adf().start_run(target_of(entity), payload)}
        if callback.deliver(entity["callback_uri"], payload) is callback.Delivery.ALREADY_COMPLETED:
            return {"status": ALREADY_COMPLETED.value, "last_error": f"ActivityCompleted: {ACTIVITY_COMPLETED}"}
        return {"callback_confirmed": True}
    except OutsideCallFailed:
        raise
    except Exception as exc:  # unforeseen: whether the call went out is unknown, so it is treated as sent
        logger.exception("outside call failed unexpectedly pause_id=%s", pause_id)
        raise Unknown("Error", f"the call failed unexpectedly ({type(exc).__name__})") from exc


class CannotCall(Exception):
    """The rule's outside call can never be made from this record: the pause ends failed, unclaimed."""


def ready(rule: Rule, entity: dict, decision: Decision, audit: Audit) -> bytes | dict | None:
    """Check, before anything is claimed, everything the outside call needs; return a callback's payload.

    A damaged record (a pipeline field deleted by hand) or a factory ALLOWED_FACTORIES no longer
    admits would otherwise be claimed and then fail in the call, where a failure reads as "maybe
    sent" and waits for reconciliation; here it raises CannotCall saying why, and nothing is sent.
    """
    try:
        if rule.call is Call.START_RUN:
            if not target_of(entity).allowed_by(get_settings().allowed_factories):
                raise CannotCall("FactoryNotAllowed: this app may no longer start pipelines in factory "
                                  f"{entity.get('factory_name')} (ALLOWED_FACTORIES); no run was started.")
        return payload(rule, entity, decision, audit)
    except DamagedRecord as damaged:
        raise CannotCall(f"DamagedRecord: {damaged.detail}") from None


def cannot_call(entity: dict, action: Action) -> str | None:
    """Why `action`'s outside call could never be made from this record (None: it could)."""
    try:
        ready(rule_for(action, mode_of(entity)), entity, Decision(), Audit())
    except CannotCall as cannot:
        return str(cannot)
    return None


# What the app's own work (the timer, the queue) decides that starts a run in restart mode: createRun, an ARM
# write, paced (shared.targets.pacing). A person's click is never paced.
PACED_STARTS = frozenset({Action.RESTART_ON_TIMEOUT, Action.START_SCHEDULED, Action.CHECKS_CONTINUE})


def pace_start(pause_id: str, entity: dict, action: Action, now: datetime) -> None:
    """Before claiming a pause to start its run: while ARM's write bucket for its subscription looks nearly
    empty, raise UpstreamThrottled with the write slot it was given (the item is deferred to it) rather than
    claim it only to be throttled."""
    if action not in PACED_STARTS or entity.get("mode") != Mode.RESTART or not entity.get("subscription_id"):
        return
    try:
        if scheduled_start(entity, action, Decision(), now) is not None:
            return  # decided outside its start window: the pause is scheduled (a write to storage), nothing sent to ARM
    except (DamagedRecord, ValueError, KeyError, TypeError, AttributeError):
        pass  # a window that cannot be read is the engine's to report; paced as a start meanwhile
    target = PipelineTarget(entity["subscription_id"], entity.get("resource_group") or "",
                            entity.get("factory_name") or "", entity.get("pipeline_name") or "",
                            entity.get("tenant_id"))
    get_adf().pacer.go_or_defer(pacing_key(target), now.timestamp(), pause_id,
                                "Azure's write limit for this subscription is nearly reached: started later.")


def scheduled_start(entity: dict, action: Action, decision: Decision, now: datetime) -> datetime | None:
    """When a decision to continue must wait: the later start its approver chose, or the next opening
    of the pause's start window when `now` is outside it; None to continue at once."""
    if action not in WINDOWED:
        return None
    if decision.start_at is not None and decision.start_at > now:
        return decision.start_at
    window = json_field_strict(entity, "start_window", None)
    return next_start(parse_window(window), now) if window else None
