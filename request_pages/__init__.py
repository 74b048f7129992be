"""HTTP entry points for requesting a run from the catalog (signed in; APPROVER_SIGN_IN=easyauth).

Anonymous to the Functions host: App Service Authentication stands in front, and
`shared.catalog_requests` admits only signed-in requesters. A form post is taken only from the app's
own page with its anti-forgery token (`shared.web.antiforgery`); pages are rendered without script.
"""

import azure.functions as func

from shared import catalog_requests as requests
from shared import settings
from shared.errors import FormInvalid
from shared.web import http as web
from shared.web import pages

bp = func.Blueprint()


@bp.route(route="request", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def request_list(req: func.HttpRequest) -> func.HttpResponse:
    """What the signed-in person may request, and their latest requests."""
    who = requests.requester(web.caller(req).principal)
    return web.page_response("request_list.html", who=who, entries=requests.requestable(who),
                             mine=requests.mine(who))


def _entry_page(req: func.HttpRequest, who: str, status: int = 200, **shown) -> func.HttpResponse:
    entry = req.route_params.get("entry", "")
    record = requests.entry_for(entry, who)
    return web.page_response("request_entry.html", status, who=who, entry=record, fields=requests.form_of(record),
                             time_zone=requests.time_zone(record), mine=requests.mine(who, entry),
                             blocked=requests.cannot_be_approved(record, who),
                             antiforgery=web.form_token(req, web.caller(req)), **shown)


@bp.route(route="request/{entry}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def request_entry(req: func.HttpRequest) -> func.HttpResponse:
    """The entry's page and form (GET); make the request (POST): a page goes on to the request's status."""
    caller = web.caller(req)
    who = requests.requester(caller.principal)
    if req.method == "GET":
        return _entry_page(req, who)
    entry = req.route_params.get("entry", "")
    fields, is_json = web.form_or_json(req)
    web.check_form(req, caller, fields, back_url=f"/{settings.ROUTE_PREFIX}/request/{entry}")
    posted = None if is_json else {k: v for k, v in web.form_lists(req).items() if k.startswith("form.")}
    given = requests.parse_body(fields, is_json)
    try:
        created = requests.make_request(entry, who, web.base_url(req), posted=posted, given=given)
    except FormInvalid as invalid:
        if not web.wants_html(req):
            raise
        # The same page again: each message by its field, everything typed kept, nothing requested.
        return _entry_page(req, who, 400, form_errors=invalid.field_errors, form_typed=invalid.typed)
    page = f"/{settings.ROUTE_PREFIX}/requests/{created['pause_id']}"
    if web.wants_html(req):  # 303: a reload shows the request, it does not request again
        return func.HttpResponse(status_code=303, headers={"Location": page, **pages.security_headers(html=False)})
    body = {"pause_id": created["pause_id"], "status": created["status"], "entry": entry,
            "expires_at": created["expires_at"], "request_url": f"{web.base_url(req)}{page}"}
    return web.json_response(body, 201, headers={"Location": body["request_url"]})


@bp.route(route="requests/{pause_id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def request_status(req: func.HttpRequest) -> func.HttpResponse:
    """One request as it stands, for its requester, its approvers and operators."""
    record = requests.request_status(req.route_params.get("pause_id", ""), web.caller(req).principal)
    if not web.wants_html(req):
        return web.json_response({key: value for key, value in record.items() if key not in ("viewer", "open")})
    return web.page_response("request_status.html", pause=record, who=record["viewer"])
