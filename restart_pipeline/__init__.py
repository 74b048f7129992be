"""HTTP entry points behind the emailed links: confirm on GET, act on POST (anonymous).

A GET only shows a page: mail scanners open links before people do. The token is the
credential; the service checks it before anything else.
"""

import azure.functions as func

from shared import pauses, validation
from shared.errors import FormInvalid
from shared.lifecycle.model import Action
from shared.web import http as web

bp = func.Blueprint()


def _link(req: func.HttpRequest, *, action, confirm_page: str, schema, decide, done_page: str, summary: tuple):
    """Show the confirmation page (GET) or decide (POST): a page for browsers, JSON for programs."""
    token = req.route_params.get("token", "")
    caller = web.caller(req)
    if req.method == "GET":
        return web.page_response(confirm_page, pause=pauses.open_pause(token, caller, action=action), token=token,
                                 antiforgery=web.form_token(req, caller))
    fields, is_json = web.form_or_json(req)
    web.check_form(req, caller, fields)
    # A page's form sends the values a pause asks for as form.<name>, each with every value given.
    posted = None if is_json else {k: v for k, v in web.form_lists(req).items() if k.startswith("form.")}
    decision = validation.parse_decision({k: v for k, v in fields.items() if not k.startswith("form.")},
                                         schema(is_json))
    try:
        pause = decide(token, decision, caller, posted=posted)
    except FormInvalid as invalid:
        if not web.wants_html(req):
            raise
        # The same page again: each message by its field, everything typed kept, nothing decided.
        return web.page_response(confirm_page, 400, pause=pauses.open_pause(token, caller), token=token,
                                 antiforgery=web.form_token(req, caller), form_errors=invalid.field_errors,
                                 form_typed=invalid.typed, comment=decision.comment,
                                 start_at=decision.start_at_text, start_error=invalid.start_error)
    # 202: the decision stands, but the waiting WebHook has not confirmed it yet; the app re-sends it.
    status = 202 if pause.get("callback_confirmed") is False else 200
    if web.wants_html(req):
        # With named approvers an approval may only be counted, the pause still waiting for more.
        page = {"pending": "approval_recorded.html", "scheduled": "scheduled.html"}.get(pause["status"], done_page)
        return web.page_response(page, status, pause=pause)
    body = {key: pause[key] for key in summary}
    if pause["status"] == "scheduled":  # decided outside its start window: when the timer continues it
        body["start_at"] = pause["start_at"]
    if pause.get("callback_confirmed") is not None:
        body["callback_confirmed"] = pause["callback_confirmed"]
    if pause.get("required_approvals") is not None:  # named approvers: where the quorum stands
        body.update(required_approvals=pause["required_approvals"], approvals=pause["approvals"])
    return web.json_response(body, status)


@bp.route(route="restart/{token}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def restart(req: func.HttpRequest) -> func.HttpResponse:
    """Show the approve page (GET) or approve and continue the pipeline (POST)."""
    return _link(req, action=Action.APPROVE, confirm_page="confirm_restart.html", decide=pauses.approve,
                 done_page="restarted.html",
                 schema=lambda is_json: validation.APPROVE_BODY if is_json else validation.APPROVE_FORM,
                 summary=("pause_id", "status", "run_id"))


@bp.route(route="cancel/{token}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def cancel(req: func.HttpRequest) -> func.HttpResponse:
    """Show the cancel page (GET) or cancel the pause (POST)."""
    return _link(req, action=Action.CANCEL, confirm_page="confirm_cancel.html", decide=pauses.cancel,
                 done_page="cancelled.html",
                 schema=lambda is_json: validation.CANCEL_BODY, summary=("pause_id", "status", "reason"))
