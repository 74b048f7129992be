"""The component schemas of the OpenAPI document: request bodies from `shared.validation`, the
response shapes declared here once."""

from shared import validation
from shared.check_fields import CHECKS_MODES
from shared.checks.expect import Result
from shared.lifecycle.model import HoldStatus, Status

PROBLEM = {"$ref": "#/components/schemas/Problem"}
APPROVAL = {"type": "object", "required": ["approver", "at", "via"], "properties": {
    "approver": {"type": "string"}, "at": {"type": "string", "format": "date-time"},
    "comment": {"type": ["string", "null"]}, "client_ip": {"type": ["string", "null"]},
    "user_agent": {"type": ["string", "null"]}, "via": {"type": "string", "enum": ["personal_link", "sign_in"]}}}
NULLABLE_TEXT = {"type": ["string", "null"]}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
ANTIFORGERY = {"type": "string", "description": "The anti-forgery token the page's form carries under a sign-in "
                                              "cookie (APPROVER_SIGN_IN=easyauth); required when the POST carries "
                                              "cookies."}


def with_antiforgery(schema: dict) -> dict:
    """A page form's schema: its fields and the anti-forgery token."""
    return {**schema, "properties": {**schema.get("properties", {}), "antiforgery_token": ANTIFORGERY}}


def record_properties() -> dict:
    """Every field of a pause's public record (GET /pauses/{pause_id})."""
    return {
        "pause_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "status": validation.STATUS_QUERY.schema() | {"description": "Where the pause is in its life."},
        "mode": {"type": "string", "enum": ["restart", "callback", "checkpoint"],
                 "description": "checkpoint: a run held at a checkpoint by an operator's hold."},
        **{name: NULLABLE_TEXT for name in ("tenant_id", "subscription_id", "resource_group", "factory_name",
                                              "pipeline_name", "decided_by", "comment", "reason", "run_id",
                                              "client_ip", "user_agent", "last_error")},
        "on_timeout": {"enum": ["expire", "restart", None], "description": "null for a held checkpoint."},
        "parameters": {"type": "object"},
        "data": {"description": "Exactly the `data` sent with the pause (null when none)."},
        "input": {"type": ["object", "null"]},
        "notification": {"type": "object"},
        "source": {"type": ["object", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "expires_at": {**NULLABLE_TIME, "description": "null for a held checkpoint (it waits on its holds)."},
        "decided_at": NULLABLE_TIME,
        "checkpoint": {"type": "string", "description": "Checkpoint mode: which checkpoint the run reached."},
        "hold_ids": {"type": "array", "items": {"type": "string"},
                     "description": "Checkpoint mode: the holds it waits (or waited) on."},
        "approvers": {"type": "array", "items": {"type": "string"}},
        "required_approvals": {"type": ["integer", "null"]},
        "requested_by": NULLABLE_TEXT,
        "allow_self_approval": {"type": "boolean"},
        "approver_links_returned": {"type": "boolean",
                                    "description": "The pause asked for its approvers' personal links in the answer "
                                                   "(return_approver_links): its caller could approve in their names."},
        "approvals": {"type": "array", "items": APPROVAL},
        "checks": {"type": "array", "description": "Each check with its last result, when, and the attempts made.",
                   "items": {"type": "object", "required": ["name", "type", "result", "attempts"], "properties": {
                       "name": {"type": "string"}, "type": {"enum": ["http", "adf_run"]},
                       "result": {"enum": [*(result.value for result in Result), None]},
                       "detail": NULLABLE_TEXT, "at": NULLABLE_TIME, "attempts": {"type": "integer"}}}},
        "checks_mode": {"enum": list(CHECKS_MODES)},
        "check_every": {"type": "integer"}, "check_max_attempts": {"type": "integer"},
        "check_attempts": {"type": "integer"}, "checks_passed": {"type": "boolean"},
        "next_check_at": NULLABLE_TIME,
        "callback_confirmed": {"type": ["boolean", "null"],
                               "description": "Callback mode: false while the decision sent to the WebHook is not "
                                              "confirmed (it is re-sent, byte for byte, until it is)."},
    }


def _requests() -> dict:
    """What pipelines and pages send."""
    pause_body = validation.PAUSE_BODY.schema()
    # Restart mode names the pipeline; callback mode has the WebHook's callBackUri instead.
    pause_body["anyOf"] = [{"required": ["callBackUri"]}, {"required": list(validation.RESTART_TARGET_FIELDS)}]
    return {
        "PauseRequest": pause_body,
        "ApproveRequest": validation.APPROVE_BODY.schema(),
        "ApproveForm": with_antiforgery(validation.APPROVE_FORM.schema()),
        "CancelRequest": validation.CANCEL_BODY.schema(),
        "CancelForm": with_antiforgery(validation.CANCEL_BODY.schema()),
    }


def _pauses() -> dict:
    """What the pause routes answer."""
    return {
        "PauseCreated": {
            "type": "object",
            "required": ["pause_id", "token", "status", "expires_at", "restart_url", "cancel_url", "status_url"],
            "properties": {
                "pause_id": {"type": "string"},
                "token": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$",
                          "description": "One-time credential; only its hash is stored."},
                "status": {"type": "string", "const": Status.PENDING.value},
                "expires_at": {"type": "string", "format": "date-time"},
                "restart_url": {"type": "string", "format": "uri"},
                "cancel_url": {"type": "string", "format": "uri"},
                "status_url": {"type": "string", "format": "uri"},
                "approver_links": {"type": "array", "description": "Only with `return_approver_links: true`: each approver's "
                                                                 "personal links, for the caller to deliver.",
                                   "items": {"type": "object", "required": ["approver", "restart_url", "cancel_url"],
                                             "properties": {"approver": {"type": "string"},
                                                            "restart_url": {"type": "string", "format": "uri"},
                                                            "cancel_url": {"type": "string", "format": "uri"}}}},
            },
        },
        "PauseRecord": {"type": "object", "required": ["pause_id", "status", "mode", "created_at", "expires_at"],
                        "properties": record_properties()},
        "PausePage": {
            "type": "object", "required": ["items", "cursor"],
            "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/PauseRecord"}},
                           "cursor": NULLABLE_TEXT, "next_url": {"type": "string", "format": "uri"}},
        },
    }


def _decisions() -> dict:
    """What the link routes answer."""
    return {
        "Approved": {"type": "object", "required": ["pause_id", "status", "run_id"],
                     "properties": {"pause_id": {"type": "string"},
                                    "status": {"enum": [Status.RESTARTED.value, Status.PENDING.value],
                                               "description": "pending: the approval was counted; more are needed."},
                                    "run_id": {**NULLABLE_TEXT, "description": "The ADF run (restart mode)."},
                                    "callback_confirmed": {"type": "boolean"},
                                    "required_approvals": {"type": "integer"},
                                    "approvals": {"type": "array", "items": APPROVAL}}},
        "Cancelled": {"type": "object", "required": ["pause_id", "status", "reason"],
                      "properties": {"pause_id": {"type": "string"}, "status": {"const": Status.CANCELLED.value},
                                     "reason": NULLABLE_TEXT, "callback_confirmed": {"type": "boolean"}}},
    }


def _holds() -> dict:
    """Holds and checkpoints."""
    return {
        "HoldRequest": validation.HOLD_BODY.schema(),
        "ReleaseRequest": validation.RELEASE_BODY.schema(),
        "HoldCancelRequest": validation.HOLD_CANCEL_BODY.schema(),
        "CheckpointRequest": validation.CHECKPOINT_BODY.schema(),
        "Hold": {"type": "object", "required": ["hold_id", "status", "scope", "reason", "created_at"], "properties": {
            "hold_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "status": {"enum": [status.value for status in HoldStatus],
                       "description": "A hold past its expiry is released (ended_by `expiry`)."},
            "scope": {"type": "object", "additionalProperties": {"type": "string"}},
            "reason": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
            "created_by": NULLABLE_TEXT, "expires_at": NULLABLE_TIME, "ended_at": NULLABLE_TIME,
            "ended_by": NULLABLE_TEXT, "comment": NULLABLE_TEXT,
            "hold_url": {"type": "string", "format": "uri"},
            "waiting": {"type": "array", "items": {"$ref": "#/components/schemas/PauseRecord"},
                        "description": "GET /holds/{hold_id}: the checkpoints held by it."},
            "checkpoints": {"type": "object", "description": "After a release or cancel: the checkpoints' pause ids "
                                                            "by what became of them.",
                            "additionalProperties": {"type": "array", "items": {"type": "string"}}}}},
        "HoldList": {"type": "object", "required": ["items"],
                     "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Hold"}}}},
        "CheckpointReached": {"type": "object", "required": ["held", "checkpoint"], "properties": {
            "held": {"type": "boolean", "description": "false: the run is called back within seconds."},
            "checkpoint": {"type": "string"}, "pause_id": {"type": "string"},
            "hold_ids": {"type": "array", "items": {"type": "string"}}}},
    }


def _problem() -> dict:
    """Errors: RFC 9457 problem details."""
    return {
        "Problem": {
            "type": "object", "required": ["type", "title", "status", "detail", "code"],
            "description": "RFC 9457 problem details.",
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "code": {"type": "string"},
                "errors": {"type": "array", "items": {
                    "type": "object", "required": ["field", "rule", "message"],
                    "properties": {"field": {"type": "string"}, "rule": {"type": "string"},
                                   "message": {"type": "string"}}}},
            },
        },
    }


def components() -> dict:
    """Every component schema, by name."""
    return {**_requests(), **_pauses(), **_decisions(), **_holds(), **_problem()}
