"""HTTP entry points for pipelines: create a pause, read one, list them (function key)."""

import azure.functions as func

from shared import pauses, validation
from shared.web import http as web

bp = func.Blueprint()


@bp.route(route="pause", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@web.handles_errors
def pause(req: func.HttpRequest) -> func.HttpResponse:
    """Store a pause and answer with its one-time token and links (202 when a WebHook waits)."""
    request = validation.parse_pause(web.json_body(req))
    created = pauses.create_pause(request, web.base_url(req))
    if request.mode == "callback":
        # No Location: ADF's WebHook and Web activities read 202 + Location as an operation to poll.
        return web.json_response(created, 202)
    return web.json_response(created, 201, headers={"Location": created["status_url"]})


@bp.route(route="pauses/{pause_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@web.handles_errors
def get_pause(req: func.HttpRequest) -> func.HttpResponse:
    """Show one pause's record, without its token."""
    return web.json_response(pauses.get_pause(req.route_params.get("pause_id", "")))


@bp.route(route="pauses", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@web.handles_errors
def list_pauses(req: func.HttpRequest) -> func.HttpResponse:
    """List pauses, optionally with one status, a page at a time."""
    limit = validation.parse_limit(req.params.get("limit"))
    status = validation.parse_query(validation.STATUS_QUERY, "status", req.params.get("status"))
    page = pauses.list_pauses(status, limit, req.params.get("cursor"))
    if page["cursor"]:
        page["next_url"] = web.next_page_url(req, page["cursor"])
    return web.json_response(page)
