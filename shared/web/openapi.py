"""The OpenAPI 3.1 description of every route, built from the same declarations that validate.

Request bodies and query parameters come from `shared.validation`; the response shapes are
declared here once. A test checks that every route the FunctionApp registers is described.
"""

import functools

from shared import catalog, tokens, validation
from shared.settings import ROUTE_PREFIX
from shared.web import schemas
from shared.web.schemas import ANTIFORGERY, PROBLEM

_ERRORS = {
    400: "The body, a query parameter or a field is invalid; `errors` names each one.",
    401: "APPROVER_SIGN_IN=easyauth and nobody is signed in: the page offers the sign-in.",
    403: "Not allowed: the target factory, tenant or callback host (pause), or who is deciding (links: `reason` "
         "is personal_link, someone_else, requester or not_an_approver); the console: not an operator or sign-in "
         "off; the request pages: `not_a_requester`, the same for an entry that does not exist or is not open to the signed-in person, and for a request page that is not theirs. Under a sign-in cookie (links, console): `cross_site`, a form posted from another site's page, or "
         "`form_expired`, a form without this session's anti-forgery token.",
    404: "No pause has that token or id (a malformed, unknown or forged token answers the same).",
    409: "Already decided (or being decided): `current_status` and `decided_at` say what and when; "
         "`damaged_record` when the stored record cannot be decided; `checks_pending` when a gate's checks have "
         "not passed yet.",
    410: "The pause expired; nothing can be started from this link.",
    413: "The body, `data` or `input` is over its size limit.",
    429: "The requester already has as many open requests of this catalog entry as one may (5): nothing was "
         "requested.",
    502: "Data Factory, the callback target or the email server refused (`upstream_throttled`: Azure Resource "
         "Manager's throttling, past the short wait a click allows); nothing was started and the link still "
         "works. `outcome_unknown`: Data Factory did not answer and could not be asked, so the pause stays "
         "claimed and is reconciled automatically; nothing may be retried by hand. On `POST /pause`: "
         "`email_failed` or `channel_failed` (the detail names the channel): someone asked for could not be told, "
         "so the pause was cancelled.",
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


_ENTRY = {"name": "entry", "in": "path", "required": True, "description": f"The entry's id: {catalog.ENTRY_RULE}.",
          "schema": {"type": "string", "pattern": f"^(?:{catalog.ENTRY_ID.pattern})$"}}
_NO_ENTRY = {"description": "No catalog entry has that id.",
             "content": {"application/problem+json": {"schema": PROBLEM}}}


def _catalog_paths(key: list) -> dict:
    """The catalog's entries (step 1 of the catalog: requesting a run comes next)."""
    location = {"Location": {"description": "The entry's URL.", "schema": {"type": "string", "format": "uri"}}}
    return {
        "/catalog": {"get": {
            "operationId": "list_catalog", "summary": "Catalog entries in id order, a page at a time.", "security": key,
            "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                        "maximum": validation.MAX_PAGE_SIZE,
                                                                        "default": validation.DEFAULT_PAGE_SIZE}},
                           {"name": "cursor", "in": "query", "schema": {"type": "string"},
                            "description": "The `cursor` of the previous page."}],
            "responses": {"200": _json("CatalogPage", "One page."), **{str(s): _problem(s) for s in (400, 503)}}}},
        "/catalog/{entry}": {
            "put": {"operationId": "put_catalog_entry", "summary": "Register or replace an entry, checked as a "
                                                                   "pause body is.", "security": key,
                    "parameters": [_ENTRY], "requestBody": _body("CatalogEntryRequest"),
                    "responses": {"200": _json("CatalogEntry", "Replaced."),
                                  "201": {**_json("CatalogEntry", "Registered."), "headers": location},
                                  **{str(s): _problem(s) for s in (400, 403, 413, 502, 503)}}},
            "get": {"operationId": "get_catalog_entry", "summary": "One entry.", "security": key,
                    "parameters": [_ENTRY], "responses": {"200": _json("CatalogEntry", "The entry."),
                                                          "400": _problem(400), "404": _NO_ENTRY,
                                                          "503": _problem(503)}},
            "delete": {"operationId": "delete_catalog_entry", "summary": "Remove an entry (requests already made "
                                                                         "are unaffected).", "security": key,
                       "parameters": [_ENTRY], "responses": {"204": {"description": "Removed."},
                                                             "400": _problem(400), "404": _NO_ENTRY,
                                                             "503": _problem(503)}},
        },
    }


def _console_paths() -> dict:
    """The console's pages: for people signed in through App Service Authentication, not programs."""
    # Pages for browsers (Accept: text/html), problem+json for anything else, like the link routes.
    errors = {str(s): _page_or_problem(s) for s in (401, 403, 503)}
    back = {"303": {"description": "Done: back to the console page (See Other)."}, "400": _page_or_problem(400),
            "413": _page_or_problem(413), **errors}
    form = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "properties": {"antiforgery_token": ANTIFORGERY}}}}}

    def filled(component: str) -> dict:
        return {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
            "$ref": f"#/components/schemas/{component}"}}}}
    pause_id = {"name": "pause_id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/console": {"get": {"operationId": "console_page", "summary": "The operators' console.",
                             "responses": {"200": _html("Everything waiting."), **errors}}},
        "/console/pauses/{pause_id}": {"get": {
            "operationId": "console_pause", "summary": "A pause's record and audit trail.", "parameters": [pause_id],
            "responses": {"200": _html("The pause."), "404": _page_or_problem(404), **errors}}},
        "/console/pauses/{pause_id}/cancel": {"post": {
            "operationId": "console_cancel_pause", "summary": "Cancel a pause (or fail a held run) as the operator.",
            "parameters": [pause_id], "requestBody": filled("ConsoleCancelForm"),
            "responses": {**back, "404": _page_or_problem(404), "409": _page_or_problem(409)}}},
        "/console/holds": {"post": {"operationId": "console_place_hold", "summary": "Place a hold as the operator.",
                                    "requestBody": filled("ConsoleHoldForm"), "responses": back}},
        "/console/holds/{hold_id}/release": {"post": {
            "operationId": "console_release_hold", "summary": "Release a hold as the operator.",
            "parameters": [_HOLD_ID], "requestBody": filled("ConsoleReleaseForm"),
            "responses": {**back, "404": _page_or_problem(404), "409": _page_or_problem(409)}}},
        "/console/holds/{hold_id}/cancel": {"post": {
            "operationId": "console_cancel_hold", "summary": "Cancel a hold as the operator.",
            "parameters": [_HOLD_ID], "requestBody": filled("ConsoleHoldCancelForm"),
            "responses": {**back, "404": _page_or_problem(404), "409": _page_or_problem(409)}}},
        "/console/catalog": {"get": {
            "operationId": "console_catalog", "summary": "The catalog's entries; with `entry`, on to that entry's page.",
            "parameters": [{"name": "entry", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": _html("The catalog."), "303": {"description": "On to the entry's page."},
                          "400": _page_or_problem(400), **errors}}},
        "/console/catalog/{entry}": {
            "get": {"operationId": "console_entry_page", "summary": "An entry as JSON to edit.",
                    "parameters": [_ENTRY], "responses": {"200": _html("The entry."), "400": _page_or_problem(400),
                                                          **errors}},
            "post": {"operationId": "console_entry", "summary": "Save an entry as the operator, checked as PUT "
                     "/catalog/{entry} is.", "parameters": [_ENTRY],
                     "requestBody": filled("ConsoleEntryForm"),
                     "responses": {**back, "502": _page_or_problem(502)}}},
        "/console/catalog/{entry}/delete": {"post": {
            "operationId": "console_delete_entry", "summary": "Remove an entry as the operator.",
            "parameters": [_ENTRY], "requestBody": form, "responses": {**back, "404": _page_or_problem(404)}}},
        "/console/decisions.csv": {"get": {
            "operationId": "console_csv", "summary": "Decisions of a range of UTC days as CSV.",
            "parameters": [{"name": "from", "in": "query", "required": True, "schema": {"type": "string",
                                                                                      "format": "date"}},
                           {"name": "to", "in": "query", "required": True, "schema": {"type": "string",
                                                                                    "format": "date"}}],
            "responses": {"200": {"description": "CSV.", "content": {"text/csv": {"schema": {"type": "string"}}}},
                          "400": _page_or_problem(400), **errors}}},
    }


def _request_paths() -> dict:
    """Requesting a run from the catalog: pages for signed-in people; a program signed in with a bearer token
    may post JSON."""
    errors = {str(s): _page_or_problem(s) for s in (401, 403, 503)}
    entry = {**_ENTRY, "schema": {"type": "string"}}  # any text reaches the route: not a requester (403)
    pause_id = {"name": "pause_id", "in": "path", "required": True, "schema": {"type": "string"}}
    form = {"type": "object", "additionalProperties": {"type": "string"},
            "properties": {"antiforgery_token": ANTIFORGERY},
            "description": "The entry's form: each field as form.<name>."}
    return {
        "/request": {"get": {"operationId": "request_list", "summary": "What the signed-in person may request, "
                             "and their latest requests.", "responses": {"200": _html("The page."), **errors}}},
        "/request/{entry}": {
            "get": {"operationId": "request_entry_page", "summary": "An entry's page and form.", "parameters": [entry],
                    "responses": {"200": _html("The entry's page."), **errors}},
            "post": {"operationId": "request_entry", "summary": "Request a run: an ordinary pause, requested_by "
                     "the signed-in person.", "parameters": [entry],
                     "requestBody": {"required": True, "content": {
                         "application/json": {"schema": {"$ref": "#/components/schemas/RunRequest"}},
                         "application/x-www-form-urlencoded": {"schema": form}}},
                     "responses": {
                         "201": {"description": "Requested (JSON).", "content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/RunRequested"}}}},
                         "303": {"description": "Requested (a page): on to the request's page (See Other)."},
                         **{str(s): _page_or_problem(s) for s in (400, 413, 429, 502)}, **errors}}},
        "/requests/{pause_id}": {"get": {
            "operationId": "request_status", "summary": "A request as it stands, for its requester, approvers and "
            "operators.", "parameters": [pause_id],
            "responses": {"200": {"description": "A page for browsers, the pause's record otherwise.", "content": {
                "text/html": {"schema": {"type": "string"}},
                "application/json": {"schema": {"$ref": "#/components/schemas/PauseRecord"}}}}, **errors}}},
    }


def _pause_paths(key: list) -> dict:
    """POST /pause, GET /pauses/{pause_id}, GET /pauses."""
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
    }


@functools.lru_cache(maxsize=1)
def document() -> dict:
    """The whole OpenAPI document (built once per process)."""
    key = [{"functionKey": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Pausable Pipelines", "version": "1.0.0",
                 "description": "Pause an Azure Data Factory pipeline until a person approves through a one-time link."},
        "servers": [{"url": f"/{ROUTE_PREFIX}"}],
        "components": {
            "securitySchemes": {"functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"}},
            "schemas": schemas.components(),
        },
        "paths": {
            **_pause_paths(key),
            "/restart/{token}": _link_routes("restart", "approve", "Approved", "ApproveForm", "ApproveRequest"),
            "/cancel/{token}": _link_routes("cancel", "cancel", "Cancelled", "CancelForm", "CancelRequest"),
            "/reassign/{token}": {"post": {
                "operationId": "reassign", "summary": "Hand a named approver's part on (from their personal link's "
                                                      "page): the old link is retired, the new approver emailed one.",
                "parameters": [_token_parameter()],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ReassignRequest"}},
                    "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/ReassignForm"}}}},
                "responses": {"200": {"description": "Handed on: a page for browsers, JSON otherwise.", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Reassigned"}},
                    "text/html": {"schema": {"type": "string"}}}},
                    **{str(s): _page_or_problem(s) for s in (400, 401, 403, 404, 409, 413, 502, 503)}}}},
            **_holds_paths(key),
            **_catalog_paths(key),
            **_console_paths(),
            **_request_paths(),
            "/": {"get": {"operationId": "index", "summary": "A small page linking the console and this document.",
                          "responses": {"200": _html("The index page.")}}},
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document.",
                "responses": {"200": {"description": "OpenAPI 3.1.", "content": {"application/json": {"schema": {"type": "object"}}}}},
            }},
        },
    }
