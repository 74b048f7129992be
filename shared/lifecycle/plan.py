"""Planning a decision, before anything is written: which row of the lifecycle to carry out for an
action on a pause as it is now, whether the one deciding may, and what the decision records."""

from dataclasses import dataclass
from datetime import datetime

from shared.clock import iso
from shared.errors import AlreadyDecided, ChecksPending, Expired, InvalidRequest, LinkHandedOn
from shared.jsonbody import canonical
from shared.lifecycle import calls
from shared.lifecycle.model import (QUORUM, SAID, WHILE_SCHEDULED, WINDOWED, WORDS_REQUIRED_WITH_APPROVERS, Action,
                                    Actor, Audit, Rule, Status, checks_passed, rule_for)
from shared.storage.records import json_field, json_field_strict, mode_of, moment, pause_id_of, status_of, to_record
from shared.storage.tables import pack_json
from shared.validation import Decision


def count(value) -> int:
    """A stored counter; a damaged one counts as 0 rather than stopping the lifecycle."""
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def names_approvers(entity: dict) -> bool:
    """Whether the pause names its approvers (either field says so; damage raises, never reads as no)."""
    return entity.get("required_approvals") is not None or bool(json_field_strict(entity, "approvers", []))


def required(entity: dict) -> int:
    """How many approvals a pause with named approvers needs. A damaged count never lowers the bar:
    anything that is not a count of at least 1 reads as every named approver (unreadable ones: damaged)."""
    if count(entity.get("required_approvals")) >= 1:
        return count(entity.get("required_approvals"))
    approvers = json_field_strict(entity, "approvers", [])
    return max(1, len(approvers) if isinstance(approvers, list) else 0)


def ensure_may_act(entity: dict, actor: Actor, now: datetime, source: Status = Status.PENDING) -> None:
    """Raise AlreadyDecided or Expired unless `actor` may decide the pause (in status `source`) now.

    People and checks may act until `expires_at`; the timer only after it; holds end whenever they
    end, and the app acts in the request that made the pause.
    """
    status = status_of(entity)
    if status is Status.EXPIRED:
        # The same answer before and after the timer has marked it: the link has expired.
        raise Expired(f"This pause expired at {iso(entity.get('expires_at'))}; nothing can be started from this "
                      "link any more.", to_record(entity))
    if status is not source:
        record = to_record(entity)
        when = f" at {record['decided_at']}" if record["decided_at"] else ""
        starts = f"; it starts at {record['start_at']}" if status is Status.SCHEDULED and record.get("start_at") else ""
        raise AlreadyDecided(f"This pause {SAID.get(status, status)}{when}{starts}.", record)
    if actor in (Actor.HOLDS, Actor.APP):
        return
    if source is Status.SCHEDULED:
        # Decided already: it may be cancelled until it starts, whatever its expiry; it starts at start_at.
        if actor is Actor.START and now < moment(entity, "start_at"):
            raise AlreadyDecided(f"This pause starts at {iso(moment(entity, 'start_at'))}, not yet.", to_record(entity))
        return
    expires_at = moment(entity, "expires_at")
    if actor is Actor.TIMER:  # people and checks act until expires_at; the timer only after it
        if now < expires_at:
            raise AlreadyDecided("This pause has not expired yet.", to_record(entity))
    elif now >= expires_at:
        raise Expired(f"This pause expired at {iso(expires_at)}; nothing can be started from this link any more.",
                      to_record(entity))


def decision_fields(rule: Rule, decision: Decision, audit: Audit, now: datetime) -> dict:
    return {
        "decided_at": now, rule.text: decision.comment,
        **pack_json("input", None if decision.input is None else canonical(decision.input)),
        "decided_by": audit.decided_by, "client_ip": audit.client_ip,
        "user_agent": (audit.user_agent or "")[:512] or None,
    }


@dataclass(frozen=True)
class Plan:
    action: Action
    rule: Rule
    changes: dict        # what the resulting status is written with (decision fields, approvals)
    payload: bytes | dict | None  # what the outside call sends (calls.ready)


def plan(entity: dict, action: Action, decision: Decision, audit: Audit, now: datetime) -> Plan:
    """The row of the table to carry out for `action` on the pause as it is now, and what it records.

    The model says which rows need words, wait for a gate's checks, and count towards a quorum:
    with named approvers, an approval that does not reach `required_approvals` becomes the
    model's QUORUM row (the pause stays pending), the one that does is carried out as asked.
    """
    mode, named = mode_of(entity), names_approvers(entity)
    if status_of(entity) is Status.SCHEDULED:
        action = WHILE_SCHEDULED.get(action, action)
    rule = rule_for(action, mode)
    check_words(entity, action, decision)
    ensure_may_act(entity, rule.actor, now, rule.source)
    if rule.gated and entity.get("checks_mode") == "gate" and not checks_passed(entity):
        raise ChecksPending(to_record(entity))
    if named:
        ensure_still_theirs(entity, audit)
    # A scheduled pause starts as it was decided: the decision it was scheduled with stays on record.
    fields = {} if action is Action.START_SCHEDULED else decision_fields(rule, decision, audit, now)
    if named and action in QUORUM:
        recorded = pack_json("approvals", canonical(_approvals_with(entity, decision, audit, fields, now)))
        if len(json_field_strict(entity, "approvals", [])) + 1 < required(entity):
            short = QUORUM[action]
            return Plan(short, rule_for(short, mode), recorded, None)
        fields.update(recorded)
    start_at = calls.scheduled_start(entity, action, decision, now)
    if start_at is not None:  # outside the window, or a later start chosen: recorded, started by the timer
        action = WINDOWED[action]
        return Plan(action, rule_for(action, mode), {**fields, "start_at": start_at}, None)
    return Plan(action, rule, fields, calls.ready(rule, entity, decision, audit))


def ensure_still_theirs(entity: dict, audit: Audit) -> None:
    """Raise LinkHandedOn when the person deciding handed their part on and is no approver any more.
    Checked on the pause as it is when the decision is written, not only when the link was opened: a
    reassignment landing in between must not let one part count twice."""
    approvers = json_field_strict(entity, "approvers", []) or []
    if not audit.decided_by or audit.decided_by in approvers:
        return
    handed = [r for r in json_field(entity, "reassignments", []) or []
              if isinstance(r, dict) and r.get("from") == audit.decided_by]
    if handed:
        raise LinkHandedOn(f"You handed your part on to {handed[-1].get('to')}, who decides in your place now.",
                           pause_id_of(entity), str(handed[-1].get("to")))


def check_words(entity: dict, action: Action, decision: Decision) -> None:
    """With named approvers, the actions the model says need words must have them: 400 naming the field."""
    if action in WORDS_REQUIRED_WITH_APPROVERS and not decision.comment and names_approvers(entity):
        field = rule_for(action, mode_of(entity)).text
        raise InvalidRequest("Say why you cancel: the other approvers and the pipeline's owner will read it.",
                             [{"field": field, "rule": "required",
                               "message": "is required when the request names its approvers"}])


def _approvals_with(entity: dict, decision: Decision, audit: Audit, fields: dict, now: datetime) -> list:
    """The pause's approvals with this one counted; AlreadyDecided if this approver approved before."""
    approvals = json_field_strict(entity, "approvals", [])
    earlier = next((a for a in approvals if a.get("approver") == audit.decided_by), None)
    if earlier is not None:
        raise AlreadyDecided(f"You already approved this at {earlier.get('at')}; it needs "
                             f"{required(entity)} approvals.", to_record(entity))
    approval = {"approver": audit.decided_by, "at": iso(now), "comment": decision.comment,
                "client_ip": audit.client_ip, "user_agent": fields["user_agent"], "via": audit.via}
    if decision.input is not None and json_field(entity, "form", None):  # each approver's own form values
        approval["input"] = decision.input
    return [*approvals, approval]
