"""Telling people about a new pause (shared/notices.py), through the pause function against the strict
Teams Workflows and Slack stand-ins: who is told what, and a pause nobody could be told about is cancelled."""

import pytest


SIGNED_IN = {"APPROVER_SIGN_IN": "easyauth", "WEBSITE_AUTH_ENABLED": "True"}


def test_a_pause_posts_its_shared_links_to_each_channel_and_records_the_posts(api, chat, channels):
    created = api.created(notify={"channels": [channels["teams"], channels["slack"]]},
                          notification={"title": "Publish <!channel> [Q4](https://evil.example)"})
    [card] = chat.posts("teams", channels["teams"])
    [blocks] = chat.posts("slack", channels["slack"])
    for body in (card, blocks):
        assert created["restart_url"] in str(body) and created["cancel_url"] in str(body)
    assert "Publish <!channel> [Q4](https://evil.example)" in str(card)  # a TextRun: text, not markdown
    assert blocks["blocks"][0]["text"]["text"] == "Publish &lt;!channel&gt; [Q4](https://evil.example)"
    record = api.record(created["pause_id"])
    assert record["status"] == "pending"
    assert [(n["channel"], n["purpose"], n["outcome"]) for n in record["notifications"]] == [
        (channels["teams"], "request", "sent"), (channels["slack"], "request", "sent")]


@pytest.mark.parametrize("setting, says", [
    (None, "is not set up: app setting CHANNEL_NOWHERE is not set"),
    ("teams:https://evil.example/hook", "host evil.example is not in CHANNEL_ALLOWED_HOSTS"),
])
def test_a_channel_that_is_not_set_up_is_a_400_naming_notify_channels(api, chat, configure, setting, says):
    configure(CHANNEL_NOWHERE=setting)
    response = api.pause(notify={"channels": ["nowhere"]})
    problem = api.json(response)
    assert response.status_code == 400 and problem["errors"][0]["field"] == "notify.channels"
    assert says in problem["detail"]


def test_named_approvers_without_sign_in_cannot_be_asked_in_a_channel(api, chat, channels, configure):
    body = {"notify": {"channels": [channels["teams"]]}, "approvers": ["alice@contoso.com"]}
    response = api.pause(**body)
    assert response.status_code == 400 and api.json(response)["errors"][0]["rule"] == "approvers_need_sign_in"
    assert chat.posts("teams", channels["teams"]) == []
    configure(**SIGNED_IN)  # signed in, they can use the shared links the channel carries
    created = api.created(**body, required_approvals=1)
    [card] = chat.posts("teams", channels["teams"])
    assert created["restart_url"] in str(card) and "alice@contoso.com" in str(card)
    assert "0 of 1 approvals so far" in str(card)


def test_a_channel_that_refuses_cancels_the_pause_and_the_answer_is_a_502_naming_it(api, chat, channels):
    chat.answer("slack", channels["slack"], "channel_is_archived")
    response = api.pause(notify={"channels": [channels["teams"], channels["slack"]]})
    problem = api.json(response)
    assert response.status_code == 502 and problem["code"] == "channel_failed"
    assert f"Channel {channels['slack']} did not take the request" in problem["detail"]
    assert "channel_is_archived" in problem["detail"] and "cancelled" in problem["detail"]
    [cancelled] = api.json(api.list(status="cancelled"))["items"]
    assert cancelled["reason"] == f"The request could not be posted to channel {channels['slack']}."
    assert [(n["channel"], n["outcome"]) for n in cancelled["notifications"]] == [
        (channels["teams"], "sent"), (channels["slack"], "failed")]


def test_a_post_whose_answer_was_lost_is_unknown_recorded_and_not_posted_again(api, chat, channels):
    chat.lose("teams", channels["teams"])
    response = api.pause(notify={"channels": [channels["teams"]]})
    assert response.status_code == 502 and api.json(response)["code"] == "channel_failed"
    assert len(chat.posts("teams", channels["teams"])) == 1
    [cancelled] = api.json(api.list(status="cancelled"))["items"]
    assert [(n["channel"], n["outcome"]) for n in cancelled["notifications"]] == [(channels["teams"], "unknown")]


def test_emails_are_recorded_with_the_posts_in_one_list(api, chat, channels, mail):
    created = api.created(notify={"email": ["ops@contoso.com"], "channels": [channels["slack"]]})
    assert [m["to"] for m in mail.messages] == [["ops@contoso.com"]]
    notes = api.record(created["pause_id"])["notifications"]
    assert [(n.get("email"), n.get("channel"), n["purpose"], n["outcome"]) for n in notes] == [
        (["ops@contoso.com"], None, "request", "sent"), (None, channels["slack"], "request", "sent")]


def test_an_email_that_could_not_be_sent_is_recorded_on_the_cancelled_pause(api, chat, channels, configure,
                                                                            refused_port):
    configure(SMTP_HOST="127.0.0.1", SMTP_PORT=str(refused_port), SMTP_FROM="pauses@example.test",
              SMTP_STARTTLS="false")
    response = api.pause(notify={"email": ["ops@contoso.com"], "channels": [channels["teams"]]})
    assert response.status_code == 502 and api.json(response)["code"] == "email_failed"
    assert chat.posts("teams", channels["teams"]) == []  # nobody is told of a pause that does not exist
    [cancelled] = api.json(api.list(status="cancelled"))["items"]
    [note] = cancelled["notifications"]
    assert (note["email"], note["outcome"]) == (["ops@contoso.com"], "failed") and "connect" in note["detail"]


def test_storage_failing_to_record_the_posts_does_not_fail_a_pause_that_was_told(api, chat, channels, monkeypatch):
    from shared.errors import Unavailable
    from shared.storage.pauses import PauseStore

    def unavailable(*_, **__):
        raise Unavailable("storage down")

    monkeypatch.setattr(PauseStore, "note", unavailable)
    created = api.created(notify={"channels": [channels["slack"]]})
    assert api.record(created["pause_id"])["status"] == "pending" and len(chat.posts("slack", channels["slack"])) == 1


def test_a_pause_that_cannot_be_cancelled_after_a_refusal_says_its_links_stay_live(api, chat, channels, monkeypatch):
    from shared import notices
    from shared.errors import Unavailable

    def unavailable(*_, **__):
        raise Unavailable("storage down")

    monkeypatch.setattr(notices, "decide", unavailable)
    chat.answer("slack", channels["slack"], "channel_not_found")
    response = api.pause(notify={"channels": [channels["teams"], channels["slack"]]})
    problem = api.json(response)
    assert response.status_code == 502 and problem["code"] == "channel_failed"
    assert "could not be cancelled just now" in problem["detail"] and "stay live" in problem["detail"]


def test_a_pause_decided_while_it_is_being_posted_keeps_its_records_and_gets_its_follow_up(
        api, adf, chat, channels, monkeypatch):
    """An approval (and a timer run, which finds no follow-up owed yet) lands between two posts; the
    second channel refuses: the caller is told not to pause again, and the first channel hears the end."""
    from datetime import datetime, timedelta, timezone

    from shared import notices, sweep
    from shared.notify import channels as chat_channels

    post, posted = chat_channels.post, []

    def post_then_approve(target, message, settings):
        post(target, message, settings)
        if not posted:
            posted.append(target.name)
            token = message.buttons[0].url.rsplit("/", 1)[1]
            assert api.json(api.decide("restart", token, json_body={}))["status"] == "restarted"
            sweep.sweep(datetime.now(timezone.utc) + timedelta(seconds=1))

    monkeypatch.setattr(notices.chat, "post", post_then_approve)
    chat.answer("slack", channels["slack"], "channel_is_archived")
    response = api.pause(notify={"channels": [channels["teams"], channels["slack"]]})
    problem = api.json(response)
    assert response.status_code == 502 and "decided (restarted), so do not pause again" in problem["detail"]
    [record] = api.json(api.list(status="restarted"))["items"]
    assert [(n["channel"], n["outcome"]) for n in record["notifications"]] == [
        (channels["teams"], "sent"), (channels["slack"], "failed")]
    assert sweep.sweep(datetime.now(timezone.utc) + timedelta(seconds=2)) == {"notified": 1}
    assert "Approved" in str(chat.posts("teams", channels["teams"])[-1]) and len(adf.runs) == 1


def test_posts_go_out_together_and_each_is_recorded_also_next_to_one_that_failed(api, chat, channels):
    from datetime import datetime, timedelta, timezone

    from shared import sweep

    chat.answer("slack", channels["slack"], "channel_not_found")
    response = api.pause(notify={"channels": [channels["slack"], channels["teams"]]})  # the refusing one first
    assert response.status_code == 502 and channels["slack"] in api.json(response)["detail"]
    [cancelled] = api.json(api.list(status="cancelled"))["items"]
    assert [(n["channel"], n["outcome"]) for n in cancelled["notifications"]] == [
        (channels["slack"], "failed"), (channels["teams"], "sent")]
    assert sweep.sweep(datetime.now(timezone.utc) + timedelta(seconds=1)) == {"notified": 1}
    assert "Cancelled by the app" in str(chat.posts("teams", channels["teams"])[-1])  # its links are dead now
