"""Reminders and escalations a channel refused or throttled, posted again by the timer (shared/reposts.py):
after the Retry-After, a bounded number of times, never once the pause is decided, never a lost answer."""

import re
from datetime import timedelta

from shared import sweep
from tests.support import made_at


def notes(api, created, purpose) -> list:
    return [(n["channel"], n["outcome"]) for n in api.record(created["pause_id"])["notifications"]
            if n["purpose"] == purpose and n.get("channel")]


def test_a_throttled_reminder_is_posted_again_after_its_retry_after(api, chat, channels):
    name = channels["slack"]
    created = api.created(notify={"channels": [name]}, remind_every=300, remind_max=1)
    started = made_at(api, created)
    chat.answer("slack", name, status=429, retry_after=30)  # longer than a post waits (5 s)
    assert sweep.sweep(started + timedelta(seconds=301)) == {"reminded": 1}
    assert sweep.sweep(started + timedelta(seconds=320)) == {}  # not before its Retry-After
    assert sweep.sweep(started + timedelta(seconds=332)) == {"notified": 1}
    request, reminder = chat.posts("slack", name)
    assert "Reminder:" in reminder["text"] and notes(api, created, "reminder") == [(name, "failed"), (name, "sent")]
    assert sweep.sweep(started + timedelta(seconds=1000)) == {}


def test_a_refused_reminder_is_tried_three_times_in_all(api, chat, channels):
    name = channels["slack"]
    created = api.created(notify={"channels": [name]}, remind_every=300, remind_max=1)
    started = made_at(api, created)
    chat.answer("slack", name, "invalid_blocks", times=5)
    assert sweep.sweep(started + timedelta(seconds=301)) == {"reminded": 1}
    assert sweep.sweep(started + timedelta(seconds=362)) == {"notified": 1}
    assert sweep.sweep(started + timedelta(seconds=423)) == {"notified": 1}
    assert sweep.sweep(started + timedelta(seconds=3600)) == {}
    assert notes(api, created, "reminder") == [(name, "failed")] * 3 and len(chat.posts("slack", name)) == 1


def test_a_lost_answer_is_never_posted_again_nor_a_reminder_after_the_decision(api, adf, chat, channels):
    teams, slack = channels["teams"], channels["slack"]
    created = api.created(notify={"channels": [teams, slack]}, remind_every=300, remind_max=1)
    started = made_at(api, created)
    chat.lose("teams", teams)
    chat.answer("slack", slack, status=429, retry_after=60)
    assert sweep.sweep(started + timedelta(seconds=301)) == {"reminded": 1}
    assert api.json(api.decide("restart", created["token"], json_body={}))["status"] == "restarted"
    outcomes = sweep.sweep(started + timedelta(seconds=400))
    assert outcomes.get("already_settled") == 1  # the repost: the pause is decided (the follow-ups go out)
    assert ["Reminder" in str(post) for post in chat.posts("teams", teams)] == [False, True, False]  # once
    assert not any("Reminder" in post["text"] for post in chat.posts("slack", slack))
    assert sorted(notes(api, created, "reminder")) == sorted([(teams, "unknown"), (slack, "failed")])


def test_a_refused_escalation_post_goes_again_with_fresh_links_that_decide(api, adf, mail, chat, channels):
    name = channels["slack"]
    created = api.created(notify={"email": ["ops@contoso.com"]}, escalate_after=600,
                          escalate_to={"channels": [name]})
    started = made_at(api, created)
    chat.answer("slack", name, status=404, error="channel_not_found")
    assert sweep.sweep(started + timedelta(seconds=601)) == {"escalated": 1}
    assert sweep.sweep(started + timedelta(seconds=662)) == {"notified": 1}
    [post] = chat.posts("slack", name)[-1:]
    url = next(e["url"] for b in post["blocks"] if b["type"] == "actions" for e in b["elements"])
    token = re.search(r"/api/restart/(\S+)", url).group(1)
    assert token != created["token"] and api.json(api.decide("restart", token, json_body={}))["status"] == "restarted"
    assert notes(api, created, "escalation") == [(name, "failed"), (name, "sent")]


def test_a_try_cut_off_after_its_claim_is_recorded_unknown_and_not_made_again(api, chat, channels, monkeypatch):
    from shared import outreach

    name = channels["slack"]
    created = api.created(notify={"channels": [name]}, remind_every=300, remind_max=1)
    started = made_at(api, created)
    chat.answer("slack", name, status=429, retry_after=30)
    assert sweep.sweep(started + timedelta(seconds=301)) == {"reminded": 1}

    def crash(*_, **__):
        raise RuntimeError("the instance stopped mid-post")

    with monkeypatch.context() as patch:
        patch.setattr(outreach, "post", crash)
        assert sweep.sweep(started + timedelta(seconds=332)) == {"retry": 1}
    assert sweep.sweep(started + timedelta(seconds=400)) == {"already_settled": 1}
    assert notes(api, created, "reminder") == [(name, "failed"), (name, "unknown")]
    assert len(chat.posts("slack", name)) == 1  # only the request
