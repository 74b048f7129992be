"""HTTP entry points of the operators' console and the API's index page.

The console's routes are anonymous to the Functions host: App Service Authentication stands in
front, and `shared.console.operator` admits only signed-in operators. A form post is taken only
from the console's own page (same-origin evidence and the page's anti-forgery token, see
`shared.web.antiforgery`); every page is rendered without script, like the link pages.
"""

import azure.functions as func

from shared import catalog, console, holds, settings, validation
from shared.errors import InvalidRequest
from shared.web import http as web
from shared.web import pages

bp = func.Blueprint()


def _operator(req: func.HttpRequest) -> str:
    return console.operator(web.caller(req).principal)


def _page(req: func.HttpRequest, template: str, context) -> func.HttpResponse:
    """A console page for the signed-in operator (only then is `context()` read), its forms carrying
    their anti-forgery token."""
    caller = web.caller(req)
    who = console.operator(caller.principal)
    return web.page_response(template, operator=who, done=_done(req), antiforgery=web.form_token(req, caller),
                             **context())


def _posted(req: func.HttpRequest) -> tuple[str, dict, web.Caller]:
    """An operator's form post: who, the form's fields (after the anti-forgery checks), the caller."""
    caller = web.caller(req)
    who = console.operator(caller.principal)
    fields, _ = web.form_or_json(req)
    web.check_form(req, caller, fields, back_url=f"/{settings.ROUTE_PREFIX}/console")
    return who, fields, caller


DONE = {"cancelled": "the pause was cancelled", "hold-placed": "the hold was placed",
        "hold-released": "the hold was released", "hold-cancelled": "the hold was cancelled",
        "entry-saved": "the catalog entry was saved", "entry-deleted": "the catalog entry was removed"}


def _done(req: func.HttpRequest) -> str | None:
    """The notice after a form: only the app's own words (a crafted link cannot make it say anything)."""
    return DONE.get(req.params.get("done") or "")


def _back(req: func.HttpRequest, path: str = "console", note: str | None = None) -> func.HttpResponse:
    """After a form: back to the page (303, so a reload does not post again)."""
    from urllib.parse import urlencode

    query = f"?{urlencode({'done': note})}" if note else ""
    return func.HttpResponse(status_code=303, headers={"Location": f"/{settings.ROUTE_PREFIX}/{path}{query}",
                                                       **pages.security_headers(html=False)})


@bp.route(route="{ignored:maxlength(0)?}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def index(req: func.HttpRequest) -> func.HttpResponse:
    """A small index: the console, the OpenAPI document and, locally, the stand-ins' pages."""
    current = settings.get_settings()
    local = current.arm_is_local_standin
    return web.page_response("index.html", local=local, adf_url=current.arm_endpoint if local else None)


@bp.route(route="console", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def console_page(req: func.HttpRequest) -> func.HttpResponse:
    """Everything waiting: pending approvals, held checkpoints, active holds, recent decisions."""
    return _page(req, "console.html", console.overview)


@bp.route(route="console/pauses/{pause_id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def console_pause(req: func.HttpRequest) -> func.HttpResponse:
    """One pause's full record and audit trail."""
    return _page(req, "console_pause.html", lambda: {"pause": console.pause(req.route_params["pause_id"])})


@bp.route(route="console/pauses/{pause_id}/cancel", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def console_cancel_pause(req: func.HttpRequest) -> func.HttpResponse:
    """Cancel a pending pause (or fail a held checkpoint) as the signed-in operator."""
    who, fields, caller = _posted(req)
    decision = validation.parse_decision(fields, validation.CANCEL_BODY)
    pause_id = req.route_params["pause_id"]
    console.cancel_pause(pause_id, decision.comment, who, caller.client_ip, caller.user_agent)
    return _back(req, f"console/pauses/{pause_id}", "cancelled")


@bp.route(route="console/holds", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def console_place_hold(req: func.HttpRequest) -> func.HttpResponse:
    """Place a hold as the signed-in operator."""
    who, fields, _ = _posted(req)
    texts = {name: validation.form_text(fields, name) for name in (*holds.SCOPE_PARTS, "reason")}
    scope = {part: texts[part].strip() for part in holds.SCOPE_PARTS if texts[part].strip()}
    body = {"scope": scope, "reason": texts["reason"]}
    hours = validation.parse_hours(fields.get("expires_in_hours"), "expires_in_hours")
    if hours is not None:
        body["expires_in"] = hours
    request = validation.parse_hold(body)
    holds.new_hold(request.scope, request.reason, request.expires_in, who)
    return _back(req, note="hold-placed")


def _end_hold(req: func.HttpRequest, status: str, schema) -> func.HttpResponse:
    who, fields, _ = _posted(req)
    decision = validation.parse_decision(fields, schema)
    console.end_hold(req.route_params["hold_id"], status, who, decision.comment)
    return _back(req, note=f"hold-{status}")


@bp.route(route="console/holds/{hold_id}/release", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def console_release_hold(req: func.HttpRequest) -> func.HttpResponse:
    """Release a hold as the signed-in operator: its runs continue."""
    return _end_hold(req, holds.RELEASED, validation.RELEASE_BODY)


@bp.route(route="console/holds/{hold_id}/cancel", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def console_cancel_hold(req: func.HttpRequest) -> func.HttpResponse:
    """Cancel a hold as the signed-in operator: its runs fail with HoldCancelled."""
    return _end_hold(req, holds.CANCELLED, validation.HOLD_CANCEL_BODY)


@bp.route(route="console/decisions.csv", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def console_csv(req: func.HttpRequest) -> func.HttpResponse:
    """Decisions of a date range (UTC days, both included) as CSV."""
    _operator(req)
    text, name = console.decisions_csv(req.params.get("from"), req.params.get("to"))
    return func.HttpResponse(text.encode("utf-8"), status_code=200, mimetype="text/csv", charset="utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      **pages.security_headers(html=False)})


@bp.route(route="console/catalog", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def console_catalog(req: func.HttpRequest) -> func.HttpResponse:
    """The catalog's entries, and a form to add one (`?entry=<id>` goes on to that entry's page)."""
    if req.params.get("entry") is not None:
        _operator(req)
        return _back(req, f"console/catalog/{catalog.check_entry_id(req.params['entry'].strip())}")
    return _page(req, "console_catalog.html", lambda: {"entries": catalog.list_entries(console.PAGE, None)["items"]})


def _entry_page(req: func.HttpRequest, status: int = 200, **shown) -> func.HttpResponse:
    entry = req.route_params["entry"]
    caller = web.caller(req)
    who = console.operator(caller.principal)
    if "text" not in shown:
        shown.update(catalog.entry_text(entry))
    return web.page_response("console_entry.html", status, operator=who, done=_done(req), entry=entry,
                             antiforgery=web.form_token(req, caller), **shown)


@bp.route(route="console/catalog/{entry}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def console_entry(req: func.HttpRequest) -> func.HttpResponse:
    """One entry as JSON to edit (GET), or save what was edited (POST), checked as PUT /api/catalog is."""
    entry = catalog.check_entry_id(req.route_params.get("entry", ""))
    if req.method == "GET":
        return _entry_page(req)
    who, fields, _ = _posted(req)
    text = validation.form_text(fields, "entry_json")
    try:
        catalog.put_entry(entry, catalog.body_from_text(text), who)
    except InvalidRequest as refused:
        if not web.wants_html(req):
            raise
        # The same page again, what was typed kept and every problem listed; nothing was saved.
        return _entry_page(req, 400, text=text, problems=refused.errors or [{"message": refused.detail}],
                           record=catalog.entry_text(entry)["record"])
    return _back(req, f"console/catalog/{entry}", "entry-saved")


@bp.route(route="console/catalog/{entry}/delete", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def console_delete_entry(req: func.HttpRequest) -> func.HttpResponse:
    """Remove an entry (requests already made are ordinary pauses and stay as they are)."""
    who, _, _ = _posted(req)
    catalog.delete_entry(req.route_params.get("entry", ""), who)
    return _back(req, "console/catalog", "entry-deleted")
