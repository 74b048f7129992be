"""Handing a named approver's part on (shared/reassign.py, POST /api/reassign/{token}): the old personal link
is retired at once (409 naming the new approver), the new one is emailed their own, exactly once, recorded."""

import re
import threading

import pytest


ALICE, BOB, CAROL, DAVE = "alice@contoso.com", "bob@contoso.com", "carol@contoso.com", "dave@contoso.com"


@pytest.fixture
def pause(api, mail):
    """alice and bob must both approve; dave asked. Returns the record and each approver's token."""
    created = api.created(approvers=[ALICE, BOB], required_approvals=2, requested_by=DAVE, notify={})
    return created, {who: token_of(mail, who) for who in (ALICE, BOB)}


def token_of(mail, who, index=-1) -> str:
    text = [m for m in mail.messages if m["to"] == [who]][index]["text"]
    return re.search(r"/api/restart/(\S+)", text).group(1)


def reassign(api, token, **body):
    import json

    return api.call("reassign", "POST", f"reassign/{token}", body=json.dumps(body).encode(),
                    headers={"Content-Type": "application/json"}, route_params={"token": token})


def test_an_approver_hands_their_part_on_and_the_new_one_decides_with_a_link_of_their_own(api, adf, mail, pause):
    created, tokens = pause
    response = reassign(api, tokens[ALICE], to="Carol@Contoso.com", comment="on leave")
    answer = api.json(response)
    assert response.status_code == 200 and answer["approvers"] == [CAROL, BOB]
    assert [(r["from"], r["to"], r["comment"]) for r in answer["reassignments"]] == [(ALICE, CAROL, "on leave")]
    carols = token_of(mail, CAROL)
    assert api.json(api.decide("restart", carols, json_body={}))["status"] == "pending"  # 1 of 2: carol's counts
    for retired in (api.page("restart", tokens[ALICE]), api.decide("restart", tokens[ALICE], json_body={})):
        problem = api.json(retired) if retired.headers.get("Content-Type", "").startswith("application") else None
        assert retired.status_code == 409
        if problem:
            assert problem["code"] == "link_reassigned" and problem["reassigned_to"] == CAROL
    assert CAROL in api.page("restart", tokens[ALICE]).get_body().decode()
    assert api.json(api.decide("restart", tokens[BOB], json_body={}))["status"] == "restarted" and len(adf.runs) == 1
    notes = api.record(created["pause_id"])["notifications"]
    assert [(n["email"], n["outcome"]) for n in notes if n["purpose"] == "reassigned"] == [([CAROL], "sent")]


@pytest.mark.parametrize("to, rule", [(BOB, "already_approver"), (DAVE, "requester"), ("not an address", "identity")])
def test_the_new_approver_must_be_someone_who_may_decide_and_is_not_one_already(api, pause, to, rule):
    _, tokens = pause
    problem = api.json(reassign(api, tokens[ALICE], to=to))
    assert problem["status"] == 400 and [(e["field"], e["rule"]) for e in problem["errors"]] == [("to", rule)]


def test_the_shared_link_and_an_approver_who_approved_cannot_hand_anything_on(api, pause):
    created, tokens = pause
    problem = api.json(reassign(api, created["token"], to=CAROL))
    assert problem["status"] == 400 and problem["errors"][0]["rule"] == "personal_link"
    api.decide("restart", tokens[ALICE], json_body={})
    response = reassign(api, tokens[ALICE], to=CAROL)
    assert response.status_code == 409 and "approved this already" in api.json(response)["detail"]


def test_two_reassignments_at_once_one_wins(api, pause):
    created, tokens = pause
    start, statuses = threading.Barrier(2), []

    def hand_on(to):
        start.wait()
        statuses.append(reassign(api, tokens[ALICE], to=to).status_code)

    workers = [threading.Thread(target=hand_on, args=(to,)) for to in (CAROL, "erin@contoso.com")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(statuses) == [200, 409]
    record = api.record(created["pause_id"])
    assert len(record["reassignments"]) == 1 and record["approvers"][1] == BOB


def test_an_email_that_cannot_be_sent_undoes_the_reassignment(api, pause, configure, refused_port):
    created, tokens = pause
    configure(SMTP_PORT=str(refused_port))
    response = reassign(api, tokens[ALICE], to=CAROL)
    problem = api.json(response)
    assert response.status_code == 502 and "your link still works" in problem["detail"]
    record = api.record(created["pause_id"])
    assert record["approvers"] == [ALICE, BOB] and record["reassignments"] == []
    assert api.page("restart", tokens[ALICE]).status_code == 200


def test_signed_in_only_the_links_approver_may_hand_it_on(api, pause, configure):
    from tests.test_approvers import principal_headers

    configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED="True")
    _, tokens = pause
    import json

    response = api.call("reassign", "POST", f"reassign/{tokens[ALICE]}", body=json.dumps({"to": CAROL}).encode(),
                        headers={"Content-Type": "application/json", "Authorization": "Bearer x",
                                 **principal_headers(BOB)}, route_params={"token": tokens[ALICE]})
    assert response.status_code == 403 and api.json(response)["reason"] == "someone_else"


def test_a_personal_links_page_offers_to_hand_it_on_and_the_shared_ones_does_not(api, pause):
    created, tokens = pause
    personal = api.page("restart", tokens[ALICE]).get_body().decode()
    assert f'action="../reassign/{tokens[ALICE]}"' in personal and 'name="to"' in personal
    assert "../reassign/" not in api.page("restart", created["token"]).get_body().decode()


def test_an_approval_racing_its_own_reassignment_does_not_count_the_part_twice(api, adf, pause):
    """alice's approval read the pause, then her reassignment to carol landed: when the approval's
    write loses and it plans again on the pause as it is now, alice decides nothing."""
    from shared.errors import LinkHandedOn
    from shared.lifecycle.engine import decide
    from shared.lifecycle.model import Action, Audit
    from shared.storage.pauses import get_store
    from shared.validation import Decision

    created, tokens = pause
    read_before = get_store().get(created["pause_id"])
    assert reassign(api, tokens[ALICE], to=CAROL).status_code == 200
    with pytest.raises(LinkHandedOn):
        decide(created["pause_id"], read_before, Action.APPROVE, Decision(),
               Audit(decided_by=ALICE, via="personal_link"), read_before.entity["created_at"])
    record = api.record(created["pause_id"])
    assert record["approvals"] == [] and record["status"] == "pending" and adf.runs == []


def test_nothing_is_handed_on_once_the_pause_expired(api, pause, table):
    from datetime import datetime, timedelta, timezone

    created, tokens = pause
    entity = table.get_entity(created["pause_id"], "pause")
    entity["expires_at"] = datetime.now(timezone.utc) - timedelta(seconds=1)
    table.update_entity(entity)
    response = reassign(api, tokens[ALICE], to=CAROL)
    assert response.status_code == 410 and api.record(created["pause_id"])["reassignments"] == []


def test_a_reassignment_whose_write_landed_unanswered_is_carried_through(api, mail, pause, monkeypatch):
    """The storage SDK retried a write that had landed, and got 412: read back, it is ours, so the new
    approver is emailed (not answered "already handed on" with nobody told)."""
    from shared.storage.pauses import PauseStore
    from shared.storage.tables import Conflict

    created, tokens = pause
    update, calls = PauseStore.update, []

    def landed_then_412(self, pause_id, changes, etag):
        calls.append(pause_id)
        result = update(self, pause_id, changes, etag)
        if len(calls) == 1:
            raise Conflict()
        return result

    monkeypatch.setattr(PauseStore, "update", landed_then_412)
    response = reassign(api, tokens[ALICE], to=CAROL)
    assert response.status_code == 200 and len([m for m in mail.messages if m["to"] == [CAROL]]) == 1


def test_a_part_is_handed_on_at_most_twenty_times(api, mail, pause):
    created, tokens = pause
    holder, token = ALICE, tokens[ALICE]
    for i in range(20):
        to = f"person{i}@contoso.com"
        assert reassign(api, token, to=to).status_code == 200
        holder, token = to, token_of(mail, to)
    response = reassign(api, token, to="one-more@contoso.com")
    assert response.status_code == 409 and "20 times" in api.json(response)["detail"]
    assert len(api.record(created["pause_id"])["reassignments"]) == 20 and holder
