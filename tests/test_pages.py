import base64
import hashlib
import re
from datetime import datetime, timezone

import pytest

from shared import pages

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>&"\''


def pause(**overrides):
    record = {
        "pause_id": "0" * 32, "status": "pending", "pipeline_name": HOSTILE, "factory_name": HOSTILE,
        "resource_group": HOSTILE, "created_at": "2026-11-25T10:00:00Z", "expires_at": "2026-11-26T10:00:00Z",
        "decided_at": "2026-11-25T11:00:00Z", "decided_by": HOSTILE, "run_id": HOSTILE, "comment": HOSTILE,
        "reason": HOSTILE, "notification": {"title": HOSTILE, "message": HOSTILE, "success_message": HOSTILE},
    }
    return {**record, **overrides}


class FakeError:
    def __init__(self, status):
        self.status, self.title, self.detail = status, "Title", HOSTILE


@pytest.mark.parametrize("template, context", [
    ("confirm_restart.html", {"pause": pause(), "token": "t"}),
    ("confirm_cancel.html", {"pause": pause(), "token": "t"}),
    ("restarted.html", {"pause": pause()}),
    ("cancelled.html", {"pause": pause()}),
    ("error.html", {"error": FakeError(409), "pause": pause()}),
    ("error.html", {"error": FakeError(410), "pause": pause()}),
    ("error.html", {"error": FakeError(404), "pause": None}),
])
def test_every_page_escapes_user_supplied_text(template, context):
    html = pages.render(template, **context)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html


def test_pages_load_nothing_external_and_run_no_script():
    html = pages.render("confirm_restart.html", pause=pause(), token="t")
    assert not re.search(r"<(script|link|iframe|img)\b", html)
    assert "http://" not in html and "https://" not in html


def test_csp_allows_exactly_the_inline_stylesheet():
    html = pages.render("restarted.html", pause=pause())
    css = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    csp = pages.security_headers(html=True)["Content-Security-Policy"]
    assert f"style-src 'sha256-{digest}'" in csp
    for directive in ("default-src 'none'", "form-action 'self'", "frame-ancestors 'none'"):
        assert directive in csp


def test_every_response_forbids_caching_sniffing_and_referrers():
    for html in (True, False):
        headers = pages.security_headers(html)
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("moment, words", [
    ("2026-11-25T13:00:00Z", "in 1 hour"),
    ("2026-11-27T12:00:00Z", "in 2 days"),
    ("2026-11-25T11:55:00Z", "5 minutes ago"),
    ("2026-11-25T12:00:30Z", "in less than a minute"),
])
def test_relative_time_in_words(moment, words):
    now = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
    assert pages.relative_time(moment, now) == words


def test_relative_time_says_ago_for_a_moment_just_passed():
    # Moments are stored to the second, so one just recorded is a fraction of a second in the past.
    now = datetime(2026, 11, 25, 12, 0, 0, 400000, tzinfo=timezone.utc)
    assert pages.relative_time("2026-11-25T12:00:00Z", now) == "less than a minute ago"


@pytest.mark.parametrize("moment, words", [
    ("2026-11-25T10:00:00Z", "Wed 25 Nov 2026, 10:00 UTC"),
    ("2027-01-03T23:59:59Z", "Sun 3 Jan 2027, 23:59 UTC"),
    (None, ""),
])
def test_utc_time_for_people(moment, words):
    assert pages.utc_time(moment) == words


@pytest.mark.parametrize("source, facts", [
    ({"pipeline": "Stage", "run_id": "r-1", "other": 1}, {"pipeline": "Stage", "run_id": "r-1"}),
    ({"pipelineName": "Stage", "runId": 42}, {"pipeline": "Stage", "run_id": "42"}),
    ({"pipeline": {"nested": 1}, "run_id": True}, {}),
    ({"pipeline": "  "}, {}),
    (None, {}),
    (["not", "an", "object"], {}),
])
def test_asked_by_picks_the_calling_pipeline_and_run_from_source(source, facts):
    assert pages.asked_by(source) == facts
