"""HTTP entry point for handing a named approver's part on (anonymous: the personal link is the
credential). A form from the link's page, or JSON; the service checks the link before anything else."""

import azure.functions as func

from shared import reassign as service
from shared import validation
from shared.web import http as web

bp = func.Blueprint()


@bp.route(route="reassign/{token}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def reassign(req: func.HttpRequest) -> func.HttpResponse:
    """Hand the link's approver's part on to `to` (POST only: a GET never changes anything)."""
    token = req.route_params.get("token", "")
    caller = web.caller(req)
    fields, _ = web.form_or_json(req)
    web.check_form(req, caller, fields)
    to, comment = validation.parse_reassign(fields)
    pause = service.reassign(token, to, comment, caller, web.base_url(req))
    if web.wants_html(req):
        return web.page_response("reassigned.html", pause=pause, to=to)
    return web.json_response({"pause_id": pause["pause_id"], "status": pause["status"],
                              "approvers": pause["approvers"], "reassignments": pause["reassignments"]})
