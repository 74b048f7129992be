"""Stored pause entities, read safely: typed access that names what is missing, and the public record.

Anything may have happened to a stored entity (a property deleted in Storage Explorer, a record
written by an older version). Reading one never raises anything but `DamagedRecord`, which
names the property, so a route answers a clear problem and the timer counts it and moves on.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from shared.check_fields import CHECKS_MODES
from shared.clock import as_utc, iso
from shared.errors import DamagedRecord
from shared.lifecycle.model import CheckResult, Mode, Status
from shared.storage.tables import unpack_json


def pause_id_of(entity: dict) -> str:
    return entity.get("PartitionKey", "?")


def damaged(entity: dict, name: str, what: str) -> DamagedRecord:
    return DamagedRecord(f"The stored record of pause {pause_id_of(entity)} is damaged: {name} {what}. It cannot "
                         "be decided; an operator must repair or remove it.")


def status_of(entity: dict) -> Status:
    try:
        return Status(entity.get("status"))
    except ValueError:
        raise damaged(entity, "status", f"is {entity.get('status')!r}") from None


def mode_of(entity: dict) -> Mode:
    try:
        return Mode(entity.get("mode"))
    except ValueError:
        raise damaged(entity, "mode", f"is {entity.get('mode')!r}") from None


def moment(entity: dict, name: str) -> datetime:
    value = entity.get(name)
    if not isinstance(value, datetime):
        raise damaged(entity, name, "is missing")
    return as_utc(value)


def text(entity: dict, name: str) -> str:
    value = entity.get(name)
    if not isinstance(value, str) or not value:
        raise damaged(entity, name, "is missing")
    return value


def json_field_strict(entity: dict, name: str, default=None):
    """A JSON field the lifecycle needs (e.g. parameters to start a run with): damage is an error."""
    try:
        stored = unpack_json(entity, name)
        return default if stored is None else json.loads(stored)
    except (ValueError, TypeError):
        raise damaged(entity, name, "cannot be read") from None


def json_field(entity: dict, name: str, default=None):
    """A JSON field stored in chunks; a damaged one reads as `default` on the public record."""
    try:
        return json_field_strict(entity, name, default)
    except DamagedRecord:
        return default


@dataclass(frozen=True)
class Field:
    """One field of the public record: its JSON schema (published in the OpenAPI document), how it is
    read from a stored entity (never raising), and, for a field only some pauses have, when."""

    schema: dict
    read: Callable[[dict], object]
    when: Callable[[dict], bool] | None = None


TEXT = {"type": ["string", "null"]}
TIME = {"type": ["string", "null"], "format": "date-time"}
APPROVAL = {"type": "object", "required": ["approver", "at", "via"], "properties": {
    "approver": {"type": "string"}, "at": {"type": "string", "format": "date-time"},
    "comment": {"type": ["string", "null"]}, "client_ip": {"type": ["string", "null"]},
    "user_agent": {"type": ["string", "null"]}, "via": {"type": "string", "enum": ["personal_link", "sign_in"]},
    "input": {"type": "object", "description": "This approver's values, when the pause has a form."}}}


def _stored(name: str) -> Field:
    return Field(TEXT, lambda entity: entity.get(name))


def _time(name: str, schema: dict = TIME) -> Field:
    return Field(schema, lambda entity: iso(entity.get(name)))


def _json(name: str, schema: dict, default=None) -> Field:
    return Field(schema, lambda entity: json_field(entity, name, default))


def _flag(name: str, schema: dict, when=None) -> Field:
    return Field(schema, lambda entity: entity.get(name) is True, when)


def _with_checks(entity: dict) -> bool:
    return bool(entity.get("check_max_attempts"))


def _checkpoint(entity: dict) -> bool:
    return entity.get("mode") == Mode.CHECKPOINT


# The public record of a pause (GET /pauses/{pause_id}, the pages, the console), declared once:
# `to_record` builds it from this, and the OpenAPI document publishes these schemas. No secret
# (a token's hash, the callBackUri) is in it.
RECORD: dict[str, Field] = {
    "pause_id": Field({"type": "string", "pattern": "^[0-9a-f]{32}$"}, pause_id_of),
    "status": Field({"type": "string", "enum": [status.value for status in Status],
                     "description": "Where the pause is in its life."}, lambda entity: entity.get("status")),
    "mode": Field({"type": "string", "enum": [mode.value for mode in Mode],
                   "description": "checkpoint: a run held at a checkpoint by an operator's hold."},
                  lambda entity: entity.get("mode")),
    **{name: _stored(name) for name in ("tenant_id", "subscription_id", "resource_group", "factory_name",
                                        "pipeline_name")},
    "parameters": _json("parameters", {"type": "object"}, {}),
    "data": _json("data", {"description": "Exactly the `data` sent with the pause (null when none)."}),
    "on_timeout": Field({"enum": ["expire", "restart", None], "description": "null for a held checkpoint."},
                        lambda entity: entity.get("on_timeout")),
    "created_at": _time("created_at", {"type": "string", "format": "date-time"}),
    "expires_at": _time("expires_at", {**TIME, "description": "null for a held checkpoint (it waits on its holds)."}),
    "decided_at": _time("decided_at"),
    **{name: _stored(name) for name in ("decided_by", "comment", "reason")},
    "input": _json("input", {"type": ["object", "null"], "description": "What the approver sent: with a form, its "
                                                                     "values, typed as the form says."}),
    "start_window": _json("start_window", {"type": ["object", "null"], "description": "When the run may start: "
                                           "a decision made outside this window makes the pause scheduled."}),
    "allow_start_at": _flag("allow_start_at", {"type": "boolean", "description": "The approver may choose a later "
                                                                                "start."}),
    "start_at": _time("start_at", {**TIME, "description": "A scheduled pause: when the timer continues it."}),
    "form": _json("form", {"type": ["array", "null"], "items": {"type": "object"},
                           "description": "The values the approval page asks for (as given, or read from the "
                                          "pipeline's parameters for \"form\": \"pipeline\")."}),
    **{name: _stored(name) for name in ("run_id", "client_ip", "user_agent", "last_error")},
    "notification": _json("notification", {"type": "object"}, {}),
    "source": _json("source", {"type": ["object", "null"]}),
    "requested_from": _json("requested_from", {
        "type": ["object", "null"], "properties": {"entry": {"type": "string"}, "title": {"type": "string"}},
        "description": "A run requested from the catalog: its entry (set by the app, never by a pause body)."}),
    "approvers": _json("approvers", {"type": "array", "items": {"type": "string"}}, []),
    "required_approvals": Field({"type": ["integer", "null"]}, lambda entity: entity.get("required_approvals")),
    "requested_by": _stored("requested_by"),
    "allow_self_approval": _flag("allow_self_approval", {"type": "boolean"}),
    "approvals": _json("approvals", {"type": "array", "items": APPROVAL}, []),
    "notifications": _json("notifications", {
        "type": "array", "description": "Every message sent about the pause: to a chat channel (its name) or by "
                                        "email; `unknown` when the answer was lost (it is not sent again).",
        "items": {"type": "object", "required": ["purpose", "at", "outcome"], "properties": {
            "channel": {"type": "string"}, "email": {"type": "array", "items": {"type": "string"}},
            "purpose": {"enum": ["request", "reminder", "escalation", "reassigned", "decided"]}, "at": TIME,
            "outcome": {"enum": ["sent", "failed", "unknown"]}, "detail": TEXT}}}, []),
    "reassignments": _json("reassignments", {
        "type": "array", "description": "Approvers who handed their part on: from whom, to whom, when, why.",
        "items": {"type": "object", "required": ["from", "to", "at"], "properties": {
            "from": {"type": "string"}, "to": {"type": "string"}, "at": TIME, "comment": TEXT}}}, []),
    **{name: Field({"type": ["integer", "null"]}, lambda entity, name=name: entity.get(name))
       for name in ("remind_every", "remind_max", "reminders_sent", "escalate_after")},
    "escalate_to": _json("escalate_to", {"type": ["object", "null"], "description": "Who is asked if the pause still "
                                         "waits escalate_after seconds after it was made."}),
    "escalated_at": _time("escalated_at"),
    "approver_links_returned": _flag("approver_links_returned", {
        "type": "boolean", "description": "The pause asked for its approvers' personal links in the answer "
                                          "(return_approver_links): its caller could approve in their names."}),
    "checks": Field({"type": "array", "description": "Each check with its last result, when, and the attempts made.",
                     "items": {"type": "object", "required": ["name", "type", "result", "attempts"], "properties": {
                         "name": {"type": "string"}, "type": {"enum": ["http", "adf_run"]},
                         "result": {"enum": [*(result.value for result in CheckResult), None]},
                         "detail": TEXT, "at": TIME, "attempts": {"type": "integer"}}}},
                    lambda entity: _checks(entity), _with_checks),
    "checks_mode": Field({"enum": list(CHECKS_MODES)}, lambda entity: entity.get("checks_mode"), _with_checks),
    **{name: Field({"type": "integer"}, lambda entity, name=name: entity.get(name), _with_checks)
       for name in ("check_every", "check_max_attempts", "check_attempts")},
    "checks_passed": _flag("checks_passed", {"type": "boolean"}, _with_checks),
    "next_check_at": Field(TIME, lambda entity: iso(entity.get("next_check_at")), _with_checks),
    "checkpoint": Field({"type": "string", "description": "Checkpoint mode: which checkpoint the run reached."},
                        lambda entity: entity.get("checkpoint"), _checkpoint),
    "hold_ids": Field({"type": "array", "items": {"type": "string"},
                       "description": "Checkpoint mode: the holds it waits (or waited) on."},
                      lambda entity: json_field(entity, "hold_ids", []), _checkpoint),
    # Known only once a decision was sent: false means "sent, not yet confirmed; re-sent until it is".
    "callback_confirmed": Field({"type": ["boolean", "null"],
                                 "description": "Callback mode: false while the decision sent to the WebHook is not "
                                                "confirmed (it is re-sent, byte for byte, until it is)."},
                                lambda entity: entity.get("callback_confirmed"),
                                lambda entity: entity.get("mode") in (Mode.CALLBACK, Mode.CHECKPOINT)),
}


def to_record(entity: dict) -> dict:
    """The public view of a stored pause: everything but secrets; never raises on a damaged entity."""
    return {name: field.read(entity) for name, field in RECORD.items() if field.when is None or field.when(entity)}


def _checks(entity: dict) -> list:
    """Each check with its last result, when, and how many attempts, for the record and the pages."""
    checks = json_field(entity, "checks", []) or []
    results = json_field(entity, "check_results", []) or []
    shown = []
    for index, check in enumerate(checks):
        if not isinstance(check, dict):
            continue
        result = results[index] if index < len(results) and isinstance(results[index], dict) else {}
        shown.append({"name": check.get("name"), "type": "http" if "http" in check else "adf_run",
                      **{key: check[key] for key in ("http", "adf_run", "expect") if key in check},
                      "result": result.get("result"), "detail": result.get("detail"), "at": result.get("at"),
                      "attempts": result.get("attempts", 0)})
    return shown


NOTES_BUDGET = 96 * 1024  # bytes of serialized `notifications`: the record stays within Table storage's limits


def fit_notifications(notes: list, budget: int = NOTES_BUDGET) -> list:
    """`notes` within `budget` bytes of JSON: the oldest `detail` texts are shortened first (never a
    purpose, channel, recipient, time or outcome), then dropped, oldest first."""
    def size(item) -> int:
        return len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))

    fitted = [dict(note) for note in notes]
    # Each note is measured once and again only when it changes: the list is "[" + ",".join(notes) + "]".
    sizes = [size(note) for note in fitted]
    total = sum(sizes) + max(len(sizes) - 1, 0) + 2
    for limit in (80, 0):
        for index, note in enumerate(fitted):
            if total <= budget:
                return fitted
            if isinstance(note.get("detail"), str) and len(note["detail"]) > limit:
                note["detail"] = note["detail"][:limit] + "\u2026" if limit else None
                if note["detail"] is None:
                    del note["detail"]
                total, sizes[index] = total - sizes[index] + size(note), size(note)
    return fitted
