"""The pages people see, in a real browser (Debian's Chromium under Playwright) over real HTTP.

Each walk starts from a link as the approver gets it. Every page is also checked at phone and
desktop widths (no horizontal scrolling, a screenshot in test-output/screenshots/) and with
axe-core (no serious or critical accessibility violations), with the page's own CSP enforced.
"""

import functools
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from local_dev.check_endpoint import CheckEndpoint
from local_dev.functions_host import build_wsgi_app, serve
from tests.support import create_pipeline

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-output" / "screenshots"
# Screenshots are for people to look at, not asserted on; a full-page PNG costs Chromium a quarter of a
# second's CPU, so they are taken when asked for: `make test SCREENSHOTS=1`.
TAKE_SCREENSHOTS = os.environ.get("SCREENSHOTS", "").strip().lower() in ("1", "true", "yes")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PHONE, DESKTOP = 360, 1280
RUN_ID = "8f6b2c1e-5a4d-4e3b-9c2a-1d0e7f6a5b4c"
PAUSE = {
    "notification": {"title": "Load 1,200 staged rows into Sales for 25 November?",
                     "message": "Staging finished at 09:58.\nRows: 1,200 (yesterday: 1,184). Rejected: 0.",
                     "success_message": "Thank you. Sales will be loaded in about ten minutes."},
    "source": {"pipeline": "Stage_Sales_Nightly", "run_id": RUN_ID},
}


class RecordingApp:
    """WSGI middleware remembering the method and path of every request the app received."""

    def __init__(self, app):
        self.app, self.requests, self._lock = app, [], threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            self.requests.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
        return self.app(environ, start_response)

    def clear(self):
        with self._lock:
            self.requests.clear()

    def posts(self, action):
        with self._lock:
            return [path for method, path in self.requests if method == "POST" and path.startswith(f"/api/{action}/")]


@pytest.fixture(scope="module")
def server(registered_functions):
    """The app on the local Functions host, over real HTTP on a free port (one per module)."""
    import function_app

    app = RecordingApp(build_wsgi_app(function_app.app, ROOT / "host.json"))
    with serve(app) as running:
        running.app = app
        yield running


@pytest.fixture
def site(app_env, server):
    """The served app, pointed at this test's table and stand-in, with no requests recorded yet."""
    server.app.clear()
    return server


def _context(browser, width):
    phone = width <= 480
    return browser.new_context(viewport={"width": width, "height": 800 if phone else 900},
                               is_mobile=phone, has_touch=phone, device_scale_factor=2 if phone else 1)


def _page(context):
    page = context.new_page()
    page.csp_errors = []  # what Chromium refused under the page's Content-Security-Policy

    def note_csp_error(message):
        if message.type == "error" and "Content Security Policy" in message.text:
            page.csp_errors.append(message.text)

    page.on("console", note_csp_error)
    return page


@pytest.fixture
def new_page(browser):
    """new_page(width) -> a page in a fresh browser context of that width; all closed afterwards."""
    contexts = []

    def new_page(width=DESKTOP):
        contexts.append(_context(browser, width))
        return _page(contexts[-1])

    yield new_page
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def pages_by_width(browser):
    pages = {}
    yield pages
    for page in pages.values():
        page.context.close()


@pytest.fixture
def page_at(pages_by_width, browser, request):
    """page_at(width) -> this module's page of that width, without cookies, for the test to navigate. The page checks
    share one page a width: a fresh context each cost Chromium three times the CPU (a renderer started cold, axe
    compiled again), 27 s of make test's; each check still loads its page anew. A page whose test failed is closed,
    not handed on. The walks keep a context of their own."""
    failed = request.session.testsfailed
    used = []

    def page_at(width):
        used.append(width)  # (first: a page that fails here is closed too)
        if width not in pages_by_width:
            pages_by_width[width] = _page(_context(browser, width))
        page = pages_by_width[width]
        page.context.clear_cookies()
        page.csp_errors.clear()
        return page

    yield page_at
    if request.session.testsfailed > failed:
        for width in set(used):
            if (page := pages_by_width.pop(width, None)) is not None:
                page.context.close()


def shoot(page, name, full_page=True):
    """Save what the page looks like to test-output/screenshots/ when SCREENSHOTS=1."""
    if TAKE_SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name), full_page=full_page)


def link(site, action, token):
    return f"{site.url}/api/{action}/{token}"


def expire(table, pause_id):
    entity = table.get_entity(pause_id, "pause")
    entity["expires_at"] = datetime.now(timezone.utc) - timedelta(seconds=1)
    table.update_entity(entity)


def heading(page):
    """The page's h1 as a screen reader says it (without the decorative check mark)."""
    return page.locator("h1").inner_text().lstrip("✓").strip()


def wait_for_status(api, pause_id, status, timeout=5.0):
    """The pause's record once it has `status` (or when `timeout` seconds have passed)."""
    deadline = time.monotonic() + timeout
    while (record := api.record(pause_id))["status"] != status and time.monotonic() < deadline:
        time.sleep(0.05)
    return record


# --- walks -----------------------------------------------------------------------------------

def test_approve_from_the_link_starts_exactly_one_run(new_page, site, api, adf):
    created = api.created(**PAUSE)
    page = new_page()
    response = page.goto(link(site, "restart", created["token"]))
    assert response.status == 200
    assert heading(page) == PAUSE["notification"]["title"]
    assert adf.runs == [], "opening the link must not start anything"
    page.get_by_label("Comment (optional)").fill("Numbers match the report")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name=re.compile("^Approve")).click()
    assert navigation.value.status == 200
    assert "Approved" in heading(page)
    assert "Sales will be loaded in about ten minutes." in page.content()
    [run] = adf.runs
    assert run["parameters"]["pause_id"] == created["pause_id"]
    assert run["runId"] in page.inner_text("main")
    record = api.record(created["pause_id"])
    assert record["status"] == "restarted" and record["comment"] == "Numbers match the report"
    assert page.csp_errors == []


def test_cancel_with_a_reason_stores_it_and_starts_nothing(new_page, site, api, adf):
    created = api.created(**PAUSE)
    page = new_page()
    page.goto(link(site, "restart", created["token"]))
    with page.expect_navigation():  # (read before it loads, the URL is still the last page's)
        page.get_by_role("link", name=re.compile("Cancel", re.I)).click()
    assert page.url == link(site, "cancel", created["token"])
    page.get_by_label(re.compile("^Reason")).fill("Yesterday's numbers were wrong")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name=re.compile("^Cancel")).click()
    assert navigation.value.status == 200
    assert "Cancelled" in heading(page)
    assert "Yesterday's numbers were wrong" in page.inner_text("main")
    record = api.record(created["pause_id"])
    assert record["status"] == "cancelled" and record["reason"] == "Yesterday's numbers were wrong"
    assert adf.runs == []


def test_reused_link_shows_what_was_decided_as_good_news(new_page, site, api, adf):
    created = api.created(**PAUSE)
    api.decide("restart", created["token"], form={"comment": "ok"})
    page = new_page()
    response = page.goto(link(site, "restart", created["token"]))
    assert response.status == 409
    assert heading(page) == "Already approved — nothing more to do"
    text = page.inner_text("main")
    assert adf.runs[0]["runId"] in text and "UTC" in text
    assert len(adf.runs) == 1


def test_expired_link_shows_the_410_page(new_page, site, api, table, adf):
    created = api.created(**PAUSE)
    expire(table, created["pause_id"])
    page = new_page()
    for action in ("restart", "cancel"):
        response = page.goto(link(site, action, created["token"]))
        assert response.status == 410
        assert heading(page) == "This link has expired"
        assert page.get_by_role("button").count() == 0
    assert adf.runs == []


@pytest.mark.parametrize("clicks", ["dblclick", "second click while the first is in flight"])
def test_double_click_on_approve_starts_one_run_and_reads_as_done(clicks, new_page, site, api, adf):
    created = api.created(**PAUSE)
    adf.inject("createRun", "late", seconds=0.5)  # the first approval still waits for ADF when the second arrives
    page = new_page()
    page.goto(link(site, "restart", created["token"]))
    button = page.get_by_role("button", name=re.compile("^Approve"))
    if clicks == "dblclick":
        button.dblclick()  # Chromium itself folds a fast double click into one submission
    else:
        # Click again once the app has the first POST: the browser then sends a second one, and
        # shows its answer.
        box = button.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.click(x, y)
        deadline = time.monotonic() + 5
        while not site.app.posts("restart") and time.monotonic() < deadline:
            time.sleep(0.01)
        page.mouse.click(x, y)
    page.wait_for_load_state()
    page.wait_for_selector("h1.status")
    assert wait_for_status(api, created["pause_id"], "restarted")["status"] == "restarted"
    if clicks != "dblclick":
        assert len(site.app.posts("restart")) == 2, "both submissions should have reached the app"
        shoot(page, "second-click-1280.png", full_page=False)
    assert len(adf.runs) == 1
    assert re.match(r"(Approved|Already approved|Being approved right now) — ", heading(page)), heading(page)
    assert page.locator("h1.status.ok").count() == 1, "a second click must not read as an error"


def test_keyboard_alone_reaches_the_comment_and_approves(new_page, site, api, adf):
    created = api.created(**PAUSE)
    page = new_page()
    page.goto(link(site, "restart", created["token"]))
    focused = []
    for _ in range(10):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
        if focused[-1] == "comment":
            break
    assert focused[-1] == "comment", focused
    page.keyboard.type("Checked by keyboard")
    page.keyboard.press("Tab")
    button = page.evaluate("[document.activeElement.tagName, document.activeElement.type]")
    assert button == ["BUTTON", "submit"]
    outline = page.evaluate("[getComputedStyle(document.activeElement).outlineStyle,"
                            " getComputedStyle(document.activeElement).outlineWidth]")
    assert outline == ["solid", "3px"], "the focused button must show clearly where focus is"
    shoot(page, "keyboard-focus-1280.png", full_page=False)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Approved" in heading(page)
    assert len(adf.runs) == 1
    assert api.record(created["pause_id"])["comment"] == "Checked by keyboard"


@pytest.fixture
def quality_check(configure):
    """A data quality endpoint (answering RUNNING) and the gate-mode pause fields that poll it."""
    with CheckEndpoint() as endpoint:
        configure(CHECK_ALLOWED_HOSTS="127.0.0.1")
        endpoint.set("dq", json={"status": "RUNNING"})
        yield endpoint, {"checks_mode": "gate", "checks": [
            {"name": "data quality", "http": {"url": endpoint.url("dq")},
             "expect": {"json": {"path": "$.status", "equals": "OK"}}}]}


def test_gate_mode_page_waits_for_the_checks_then_approves_once(new_page, site, api, adf, quality_check):
    from shared import sweep

    endpoint, gate = quality_check
    created = api.created(**PAUSE, **gate)
    sweep.sweep()
    page = new_page()
    page.goto(link(site, "restart", created["token"]))
    approve = page.get_by_role("button", name=re.compile("^Approve"))
    assert approve.is_disabled() and "checks have not passed yet" in page.locator("#gate-hint").inner_text()
    assert 'data quality: not yet — $.status is "RUNNING"' in page.locator("body").inner_text()
    endpoint.set("dq", json={"status": "OK"})
    sweep.sweep(datetime.now(timezone.utc) + timedelta(minutes=6))
    page.reload()
    assert approve.is_enabled() and page.locator("#gate-hint").count() == 0
    assert "data quality: passed" in page.locator("body").inner_text()
    with page.expect_navigation():
        approve.click()
    assert wait_for_status(api, created["pause_id"], "restarted")["status"] == "restarted" and len(adf.runs) == 1
    assert endpoint.seen("dq").calls == 2  # the page never ran a check: only the two timer runs did


def test_callback_mode_approval_lets_the_waiting_run_continue_once(new_page, site, api, adf, configure):
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1")
    created = api.json(api.pause({"callBackUri": f"{adf.url}/_standin/callbacks/browser", **PAUSE}))
    page = new_page()
    page.goto(link(site, "restart", created["token"]))
    assert "the waiting pipeline run" in page.inner_text("dl")
    assert "Stage_Sales_Nightly" in page.inner_text("dl") and RUN_ID in page.inner_text("dl")
    with page.expect_navigation():
        page.get_by_role("button", name="Approve — let the waiting run continue").click()
    assert heading(page) == "Approved — the pipeline run continues"
    [callback] = adf.callbacks
    assert callback["body"]["Output"]["pause_id"] == created["pause_id"]
    assert adf.runs == []


def test_hostile_text_is_shown_as_text_and_never_runs(new_page, site, api):
    hostile = '<img src=x onerror="document.body.dataset.owned=1"><script>document.body.dataset.owned=1</script>'
    created = api.created(notification={"title": hostile, "message": hostile})
    page = new_page()
    dialogs = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    page.goto(link(site, "restart", created["token"]))
    assert heading(page) == hostile
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("document.body.dataset.owned") is None and dialogs == []


def test_a_form_is_filled_in_and_approved_without_javascript(browser, site, api, adf):
    created = api.created(**PAUSE, form=EVERY_FIELD)
    context = browser.new_context(java_script_enabled=False, viewport={"width": PHONE, "height": 800})
    try:
        page = context.new_page()
        page.goto(link(site, "restart", created["token"]))
        page.locator("#form-cutoff").fill("2026-12-31")
        page.locator("#form-batch_id").fill("B-0042")
        page.locator("#form-batch_size").fill("250")
        page.locator("#form-full_reload").check()
        page.locator("#form-regions-3").check()  # apac, besides the default emea
        page.locator("#form-target").select_option("production")
        page.locator("#form-not_before").fill("2026-12-31T22:30")
        with page.expect_navigation() as navigation:
            page.locator("form").first.locator("button[type=submit]").click()
        assert navigation.value.status == 200, page.content()
    finally:
        context.close()
    [run] = adf.runs
    assert run["parametersAsSent"] == {"cutoff": "2026-12-31", "batch_id": "B-0042",
                                       "batch_size": 250, "threshold": 0.5, "full_reload": True,
                                       "not_before": "2026-12-31T22:30:00Z", "target": "production",
                                       "regions": ["emea", "apac"], "tables": ["sales", "returns"],
                                       "pause_id": created["pause_id"]}


# --- every page: phone and desktop widths, screenshots, axe ----------------------------------

def _confirm(action):
    def reach(page, site, api, **_):
        created = api.created(**PAUSE)
        return page.goto(link(site, action, created["token"]))
    return reach


def _confirm_callback(page, site, api, configure, adf, **_):
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1")
    response = api.pause({"callBackUri": f"{adf.url}/_standin/callbacks/browser", **PAUSE})
    return page.goto(link(site, "restart", api.json(response)["token"]))


def _confirm_long(page, site, api, adf, **_):
    create_pipeline(adf, "Load_" + "Z" * 100)
    created = api.created(notification={"title": "Approve" + "X" * 190, "message": "y" * 600},
                          source={"pipeline": "P" * 120, "run_id": "r" * 200},
                          pipeline_name="Load_" + "Z" * 100)
    return page.goto(link(site, "restart", created["token"]))


def _submitted(action, field, text):
    def reach(page, site, api, **_):
        created = api.created(**PAUSE)
        page.goto(link(site, action, created["token"]))
        page.locator(f"#{field}").fill(text)
        with page.expect_navigation() as navigation:
            page.locator("form").first.locator("button[type=submit]").click()
        return navigation.value
    return reach


def _already_decided(page, site, api, **_):
    created = api.created(**PAUSE)
    api.decide("restart", created["token"], form={"comment": "Fine by me"})
    return page.goto(link(site, "cancel", created["token"]))


def _expired(page, site, api, table, **_):
    created = api.created(**PAUSE)
    expire(table, created["pause_id"])
    return page.goto(link(site, "restart", created["token"]))


def _gate_pending(page, site, api, quality_check, **_):
    created = api.created(**PAUSE, **quality_check[1])
    from shared import sweep

    sweep.sweep()
    return page.goto(link(site, "restart", created["token"]))


def _not_found(page, site, **_):
    return page.goto(link(site, "restart", "f" * 32 + "A" * 86))


def _upstream_failed(page, site, api, adf, **_):
    created = api.created(**PAUSE)
    page.goto(link(site, "restart", created["token"]))
    adf.inject("createRun", "before", status=404, code="NotFound", message="The document could not be retrieved because it does not exist.")
    with page.expect_navigation() as navigation:
        page.locator("form").first.locator("button[type=submit]").click()
    return navigation.value


# One field of every kind a form has, as an approver sees them.
EVERY_FIELD = [
    {"name": "cutoff", "label": "Cut-off date", "type": "date", "required": True, "help": "The last day to load."},
    {"name": "batch_id", "label": "Batch id", "type": "string", "required": True, "pattern": "B-[0-9]{4}",
     "help": "Like B-0042."},
    {"name": "batch_size", "label": "Rows per batch", "type": "integer", "min": 100, "max": 100000, "default": 5000},
    {"name": "threshold", "label": "Error threshold", "type": "number", "default": 0.5},
    {"name": "full_reload", "label": "Reload everything", "type": "boolean", "default": False},
    {"name": "not_before", "label": "Not before", "type": "datetime"},
    {"name": "target", "label": "Target", "type": "choice", "choices": ["staging", "production"], "required": True,
     "default": "staging"},
    {"name": "regions", "label": "Regions", "type": "multi_choice", "choices": ["emea", "amer", "apac"],
     "default": ["emea"]},
    {"name": "tables", "label": "Tables", "type": "array", "default": ["sales", "returns"]},
    {"name": "note", "label": "Note to the operators", "type": "text", "max_length": 500},
]


def _confirm_form(page, site, api, **_):
    created = api.created(**PAUSE, form=EVERY_FIELD)
    return page.goto(link(site, "restart", created["token"]))


def _form_invalid(page, site, api, **_):
    created = api.created(**PAUSE, form=EVERY_FIELD)
    page.goto(link(site, "restart", created["token"]))
    page.locator("#form-cutoff").fill("2026-12-31")
    page.locator("#form-batch_id").fill("batch 42")
    page.locator("#form-batch_size").fill("12.5")
    with page.expect_navigation() as navigation:
        page.locator("form").first.locator("button[type=submit]").click()
    return navigation.value


def _scheduled(page, site, api, **_):
    created = api.created(**PAUSE, start_window=_other_night(), allow_start_at=True)
    page.goto(link(site, "restart", created["token"]))
    with page.expect_navigation() as navigation:
        page.locator("form").first.locator("button[type=submit]").click()
    return navigation.value


def _cancel_scheduled(page, site, api, **_):
    created = api.created(**PAUSE, start_window=_other_night())
    api.decide("restart", created["token"], form={"comment": "Tonight is fine"})
    return page.goto(link(site, "cancel", created["token"]))


def _other_night():
    """A night window that is not open now (it opens on a day three days from today)."""
    from datetime import datetime, timezone

    from shared.windows import DAYS, zone

    today = datetime.now(timezone.utc).astimezone(zone("Europe/Amsterdam")).weekday()
    return {"time_zone": "Europe/Amsterdam", "days": [DAYS[(today + 3) % 7]], "from": "02:00", "to": "05:00"}


QUORUM = {**PAUSE, "approvers": ["alice@contoso.com", "bob@contoso.com", "carol@contoso.com"],
          "required_approvals": 2, "requested_by": "carol@contoso.com", "return_approver_links": True}


def _approval_recorded(page, site, api, **_):
    created = api.created(**QUORUM)
    page.goto(created["approver_links"][0]["restart_url"].replace("https://pauses.example.test", site.url))
    with page.expect_navigation() as navigation:
        page.locator("form").first.locator("button[type=submit]").click()
    return navigation.value


def _personal_link_needed(page, site, api, **_):
    return page.goto(link(site, "restart", api.created(**QUORUM)["token"]))


def _sign_in_first(page, site, api, configure, **_):
    configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED="True")
    return page.goto(link(site, "cancel", api.created(**QUORUM)["token"]))


PAGES = {
    "confirm_restart": (_confirm("restart"), 200),
    "confirm_restart_callback": (_confirm_callback, 200),
    "confirm_restart_long_text": (_confirm_long, 200),
    "confirm_cancel": (_confirm("cancel"), 200),
    "confirm_restart_gate_pending": (_gate_pending, 200),
    "confirm_restart_form": (_confirm_form, 200),
    "form_invalid_400": (_form_invalid, 400),
    "scheduled": (_scheduled, 200),
    "confirm_cancel_scheduled": (_cancel_scheduled, 200),
    "restarted": (_submitted("restart", "comment", "Numbers match the report"), 200),
    "cancelled": (_submitted("cancel", "reason", "Yesterday's numbers were wrong"), 200),
    "already_decided_409": (_already_decided, 409),
    "expired_410": (_expired, 410),
    "not_found_404": (_not_found, 404),
    "adf_failed_502": (_upstream_failed, 502),
    "approval_recorded": (_approval_recorded, 200),
    "personal_link_needed_403": (_personal_link_needed, 403),
    "sign_in_first_401": (_sign_in_first, 401),
}


@functools.cache
def axe_source():
    return AXE.read_text(encoding="utf-8")


def axe_violations(page):
    """Run axe-core in the page as served (CSP enforced: the source is evaluated, not injected as a tag)."""
    page.evaluate(axe_source())
    return page.evaluate("axe.run(document, {resultTypes: ['violations']})")["violations"]


def describe(violations):
    """axe's violations, one line each, with where they are and what to fix."""
    lines = []
    for violation in violations:
        lines.append(f"[{violation['impact']}] {violation['id']}: {violation['help']} ({violation['helpUrl']})")
        for node in violation["nodes"][:5]:
            lines.append(f"    at {', '.join(map(str, node['target']))}: {node.get('failureSummary', '').strip()}")
    return "\n".join(lines)


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
@pytest.mark.parametrize("name", list(PAGES))
def test_page_fits_the_screen_and_passes_axe(name, width, page_at, site, api, adf, table, configure, quality_check):
    reach, status = PAGES[name]
    page = page_at(width)
    response = reach(page, site=site, api=api, adf=adf, table=table, configure=configure, quality_check=quality_check)
    assert response.status == status
    shoot(page, f"{name}-{width}.png")
    # On a phone, content wider than the screen makes the browser zoom out (innerWidth grows with
    # it), and on a desktop the vertical scrollbar takes room: compare with the screen's own width.
    scroll_width, client_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth, window.innerWidth]")
    assert inner_width == width and scroll_width <= client_width, \
        f"horizontal scrolling at {width}px: content is {scroll_width}px wide"
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px", "the inline stylesheet was blocked"
    assert page.csp_errors == []
    violations = axe_violations(page)
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not serious, "axe found:\n" + describe(serious)


# --- without Chromium --------------------------------------------------------------------------

def test_missing_chromium_skips_with_a_banner_but_fails_when_ci_is_true(tmp_path):
    """Run one browser test in a child pytest whose Chromium path points nowhere, with and without CI=true."""
    test = "tests/test_browser.py::test_keyboard_alone_reaches_the_comment_and_approves"
    children = {}
    for ci in ("", "true"):  # side by side; no third-party plugins (schemathesis alone takes seconds to import)
        env = {**os.environ, "BROWSER_TESTS_CHROMIUM": str(tmp_path / "no-chromium-here"), "CI": ci,
               "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        children[ci] = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", test],
                                        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outputs = {}
    for ci, child in children.items():
        try:
            outputs[ci] = child.communicate(timeout=120)[0]
        finally:
            child.kill()  # no-op once it has exited
    assert children[""].returncode == 0, outputs[""]
    assert "1 skipped" in outputs[""] and "BROWSER TESTS SKIPPED: install chromium" in outputs[""]
    assert children["true"].returncode == 1, outputs["true"]
    assert "1 error" in outputs["true"] and "CI=true, so the browser tests must run" in outputs["true"]
    assert "BROWSER TESTS SKIPPED" not in outputs["true"]
