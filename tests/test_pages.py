import base64
import hashlib
import re
from datetime import datetime, timezone

import pytest

from shared.lifecycle.model import CLAIMED, FINAL, Status
from shared.web import pages

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
    ("error.html", {"error": FakeError(502), "pause": None}),
    ("confirm_restart.html", {"pause": pause(required_approvals=2, approvers=[HOSTILE], requested_by=HOSTILE,
                                             approvals=[{"approver": HOSTILE, "at": "2026-11-25T10:30:00Z"}],
                                             deciding_as=HOSTILE), "token": "t"}),
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


def test_every_response_forbids_caching_sniffing_and_referrers_to_other_sites():
    for html, referrer in ((True, "same-origin"), (False, "no-referrer")):
        headers = pages.security_headers(html)
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == referrer


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


class Problem:
    def __init__(self, status, code=None, detail="Detail."):
        self.status, self.code, self.title, self.detail = status, code, "Title", detail


def h1(html):
    return re.sub(r"<[^>]+>", "", re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S).group(1)).replace("✓ ", "").strip()


def plain(**overrides):
    return pause(**{"pipeline_name": "Load_Sales", "factory_name": "adf", "resource_group": "rg", "decided_by": None,
                    "run_id": "run-1", "comment": None, "reason": None, "notification": {"title": "Load sales?"},
                    **overrides})


@pytest.mark.parametrize("status, heading", [
    ("restarted", "Already approved — nothing more to do"),
    ("restarting", "Being approved right now — nothing more to do"),
    ("cancelled", "Already cancelled — nothing more to do"),
    ("expired", "This link has expired"),
    ("failed", "This request failed — nothing more to do here"),
    ("cancelling", "Being cancelled right now — nothing more to do"),
    ("expiring", "Expiring right now — nothing more to do"),
], ids=["restarted", "restarting", "cancelled", "expired", "failed", "cancelling", "expiring"])
def test_already_decided_page_says_what_happened(status, heading):
    html = pages.render("error.html", error=Problem(409), pause=plain(status=status))
    assert h1(html) == heading
    assert "Already decided" in html and "Wed 25 Nov 2026, 11:00 UTC" in html
    assert "someone with the link" in html  # decided_by unknown


def test_already_approved_reads_as_good_news():
    html = pages.render("error.html", error=Problem(409), pause=plain(status="restarted"))
    assert 'class="status ok"' in html and "run-1" in html and "changes nothing" in html


def test_callback_pause_names_the_waiting_run_not_a_pipeline():
    html = pages.render("confirm_restart.html", pause=plain(mode="callback", pipeline_name=None, factory_name=None),
                        token="t")
    assert "the waiting pipeline run" in html and "Approve — let the waiting run continue" in html
    assert "Data factory" not in html


def test_approve_page_shows_who_asked_and_links_to_cancel():
    html = pages.render("confirm_restart.html", pause=plain(source={"pipeline": "Stage", "run_id": "abc"}), token="t0k")
    assert "Stage" in html and "abc" in html and "Approve and start Load_Sales" in html
    assert 'href="../cancel/t0k"' in html and 'for="comment"' in html


def test_cancel_heading_keeps_a_single_question_mark():
    html = pages.render("confirm_cancel.html", pause=plain(), token="t")
    assert h1(html) == "Cancel: Load sales?"


@pytest.mark.parametrize("problem, retry", [
    (Problem(502, "upstream_failed"), "Go back and try again"),
    (Problem(503, "storage_unavailable"), "Go back and try again"),
    (Problem(400, "invalid_request"), "Back to the form"),
    (Problem(502, "email_failed"), None),
    (Problem(502, "outcome_unknown"), None),  # retrying by hand is exactly what must not happen
    (Problem(404, "not_found"), None),
], ids=["502", "503", "400", "502-email", "502-unknown", "404"])
def test_failure_pages_offer_a_retry_only_where_it_can_help(problem, retry):
    html = pages.render("error.html", error=problem, pause=None)
    if retry:
        assert f'<a class="button" href="">{retry}</a>' in html
    else:
        assert 'class="button"' not in html


def test_expired_page_says_when_a_pause_goes_on_by_itself():
    html = pages.render("error.html", error=Problem(410), pause=plain(on_timeout="restart"))
    assert h1(html) == "This link has expired" and "go on by itself" in html


def test_a_missing_moment_reads_as_not_recorded():
    html = pages.render("restarted.html", pause=plain(status="restarted", decided_at=None))
    assert "not recorded" in html and "()" not in html


def test_outcome_unknown_says_not_to_retry_rather_than_nothing_was_started():
    html = pages.render("error.html", error=Problem(502, "outcome_unknown"), pause=None)
    assert h1(html) == "Not known yet whether it started — please do not retry"
    assert "Nothing was started" not in html


@pytest.mark.parametrize("template", ["restarted.html", "cancelled.html"])
def test_an_unconfirmed_callback_is_said_to_be_recorded_and_resent(template):
    html = pages.render(template, pause=plain(mode="callback", pipeline_name=None, callback_confirmed=False))
    assert "has not confirmed yet" in html and "again until" in html
    confirmed = pages.render(template, pause=plain(mode="callback", pipeline_name=None, callback_confirmed=True))
    assert "has not confirmed yet" not in confirmed


def test_the_invalid_link_page_says_it_once():
    html = pages.render("error.html", error=Problem(404, detail="This link is not valid."), pause=None)
    assert html.split("<main")[1].count("not valid") == 1  # the heading, not the heading and the detail


def test_an_expired_link_reads_the_same_before_and_after_the_timer():
    before = pages.render("error.html", error=Problem(410), pause=plain())
    after = pages.render("error.html", error=Problem(410), pause=plain(status="expired"))
    assert h1(before) == h1(after) == "This link has expired"
    assert "Already decided" not in after and "Wed 25 Nov 2026" not in after.split("Expired")[0][-40:]


def test_progress_and_approvers_are_shown_on_the_confirmation_page():
    html = pages.render("confirm_restart.html", token="t", pause=plain(
        required_approvals=2, approvers=["alice@contoso.com", "bob@contoso.com", "carol@contoso.com"],
        requested_by="carol@contoso.com", approvals=[{"approver": "alice@contoso.com", "at": "2026-11-25T10:30:00Z"}],
        deciding_as="bob@contoso.com"))
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "1 of 2 approved" in text and "alice@contoso.com at Wed 25 Nov 2026, 10:30 UTC" in text
    assert "carol@contoso.com (asked for this; cannot approve)" in text and "You decide as bob@contoso.com" in text


@pytest.mark.parametrize("reason, heading", [("personal_link", "Use your personal link"),
                                             ("someone_else", "This link is for someone else"),
                                             ("requester", "You asked for this — someone else must approve"),
                                             ("not_an_approver", "You are not one of the approvers")])
def test_refusals_say_which_rule_refused(reason, heading):
    error = Problem(403, "not_yours", detail="Why.")
    error.extra = {"reason": reason}
    assert h1(pages.render("error.html", error=error, pause=plain())) == heading


def test_sign_in_first_offers_the_sign_in_and_comes_back():
    html = pages.render("error.html", error=Problem(401, "sign_in_required"), pause=plain(),
                        sign_in_url="/.auth/login/aad?post_login_redirect_uri=%2Fapi%2Frestart%2Ft")
    assert h1(html) == "Sign in first"
    assert 'href="/.auth/login/aad?post_login_redirect_uri=%2Fapi%2Frestart%2Ft"' in html


def _heading(html: str) -> str:
    return re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S).group(1)


# Every decided or claimed status a link can meet (checkpoints have no links) has words of its own
# on the page, looked up by the model's statuses: a status added to the model without them shows.
LINK_STATUSES = sorted((FINAL | CLAIMED) - {Status.RELEASED, Status.RELEASING})


@pytest.mark.parametrize("status", LINK_STATUSES)
def test_every_status_a_link_can_meet_has_its_own_heading_and_decision_words(status):
    html = pages.render("error.html", error=FakeError(409), pause=pause(status=status.value))
    assert "Already decided — nothing more to do" not in _heading(html)
    decision = re.search(r"<dt>Decision</dt><dd>(.*?)</dd>", html, re.S)
    assert decision is None or decision.group(1) != status.value  # a word for people, not the raw status
