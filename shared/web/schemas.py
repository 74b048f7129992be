"""The component schemas of the OpenAPI document: request bodies from `shared.validation`, the
pause's record from `shared.storage.records`, the other response shapes declared here once."""

from shared import catalog, catalog_requests, validation
from shared.lifecycle.model import HoldStatus, Status
from shared.storage.records import APPROVAL, RECORD
from shared.storage.records import TEXT as NULLABLE_TEXT
from shared.storage.records import TIME as NULLABLE_TIME

PROBLEM = {"$ref": "#/components/schemas/Problem"}
ANTIFORGERY = {"type": "string", "description": "The anti-forgery token the page's form carries under a sign-in "
                                              "cookie (APPROVER_SIGN_IN=easyauth); required on a signed-in POST "
                                              "without an Authorization (bearer) header."}


def with_antiforgery(schema: dict) -> dict:
    """A page form's schema: its fields and the anti-forgery token."""
    return {**schema, "properties": {**schema.get("properties", {}), "antiforgery_token": ANTIFORGERY}}


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
        "ReassignRequest": validation.REASSIGN_BODY.schema(),
        "ReassignForm": with_antiforgery(validation.REASSIGN_BODY.schema()),
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
                        "properties": {name: field.schema for name, field in RECORD.items()}},
        "PausePage": {
            "type": "object", "required": ["items", "cursor"],
            "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/PauseRecord"}},
                           "cursor": NULLABLE_TEXT, "next_url": {"type": "string", "format": "uri"}},
        },
    }


def _decisions() -> dict:
    """What the link routes answer."""
    return {
        "Reassigned": {"type": "object", "required": ["pause_id", "status", "approvers", "reassignments"],
                       "properties": {"pause_id": {"type": "string"}, "status": {"const": Status.PENDING.value},
                                      "approvers": RECORD["approvers"].schema,
                                      "reassignments": RECORD["reassignments"].schema}},
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


def _catalog() -> dict:
    """The catalog's entries: the body as declared once (`shared.catalog.ENTRY_BODY`), and as stored."""
    body = catalog.ENTRY_BODY.schema()
    stored = {**body, "description": "A catalog entry as stored.",
              "required": ["entry", *body["required"], "updated_at", "updated_by"],
              "properties": {"entry": {"type": "string", "pattern": f"^(?:{catalog.ENTRY_ID.pattern})$"},
                             **body["properties"], "updated_at": {"type": "string", "format": "date-time"},
                             "updated_by": NULLABLE_TEXT}}
    page = {"type": "object", "required": ["items", "cursor"], "properties": {
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/CatalogEntry"}},
        "cursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last."},
        "next_url": {"type": "string", "format": "uri"}}}
    made = {"type": "object", "required": ["pause_id", "status", "entry", "expires_at", "request_url"], "properties": {
        "pause_id": {"type": "string"}, "status": {"type": "string", "const": "pending"},
        "entry": {"type": "string"}, "expires_at": {"type": "string", "format": "date-time"},
        "request_url": {"type": "string", "format": "uri", "description": "The request's page."}}}
    return {"CatalogEntryRequest": body, "CatalogEntry": stored, "CatalogPage": page,
            "RunRequest": catalog_requests.REQUEST_BODY.schema(), "RunRequested": made}


def _console_forms() -> dict:
    """The console pages' forms, as an operator's browser posts them (each with its anti-forgery token)."""
    reason = validation.HOLD_CANCEL_BODY.schema()  # a reason, required and not blank
    scope = validation.HOLD_BODY.fields["scope"].fields
    # A scope part left blank is left out; at least one must be filled in.
    part = {"type": "string", "maxLength": 140, "pattern": f"^{validation.HOLD_SCOPE_CHARS}{{0,140}}$"}
    filled = {"type": "string", "not": {"pattern": validation.BLANK_PART}}
    return {
        "ConsoleCancelForm": with_antiforgery({**reason, "description": "Why the pause is cancelled (or the held run "
                                                                       "fails): its owner and approvers read it."}),
        "ConsoleHoldForm": with_antiforgery({
            "type": "object", "description": validation.HOLD_BODY.description, "required": ["reason"],
            "properties": {**{name: {**part, "description": field.description} for name, field in scope.items()},
                           "reason": validation.HOLD_BODY.fields["reason"].schema(),
                           "expires_in_hours": {"type": "string", "pattern": f"^ *({validation.HOURS})? *$",
                                                "description": "Hours until the hold releases by itself, 0.02 to "
                                                               "720 (e.g. 4 or 1.5); empty: until released."}},
            "anyOf": [{"required": [name], "properties": {name: filled}} for name in scope]}),
        "ConsoleReleaseForm": with_antiforgery(validation.RELEASE_BODY.schema()),
        "ConsoleHoldCancelForm": with_antiforgery(reason),
        "ConsoleEntryForm": with_antiforgery({
            "type": "object", "required": ["entry_json"], "description": "The entry as JSON text, checked as PUT "
                                                                         "/catalog/{entry} checks its body.",
            "properties": {"entry_json": {"type": "string", "contentMediaType": "application/json",
                                          "contentSchema": {"$ref": "#/components/schemas/CatalogEntryRequest"}}}}),
    }


def components() -> dict:
    """Every component schema, by name."""
    return {**_requests(), **_pauses(), **_decisions(), **_holds(), **_catalog(), **_console_forms(), **_problem()}
