"""Telling people about a pause that already waits (shared/outreach.py): each message sent once, its outcome
recorded whatever happens (never raised), with links under the base URL the pause was made with."""

from datetime import datetime, timedelta, timezone

from shared import outreach
from shared.jsonbody import canonical
from shared.storage.tables import pack_json

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=timezone.utc)
TOKEN = "a" * 32 + "b" * 86


def entity(**fields) -> dict:
    return {"PartitionKey": "a" * 32, "pipeline_name": "Load_Sales", "factory_name": "adf-prod",
            "expires_at": NOW + timedelta(days=1), "link_base": "https://pauses.contoso.com",
            **pack_json("notification", canonical({"title": "Load  November"})), **fields}


def test_links_go_out_under_the_base_url_the_pause_was_made_with(configure):
    configure(PUBLIC_BASE_URL="https://elsewhere.example")
    assert outreach.links_of(entity(), TOKEN)["restart_url"] == f"https://pauses.contoso.com/api/restart/{TOKEN}"
    assert outreach.title_of(entity()) == "Load November"
    assert outreach.title_of({"pipeline_name": "Load_Sales"}) == "Approval needed: Load_Sales"


def test_an_approver_gets_their_own_links_and_listed_addresses_one_message(mail):
    entries = outreach.email_approvers(entity(**pack_json("approvers", canonical(["alice@contoso.com"]))),
                                       {"alice@contoso.com": TOKEN}, "reminder", "Reminder: Load November", NOW)
    entries += outreach.email_shared(entity(), ["ops@contoso.com", "dba@contoso.com"], TOKEN, "reminder", "R", NOW)
    assert entries == [
        {"email": ["alice@contoso.com"], "purpose": "reminder", "at": "2026-12-06T10:00:00Z", "outcome": "sent"},
        {"email": ["ops@contoso.com", "dba@contoso.com"], "purpose": "reminder", "at": "2026-12-06T10:00:00Z",
         "outcome": "sent"}]
    alices, shared = mail.messages
    assert "These links are yours (alice@contoso.com)" in alices["text"] and TOKEN in alices["text"]
    assert shared["to"] == ["ops@contoso.com", "dba@contoso.com"] and "These links are yours" not in shared["text"]
    assert outreach.email_shared(entity(), [], TOKEN, "reminder", "R", NOW) == []


def test_an_email_that_cannot_be_sent_is_recorded_failed_not_raised(configure):
    configure(SMTP_HOST="")
    [entry] = outreach.email_approvers(entity(), {"alice@contoso.com": TOKEN}, "escalation", "E", NOW)
    assert entry["outcome"] == "failed" and "SMTP_HOST" in entry["detail"]


def test_each_channel_is_posted_once_and_a_lost_answer_is_unknown(chat, channels):
    chat.lose("slack", channels["slack"])
    message = outreach.request_message(entity(**pack_json("approvers", canonical(["alice@contoso.com"])),
                                              required_approvals=2,
                                              **pack_json("approvals", canonical([{"approver": "a"}]))),
                                       TOKEN, "Escalated: Load November")
    assert message.progress == "1 of 2 approvals so far" and message.buttons[0].url.endswith(TOKEN)
    entries = outreach.post([channels["teams"], channels["slack"], "not-set-up"], message, "escalation", NOW)
    assert [(e["channel"], e["outcome"]) for e in entries] == [
        (channels["teams"], "sent"), (channels["slack"], "unknown"), ("not-set-up", "failed")]
    assert len(chat.posts("slack", channels["slack"])) == 1  # taken once, never again
    assert "CHANNEL_NOT_SET_UP" in entries[2]["detail"]


def test_a_refused_post_is_owed_again_after_its_retry_after_a_bounded_number_of_times(app_env):
    from shared.storage.due_index import get_due_index

    pause = "c" * 32
    assert outreach.owe_again(pause, "reminder", 2, [("ops", 30.0)], 1, NOW)  # throttled: after Retry-After
    assert outreach.owe_again(pause, "reminder", 2, [("ops", None), ("dev", 30.0)], 2, NOW)  # a refusal: a minute
    assert not outreach.owe_again(pause, "reminder", 2, [("ops", None)], 3, NOW)  # refused 3 times in all
    assert outreach.owe_again(pause, "reminder", 2, [("ops", 5.0)], 9, NOW)  # throttled: up to 10
    assert not outreach.owe_again(pause, "reminder", 2, [("ops", 5.0)], 10, NOW)
    assert not outreach.owe_again(pause, "reminder", 2, [], 1, NOW)
    index = get_due_index()
    due = sorted((index.due_at(row), row.kind) for row in index.due(NOW + timedelta(hours=1)))
    assert due == [(NOW + timedelta(seconds=5), "repost"), (NOW + timedelta(seconds=30), "repost"),
                   (NOW + timedelta(seconds=60), "repost")]
