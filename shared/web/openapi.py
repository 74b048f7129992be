"""The OpenAPI 3.1 description of every route, built from the same declarations that validate.

Request bodies and query parameters come from `shared.validation`; the response shapes are
declared here once. A test checks that every route the FunctionApp registers is described.
"""

import functools

from shared import tokens
from shared import validation
from shared.settings import ROUTE_PREFIX

PROBLEM = {"$ref": "#/components/schemas/Problem"}
APPROVAL = {"type": "object", "required": ["approver", "at", "via"], "properties": {
    "approver": {"type": "string"}, "at": {"type": "string", "format": "date-time"},
    "comment": {"type": ["string", "null"]}, "client_ip": {"type": ["string", "null"]},
    "user_agent": {"type": ["string", "null"]}, "via": {"type": "string", "enum": ["personal_link", "sign_in"]}}}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

_ERRORS = {
    400: "The body, a query parameter or a field is invalid; `errors` names each one.",
    401: "APPROVER_SIGN_IN=easyauth and nobody is signed in: the page offers the sign-in.",
    403: "Not allowed: the target factory, tenant or callback host (pause), or who is deciding (links: `reason` "
         "is personal_link, someone_else, requester or not_an_approver); the console: not an operator or sign-in "
         "off. Under a sign-in cookie (links, console): `cross_site`, a form posted from another site's page, or "
         "`form_expired`, a form without this session's anti-forgery token.",
    404: "No pause has that token or id (a malformed, unknown or forged token answers the same).",
    409: "Already decided (or being decided): `current_status` and `decided_at` say what and when; "
         "`damaged_record` when the stored record cannot be decided; `checks_pending` when a gate's checks have "
         "not passed yet.",
    410: "The pause expired; nothing can be started from this link.",
    413: "The body, `data` or `input` is over its size limit.",
    502: "Data Factory, the callback target or the email server refused; nothing was started and the link still "
         "works. `outcome_unknown`: Data Factory did not answer and could not be asked, so the pause stays "
         "claimed and is reconciled automatically; nothing may be retried by hand.",
    503: "Table storage is unreachable; nothing was written. `sign_in_unavailable`: APPROVER_SIGN_IN=easyauth "
         "but App Service Authentication is not on (WEBSITE_AUTH_ENABLED).",
}


_PAUSE_EXAMPLES = {
    "restart": {"summary": "Restart mode: start Load_Sales on approval", "value": {
        "subscription_id": "00000000-0000-0000-0000-000000000000", "resource_group": "rg-data",
        "factory_name": "adf-demo", "pipeline_name": "Load_Sales", "parameters": {"day": "2026-11-25"},
        "data": {"rows_staged": 1200}, "expires_in": 86400,
        "notification": {"title": "Load 1200 rows into Sales?"}}},
    "callback": {"summary": "Callback mode: what an ADF WebHook activity sends", "value": {
        "callBackUri": "https://dpeastus.svc.datafactory.azure.com/dataplane/workflow/callback/example",
        "notification": {"title": "Continue the load?"}, "on_timeout": "expire"}},
}


def _problem(status: int) -> dict:
    return {"description": _ERRORS[status], "content": {"application/problem+json": {"schema": PROBLEM}}}


def _page_or_problem(status: int) -> dict:
    """A link route's error: a page for browsers (`Accept: text/html`), problem+json otherwise."""
    return {"description": _ERRORS[status],
            "content": {"text/html": {"schema": {"type": "string"}}, "application/problem+json": {"schema": PROBLEM}}}


_ANTIFORGERY = {"type": "string", "description": "The anti-forgery token the page's form carries under a sign-in "
                                               "cookie (APPROVER_SIGN_IN=easyauth); required when the POST carries "
                                               "cookies."}


def _with_antiforgery(schema: dict) -> dict:
    """A page form's schema: its fields and the anti-forgery token."""
    return {**schema, "properties": {**schema.get("properties", {}), "antiforgery_token": _ANTIFORGERY}}


def _schemas() -> dict:
    record_properties = {
        "pause_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "status": validation.STATUS_QUERY.schema() | {"description": "Where the pause is in its life."},
        "mode": {"type": "string", "enum": ["restart", "callback", "checkpoint"],
                 "description": "checkpoint: a run held at a checkpoint by an operator's hold."},
        **{name: _NULLABLE_TEXT for name in ("tenant_id", "subscription_id", "resource_group", "factory_name",
                                              "pipeline_name", "decided_by", "comment", "reason", "run_id",
                                              "client_ip", "user_agent", "last_error")},
        "on_timeout": {"enum": ["expire", "restart", None], "description": "null for a held checkpoint."},
        "parameters": {"type": "object"},
        "data": {"description": "Exactly the `data` sent with the pause (null when none)."},
        "input": {"type": ["object", "null"]},
        "notification": {"type": "object"},
        "source": {"type": ["object", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "expires_at": {**_NULLABLE_TIME, "description": "null for a held checkpoint (it waits on its holds)."},
        "decided_at": _NULLABLE_TIME,
        "checkpoint": {"type": "string", "description": "Checkpoint mode: which checkpoint the run reached."},
        "hold_ids": {"type": "array", "items": {"type": "string"},
                     "description": "Checkpoint mode: the holds it waits (or waited) on."},
        "approvers": {"type": "array", "items": {"type": "string"}},
        "required_approvals": {"type": ["integer", "null"]},
        "requested_by": _NULLABLE_TEXT,
        "allow_self_approval": {"type": "boolean"},
        "approver_links_returned": {"type": "boolean",
                                    "description": "The pause asked for its approvers' personal links in the answer "
                                                   "(return_approver_links): its caller could approve in their names."},
        "approvals": {"type": "array", "items": APPROVAL},
        "checks": {"type": "array", "description": "Each check with its last result, when, and the attempts made.",
                   "items": {"type": "object", "required": ["name", "type", "result", "attempts"], "properties": {
                       "name": {"type": "string"}, "type": {"enum": ["http", "adf_run"]},
                       "result": {"enum": ["passed", "not_yet", "error", "failed", None]},
                       "detail": _NULLABLE_TEXT, "at": _NULLABLE_TIME, "attempts": {"type": "integer"}}}},
        "checks_mode": {"enum": ["auto", "gate"]},
        "check_every": {"type": "integer"}, "check_max_attempts": {"type": "integer"},
        "check_attempts": {"type": "integer"}, "checks_passed": {"type": "boolean"},
        "next_check_at": _NULLABLE_TIME,
        "callback_confirmed": {"type": ["boolean", "null"],
                               "description": "Callback mode: false while the decision sent to the WebHook is not "
                                              "confirmed (it is re-sent, byte for byte, until it is)."},
    }
    pause_body = validation.PAUSE_BODY.schema()
    # Restart mode names the pipeline; callback mode has the WebHook's callBackUri instead.
    pause_body["anyOf"] = [{"required": ["callBackUri"]}, {"required": list(validation.RESTART_TARGET_FIELDS)}]
    return {
        "PauseRequest": pause_body,
        "ApproveRequest": validation.APPROVE_BODY.schema(),
        "ApproveForm": _with_antiforgery(validation.APPROVE_FORM.schema()),
        "CancelRequest": validation.CANCEL_BODY.schema(),
        "CancelForm": _with_antiforgery(validation.CANCEL_BODY.schema()),
        "PauseCreated": {
            "type": "object",
            "required": ["pause_id", "token", "status", "expires_at", "restart_url", "cancel_url", "status_url"],
            "properties": {
                "pause_id": {"type": "string"},
                "token": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$",
                          "description": "One-time credential; only its hash is stored."},
                "status": {"type": "string", "const": "pending"},
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
                        "properties": record_properties},
        "PausePage": {
            "type": "object", "required": ["items", "cursor"],
            "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/PauseRecord"}},
                           "cursor": _NULLABLE_TEXT, "next_url": {"type": "string", "format": "uri"}},
        },
        "Approved": {"type": "object", "required": ["pause_id", "status", "run_id"],
                     "properties": {"pause_id": {"type": "string"},
                                    "status": {"enum": ["restarted", "pending"],
                                               "description": "pending: the approval was counted; more are needed."},
                                    "run_id": {**_NULLABLE_TEXT, "description": "The ADF run (restart mode)."},
                                    "callback_confirmed": {"type": "boolean"},
                                    "required_approvals": {"type": "integer"},
                                    "approvals": {"type": "array", "items": APPROVAL}}},
        "Cancelled": {"type": "object", "required": ["pause_id", "status", "reason"],
                      "properties": {"pause_id": {"type": "string"}, "status": {"const": "cancelled"},
                                     "reason": _NULLABLE_TEXT, "callback_confirmed": {"type": "boolean"}}},
        "HoldRequest": validation.HOLD_BODY.schema(),
        "ReleaseRequest": validation.RELEASE_BODY.schema(),
        "HoldCancelRequest": validation.HOLD_CANCEL_BODY.schema(),
        "CheckpointRequest": validation.CHECKPOINT_BODY.schema(),
        "Hold": {"type": "object", "required": ["hold_id", "status", "scope", "reason", "created_at"], "properties": {
            "hold_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "status": {"enum": ["active", "released", "cancelled"],
                       "description": "A hold past its expiry is released (ended_by `expiry`)."},
            "scope": {"type": "object", "additionalProperties": {"type": "string"}},
            "reason": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
            "created_by": _NULLABLE_TEXT, "expires_at": _NULLABLE_TIME, "ended_at": _NULLABLE_TIME,
            "ended_by": _NULLABLE_TEXT, "comment": _NULLABLE_TEXT,
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


def _token_parameter() -> dict:
    return {"name": "token", "in": "path", "required": True, "description": "The token from the link.",
            "schema": {"type": "string", "pattern": f"^[0-9a-f]{{32}}[A-Za-z0-9_-]{{{tokens.SECRET_LENGTH}}}$"}}


def _link_routes(action: str, page: str, json_result: str, form: str | None, body: str) -> dict:
    statuses_post = (400, 401, 403, 404, 409, 410, 413, 502, 503)
    done = {"application/json": {"schema": {"$ref": f"#/components/schemas/{json_result}"}},
            "text/html": {"schema": {"type": "string"}}}
    return {
        "get": {
            "operationId": f"{action}_page", "summary": f"Show the {page} confirmation page (never changes anything).",
            "parameters": [_token_parameter()],
            "responses": {"200": {"description": "The confirmation page.", "content": {"text/html": {"schema": {"type": "string"}}}},
                          **{str(s): _page_or_problem(s) for s in (401, 403, 404, 409, 410, 503)}},
        },
        "post": {
            "operationId": action, "summary": f"{page.capitalize()} the pause (the page's button posts the form).",
            "parameters": [_token_parameter()],
            "requestBody": {"required": False, "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}},
                "application/x-www-form-urlencoded": {"schema": {"$ref": f"#/components/schemas/{form or body}"}}}},
            "responses": {"200": {"description": "Done: a page for browsers, JSON otherwise.", "content": done},
                          "202": {"description": "Decided, but the waiting WebHook has not confirmed it yet "
                                                 "(`callback_confirmed: false`); the app re-sends it until it does.",
                                  "content": done},
                **{str(s): _page_or_problem(s) for s in statuses_post}},
        },
    }


def _json(schema: str, description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _html(description: str) -> dict:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _body(schema: str, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema}"}}}}


_HOLD_ID = {"name": "hold_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _holds_paths(key) -> dict:
    ended = {**{str(s): _problem(s) for s in (400, 404, 503)},
             "409": {"description": "The hold had ended already (released, cancelled or expired).",
                     "content": {"application/problem+json": {"schema": PROBLEM}}}}
    return {
        "/holds": {
            "post": {"operationId": "place_hold", "summary": "Place a hold: matching runs wait at their next "
                                                             "checkpoint.", "security": key,
                     "requestBody": _body("HoldRequest"),
                     "responses": {"201": _json("Hold", "Placed."), **{str(s): _problem(s) for s in (400, 503)}}},
            "get": {"operationId": "list_holds", "summary": "Active holds (default), or the latest released or "
                                                            "cancelled ones.", "security": key,
                    "parameters": [{"name": "status", "in": "query", "schema": validation.HOLD_STATUS_QUERY.schema()},
                                   {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                               "maximum": validation.MAX_PAGE_SIZE}}],
                    "responses": {"200": _json("HoldList", "The holds."), **{str(s): _problem(s) for s in (400, 503)}}},
        },
        "/holds/{hold_id}": {"get": {
            "operationId": "show_hold", "summary": "One hold, with the checkpoints waiting on it.", "security": key,
            "parameters": [_HOLD_ID], "responses": {"200": _json("Hold", "The hold."),
                                                    **{str(s): _problem(s) for s in (404, 503)}}}},
        "/holds/{hold_id}/release": {"post": {
            "operationId": "release_hold", "summary": "Release: every checkpoint waiting on this hold (and on no other "
                                                      "active one) continues, once.", "security": key,
            "parameters": [_HOLD_ID], "requestBody": _body("ReleaseRequest", required=False),
            "responses": {"200": _json("Hold", "Released."), **ended}}},
        "/holds/{hold_id}/cancel": {"post": {
            "operationId": "cancel_hold", "summary": "Cancel: every checkpoint waiting on this hold fails with "
                                                     "HoldCancelled, once.", "security": key,
            "parameters": [_HOLD_ID], "requestBody": _body("HoldCancelRequest"),
            "responses": {"200": _json("Hold", "Cancelled."), **ended}}},
        "/checkpoint": {"post": {
            "operationId": "checkpoint", "summary": "A run reached a checkpoint (an ADF WebHook activity). 202; the "
                                                    "run is called back within seconds, or when its holds end.",
            "security": key, "requestBody": _body("CheckpointRequest"),
            "responses": {"202": _json("CheckpointReached", "Accepted; no Location header (ADF would poll it)."),
                          **{str(s): _problem(s) for s in (400, 403, 413, 503)}}}},
    }


def _console_paths() -> dict:
    """The console's pages: for people signed in through App Service Authentication, not programs."""
    # Pages for browsers (Accept: text/html), problem+json for anything else, like the link routes.
    errors = {str(s): _page_or_problem(s) for s in (401, 403, 503)}
    back = {"303": {"description": "Done: back to the console page (See Other)."}, "400": _page_or_problem(400),
            "413": _page_or_problem(413), **errors}
    form = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "properties": {"antiforgery_token": _ANTIFORGERY}}}}}
    pause_id = {"name": "pause_id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/console": {"get": {"operationId": "console_page", "summary": "The operators' console.",
                             "responses": {"200": _html("Everything waiting."), **errors}}},
        "/console/pauses/{pause_id}": {"get": {
            "operationId": "console_pause", "summary": "A pause's record and audit trail.", "parameters": [pause_id],
            "responses": {"200": _html("The pause."), "404": _page_or_problem(404), **errors}}},
        "/console/pauses/{pause_id}/cancel": {"post": {
            "operationId": "console_cancel_pause", "summary": "Cancel a pause (or fail a held run) as the operator.",
            "parameters": [pause_id], "requestBody": form, "responses": {**back, "404": _page_or_problem(404), "409": _page_or_problem(409)}}},
        "/console/holds": {"post": {"operationId": "console_place_hold", "summary": "Place a hold as the operator.",
                                    "requestBody": form, "responses": back}},
        "/console/holds/{hold_id}/release": {"post": {
            "operationId": "console_release_hold", "summary": "Release a hold as the operator.",
            "parameters": [_HOLD_ID], "requestBody": form, "responses": {**back, "404": _page_or_problem(404), "409": _page_or_problem(409)}}},
        "/console/holds/{hold_id}/cancel": {"post": {
            "operationId": "console_cancel_hold", "summary": "Cancel a hold as the operator.",
            "parameters": [_HOLD_ID], "requestBody": form, "responses": {**back, "404": _page_or_problem(404), "409": _page_or_problem(409)}}},
        "/console/decisions.csv": {"get": {
            "operationId": "console_csv", "summary": "Decisions of a range of UTC days as CSV.",
            "parameters": [{"name": "from", "in": "query", "required": True, "schema": {"type": "string",
                                                                                      "format": "date"}},
                           {"name": "to", "in": "query", "required": True, "schema": {"type": "string",
                                                                                    "format": "date"}}],
            "responses": {"200": {"description": "CSV.", "content": {"text/csv": {"schema": {"type": "string"}}}},
                          "400": _page_or_problem(400), **errors}}},
    }


@functools.lru_cache(maxsize=1)
def document() -> dict:
    """The whole OpenAPI document (built once per process)."""
    key = [{"functionKey": []}]
    location = {"Location": {"description": "The pause's status URL.", "schema": {"type": "string", "format": "uri"}}}
    # Links let clients (and fuzzers) follow a new pause to its links and record.
    links = {
        "ShowApprovePage": {"operationId": "restart_page", "parameters": {"token": "$response.body#/token"}},
        "Approve": {"operationId": "restart", "parameters": {"token": "$response.body#/token"}},
        "ShowCancelPage": {"operationId": "cancel_page", "parameters": {"token": "$response.body#/token"}},
        "Cancel": {"operationId": "cancel", "parameters": {"token": "$response.body#/token"}},
        "ReadPause": {"operationId": "get_pause", "parameters": {"pause_id": "$response.body#/pause_id"}},
    }
    created = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/PauseCreated"}}},
               "headers": location, "links": links}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Pausable Pipelines", "version": "1.0.0",
                 "description": "Pause an Azure Data Factory pipeline until a person approves through a one-time link."},
        "servers": [{"url": f"/{ROUTE_PREFIX}"}],
        "components": {
            "securitySchemes": {"functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"}},
            "schemas": _schemas(),
        },
        "paths": {
            "/pause": {"post": {
                "operationId": "pause", "summary": "Create a pause and get its one-time links.", "security": key,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/PauseRequest"}, "examples": _PAUSE_EXAMPLES}}},
                "responses": {"201": {"description": "Created (restart mode).", **created},
                              "202": {"description": "Accepted: the WebHook activity waits (callback mode). No "
                                                     "Location header: ADF would poll it.",
                                      "content": created["content"], "links": links},
                              **{str(s): _problem(s) for s in (400, 403, 413, 502, 503)}},
            }},
            "/pauses/{pause_id}": {"get": {
                "operationId": "get_pause", "summary": "Read one pause, without its token.", "security": key,
                "parameters": [{"name": "pause_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The record.", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/PauseRecord"}}}},
                    **{str(s): _problem(s) for s in (404, 503)}},
            }},
            "/pauses": {"get": {
                "operationId": "list_pauses", "summary": "List pauses, a page at a time.", "security": key,
                "parameters": [
                    {"name": "status", "in": "query", "schema": validation.STATUS_QUERY.schema()},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                "maximum": validation.MAX_PAGE_SIZE,
                                                                "default": validation.DEFAULT_PAGE_SIZE}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string"},
                     "description": "The `cursor` of the previous page."},
                ],
                "responses": {"200": {"description": "One page.", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/PausePage"}}}},
                    **{str(s): _problem(s) for s in (400, 503)}},
            }},
            "/restart/{token}": _link_routes("restart", "approve", "Approved", "ApproveForm", "ApproveRequest"),
            "/cancel/{token}": _link_routes("cancel", "cancel", "Cancelled", "CancelForm", "CancelRequest"),
            **_holds_paths(key),
            **_console_paths(),
            "/": {"get": {"operationId": "index", "summary": "A small page linking the console and this document.",
                          "responses": {"200": _html("The index page.")}}},
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document.",
                "responses": {"200": {"description": "OpenAPI 3.1.", "content": {"application/json": {"schema": {"type": "object"}}}}},
            }},
        },
    }
