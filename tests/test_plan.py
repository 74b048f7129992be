"""Planning a decision (shared/lifecycle/plan.py) writes nothing and calls nothing: for an action on a pause as
it is now it says who may act (people and checks until `expires_at`, the timer only from it, holds and the app
whenever; a decided pause is "already decided" and an expired one "expired", whoever asks), which row of the
lifecycle table to carry out (an approval short of the quorum is counted, not carried out), what the decision
records, and the exact callback bytes, after refusing a cancel without words when approvers are named."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from shared.clock import iso
from shared.errors import AlreadyDecided, ChecksPending, Expired, InvalidRequest
from shared.lifecycle.model import RULES, Action, Actor, Audit, Call, Status
from shared.lifecycle.plan import check_words, count, ensure_may_act, plan
from shared.storage.tables import pack_json, unpack_json
from shared.validation import Decision
from tests.conftest import SETTING_NAMES, clear_app_caches
from tests.support import TARGET

PAUSE_ID = "5" * 32
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
EXPIRES = NOW + timedelta(hours=1)
ALICE = Audit(decided_by="alice@contoso.com", client_ip="203.0.113.7", user_agent="Firefox", via="personal_link")
BOB = Audit(decided_by="bob@contoso.com", client_ip="203.0.113.8", user_agent="Edge", via="sign_in")


@pytest.fixture(autouse=True)
def settings(monkeypatch):
    """Settings from a plain environment: planning reads ALLOWED_FACTORIES, and touches no storage."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    clear_app_caches()
    yield
    clear_app_caches()


def pause(mode="restart", **fields):
    """A stored pause entity as the store hands it back, pending an hour before it expires."""
    entity = {"PartitionKey": PAUSE_ID, "RowKey": "pause", "status": "pending", "mode": mode,
              "created_at": NOW - timedelta(hours=1), "expires_at": EXPIRES, **TARGET,
              **pack_json("parameters", '{"day":"2026-11-25"}'), **pack_json("data", '{"rows":5}')}
    if mode == "checkpoint":
        entity.update(status="held", expires_at=None, checkpoint="after_staging", **pack_json("hold_ids", '["h1"]'))
    if mode != "restart":
        entity["callback_uri"] = "https://dpeastus.svc.datafactory.azure.com/workflow/callback/abc"
    return {**entity, **fields}


def named(mode="restart", required=2, **fields):
    approvers = '["alice@contoso.com","bob@contoso.com","carol@contoso.com"]'
    return pause(mode, required_approvals=required, **pack_json("approvers", approvers), **fields)


def approvals(changes: dict) -> list:
    return json.loads(unpack_json(changes, "approvals"))


# Who may act when.

@pytest.mark.parametrize("actor, seconds, refused", [
    (Actor.PERSON, -1, None), (Actor.PERSON, 0, Expired), (Actor.PERSON, 86400, Expired),
    (Actor.CHECKS, -1, None), (Actor.CHECKS, 0, Expired),
    (Actor.TIMER, -3600, AlreadyDecided), (Actor.TIMER, -1, AlreadyDecided), (Actor.TIMER, 0, None),
    (Actor.TIMER, 86400, None),
    (Actor.APP, -1, None), (Actor.APP, 86400, None),  # the request that made the pause: no expiry
])
def test_people_and_checks_may_act_until_the_expiry_and_the_timer_only_from_it(actor, seconds, refused):
    now = EXPIRES + timedelta(seconds=seconds)
    if refused is None:
        ensure_may_act(pause(), actor, now)
        return
    with pytest.raises(refused) as raised:
        ensure_may_act(pause(), actor, now)
    said = "has not expired yet" if refused is AlreadyDecided else f"expired at {iso(EXPIRES)}"
    assert said in raised.value.detail and raised.value.pause["pause_id"] == PAUSE_ID


def test_holds_end_a_held_checkpoint_whenever_they_end_and_only_a_held_one():
    ensure_may_act(pause("checkpoint"), Actor.HOLDS, NOW + timedelta(days=400), Status.HELD)  # it has no expiry
    with pytest.raises(AlreadyDecided, match="is being released right now"):
        ensure_may_act(pause("checkpoint", status="releasing"), Actor.HOLDS, NOW, Status.HELD)


@pytest.mark.parametrize("status, said", [
    ("restarted", "was already approved and restarted at 2026-11-25T12:30:00Z"),
    ("cancelled", "was already cancelled at 2026-11-25T12:30:00Z"),
    ("failed", "has failed at 2026-11-25T12:30:00Z"),
    ("restarting", "is being restarted right now"),
    ("expiring", "is expiring right now"),
])
def test_a_decided_or_claimed_pause_is_already_decided_for_everyone_also_after_its_expiry(status, said):
    decided = None if status.endswith("ing") else NOW + timedelta(minutes=30)
    entity = pause(status=status, decided_at=decided)
    for actor in (Actor.PERSON, Actor.CHECKS, Actor.TIMER, Actor.APP):
        for now in (NOW, EXPIRES + timedelta(days=1)):  # after the expiry too: 409, not 410
            with pytest.raises(AlreadyDecided) as raised:
                ensure_may_act(entity, actor, now)
            assert raised.value.detail == f"This pause {said}."
            assert raised.value.pause["status"] == status


@pytest.mark.parametrize("actor", [Actor.PERSON, Actor.TIMER, Actor.APP])
def test_an_expired_pause_answers_expired_whoever_asks_and_whenever(actor):
    entity = pause(status="expired", decided_at=EXPIRES)
    with pytest.raises(Expired) as raised:
        ensure_may_act(entity, actor, NOW)  # even before the moment it names: the timer marked it
    assert raised.value.detail.startswith(f"This pause expired at {iso(EXPIRES)}")
    assert raised.value.pause["status"] == "expired"


# What plan() returns.

def moment_for(action, mode):
    rule = RULES[(action, mode)]
    return (EXPIRES + timedelta(seconds=1)) if rule.actor is Actor.TIMER else NOW


@pytest.mark.parametrize("action, mode", sorted(RULES), ids=str)
def test_each_row_is_planned_as_the_model_declares_it_with_what_the_decision_records(action, mode):
    rule, now = RULES[(action, mode)], moment_for(action, mode)
    audit = Audit(decided_by="ops@contoso.com", client_ip="203.0.113.9", user_agent="u" * 600, via="sign_in")
    # A scheduled pause (decided outside its window) starts, or is cancelled, from where it was scheduled.
    entity = pause(mode, status="scheduled", start_at=NOW) if rule.source is Status.SCHEDULED else pause(mode)
    planned = plan(entity, action, Decision(comment="Checked by hand", input={"b": 1, "a": 2}), audit, now)
    assert planned.action is action and planned.rule is rule
    if action is Action.START_SCHEDULED:  # it starts as it was decided: the decision on record stays
        assert planned.changes == {} and planned.payload is not None
        return
    assert planned.changes["decided_at"] == now and planned.changes[rule.text] == "Checked by hand"
    assert planned.changes["decided_by"] == "ops@contoso.com" and planned.changes["client_ip"] == "203.0.113.9"
    assert planned.changes["user_agent"] == "u" * 512  # bounded
    assert unpack_json(planned.changes, "input") == '{"b":1,"a":2}'  # as given, compact
    assert "status" not in planned.changes  # the engine writes the status: the claim's or the result's
    assert (planned.payload is not None) == (rule.call is not Call.NONE)
    if rule.call is Call.START_RUN:  # the run's parameters: the pause's own and its id (no form: no input)
        assert planned.payload == {**json.loads(unpack_json(pause(mode), "parameters")), "pause_id": PAUSE_ID}
    elif planned.payload is not None:
        sent = json.loads(planned.payload)
        if rule.error_code is None:
            assert sent["StatusCode"] == "200" and "Output" in sent
        else:
            assert sent == {"Error": {"ErrorCode": rule.error_code, "Message": sent["Error"]["Message"]},
                            "StatusCode": "400"}
            assert "Checked by hand" in sent["Error"]["Message"]


def test_an_approval_in_callback_mode_carries_the_bytes_the_webhook_receives():
    planned = plan(pause("callback"), Action.APPROVE, Decision(comment="ok", input={"k": 1}), ALICE, NOW)
    assert json.loads(planned.payload) == {"Output": {"pause_id": PAUSE_ID, "status": "restarted", "comment": "ok",
                                                      "input": {"k": 1}, "data": {"rows": 5}}, "StatusCode": "200"}
    assert planned.payload == plan(pause("callback"), Action.APPROVE, Decision(comment="ok", input={"k": 1}),
                                   BOB, NOW + timedelta(minutes=5)).payload  # the same decision, the same bytes


def test_an_approval_short_of_the_quorum_is_counted_and_calls_nothing_the_last_one_is_carried_out():
    entity = named("callback")
    first = plan(entity, Action.APPROVE, Decision(comment="fine"), ALICE, NOW)
    assert first.action is Action.RECORD_APPROVAL and first.rule.call is Call.NONE
    assert first.rule.result is Status.PENDING and first.payload is None
    assert "decided_at" not in first.changes and "decided_by" not in first.changes  # it stays undecided
    assert approvals(first.changes) == [{"approver": "alice@contoso.com", "at": iso(NOW), "comment": "fine",
                                         "client_ip": "203.0.113.7", "user_agent": "Firefox",
                                         "via": "personal_link"}]
    entity.update(first.changes)
    second = plan(entity, Action.APPROVE, Decision(comment="go"), BOB, NOW + timedelta(minutes=1))
    assert second.action is Action.APPROVE and second.rule.call is Call.CALL_BACK and second.payload
    assert second.changes["decided_by"] == "bob@contoso.com" and second.changes["comment"] == "go"
    assert [a["approver"] for a in approvals(second.changes)] == ["alice@contoso.com", "bob@contoso.com"]
    with pytest.raises(AlreadyDecided, match="You already approved this at 2026-11-25T12:00:00Z; it needs 2"):
        plan(entity, Action.APPROVE, Decision(comment="again"), ALICE, NOW + timedelta(minutes=2))
    # A count stored as text (written by hand) still counts: one of three is not enough.
    assert plan(named(required="3"), Action.APPROVE, Decision(), ALICE, NOW).action is Action.RECORD_APPROVAL


@pytest.mark.parametrize("stored", ["two", -1, "0", 0, None, ""])
def test_a_damaged_required_count_never_lets_fewer_approvals_start_the_run(stored):
    """Read as every named approver (three here): two approvals are still short, the third carries it out."""
    entity = named(required=stored)  # None: the approvers are named, the count is gone
    for person in (ALICE, BOB):
        step = plan(entity, Action.APPROVE, Decision(), person, NOW)
        assert step.action is Action.RECORD_APPROVAL and step.rule.call is Call.NONE
        entity.update(step.changes)
    carol = Audit(decided_by="carol@contoso.com", client_ip=ALICE.client_ip, user_agent=ALICE.user_agent,
                  via=ALICE.via)
    assert plan(entity, Action.APPROVE, Decision(), carol, NOW).rule.call is Call.START_RUN


@pytest.mark.parametrize("checks_mode, passed, action, pending", [
    ("gate", False, Action.APPROVE, True),
    ("gate", True, Action.APPROVE, False),
    ("gate", False, Action.CANCEL, False),        # a cancel is never held up by the checks
    ("auto", False, Action.APPROVE, False),       # auto: people may approve before the checks pass
])
def test_in_gate_mode_approving_waits_for_the_checks(checks_mode, passed, action, pending):
    entity = pause(checks_mode=checks_mode, check_max_attempts=20, checks_passed=passed)
    if pending:
        with pytest.raises(ChecksPending):
            plan(entity, action, Decision(), ALICE, NOW)
    else:
        assert plan(entity, action, Decision(), ALICE, NOW).action is action


# Words, and damaged counters.

@pytest.mark.parametrize("mode", ["restart", "callback"])
def test_with_named_approvers_a_cancel_needs_words_naming_the_field(mode):
    with pytest.raises(InvalidRequest) as raised:
        check_words(named(mode), Action.CANCEL, Decision(comment=""))
    assert raised.value.errors == [{"field": "reason", "rule": "required",
                                    "message": "is required when the request names its approvers"}]
    check_words(named(mode), Action.CANCEL, Decision(comment="Wrong month"))
    check_words(named(mode), Action.APPROVE, Decision())  # approving needs no words
    check_words(pause(mode), Action.CANCEL, Decision())   # nor does a cancel without named approvers
    # plan() asks for them before anything else is said about the pause, even a decided one.
    entity = named(mode, status="cancelled", decided_at=NOW)
    with pytest.raises(InvalidRequest):
        plan(entity, Action.CANCEL, Decision(), ALICE, EXPIRES + timedelta(days=1))
    with pytest.raises(AlreadyDecided):
        plan(entity, Action.CANCEL, Decision(comment="no"), ALICE, EXPIRES + timedelta(days=1))


@pytest.mark.parametrize("stored, counted", [
    (None, 0), ("", 0), (0, 0), (3, 3), ("3", 3), (2.9, 2), (-4, 0), ("-4", 0), ("three", 0), ("2.5", 0),
    ([2], 0), ({}, 0), (object(), 0),
])
def test_a_stored_counter_reads_as_a_whole_number_and_a_damaged_one_as_zero(stored, counted):
    assert count(stored) == counted
