"""HTTP entry points for holds and checkpoints (function key): operators place and end holds,
pipelines report checkpoints through a WebHook activity."""

import azure.functions as func

from shared import checkpoints, holds, validation
from shared.clock import utcnow
from shared.web import http as web

bp = func.Blueprint()


@bp.route(route="holds", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@web.handles_errors
def place_hold(req: func.HttpRequest) -> func.HttpResponse:
    """Place a hold: matching runs wait at their next checkpoint."""
    request = validation.parse_hold(web.json_body(req))
    hold = holds.new_hold(request.scope, request.reason, request.expires_in, web.api_actor(req))
    record = hold.record(utcnow())
    url = f"{web.base_url(req)}/api/holds/{hold.hold_id}"
    return web.json_response({**record, "hold_url": url}, 201, headers={"Location": url})


@bp.route(route="holds", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@web.handles_errors
def list_holds(req: func.HttpRequest) -> func.HttpResponse:
    """Active holds (default), or the latest released or cancelled ones."""
    status = validation.parse_query(validation.HOLD_STATUS_QUERY, "status", req.params.get("status")) or "active"
    limit = validation.parse_limit(req.params.get("limit"))
    return web.json_response({"items": holds.listed(status, limit)})


@bp.route(route="holds/{hold_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@web.handles_errors
def show_hold(req: func.HttpRequest) -> func.HttpResponse:
    """One hold, with the checkpoints waiting on it."""
    return web.json_response(checkpoints.show(req.route_params.get("hold_id", "")))


@bp.route(route="holds/{hold_id}/release", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@web.handles_errors
def release_hold(req: func.HttpRequest) -> func.HttpResponse:
    """Release a hold: every checkpoint waiting on it (and on no other active hold) continues, once."""
    decision = validation.parse_decision(web.json_body(req, allow_empty=True), validation.RELEASE_BODY)
    return web.json_response(checkpoints.end(req.route_params.get("hold_id", ""), holds.RELEASED, web.api_actor(req),
                                             decision.comment))


@bp.route(route="holds/{hold_id}/cancel", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@web.handles_errors
def cancel_hold(req: func.HttpRequest) -> func.HttpResponse:
    """Cancel a hold: every checkpoint waiting on it fails with HoldCancelled, once."""
    decision = validation.parse_decision(web.json_body(req), validation.HOLD_CANCEL_BODY)
    return web.json_response(checkpoints.end(req.route_params.get("hold_id", ""), holds.CANCELLED, web.api_actor(req),
                                             decision.comment))


@bp.route(route="checkpoint", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@web.handles_errors
def checkpoint(req: func.HttpRequest) -> func.HttpResponse:
    """A run reached a checkpoint: 202, then a callback now (no hold) or when its holds end."""
    # No Location: ADF's WebHook and Web activities read 202 + Location as an operation to poll.
    return web.json_response(checkpoints.reach(validation.parse_checkpoint(web.json_body(req))), 202)
