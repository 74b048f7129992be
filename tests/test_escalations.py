"""Escalation (shared/escalations.py): once, escalate_after seconds after a pause was made, if it still waits,
escalate_to's approvers join it with personal links of their own, and its addresses and channels are told with
links that work as the shared one; never for a decided pause, never twice."""

import threading
from datetime import timedelta

import pytest

from shared import sweep
from tests.support import approve, inbox, link, made_at

ALICE, BOB, CAROL = "alice@contoso.com", "bob@contoso.com", "carol@contoso.com"


def test_escalation_adds_approvers_with_their_own_links_once_and_keeps_the_quorum(api, adf, mail):
    created = api.created(approvers=[ALICE, BOB], required_approvals=2, notify={}, escalate_after=600,
                          escalate_to={"approvers": [CAROL]}, notification={"title": "Load November"})
    started = made_at(api, created)
    assert sweep.sweep(started + timedelta(seconds=599)) == {}
    assert approve(api, link(inbox(mail, ALICE)[0]))["status"] == "pending"
    assert sweep.sweep(started + timedelta(seconds=605)) == {"escalated": 1}
    [escalated] = inbox(mail, CAROL)
    assert escalated["subject"] == "Escalated: Load November" and "These links are yours (carol@contoso.com)" in \
        escalated["text"]
    record = api.record(created["pause_id"])
    assert record["approvers"] == [ALICE, BOB, CAROL] and record["required_approvals"] == 2
    assert record["escalated_at"] and record["escalate_to"] == {"approvers": [CAROL]}
    assert [(n["email"], n["purpose"], n["outcome"]) for n in record["notifications"] if n["purpose"] != "request"] \
        == [([CAROL], "escalation", "sent")]
    assert sweep.sweep(started + timedelta(seconds=3600)) == {}  # once
    assert approve(api, link(escalated))["status"] == "restarted"  # carol's approval is the second of two
    assert [a["approver"] for a in api.record(created["pause_id"])["approvals"]] == [ALICE, CAROL]


def test_addresses_and_channels_escalated_to_get_links_that_work_as_the_shared_one_and_a_follow_up(
        api, adf, mail, channels, chat):
    created = api.created(notify={"email": ["ops@contoso.com"]}, escalate_after=600,
                          escalate_to={"email": ["lead@contoso.com"], "channels": [channels["slack"]]},
                          notification={"title": "Load November"})
    started = made_at(api, created)
    assert sweep.sweep(started + timedelta(seconds=601)) == {"escalated": 1}
    [told] = inbox(mail, "lead@contoso.com")
    [post] = chat.posts("slack", channels["slack"])
    urls = [element["url"] for block in post["blocks"] if block["type"] == "actions" for element in block["elements"]]
    assert urls[0].endswith(link(told)) and link(told) != created["token"]
    assert "Escalated: Load November" in post["text"]
    assert approve(api, link(told))["status"] == "restarted"  # a link of the shared link's strength
    assert sweep.sweep(started + timedelta(seconds=700)) == {"notified": 1}  # the escalation channel hears the end
    assert "Approved" in chat.posts("slack", channels["slack"])[-1]["text"]
    notes = api.record(created["pause_id"])["notifications"]
    assert [(n.get("channel"), n.get("email"), n["purpose"], n["outcome"]) for n in notes] == [
        (None, ["ops@contoso.com"], "request", "sent"), (None, ["lead@contoso.com"], "escalation", "sent"),
        (channels["slack"], None, "escalation", "sent"), (channels["slack"], None, "decided", "sent")]


def test_a_decided_pause_is_never_escalated(api, adf, mail):
    created = api.created(approvers=[ALICE], notify={}, escalate_after=600, escalate_to={"approvers": [CAROL]})
    approve(api, link(inbox(mail, ALICE)[0]))
    assert sweep.sweep(made_at(api, created) + timedelta(seconds=601)) == {"already_settled": 1}
    assert inbox(mail, CAROL) == [] and api.record(created["pause_id"])["escalated_at"] is None


def test_two_timer_instances_on_one_escalation_escalate_once(api, mail):
    from shared import escalations
    from shared.storage.due_index import get_due_index

    created = api.created(approvers=[ALICE], notify={}, escalate_after=600, escalate_to={"approvers": [CAROL]})
    at = made_at(api, created) + timedelta(seconds=601)
    [row] = [due for due in get_due_index().due(at) if due.kind == escalations.KIND]
    start, outcomes = threading.Barrier(2), []

    def visit():
        start.wait()
        outcomes.append(escalations.settle(row, at))

    workers = [threading.Thread(target=visit) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert outcomes.count("escalated") == 1 and len(inbox(mail, CAROL)) == 1
    assert api.record(created["pause_id"])["approvers"] == [ALICE, CAROL]
    assert [d for d in get_due_index().due(at + timedelta(days=1)) if d.kind == escalations.KIND] == []


def test_an_escalated_approver_is_reminded_with_the_others(api, mail):
    created = api.created(approvers=[ALICE], notify={}, escalate_after=600, escalate_to={"approvers": [CAROL]},
                          remind_every=900, remind_max=1)
    started = made_at(api, created)
    assert sweep.sweep(started + timedelta(seconds=601)) == {"escalated": 1}
    assert sweep.sweep(started + timedelta(seconds=901)) == {"reminded": 1}
    assert len(inbox(mail, CAROL)) == 2 and len(inbox(mail, ALICE)) == 2


def test_an_approver_added_meanwhile_by_reassignment_keeps_their_link(api, mail):
    import json

    created = api.created(approvers=[ALICE, BOB], notify={}, escalate_after=600, escalate_to={"approvers": [CAROL]})
    alices = link(inbox(mail, ALICE)[0])
    response = api.call("reassign", "POST", f"reassign/{alices}", body=json.dumps({"to": CAROL}).encode(),
                        headers={"Content-Type": "application/json"}, route_params={"token": alices})
    assert response.status_code == 200
    assert sweep.sweep(made_at(api, created) + timedelta(seconds=601)) == {"escalated": 1}
    assert len(inbox(mail, CAROL)) == 1 and sorted(api.record(created["pause_id"])["approvers"]) == [BOB, CAROL]


@pytest.mark.parametrize("body, field, rule", [
    ({"escalate_after": 600}, "escalate_after", "needs_escalate_to"),
    ({"escalate_to": {"email": ["lead@contoso.com"]}}, "escalate_to", "needs_escalate_after"),
    ({"escalate_after": 600, "expires_in": 600, "escalate_to": {"email": ["lead@contoso.com"]}}, "escalate_after",
     "range"),
    ({"escalate_after": 59, "escalate_to": {"email": ["lead@contoso.com"]}}, "escalate_after", "range"),
    ({"escalate_after": 600, "escalate_to": {}}, "escalate_to", "required"),
    ({"escalate_after": 600, "escalate_to": {"approvers": [CAROL]}}, "escalate_to.approvers", "needs_approvers"),
    ({"escalate_after": 600, "approvers": [ALICE], "escalate_to": {"approvers": [ALICE.upper()]}},
     "escalate_to.approvers", "already_approver"),
    ({"escalate_after": 600, "approvers": [ALICE], "requested_by": CAROL, "escalate_to": {"approvers": [CAROL]}},
     "escalate_to.approvers", "requested_by"),
    ({"escalate_after": 600, "escalate_to": {"approvers": [f"a{i}@contoso.com" for i in range(11)]},
      "approvers": [ALICE]}, "escalate_to.approvers", "max_items"),
    ({"escalate_after": 600, "escalate_to": {"channels": ["ops", "ops"]}}, "escalate_to.channels", "unique"),
    ({"escalate_after": 600, "escalate_to": {"channels": ["Ops!"]}}, "escalate_to.channels[0]", "pattern"),
    ({"escalate_after": 600, "escalate_to": {"email": ["lead@contoso.com"], "teams": ["x"]}}, "escalate_to.teams",
     "unknown_field"),
])
def test_escalation_fields_are_checked(api, body, field, rule):
    response = api.pause(notify={"email": ["ops@contoso.com"]}, **body)
    problem = api.json(response)
    assert response.status_code == 400 and [(e["field"], e["rule"]) for e in problem["errors"]] == [(field, rule)]


def test_what_escalation_could_not_reach_is_refused_before_anything_is_stored(api, mail, configure, table):
    def refused(**body):
        response = api.pause(**body)
        assert response.status_code == 400, response.get_body()
        return [(e["field"], e["rule"]) for e in api.json(response)["errors"]]

    api.created(notify={"email": ["ops@contoso.com"]})  # the one pause stored

    assert refused(approvers=[ALICE], notify={}, escalate_after=600, escalate_to={"channels": ["nowhere"]}) == [
        ("escalate_to.channels", "approvers_need_sign_in")]  # without sign-in a channel's links cannot decide
    assert refused(notify={"email": ["ops@contoso.com"]}, escalate_after=600,
                   escalate_to={"channels": ["nowhere"]}) == [("escalate_to.channels", "channel")]
    configure(SMTP_HOST="")
    assert refused(escalate_after=600, escalate_to={"email": ["lead@contoso.com"]}) == [("escalate_to", "smtp_not_configured")]
    assert len(list(table.list_entities())) == 1


def test_an_escalation_whose_email_failed_is_recorded_and_its_approver_still_reminded(api, mail, monkeypatch):
    from shared.notify import email as mailer

    created = api.created(approvers=[ALICE], notify={}, escalate_after=600, escalate_to={"approvers": [CAROL]},
                          remind_every=900, remind_max=1)
    started = made_at(api, created)
    sending = mailer.send

    def refused(config, message):
        if CAROL in str(message["To"]):
            raise mailer.EmailFailed("the SMTP server refused the recipient")
        return sending(config, message)

    with monkeypatch.context() as patch:
        patch.setattr(mailer, "send", refused)
        assert sweep.sweep(started + timedelta(seconds=601)) == {"escalated": 1}
    [note] = [n for n in api.record(created["pause_id"])["notifications"] if n["purpose"] == "escalation"]
    assert note["email"] == [CAROL] and note["outcome"] == "failed" and "refused" in note["detail"]
    assert sweep.sweep(started + timedelta(seconds=901)) == {"reminded": 1}
    assert approve(api, link(inbox(mail, CAROL)[0]))["status"] == "restarted"  # the reminder's link is hers


def test_an_escalation_whose_claim_answer_was_lost_is_sent_once(api, mail, monkeypatch):
    """The SDK retried a claim that had landed and got 412: the pause read back says it was ours."""
    from shared.storage.pauses import PauseStore
    from shared.storage.tables import Conflict

    created = api.created(approvers=[ALICE], notify={}, escalate_after=600, escalate_to={"approvers": [CAROL]})
    updating = PauseStore.update

    def landed_then_412(self, pause_id, changes, etag):
        updating(self, pause_id, changes, etag)
        if "escalation_claim" in changes:
            raise Conflict("412 on the SDK's retry of a write that landed")

    with monkeypatch.context() as patch:
        patch.setattr(PauseStore, "update", landed_then_412)
        assert sweep.sweep(made_at(api, created) + timedelta(seconds=601)) == {"escalated": 1}
    assert len(inbox(mail, CAROL)) == 1 and sweep.sweep(made_at(api, created) + timedelta(seconds=700)) == {}
    assert [n["outcome"] for n in api.record(created["pause_id"])["notifications"]
            if n["purpose"] == "escalation"] == ["sent"]


def test_an_escalation_channel_decided_while_being_posted_is_owed_its_follow_up(api, adf, mail, channels, chat,
                                                                                monkeypatch):
    from shared import outreach
    from shared.storage.pauses import PauseStore

    created = api.created(notify={"email": ["ops@contoso.com"]}, escalate_after=600,
                          escalate_to={"channels": [channels["slack"]]})
    started = made_at(api, created)
    posting = outreach.post

    def post_then_decided(names, message, purpose, now, again=None):
        results = posting(names, message, purpose, now, again)
        approve(api, created["token"])  # approved just after the post, before the escalation's record
        return results

    with monkeypatch.context() as patch:
        patch.setattr(outreach, "post", post_then_decided)
        patch.setattr(PauseStore, "renote", lambda *_: None)  # and its record lost
        assert sweep.sweep(started + timedelta(seconds=601)) == {"escalated": 1}
    assert sweep.sweep(started + timedelta(seconds=700)) == {"notified": 1}
    assert "Approved" in chat.posts("slack", channels["slack"])[-1]["text"]
