"""The HTTP edge: turn requests into service calls and results or typed errors into responses.

Errors become `application/problem+json` (RFC 9457) for programs and a clear page for people
(`Accept: text/html`). This is the one place that maps errors to status codes.
"""

import functools
import ipaddress
import json
import logging
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

import azure.functions as func

from shared.approvers import Principal, principal_from_headers
from shared.errors import InvalidRequest, PauseError, PayloadTooLarge, SignInUnavailable
from shared.jsonbody import parse_object
from shared.settings import ROUTE_PREFIX, get_settings
from shared.web import antiforgery, pages

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 512 * 1024


def wants_html(req: func.HttpRequest) -> bool:
    return "text/html" in (req.headers.get("Accept") or "").lower()


def json_bytes(body) -> bytes:
    """JSON as UTF-8; text that cannot be encoded (a record stored before input was checked) is escaped."""
    try:
        return json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(body, ensure_ascii=True).encode("ascii")


def json_response(body: dict, status: int = 200, headers: dict | None = None) -> func.HttpResponse:
    return func.HttpResponse(json_bytes(body), status_code=status,
                             mimetype="application/json", charset="utf-8",
                             headers={**pages.security_headers(html=False), **(headers or {})})


def page_response(template: str, status: int = 200, **context) -> func.HttpResponse:
    # "replace": a page can always be sent, whatever text a stored record holds.
    html = pages.render(template, **context).encode("utf-8", "replace")
    return func.HttpResponse(html, status_code=status, mimetype="text/html",
                             charset="utf-8", headers=pages.security_headers(html=True))


def problem_response(error: PauseError) -> func.HttpResponse:
    body = {"type": "about:blank", "title": error.title, "status": error.status, "detail": error.detail,
            "code": error.code, **error.extra}
    return func.HttpResponse(json_bytes(body), status_code=error.status,
                             mimetype="application/problem+json", charset="utf-8",
                             headers=pages.security_headers(html=False))


def error_page(error: PauseError, req: func.HttpRequest | None = None) -> func.HttpResponse:
    return page_response("error.html", error.status, error=error, pause=getattr(error, "pause", None),
                         sign_in_url=sign_in_url(req) if req is not None else None)


def handles_errors(function):
    """Map typed errors to responses; anything unexpected is logged and answered with a bare 500."""
    # Logs name the function, never the URL: restart and cancel URLs carry the token, and the host
    # routes many spellings of a path (any case, empty segments, percent-encoding), so no rewriting
    # of the path could be sure to catch every one.
    name = function.__name__

    @functools.wraps(function)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return function(req)
        except PauseError as error:
            if error.status >= 500:
                logger.warning("%s %s -> %s: %s", req.method, name, error.status, error.detail)
            return error_page(error, req) if wants_html(req) else problem_response(error)
        except Exception:  # the one catch-all: no stack trace or exception text reaches a user
            logger.exception("unhandled error in %s %s", req.method, name)
            error = PauseError("Something went wrong on our side. Nothing was changed; try again.")
            return error_page(error) if wants_html(req) else problem_response(error)

    return wrapper


def body_bytes(req: func.HttpRequest) -> bytes:
    body = req.get_body() or b""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"The body is over {MAX_BODY_BYTES} bytes.",
                              [{"field": "(body)", "rule": "max_size", "message": f"at most {MAX_BODY_BYTES} bytes"}])
    return body


def json_body(req: func.HttpRequest, allow_empty: bool = False) -> dict:
    """The request's JSON object body (`{}` for none, if `allow_empty`), or a 400/413 naming what is wrong."""
    if allow_empty and not (req.get_body() or b"").strip():
        return {}
    content_type = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        raise InvalidRequest("Send the body as application/json.",
                             [{"field": "Content-Type", "rule": "media_type", "message": "must be application/json"}])
    return parse_object(body_bytes(req))


def form_or_json(req: func.HttpRequest) -> tuple[dict, bool]:
    """The fields of a page form or a JSON body, and whether it was JSON."""
    content_type = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    body = body_bytes(req)
    if content_type == "application/json" or content_type.endswith("+json"):
        return parse_object(body), True
    if not body.strip():
        return {}, False
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("The form could not be read.",
                             [{"field": "(body)", "rule": "form", "message": "must be form-encoded UTF-8"}]) from None
    return dict(pairs), False


def form_lists(req: func.HttpRequest) -> dict[str, list[str]]:
    """A page form's fields with every value each was sent with (a group of checkboxes repeats its name);
    {} for a JSON body. Read after form_or_json, which has refused what cannot be read."""
    content_type = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    body = body_bytes(req)
    if content_type == "application/json" or content_type.endswith("+json") or not body.strip():
        return {}
    lists: dict[str, list[str]] = {}
    for name, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True):
        lists.setdefault(name, []).append(value)
    return lists


def base_url(req: func.HttpRequest) -> str:
    """PUBLIC_BASE_URL when set, else the scheme and host this request came to."""
    configured = get_settings().public_base_url
    if configured:
        return configured
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}"


def client_ip(req: func.HttpRequest) -> str | None:
    """The address the request came from, as the platform's front end saw it; never a client's claim.

    App Service's front end writes `Client-IP` (the connection's address and port) and overwrites
    any value a client sends (Azure/app-service-linux-docs, "headers.md"). Where that header is
    missing, the last X-Forwarded-For entry is used: front ends append the connection's address
    after whatever the client sent there, so the earlier entries are the client's to choose and
    are never recorded. Port removed; anything that is not an IP address is not recorded.
    """
    seen = req.headers.get("Client-IP") or (req.headers.get("X-Forwarded-For") or "").split(",")[-1]
    seen = seen.strip()
    if seen.startswith("[") and "]" in seen:  # [IPv6]:port
        seen = seen[1:seen.index("]")]
    elif seen.count(":") == 1:  # IPv4:port
        seen = seen.split(":")[0]
    try:
        return str(ipaddress.ip_address(seen))
    except ValueError:
        return None


@dataclass(frozen=True)
class Caller:
    """What a request tells about who sent it: a principal only where the platform vouches for it."""

    principal: Principal | None
    client_ip: str | None
    user_agent: str | None


def caller(req: func.HttpRequest) -> Caller:
    """The caller; App Service Authentication's principal only with APPROVER_SIGN_IN=easyauth, when the
    platform strips client-sent principal headers and writes its own. Otherwise they are ignored.

    With easyauth but no App Service Authentication actually in front (WEBSITE_AUTH_ENABLED, which
    the platform sets, is not True), anyone could send principal headers: refuse (503) instead.
    """
    settings = get_settings()
    signed_in = settings.approver_sign_in == "easyauth"
    if signed_in and not settings.platform_auth_enabled:
        logger.error("sign-in refused: APPROVER_SIGN_IN=easyauth but WEBSITE_AUTH_ENABLED is not True, so App Service "
                     "Authentication is not in front of this app and principal headers could come from anyone")
        raise SignInUnavailable("Sign-in is not available: this app expects App Service Authentication in front of "
                                "it, and it is not turned on. Nothing was changed; tell the app's owner.")
    return Caller(principal=principal_from_headers(req.headers) if signed_in else None,
                  client_ip=client_ip(req), user_agent=(req.headers.get("User-Agent") or "")[:512] or None)


def form_token(req: func.HttpRequest, who: Caller) -> str | None:
    """The anti-forgery token for the forms of a page shown to a signed-in person (None otherwise)."""
    return antiforgery.issue(who.principal.name, req.headers) if who.principal is not None else None


def check_form(req: func.HttpRequest, who: Caller, fields: dict, back_url: str | None = None) -> None:
    """Refuse (403) a POST that a sign-in cookie authorises unless it comes from the app's own page
    with that page's anti-forgery token; the token is taken out of `fields` either way."""
    token = fields.pop(antiforgery.FIELD, None)
    if who.principal is not None and antiforgery.from_browser(req.headers):
        ours = antiforgery.own_origins(req.url, get_settings().public_base_url)
        antiforgery.check(req.headers, token, who.principal.name, ours, back_url)


def api_actor(req: func.HttpRequest) -> str:
    """Who acts on a function-key route: the key's holder, named by the signed-in principal only where
    the platform vouches for it and a program signed in with a header, never by a session cookie
    that a form on another site could have brought along."""
    settings = get_settings()
    if settings.approver_sign_in == "easyauth" and settings.platform_auth_enabled \
            and not antiforgery.from_browser(req.headers):
        principal = principal_from_headers(req.headers)
        if principal is not None:
            return principal.name
    return "api (function key)"


def sign_in_url(req: func.HttpRequest) -> str:
    """App Service Authentication's sign-in, coming back to this same link."""
    return "/.auth/login/aad?" + urlencode({"post_login_redirect_uri": urlsplit(req.url).path})


def next_page_url(req: func.HttpRequest, cursor: str, listing: str = "pauses") -> str:
    """The URL of the next page of a list (`listing`: its path under the API), keeping the request's filters."""
    query = {key: value for key, value in req.params.items() if key != "cursor"}
    return f"{base_url(req)}/{ROUTE_PREFIX}/{listing}?{urlencode({**query, 'cursor': cursor})}"
