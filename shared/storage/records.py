"""Stored pause entities, read safely: typed access that names what is missing, and the public record.

Anything may have happened to a stored entity (a property deleted in Storage Explorer, a record
written by an older version). Reading one never raises anything but `DamagedRecord`, which
names the property, so a route answers a clear problem and the timer counts it and moves on.
"""

import json
from datetime import datetime, timezone

from shared.clock import iso
from shared.errors import DamagedRecord
from shared.lifecycle.model import Mode, Status
from shared.storage.tables import unpack_json


def pause_id_of(entity: dict) -> str:
    return entity.get("PartitionKey", "?")


def _damaged(entity: dict, name: str, what: str) -> DamagedRecord:
    return DamagedRecord(f"The stored record of pause {pause_id_of(entity)} is damaged: {name} {what}. It cannot "
                         "be decided; an operator must repair or remove it.")


def status_of(entity: dict) -> Status:
    try:
        return Status(entity.get("status"))
    except ValueError:
        raise _damaged(entity, "status", f"is {entity.get('status')!r}") from None


def mode_of(entity: dict) -> Mode:
    try:
        return Mode(entity.get("mode"))
    except ValueError:
        raise _damaged(entity, "mode", f"is {entity.get('mode')!r}") from None


def moment(entity: dict, name: str) -> datetime:
    value = entity.get(name)
    if not isinstance(value, datetime):
        raise _damaged(entity, name, "is missing")
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def text(entity: dict, name: str) -> str:
    value = entity.get(name)
    if not isinstance(value, str) or not value:
        raise _damaged(entity, name, "is missing")
    return value


def json_field(entity: dict, name: str, default=None):
    """A JSON field stored in chunks; a damaged one reads as `default` on the public record."""
    try:
        stored = unpack_json(entity, name)
        return default if stored is None else json.loads(stored)
    except (ValueError, TypeError):
        return default


def json_field_strict(entity: dict, name: str, default=None):
    """A JSON field the lifecycle needs (e.g. parameters to start a run with): damage is an error."""
    try:
        stored = unpack_json(entity, name)
        return default if stored is None else json.loads(stored)
    except (ValueError, TypeError):
        raise _damaged(entity, name, "cannot be read") from None


def to_record(entity: dict) -> dict:
    """The public view of a stored pause: everything but secrets; never raises on a damaged entity."""
    record = {
        "pause_id": pause_id_of(entity),
        "status": entity.get("status"),
        "mode": entity.get("mode"),
        "tenant_id": entity.get("tenant_id"),
        "subscription_id": entity.get("subscription_id"),
        "resource_group": entity.get("resource_group"),
        "factory_name": entity.get("factory_name"),
        "pipeline_name": entity.get("pipeline_name"),
        "parameters": json_field(entity, "parameters", {}),
        "data": json_field(entity, "data"),
        "on_timeout": entity.get("on_timeout"),
        "created_at": iso(entity.get("created_at")),
        "expires_at": iso(entity.get("expires_at")),
        "decided_at": iso(entity.get("decided_at")),
        "decided_by": entity.get("decided_by"),
        "comment": entity.get("comment"),
        "reason": entity.get("reason"),
        "input": json_field(entity, "input"),
        "run_id": entity.get("run_id"),
        "client_ip": entity.get("client_ip"),
        "user_agent": entity.get("user_agent"),
        "last_error": entity.get("last_error"),
        "notification": json_field(entity, "notification", {}),
        "source": json_field(entity, "source"),
    }
    record.update(approvers=json_field(entity, "approvers", []), required_approvals=entity.get("required_approvals"),
                  requested_by=entity.get("requested_by"), allow_self_approval=entity.get("allow_self_approval") is True,
                  approvals=json_field(entity, "approvals", []),
                  approver_links_returned=entity.get("approver_links_returned") is True)
    if entity.get("check_max_attempts"):
        record.update(checks=_checks(entity), checks_mode=entity.get("checks_mode"),
                      check_every=entity.get("check_every"), check_max_attempts=entity.get("check_max_attempts"),
                      check_attempts=entity.get("check_attempts"), checks_passed=entity.get("checks_passed") is True,
                      next_check_at=iso(entity.get("next_check_at")))
    if entity.get("mode") == Mode.CHECKPOINT:
        record.update(checkpoint=entity.get("checkpoint"), hold_ids=json_field(entity, "hold_ids", []))
    if entity.get("mode") in (Mode.CALLBACK, Mode.CHECKPOINT):
        # Known only once a decision was sent: false means "sent, not yet confirmed; re-sent until it is".
        record["callback_confirmed"] = entity.get("callback_confirmed")
    return record


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
