"""Reminders (shared/reminders.py): while a pause waits, whoever was asked and has not acted is reminded every
remind_every seconds, at most remind_max times, never once it is decided; approvers get fresh links of their own."""

from datetime import datetime, timedelta, timezone

import pytest

from local_dev.chat_standins import ChatStandins
from shared import sweep
from tests.support import approve, inbox, link, made_at

ALICE, BOB = "alice@contoso.com", "bob@contoso.com"


def now():
    return datetime.now(timezone.utc) + timedelta(seconds=1)


def test_approvers_who_have_not_approved_are_reminded_with_fresh_links_until_remind_max(api, adf, mail):
    created = api.created(approvers=[ALICE, BOB], required_approvals=2, notify={}, remind_every=300, remind_max=2)
    started = made_at(api, created)
    assert sweep.sweep(started + timedelta(seconds=299)) == {}  # not before the first interval
    assert sweep.sweep(started + timedelta(seconds=305)) == {"reminded": 1}
    first, reminded = inbox(mail, ALICE)
    assert reminded["subject"].startswith("Reminder: ") and link(reminded) != link(first)
    assert approve(api, link(reminded))["status"] == "pending"  # the fresh link is alice's own
    assert sweep.sweep(started + timedelta(seconds=610)) == {"reminded": 1}
    assert len(inbox(mail, ALICE)) == 2 and len(inbox(mail, BOB)) == 3  # alice approved: not reminded again
    assert sweep.sweep(started + timedelta(seconds=1000)) == {}  # remind_max reached
    assert approve(api, link(inbox(mail, BOB)[0]))["status"] == "restarted"  # the first links still work
    notes = api.record(created["pause_id"])["notifications"]
    assert [(n["email"], n["outcome"]) for n in notes if n["purpose"] == "reminder"] == [
        ([ALICE], "sent"), ([BOB], "sent"), ([BOB], "sent")]


def test_listed_addresses_of_a_pause_without_approvers_are_reminded_with_fresh_links_that_decide(api, adf, mail):
    created = api.created(notify={"email": ["ops@contoso.com", "dba@contoso.com"]}, remind_every=300, remind_max=1)
    assert sweep.sweep(made_at(api, created) + timedelta(seconds=301)) == {"reminded": 1}
    request, reminded = [m for m in mail.messages if m["to"] == ["ops@contoso.com", "dba@contoso.com"]]
    assert link(request) == created["token"] and link(reminded) != created["token"]
    assert approve(api, link(reminded))["status"] == "restarted"  # as the shared link would
    assert api.decide("restart", created["token"], json_body={}).status_code == 409  # decided once, whichever link


def test_a_decided_pause_is_never_reminded(api, adf, mail):
    created = api.created(approvers=[ALICE], notify={}, remind_every=300)
    approve(api, link(inbox(mail, ALICE)[0]))
    assert sweep.sweep(now() + timedelta(seconds=301)) == {"already_settled": 1}
    assert len(inbox(mail, ALICE)) == 1 and created


def test_each_channel_that_got_the_request_is_reminded_without_links(api, configure):
    with ChatStandins() as chat:
        configure(CHANNEL_ALLOWED_HOSTS="127.0.0.1", CHANNEL_OPS=f"teams:{chat.url('teams', 'ops')}")
        created = api.created(notify={"channels": ["ops"]}, remind_every=300, remind_max=1,
                              notification={"title": "Load November"})
        assert sweep.sweep(now() + timedelta(seconds=301)) == {"reminded": 1}
        request, card = chat.posts("teams", "ops")
        assert sweep.sweep(now() + timedelta(seconds=700)) == {}
    content = card["attachments"][0]["content"]
    assert "Reminder: Load November" in str(content) and "actions" not in content
    assert created["restart_url"] not in str(card)
    assert [n["outcome"] for n in api.record(created["pause_id"])["notifications"] if n["purpose"] == "reminder"] == [
        "sent"]


@pytest.mark.parametrize("body, field, rule", [
    ({"remind_max": 2, "notify": {"email": ["ops@contoso.com"]}}, "remind_max", "needs_remind_every"),
    ({"remind_every": 300}, "remind_every", "needs_notify"),
    ({"remind_every": 299, "notify": {"email": ["ops@contoso.com"]}}, "remind_every", "range"),
    ({"remind_every": 300, "remind_max": 21, "notify": {"email": ["ops@contoso.com"]}}, "remind_max", "range"),
])
def test_reminder_fields_are_checked(api, body, field, rule):
    response = api.pause(**body)
    problem = api.json(response)
    assert response.status_code == 400 and [(e["field"], e["rule"]) for e in problem["errors"]] == [(field, rule)]


def test_an_approver_who_took_over_by_reassignment_is_reminded_and_the_one_who_handed_on_is_not(api, mail):
    import json

    created = api.created(approvers=[ALICE, BOB], required_approvals=2, notify={}, remind_every=300)
    started = made_at(api, created)
    alices = link(inbox(mail, ALICE)[0])
    response = api.call("reassign", "POST", f"reassign/{alices}", body=json.dumps({"to": "carol@contoso.com"}).encode(),
                        headers={"Content-Type": "application/json"}, route_params={"token": alices})
    assert response.status_code == 200
    assert sweep.sweep(started + timedelta(seconds=305)) == {"reminded": 1}
    assert len(inbox(mail, "carol@contoso.com")) == 2 and len(inbox(mail, ALICE)) == 1 and len(inbox(mail, BOB)) == 2
    assert approve(api, link(inbox(mail, "carol@contoso.com")[-1]))["status"] == "pending" and created


def test_two_timer_instances_on_one_reminder_send_it_once_and_keep_one_row(api, mail):
    import threading

    from shared import reminders
    from shared.storage.due_index import get_due_index

    created = api.created(approvers=[ALICE], notify={}, remind_every=300, remind_max=3)
    at = made_at(api, created) + timedelta(seconds=301)
    [row] = [due for due in get_due_index().due(at) if due.kind == reminders.KIND]
    start, outcomes = threading.Barrier(2), []

    def visit():
        start.wait()
        outcomes.append(reminders.settle(row, at))

    workers = [threading.Thread(target=visit) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert "reminded" in outcomes and len(inbox(mail, ALICE)) == 2  # the request and one reminder
    assert len([d for d in get_due_index().due(at + timedelta(days=1)) if d.kind == reminders.KIND]) == 1


def test_a_reminder_whose_record_failed_is_not_sent_again_before_its_next_interval(api, mail, monkeypatch):
    from shared.errors import Unavailable
    from shared.storage.pauses import PauseStore

    created = api.created(approvers=[ALICE], notify={}, remind_every=3600, remind_max=3)
    at = made_at(api, created)

    def unavailable(*_, **__):
        raise Unavailable("storage down")

    monkeypatch.setattr(PauseStore, "note", unavailable)
    assert sweep.sweep(at + timedelta(seconds=3601)) == {"reminded": 1}
    monkeypatch.undo()
    assert sweep.sweep(at + timedelta(seconds=3661)) == {}  # not a minute later
    assert len(inbox(mail, ALICE)) == 2 and sweep.sweep(at + timedelta(seconds=7202)) == {"reminded": 1}


def test_an_expired_pause_is_not_reminded(api, mail):
    created = api.created(approvers=[ALICE], notify={}, remind_every=300, expires_in=600)
    assert sweep.sweep(made_at(api, created) + timedelta(seconds=601)) == {"already_settled": 1, "expired": 1}
    assert len(inbox(mail, ALICE)) == 1
