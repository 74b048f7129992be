"""Forms under a sign-in cookie: a POST the App Service session cookie authorises must come from the
app's own page (Sec-Fetch-Site, else Origin, else Referer) and carry that page's anti-forgery token,
bound to the signed-in person and their session; curl and ADF (no cookie) are unaffected."""

import json
import re
import time
from urllib.parse import urlencode

import pytest

from shared.storage.tables import shared_key
from shared.web import antiforgery
from tests.conftest import BASE
from tests.test_approvers import ALICE, BOB, CAROL, DAVE, principal_headers

pytestmark = pytest.mark.integration

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def quorum(api, configure):
    """Sign-in on; a pause that needs 2 of alice, bob and carol, requested by dave."""
    configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED="True")
    return api.created(approvers=[ALICE, BOB, CAROL], required_approvals=2, requested_by=DAVE)


def browser(who, session=None, **extra):
    """What a browser signed in as `who` sends: App Service's principal headers and its session cookie."""
    return {**principal_headers(who), "Cookie": f"ARRAffinity=x; AppServiceAuthSession={session or who + '-s1'}",
            "Accept": "text/html", "User-Agent": "pytest", **extra}


def shown_token(api, action, token, headers):
    """The anti-forgery token in the form of the link's page, as that browser sees it."""
    response = api.call(action, "GET", f"{action}/{token}", headers=headers, route_params={"token": token})
    assert response.status_code == 200, response.get_body()
    return re.search(r'name="antiforgery_token" value="([^"]+)"', response.get_body().decode()).group(1)


def post(api, action, token, headers, form):
    return api.call(action, "POST", f"{action}/{token}", body=urlencode(form).encode(),
                    headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
                    route_params={"token": token})


def test_a_signed_in_approver_approves_from_the_page_with_its_token(api, quorum):
    alice = browser(ALICE)
    form = {"comment": "ok", "antiforgery_token": shown_token(api, "restart", quorum["token"], alice)}
    response = post(api, "restart", quorum["token"], {**alice, **SAME_ORIGIN}, form)
    assert response.status_code == 200
    [approval] = api.record(quorum["pause_id"])["approvals"]
    assert approval["approver"] == ALICE and approval["comment"] == "ok"


@pytest.mark.parametrize("where", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},                       # a sibling host: not the app's own
    {"Origin": "https://evil.example"},
    {"Origin": "null"},                                     # a sandboxed frame or a data: URL
    {"Origin": "https://pauses.example.test.evil.example"},
    {"Origin": "https://pauses.example.test:8443"},
    {"Origin": "http://pauses.example.test"},               # the app's host, but not over https
    {"Origin": "https://pauses.example.test:80"},
    {"Referer": "https://evil.example/page"},
    {},                                                     # no evidence of where it came from
])
@pytest.mark.parametrize("action", ["restart", "cancel"])
def test_a_form_another_site_makes_a_signed_in_approver_post_changes_nothing(api, adf, quorum, where, action):
    alice = browser(ALICE)
    form = {"reason": "forged", "antiforgery_token": shown_token(api, action, quorum["token"], alice)}
    response = post(api, action, quorum["token"], {**alice, **where}, form)
    assert response.status_code == 403
    assert "Not sent from this app" in response.get_body().decode()
    record = api.record(quorum["pause_id"])
    assert record["status"] == "pending" and record["approvals"] == [] and adf.runs == []


@pytest.mark.parametrize("where", [
    {"Origin": BASE}, {"Origin": f"{BASE}:443"}, {"Referer": f"{BASE}/api/restart/x"},
    {"Origin": "https://approvals.contoso.example"},  # PUBLIC_BASE_URL, the address people are sent to
])
def test_the_apps_own_origin_or_public_address_is_accepted_without_sec_fetch_site(api, quorum, configure, where):
    configure(PUBLIC_BASE_URL="https://approvals.contoso.example")
    alice = browser(ALICE)
    form = {"antiforgery_token": shown_token(api, "restart", quorum["token"], alice)}
    assert post(api, "restart", quorum["token"], {**alice, **where}, form).status_code == 200


def _token_for(api, quorum, who, session=None, **kwargs):
    return antiforgery.issue(who, browser(who, session), **kwargs)


def tampered(token: str) -> str:
    """The token with its last character changed (to another one, whatever it was)."""
    return token[:-1] + ("B" if token[-1] == "A" else "A")


@pytest.mark.parametrize("token", [
    None,                                                               # the form of an attacker's page
    "",
    "1.2",
    "not-a-token",
    lambda api, q: _token_for(api, q, BOB),                             # another person's
    lambda api, q: _token_for(api, q, ALICE, session="alice-s2"),       # another sign-in session of hers
    lambda api, q: _token_for(api, q, ALICE, now=time.time() - 13 * 3600),  # older than 12 hours
    lambda api, q: _token_for(api, q, ALICE, now=time.time() + 3600),  # from the future
    lambda api, q: tampered(_token_for(api, q, ALICE)),                 # tampered
])
def test_a_post_without_this_sessions_token_is_refused_as_out_of_date(api, adf, quorum, token):
    value = token(api, quorum) if callable(token) else token
    form = {"comment": "x", **({"antiforgery_token": value} if value is not None else {})}
    response = post(api, "restart", quorum["token"], {**browser(ALICE), **SAME_ORIGIN}, form)
    assert response.status_code == 403
    body = response.get_body().decode()
    assert "out of date" in body and 'href=""' in body  # "Open the page again": the same link, a GET
    assert api.record(quorum["pause_id"])["approvals"] == [] and adf.runs == []


@pytest.mark.parametrize("cookies", [{}, {"Cookie": "ARRAffinity=abc"}])  # a client that keeps App Service's
def test_json_from_a_program_signed_in_with_a_bearer_token_is_unaffected(api, quorum, cookies):
    headers = {**principal_headers(ALICE), "Authorization": "Bearer token-that-app-service-checked", **cookies,
               "Content-Type": "application/json", "Accept": "application/json"}
    response = api.call("restart", "POST", f"restart/{quorum['token']}", body=json.dumps({"comment": "api"}).encode(),
                        headers=headers, route_params={"token": quorum["token"]})
    assert response.status_code == 200 and api.json(response)["approvals"][0]["approver"] == ALICE


def test_a_sign_in_without_a_bearer_header_is_the_cookies_even_when_no_cookie_is_shown(api, adf, quorum):
    """Whether App Service passes its session cookie on or not, a browser's sign-in is checked."""
    headers = {**principal_headers(ALICE), "Content-Type": "application/json", "Accept": "application/json",
               "Origin": "https://evil.example"}
    response = api.call("restart", "POST", f"restart/{quorum['token']}", body=b"{}", headers=headers,
                        route_params={"token": quorum["token"]})
    assert response.status_code == 403 and adf.runs == []


@pytest.mark.parametrize("request_url, public, origin, ours", [
    ("https://app.example/api/x", None, "https://app.example", True),
    ("https://app.example/api/x", None, "http://app.example", False),
    ("https://app.example/api/x", None, "https://app.example:8443", False),
    ("http://app.example/api/x", None, "https://app.example", True),   # behind the platform's TLS front end
    ("http://127.0.0.1:7071/api/x", None, "https://127.0.0.1:7071", False),
    ("http://127.0.0.1:7071/api/x", None, "http://127.0.0.1:7071", True),
    ("https://x.azurewebsites.net/api/x", "https://approvals.contoso.example", "https://approvals.contoso.example",
     True),
    ("https://x.azurewebsites.net/api/x", "https://approvals.contoso.example", "http://approvals.contoso.example",
     False),
])
def test_own_origins_compare_scheme_host_and_port(request_url, public, origin, ours):
    assert antiforgery.same_origin({"Origin": origin}, antiforgery.own_origins(request_url, public)) is ours


def test_json_with_the_sign_in_cookie_needs_the_token_too(api, quorum):
    headers = {**browser(ALICE), **SAME_ORIGIN, "Content-Type": "application/json", "Accept": "application/json"}
    response = api.call("restart", "POST", f"restart/{quorum['token']}", body=b"{}", headers=headers,
                        route_params={"token": quorum["token"]})
    assert response.status_code == 403 and api.json(response)["code"] == "form_expired"


def test_without_sign_in_the_links_carry_no_token_and_need_none(api):
    created = api.created()
    page = api.page("restart", created["token"]).get_body().decode()
    assert "antiforgery_token" not in page
    response = post(api, "restart", created["token"], {"Cookie": "AppServiceAuthSession=x", "Accept": "text/html",
                                                       "Origin": "https://evil.example"}, {})
    assert response.status_code == 200  # the link itself is the credential; no cookie authorises anything


def test_every_instance_accepts_a_token_another_instance_issued(api, quorum):
    alice = browser(ALICE)
    token = shown_token(api, "restart", quorum["token"], alice)
    shared_key.cache_clear()  # a fresh process reads the key the first one made, from storage
    assert post(api, "restart", quorum["token"], {**alice, **SAME_ORIGIN},
                {"antiforgery_token": token}).status_code == 200


def test_a_requester_cannot_use_a_shared_link_to_make_approvers_decide(api, adf, quorum):
    """The attack of the review: the requester holds the shared link and a page of their own that posts it."""
    attacker_page = {"Origin": "https://requester-blog.example", "Sec-Fetch-Site": "cross-site"}
    for who in (ALICE, BOB):
        assert post(api, "restart", quorum["token"], {**browser(who), **attacker_page},
                    {"comment": "lgtm"}).status_code == 403
    assert api.record(quorum["pause_id"])["status"] == "pending" and adf.runs == []


def _anonymous_posts(registered_functions) -> dict:
    """Every function anyone may POST to without a function key: name -> its route."""
    found = {}
    for name, function in registered_functions.items():
        trigger = function.get_trigger()
        methods = [str(getattr(m, "value", m)).upper() for m in (getattr(trigger, "methods", None) or [])]
        level = getattr(trigger, "auth_level", None)
        if str(getattr(level, "value", level)).upper() == "ANONYMOUS" and "POST" in methods:
            found[name] = trigger.route
    return found


def test_every_anonymous_post_refuses_a_forged_or_tokenless_signed_in_browser(api, adf, quorum, configure,
                                                                           registered_functions):
    """Whatever it does, a POST that a sign-in cookie authorises is refused (403) from another site, and
    from the app's own origin without the session's token, before anything is read from its form."""
    configure(OPERATORS=ALICE)  # alice may act on both the links and the console
    placed = api.json(api.call("place_hold", "POST", "holds", headers={"Content-Type": "application/json"},
                               body=json.dumps({"scope": {"factory_name": "f"}, "reason": "r"}).encode()))
    values = {"token": quorum["token"], "pause_id": quorum["pause_id"], "hold_id": placed["hold_id"],
              "entry": "publish"}
    routes = _anonymous_posts(registered_functions)
    assert set(routes) == {"restart", "cancel", "console_cancel_pause", "console_place_hold",
                           "console_release_hold", "console_cancel_hold", "reassign", "request_entry",
                           "console_entry", "console_delete_entry"}  # a new one: add it here
    form = urlencode({"reason": "forged", "comment": "forged", "factory_name": "f", "entry_json": "{}",
                      "antiforgery_token": ""})
    for name, route in routes.items():
        path = route.format(**values)
        params = {key: value for key, value in values.items() if "{" + key + "}" in route}
        alice = browser(ALICE)
        valid = antiforgery.issue(ALICE, alice)
        for headers, body, says in [
            ({**alice, "Sec-Fetch-Site": "cross-site"}, form.replace("antiforgery_token=", f"antiforgery_token={valid}"),
             "Not sent from this app"),
            ({**alice, "Sec-Fetch-Site": "same-origin"}, form, "This page is out of date"),
        ]:
            response = api.call(name, "POST", path, body=body.encode(), route_params=params,
                                headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})
            assert response.status_code == 403 and says in response.get_body().decode(), (name, headers)
    record = api.record(quorum["pause_id"])
    assert record["status"] == "pending" and record["approvals"] == [] and adf.runs == []
    holds = api.json(api.call("list_holds", "GET", "holds"))
    assert [(h["hold_id"], h["status"]) for h in holds["items"]] == [(placed["hold_id"], "active")]
    assert api.json(api.call("list_catalog", "GET", "catalog"))["items"] == []
    assert [p["pause_id"] for p in api.json(api.list())["items"]] == [quorum["pause_id"]]  # nothing requested
