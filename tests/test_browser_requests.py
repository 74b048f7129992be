"""Run on demand in Chromium, through the development sign-in of `make run`: a requester asks for a run of
a catalog entry with its form, sees it pending; an approver signs in, sees the requester's values
read-only and approves; the strict ADF stand-in shows one run with the typed values. At desktop width
and at 360 px, with axe-core; the screenshots are the README's (docs/request-*.png)."""

import json
import re

import pytest

from local_dev.adf_standin import DEFAULT_FACTORY
from tests.support import inbox, wait_until
from tests.test_browser import axe_violations, describe, heading, shoot
from tests.test_browser_approvers import person, signed_in_server, sign_in_through_the_page  # noqa: F401

pytestmark = pytest.mark.integration

SUBSCRIPTION, RESOURCE_GROUP, FACTORY = DEFAULT_FACTORY
CAROL, ALICE = "carol@contoso.com", "alice@contoso.com"
ENTRY = {"title": "Re-publish the sales cube", "description": "Publishes the cube again from one cut-off day.",
         "target": {"subscription_id": SUBSCRIPTION, "resource_group": RESOURCE_GROUP, "factory_name": FACTORY,
                    "pipeline_name": "PausableLoad_Publish"},
         "form": "pipeline", "approvers": [ALICE, "bob@contoso.com"], "requesters": ["*@contoso.com"]}


@pytest.fixture
def site(app_env, signed_in_server, configure, api, mail):  # noqa: F811
    configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED="True", PUBLIC_BASE_URL=signed_in_server.url)
    response = api.call("put_catalog_entry", "PUT", "catalog/publish", body=json.dumps(ENTRY).encode(),
                        headers={"Content-Type": "application/json"}, route_params={"entry": "publish"})
    assert response.status_code == 201, response.get_body()
    return signed_in_server


def fits(page, width):
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the page scrolls sideways ({scroll_width}px at {width}px)"
    serious = [v for v in axe_violations(page) if v["impact"] in ("serious", "critical")]
    assert not serious, describe(serious)


def test_a_requester_asks_an_approver_approves_and_the_run_has_the_typed_values(site, api, adf, mail,
                                                                                person):  # noqa: F811
    carol = person()
    assert carol.goto(f"{site.url}/api/request").status == 401
    sign_in_through_the_page(carol, CAROL)
    assert heading(carol) == "Request a run"
    with carol.expect_navigation():  # (read before it loads, the heading is still the last page's)
        carol.get_by_role("link", name="Re-publish the sales cube").click()
    assert heading(carol) == "Re-publish the sales cube"
    fits(carol, 1280)
    shoot(carol, "request-form-1280.png")
    carol.get_by_label(re.compile("^BatchSize")).fill("250")
    with carol.expect_navigation():  # the cut-off day left out: it is required
        carol.get_by_role("button", name="Request this run").click()
    assert "nothing was requested" in carol.content() and api.json(api.list())["items"] == []
    assert carol.get_by_label(re.compile("^BatchSize")).input_value() == "250"  # what was typed is kept
    carol.get_by_label(re.compile("^CutoffDate")).fill("2026-12-01")
    carol.get_by_label("Yes").check()
    with carol.expect_navigation():
        carol.get_by_role("button", name="Request this run").click()
    assert heading(carol) == "Re-publish the sales cube: waiting for approval"
    pause_id = re.search(r"/api/requests/([0-9a-f]{32})$", carol.url).group(1)
    shoot(carol, "request-pending-1280.png")

    wait_until(lambda: inbox(mail, ALICE), what="the approver's email")
    approve_url = re.search(r"https?://\S+/api/restart/\S+", inbox(mail, ALICE)[0]["text"]).group(0)
    alice = person()
    alice.goto(approve_url)
    sign_in_through_the_page(alice, ALICE)
    facts = alice.locator("main").inner_text()
    assert "Requested by" in facts and CAROL in facts and "250" in facts and "2026-12-01" in facts
    assert alice.locator('input[name^="form."]').count() == 0  # read-only for the approver
    with alice.expect_navigation():
        alice.get_by_role("button", name=re.compile("^Approve")).click()
    assert "Approved" in heading(alice) or "started" in alice.content()

    [run] = adf.runs
    assert run["pipelineName"] == "PausableLoad_Publish"
    assert run["parametersAsSent"] == {"CutoffDate": "2026-12-01", "BatchSize": 250, "FullReload": True,
                                       "Regions": ["emea", "amer"], "pause_id": pause_id}
    record = api.record(pause_id)
    assert (record["requested_by"], record["decided_by"], record["status"]) == (CAROL, ALICE, "restarted")
    carol.reload()
    assert heading(carol) == "Re-publish the sales cube: approved; the run was started"
    assert ALICE in carol.content() and record["run_id"] in carol.content()
    fits(carol, 1280)
    shoot(carol, "request-done-1280.png")


def test_the_request_pages_fit_a_phone_and_refuse_someone_else(site, api, browser):
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(f"{site.url}/api/request/publish")
        sign_in_through_the_page(page, CAROL)
        assert heading(page) == "Re-publish the sales cube"
        fits(page, 360)
        shoot(page, "request-form-360.png")
        page.get_by_label(re.compile("^CutoffDate")).fill("2026-12-01")
        with page.expect_navigation():
            page.get_by_role("button", name="Request this run").click()
        assert heading(page).endswith("waiting for approval")
        fits(page, 360)
        shoot(page, "request-pending-360.png")
        page.goto(f"{site.url}/.auth/logout")
        page.goto(f"{site.url}/api/request/publish")
        sign_in_through_the_page(page, "mallory@fabrikam.com")
        assert heading(page) == "Not available to you" and "Re-publish" not in page.content()
        fits(page, 360)
    finally:
        context.close()
