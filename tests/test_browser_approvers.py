"""Named approvers in Chromium: the development sign-in of `make run`, the quorum, and the email walk.

The app is served as `make run` serves it with APPROVER_SIGN_IN=easyauth: the local Functions host
behind the development sign-in (local_dev/dev_sign_in.py), which stands in for App Service
Authentication (cookie → principal headers; client-sent principal headers stripped).
"""

import re

import pytest
import requests

from local_dev.dev_sign_in import DevSignIn
from local_dev.functions_host import build_wsgi_app, serve
from local_dev.mail_catcher import MailCatcher
from tests.test_browser import ROOT, axe_violations, describe, heading

pytestmark = pytest.mark.integration

ALICE, BOB, CAROL, DAVE = "alice@contoso.com", "bob@contoso.com", "carol@contoso.com", "dave@contoso.com"
PAUSE = {"notification": {"title": "Load November's sales into the warehouse?"},
         "approvers": [ALICE, BOB, CAROL], "required_approvals": 2, "requested_by": CAROL}


@pytest.fixture(scope="module")
def signed_in_server(registered_functions):
    import function_app

    with serve(DevSignIn(build_wsgi_app(function_app.app, ROOT / "host.json"))) as running:
        yield running


@pytest.fixture
def site(app_env, signed_in_server, configure):
    configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED="True", PUBLIC_BASE_URL=signed_in_server.url)
    return signed_in_server


@pytest.fixture
def person(browser):
    """person() -> a page in a browser of its own (its own cookies: one person each)."""
    contexts = []

    def person():
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        return context.new_page()

    yield person
    for context in contexts:
        context.close()


def sign_in_through_the_page(page, who):
    """From the app's 'Sign in first' page, through the development sign-in, back to the link."""
    assert heading(page) == "Sign in first"
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Identity (e-mail or UPN)").fill(who)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def test_alice_approves_one_of_two_bob_completes_the_requester_and_a_stranger_are_refused(site, api, adf, person):
    created = api.created(**PAUSE)
    shared = f"{site.url}/api/restart/{created['token']}"

    alice = person()
    assert alice.goto(shared).status == 401
    sign_in_through_the_page(alice, ALICE)
    assert alice.url == shared and "0 of 2 approved" in alice.content() and "You decide as" in alice.content()
    with alice.expect_navigation():
        alice.get_by_role("button", name=re.compile("^Approve")).click()
    assert heading(alice) == "Your approval is recorded — 1 of 2" and adf.runs == []

    carol = person()
    carol.goto(shared)
    sign_in_through_the_page(carol, CAROL)
    assert heading(carol) == "You asked for this — someone else must approve"
    assert carol.get_by_role("button", name=re.compile("^Approve")).count() == 0

    dave = person()
    dave.goto(shared)
    sign_in_through_the_page(dave, DAVE)
    assert heading(dave) == "You are not one of the approvers"

    bob = person()
    bob.goto(shared)
    sign_in_through_the_page(bob, BOB)
    assert "1 of 2 approved" in bob.content() and ALICE in bob.content()
    with bob.expect_navigation():
        bob.get_by_role("button", name=re.compile("^Approve")).click()
    assert heading(bob).startswith("Approved")
    [run] = adf.runs
    record = api.record(created["pause_id"])
    assert record["run_id"] == run["runId"] and [(a["approver"], a["via"]) for a in record["approvals"]] == [
        (ALICE, "sign_in"), (BOB, "sign_in")]
    for page in (alice, carol, dave, bob):
        serious = [v for v in axe_violations(page) if v["impact"] in ("serious", "critical")]
        assert not serious, describe(serious)


def test_a_page_on_another_origin_cannot_make_a_signed_in_approver_approve(site, api, adf, person):
    """The requester holds the shared link and puts a form posting it on a page of their own, here on
    another port of the same host: the same *site*, so the browser sends the Lax sign-in cookie along
    (as it would from a sibling subdomain, or with App Service's own cookie); the app refuses."""
    from werkzeug.wrappers import Response

    created = api.created(**PAUSE)
    shared = f"{site.url}/api/restart/{created['token']}"
    lure = (f'<!doctype html><html lang="en"><title>Cat pictures</title><form method="post" action="{shared}">'
            '<input type="hidden" name="comment" value="lgtm"><button>See the cats</button></form></html>')
    with serve(lambda environ, start: Response(lure, content_type="text/html")(environ, start)) as attacker:
        alice = person()
        alice.goto(shared)
        sign_in_through_the_page(alice, ALICE)
        assert "Approve" in alice.content()  # signed in, on her way to approve another time
        alice.goto(attacker.url)
        with alice.expect_navigation():
            alice.get_by_role("button", name="See the cats").click()
        assert alice.url == shared and heading(alice) == "Not sent from this app's page — nothing was changed"
    record = api.record(created["pause_id"])
    assert record["status"] == "pending" and record["approvals"] == [] and adf.runs == []


def test_a_personal_link_opened_by_someone_else_says_whose_it_is(site, api, person):
    created = api.created(**PAUSE, return_approver_links=True)
    [alice_link] = [link["restart_url"] for link in created["approver_links"] if link["approver"] == ALICE]
    bob = person()
    bob.goto(alice_link)
    sign_in_through_the_page(bob, BOB)
    assert heading(bob) == "This link is for someone else"
    assert f"This link is for {ALICE}; you are signed in as {BOB}" in bob.content()


def test_me_and_logout_and_no_principal_a_client_sends_itself(site, api, person):
    created = api.created(**PAUSE)
    page = person()
    page.goto(f"{site.url}/.auth/login/aad?post_login_redirect_uri=/.auth/me")
    page.get_by_label("Identity (e-mail or UPN)").fill(ALICE)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert '"user_id": "alice@contoso.com"' in page.content()
    page.goto(f"{site.url}/.auth/logout")
    assert "signed out" in page.content()
    assert page.goto(f"{site.url}/api/restart/{created['token']}").status == 401
    # Headers a client writes itself are stripped, as App Service does: still not signed in.
    forged = requests.post(f"{site.url}/api/restart/{created['token']}", json={}, timeout=30,
                           headers={"X-MS-CLIENT-PRINCIPAL-NAME": BOB, "X-MS-CLIENT-PRINCIPAL": "e30="})
    assert forged.status_code == 401
    assert requests.get(f"{site.url}/.auth/login/aad?post_login_redirect_uri=https://evil.example/",
                        timeout=30).text.count('value="/"') == 1  # no open redirect


def test_the_email_walk_through_the_local_mail_catcher(app_env, registered_functions, api, adf, configure, person):
    import function_app

    with MailCatcher() as mail, serve(build_wsgi_app(function_app.app, ROOT / "host.json")) as plain:
        configure(SMTP_HOST="127.0.0.1", SMTP_PORT=str(mail.port), SMTP_FROM="pauses@example.test",
                  SMTP_STARTTLS="false", PUBLIC_BASE_URL=plain.url)
        adf.mail = mail
        try:
            created = api.created(**{**PAUSE, "required_approvals": 1}, notify={"subject": "Load sales?"})
            page = person()
            page.goto(f"{adf.url}/_standin/mail")
            assert page.get_by_role("link", name="Load sales?").count() == 2  # alice's and bob's
            with page.expect_navigation():
                page.get_by_role("row").filter(has_text=BOB).get_by_role("link").click()
            [approve] = [a for a in page.get_by_role("link").all() if "/api/restart/" in a.get_attribute("href")]
            with page.expect_navigation():  # (read before the page it opens has loaded, the content is empty)
                approve.click()
            assert "You decide as" in page.content() and BOB in page.content()
            with page.expect_navigation():
                page.get_by_role("button", name=re.compile("^Approve")).click()
            assert heading(page).startswith("Approved") and len(adf.runs) == 1
            assert api.record(created["pause_id"])["decided_by"] == BOB
        finally:
            adf.mail = None


def test_an_approver_hands_their_part_on_from_their_links_page(app_env, registered_functions, api, adf, configure,
                                                                person):
    import function_app

    with MailCatcher() as mail, serve(build_wsgi_app(function_app.app, ROOT / "host.json")) as plain:
        configure(SMTP_HOST="127.0.0.1", SMTP_PORT=str(mail.port), SMTP_FROM="pauses@example.test",
                  SMTP_STARTTLS="false", PUBLIC_BASE_URL=plain.url)
        api.created(**{**PAUSE, "requested_by": DAVE}, notify={})
        [alices] = [re.search(r"(http://\S+/api/restart/\S+)", m["text"]).group(1) for m in mail.messages
                    if m["to"] == [ALICE]]
        page = person()
        page.goto(alices)
        serious = [v for v in axe_violations(page) if v["impact"] in ("serious", "critical")]
        assert not serious, describe(serious)
        page.get_by_label("Hand it on to").fill("erin@contoso.com")
        page.get_by_label("Why").fill("On leave this week")
        with page.expect_navigation():
            page.get_by_role("button", name="Hand it on").click()
        assert heading(page) == "Handed on to erin@contoso.com"
        assert not [v for v in axe_violations(page) if v["impact"] in ("serious", "critical")]
        [erins] = [m for m in mail.messages if m["to"] == ["erin@contoso.com"]]
        assert "/api/restart/" in erins["text"]
        assert page.goto(alices).status == 409 and "erin@contoso.com" in page.content()
