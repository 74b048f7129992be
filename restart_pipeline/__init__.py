"""HTTP entry points behind the emailed links: confirm on GET, act on POST (anonymous).

A GET only shows a page: mail scanners open links before people do. The token is the
credential; the service checks it before anything else.
"""

import azure.functions as func

from shared import pauses, validation, web

bp = func.Blueprint()


@bp.route(route="restart/{token}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def restart(req: func.HttpRequest) -> func.HttpResponse:
    """Show the approve page (GET) or approve and start the pipeline (POST)."""
    token = req.route_params.get("token", "")
    if req.method == "GET":
        pause = pauses.open_pause(token)
        return web.page_response("confirm_restart.html", pause=pause, token=token)
    fields, is_json = web.form_or_json(req)
    decision = validation.parse_decision(fields, validation.APPROVE_BODY if is_json else validation.APPROVE_FORM)
    pause = pauses.approve(token, decision, web.audit(req))
    if web.wants_html(req):
        return web.page_response("restarted.html", pause=pause)
    return web.json_response({"pause_id": pause["pause_id"], "status": pause["status"], "run_id": pause["run_id"]})


@bp.route(route="cancel/{token}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def cancel(req: func.HttpRequest) -> func.HttpResponse:
    """Show the cancel page (GET) or cancel the pause (POST)."""
    token = req.route_params.get("token", "")
    if req.method == "GET":
        pause = pauses.open_pause(token)
        return web.page_response("confirm_cancel.html", pause=pause, token=token)
    fields, _ = web.form_or_json(req)
    decision = validation.parse_decision(fields, validation.CANCEL_BODY)
    pause = pauses.cancel(token, decision, web.audit(req))
    if web.wants_html(req):
        return web.page_response("cancelled.html", pause=pause)
    return web.json_response({"pause_id": pause["pause_id"], "status": pause["status"], "reason": pause["reason"]})
