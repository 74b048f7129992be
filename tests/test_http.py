"""shared.web.http promises to be the one edge between the Functions host and the service: a request becomes a
body (a strict JSON object or a page's form, refused with a 400 or 413 naming the field) and a caller (the
address the platform saw, and a signed-in principal only where App Service Authentication is in front and
vouches for it); a typed error becomes `application/problem+json` with its status (or a page, for a browser),
and anything unexpected a bare 500 whose detail only the log sees.
"""

import json
import logging

import azure.functions as func
import pytest

from shared.errors import (AlreadyDecided, ConsoleSignIn, CrossSite, InvalidRequest, NotFound, OutcomeUnknown,
                           PayloadTooLarge, SignInUnavailable, Unavailable, UpstreamFailed)
from shared.web import antiforgery
from shared.web.http import (MAX_BODY_BYTES, api_actor, base_url, caller, check_form, client_ip, form_or_json,
                             form_token, handles_errors, json_body, json_bytes, next_page_url, wants_html)
from tests.test_approvers import BEARER, principal_headers

BASE = "https://pauses.example.test"
TOKEN = "T" * 43  # stands for a link's token: it must never reach a log or an error body
HTML = {"Accept": "text/html,application/xhtml+xml"}
ALICE = "alice@contoso.com"
KEY_HOLDER = "api (function key)"


def request(method="GET", path=f"restart/{TOKEN}", headers=None, body=b"", params=None):
    query = "&".join(f"{key}={value}" for key, value in (params or {}).items())
    return func.HttpRequest(method, f"{BASE}/api/{path}{'?' + query if query else ''}", headers=headers or {},
                            params=params or {}, route_params={}, body=body)


def answer(raised, headers=None):
    """What handles_errors answers for a handler that raises `raised`."""
    @handles_errors
    def restart(req):
        raise raised

    return restart(request("POST", headers=headers))


PAUSE = {"pause_id": "a" * 32, "status": "restarted", "decided_at": "2026-11-25T10:00:00Z", "run_id": "run-1"}


@pytest.mark.parametrize("error", [
    NotFound("No pause has this link."),
    InvalidRequest("The body has 1 error.", [{"field": "comment", "rule": "max_length", "message": "at most 2000"}]),
    AlreadyDecided("Already approved.", PAUSE),
    OutcomeUnknown("Not known yet whether the pipeline started; do not start it by hand."),
    Unavailable("Storage could not be reached. Nothing was changed."),
], ids=lambda error: error.code)
def test_a_typed_error_is_problem_json_with_its_status_and_fields(error):
    response = answer(error, headers={"Accept": "application/json"})
    assert response.status_code == error.status and response.mimetype == "application/problem+json"
    assert json.loads(response.get_body()) == {"type": "about:blank", "title": error.title, "status": error.status,
                                               "detail": error.detail, "code": error.code, **error.extra}
    assert {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer"}.items() <= dict(response.headers).items()


@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_an_unexpected_exception_is_a_bare_500_and_only_the_log_sees_what_it_was(accept, caplog):
    caplog.set_level(logging.DEBUG, logger="shared.web.http")
    secret = "AccountKey=s3cr3t at /home/site/wwwroot/shared/storage/tables.py"
    response = answer(KeyError(secret), headers={"Accept": accept})
    body = response.get_body().decode()
    assert response.status_code == 500
    assert "s3cr3t" not in body and "Traceback" not in body and "KeyError" not in body
    assert "Nothing was changed" in body
    if accept == "application/json":
        assert json.loads(body)["code"] == "internal_error"
    [logged] = [r for r in caplog.records if r.exc_info]
    assert "s3cr3t" in str(logged.exc_info[1]) and "POST restart" in logged.getMessage()
    assert TOKEN not in caplog.text  # the function is named, never the URL that holds the token


def test_only_server_side_errors_are_logged(caplog):
    caplog.set_level(logging.DEBUG, logger="shared.web.http")
    answer(NotFound("No pause has this link."))
    assert caplog.records == []
    answer(UpstreamFailed("ADF refused: BadRequest."))
    [logged] = caplog.records
    assert logged.getMessage() == "POST restart -> 502: ADF refused: BadRequest."


def test_a_browser_gets_a_page_with_the_same_status_and_the_detail_escaped():
    response = answer(UpstreamFailed("ADF said <b>no</b>."), headers=HTML)
    page = response.get_body().decode()
    assert response.status_code == 502 and response.mimetype == "text/html"
    assert "ADF said &lt;b&gt;no&lt;/b&gt;." in page and "<b>no</b>" not in page
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    # A sign-in page sends the person back to this same path, never with its query.
    sign_in = answer(ConsoleSignIn("Sign in to use the console."), headers=HTML).get_body().decode()
    assert f'href="/.auth/login/aad?post_login_redirect_uri=%2Fapi%2Frestart%2F{TOKEN}"' in sign_in


@pytest.mark.parametrize("accept, html", [("text/html,application/xhtml+xml", True), ("TEXT/HTML;q=0.9", True),
                                          ("application/json", False), ("*/*", False), (None, False)])
def test_only_a_request_that_accepts_html_is_answered_with_a_page(accept, html):
    assert wants_html(request(headers={"Accept": accept} if accept else {})) is html


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "application/merge-patch+json", None])
def test_json_body_reads_an_object_sent_as_json_or_without_a_type(content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    assert json_body(request("POST", headers=headers, body=b'{"comment": "ok"}')) == {"comment": "ok"}


def test_json_body_names_what_is_wrong_with_a_body():
    with pytest.raises(InvalidRequest) as wrong_type:
        json_body(request("POST", headers={"Content-Type": "text/plain"}, body=b'{"comment": "ok"}'))
    assert [(e["field"], e["rule"]) for e in wrong_type.value.errors] == [("Content-Type", "media_type")]
    json_type = {"Content-Type": "application/json"}
    with pytest.raises(InvalidRequest):
        json_body(request("POST", headers=json_type, body=b"  "))  # empty is not an object unless allowed
    assert json_body(request("POST", headers=json_type, body=b"  "), allow_empty=True) == {}
    largest = b'{"a": "' + b"x" * (MAX_BODY_BYTES - 9) + b'"}'
    assert len(largest) == MAX_BODY_BYTES and json_body(request("POST", headers=json_type, body=largest))
    with pytest.raises(PayloadTooLarge) as too_large:
        json_body(request("POST", headers=json_type, body=largest + b" "))
    assert too_large.value.status == 413
    assert [(e["field"], e["rule"]) for e in too_large.value.errors] == [("(body)", "max_size")]


def test_form_or_json_reads_a_pages_form_or_a_programs_json():
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert form_or_json(request("POST", headers=form, body=b"comment=Looks+good%21&reason=")) == \
        ({"comment": "Looks good!", "reason": ""}, False)
    assert form_or_json(request("POST", headers={"Content-Type": "application/json"}, body=b'{"n": 1}')) == \
        ({"n": 1}, True)
    assert form_or_json(request("POST", headers=form)) == ({}, False)
    for unreadable in (b"comment=\xff", b"comment=ok&stray"):
        with pytest.raises(InvalidRequest) as refused:
            form_or_json(request("POST", headers=form, body=unreadable))
        assert [(e["field"], e["rule"]) for e in refused.value.errors] == [("(body)", "form")]


@pytest.mark.parametrize("headers, seen", [
    ({"Client-IP": "203.0.113.7:51234"}, "203.0.113.7"),
    ({"Client-IP": "[2001:db8::1]:443"}, "2001:db8::1"),
    ({"Client-IP": "2001:db8::2"}, "2001:db8::2"),
    ({"X-Forwarded-For": "10.0.0.1, 198.51.100.9"}, "198.51.100.9"),  # only the entry the front end appended
    ({"X-Forwarded-For": "198.51.100.9", "Client-IP": "203.0.113.7:1"}, "203.0.113.7"),  # the platform's own first
    ({"Client-IP": "evil.example<script>"}, None),
    ({}, None),
])
def test_client_ip_is_what_the_platforms_front_end_saw(headers, seen):
    assert client_ip(request(headers=headers)) == seen


def test_json_bytes_is_utf8_and_escapes_text_that_cannot_be_encoded():
    assert json_bytes({"title": "Müller"}) == '{"title": "Müller"}'.encode()
    assert json_bytes({"comment": "stored \udc00 earlier"}) == b'{"comment": "stored \\udc00 earlier"}'


# Those below read settings (APPROVER_SIGN_IN, WEBSITE_AUTH_ENABLED, PUBLIC_BASE_URL) and so use `configure`.

@pytest.mark.integration
def test_principal_headers_are_trusted_only_where_the_platform_writes_them(configure):
    headers = {**principal_headers("Alice@Contoso.com"), "Client-IP": "203.0.113.7:5", "User-Agent": "x" * 600}
    who = caller(request(headers=headers))  # sign-in off: any client could have sent those headers
    assert (who.principal, who.client_ip, who.user_agent) == (None, "203.0.113.7", "x" * 512)
    configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED="True")
    assert caller(request(headers=headers)).principal.name == ALICE  # in the form names are compared in
    assert caller(request()).principal is None
    configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED=None)  # App Service Authentication not in front
    with pytest.raises(SignInUnavailable):
        caller(request(headers=headers))
    problem = handles_errors(caller)(request(headers=headers))
    assert (problem.status_code, json.loads(problem.get_body())["code"]) == (503, "sign_in_unavailable")


@pytest.mark.integration
@pytest.mark.parametrize("sign_in, platform, headers, actor", [
    ("easyauth", "True", {**principal_headers(ALICE), **BEARER}, ALICE),
    ("easyauth", "True", {**principal_headers(ALICE), "Cookie": "AppServiceAuthSession=s1"}, KEY_HOLDER),
    ("easyauth", None, {**principal_headers(ALICE), **BEARER}, KEY_HOLDER),
    ("none", "True", {**principal_headers(ALICE), **BEARER}, KEY_HOLDER),
])
def test_the_api_actor_is_a_principal_only_when_vouched_for_and_signed_in_by_a_header(configure, sign_in, platform,
                                                                                      headers, actor):
    configure(APPROVER_SIGN_IN=sign_in, WEBSITE_AUTH_ENABLED=platform)
    assert api_actor(request("POST", "holds", headers=headers)) == actor


@pytest.mark.integration
def test_a_cookie_signed_form_passes_only_from_the_apps_own_page_with_its_token(configure):
    configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED="True", PUBLIC_BASE_URL="https://approve.contoso.com")
    browser = {**principal_headers(ALICE), "Cookie": "AppServiceAuthSession=s1"}
    shown = request(headers=browser)
    token = form_token(shown, caller(shown))
    for origin in (BASE, "https://approve.contoso.com"):  # the request's own origin and PUBLIC_BASE_URL's
        posted = request("POST", headers={**browser, "Origin": origin})
        fields = {"comment": "ok", antiforgery.FIELD: token}
        check_form(posted, caller(posted), fields)
        assert fields == {"comment": "ok"}  # the token is taken out
    posted = request("POST", headers={**browser, "Origin": "https://evil.example"})
    with pytest.raises(CrossSite) as refused:
        check_form(posted, caller(posted), {antiforgery.FIELD: token}, back_url="/api/restart/x")
    assert (refused.value.code, refused.value.back_url) == ("cross_site", "/api/restart/x")
    assert form_token(shown, caller(request())) is None  # nobody signed in: no form to protect


@pytest.mark.integration
def test_links_use_public_base_url_when_set_and_keep_a_lists_filters(configure):
    listing = request(path="pauses", params={"status": "pending", "limit": "5", "cursor": "old"})
    assert base_url(listing) == BASE
    assert next_page_url(listing, "next") == f"{BASE}/api/pauses?status=pending&limit=5&cursor=next"
    configure(PUBLIC_BASE_URL="https://approve.contoso.com/")
    assert base_url(listing) == "https://approve.contoso.com"
    assert next_page_url(listing, "n2").startswith("https://approve.contoso.com/api/pauses?status=pending")

