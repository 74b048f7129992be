"""The operators' console in Chromium, through the development sign-in of `make run`: an operator
places a hold, a run waits at its checkpoint, the operator releases it and the run continues once."""

import re
import time
import uuid

import pytest
import requests

from tests.support import TARGET
from tests.test_browser import axe_violations, describe, heading
from tests.test_browser_approvers import person, signed_in_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration

OPS = "ops@contoso.com"


@pytest.fixture
def site(app_env, signed_in_server, configure):  # noqa: F811
    configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED="True", PUBLIC_BASE_URL=signed_in_server.url,
              OPERATORS=OPS, CALLBACK_ALLOWED_HOSTS="127.0.0.1", CHECKPOINT_CALLBACK_DELAY_SECONDS="0.05")
    return signed_in_server


def sign_in(page, who, roles=""):
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Identity (e-mail or UPN)").fill(who)
    if roles:
        page.get_by_label(re.compile("App roles")).fill(roles)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def checkpoint(site, adf, name):
    body = {**TARGET, "run_id": str(uuid.uuid4()), "checkpoint": "after_staging",
            "callBackUri": f"{adf.url}/_standin/callbacks/{name}"}
    response = requests.post(f"{site.url}/api/checkpoint", json=body, timeout=30)
    assert response.status_code == 202
    return response.json()


def test_an_operator_holds_runs_and_releases_them_once(site, api, adf, person):  # noqa: F811
    waiting = api.created(notification={"title": "Load November's sales?"}, requested_by="req@contoso.com")
    ops = person()
    assert ops.goto(f"{site.url}/api/console").status == 401
    assert heading(ops) == "Sign in first"
    sign_in(ops, OPS)
    assert ops.url.endswith("/api/console") and heading(ops) == "Everything waiting"
    assert "Load November's sales?" in ops.content()

    ops.get_by_text("Place a hold").click()
    ops.get_by_label("Data factory").fill(TARGET["factory_name"])
    ops.get_by_label("Pipeline").fill("Load_*")
    ops.get_by_label("Reason", exact=True).fill("Warehouse maintenance until 10:00")
    with ops.expect_navigation():
        ops.get_by_role("button", name="Place the hold").click()
    assert "Done: the hold was placed." in ops.content() and "Warehouse maintenance until 10:00" in ops.content()

    held = checkpoint(site, adf, "browser-run")
    assert held["held"] is True
    time.sleep(0.3)
    assert [c for c in adf.callbacks if c["callbackId"] == "browser-run"] == []
    ops.reload()
    assert "Load_Sales at after_staging" in ops.content()
    serious = [v for v in axe_violations(ops) if v["impact"] in ("serious", "critical")]
    assert not serious, describe(serious)

    ops.get_by_label("Comment").fill("maintenance over")
    with ops.expect_navigation():
        ops.get_by_role("button", name=re.compile("^Release")).click()
    assert "Done: the hold was released." in ops.content() and "No run is held." in ops.content()
    [sent] = [c for c in adf.callbacks if c["callbackId"] == "browser-run"]
    assert sent["status"] == 200 and sent["body"]["Output"]["released_by"] == OPS
    assert "maintenance over" in ops.content()  # in the recent decisions

    # The pending pause's record, and a cancel recorded as the operator.
    with ops.expect_navigation():  # (read before it loads, the heading is still the last page's)
        ops.get_by_role("link", name="Load November's sales?").click()
    assert heading(ops) == "Load November's sales?" and "Audit trail" in ops.content()
    ops.get_by_label("Reason").fill("Wrong month")
    with ops.expect_navigation():
        ops.get_by_role("button", name="Cancel this pause").click()
    assert "Done: the pause was cancelled." in ops.content()
    assert api.record(waiting["pause_id"])["decided_by"] == OPS


def test_the_console_is_usable_at_360_pixels_and_refuses_non_operators(site, api, browser):
    api.created(notification={"title": "A rather long title for a pause that must still fit on a small phone?"})
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = context.new_page()
        page.goto(f"{site.url}/api/console")
        sign_in(page, "carol@contoso.com", roles="Pauses.Operator")
        assert heading(page) == "Everything waiting"
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"the page scrolls sideways ({width}px)"
        serious = [v for v in axe_violations(page) if v["impact"] in ("serious", "critical")]
        assert not serious, describe(serious)
        page.goto(f"{site.url}/.auth/logout")
        page.goto(f"{site.url}/api/console")
        sign_in(page, "mallory@contoso.com")
        assert heading(page) == "Forbidden" and "not an operator" in page.content()
    finally:
        context.close()


def test_a_form_posted_from_another_site_changes_nothing(site, api, browser):
    created = api.created()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{site.url}/api/console")
        sign_in(page, OPS)
        # Another page (here a data: URL, a different origin) posts a form with the operator's cookie.
        form = (f'<form method="post" action="{site.url}/api/console/pauses/{created["pause_id"]}/cancel">'
                '<input name="reason" value="csrf"><button>go</button></form>')
        page.goto("data:text/html," + requests.utils.quote(form))
        with page.expect_navigation():
            page.get_by_role("button", name="go").click()
        # Chromium keeps a SameSite=Lax cookie off a cross-site POST (then: "Sign in first"); App
        # Service's session cookie may be SameSite=None, and then the app's own origin check refuses it.
        assert heading(page) == "Sign in first" or "only be sent from this app's own pages" in page.content()
        assert api.record(created["pause_id"])["status"] == "pending"
    finally:
        context.close()


def test_the_index_page_links_the_console(site, browser):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{site.url}/api")
        assert heading(page) == "Pausable Pipelines"
        with page.expect_navigation():
            page.get_by_role("link", name="Operators' console").click()
        assert heading(page) == "Sign in first"
    finally:
        context.close()
