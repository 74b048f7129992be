"""The lifecycle model (shared/lifecycle/model.py) is consistent data: every row of the table leads
somewhere the rest of the model knows, so the engine, the timer, the index and the pages can rely
on it without code of their own per status."""

import pytest

from shared import validation
from shared.lifecycle.model import (CHECKS_ON_TIMEOUT, CLAIMED, FINAL, HOLD_ENDINGS, ON_TIMEOUT, OPEN, QUORUM,
                                    RECONCILED, RULES, SAID, WORDS_REQUIRED_WITH_APPROVERS, Actor, Call, CheckResult,
                                    HoldStatus, Mode, Status, claim_rule, claimed_from, rule_for)


def test_every_status_is_open_claimed_or_final_and_only_one_of_them():
    assert OPEN | CLAIMED | FINAL == set(Status)
    assert not (OPEN & CLAIMED or OPEN & FINAL or CLAIMED & FINAL)


@pytest.mark.parametrize("key", sorted(RULES), ids=lambda key: f"{key[0]}-{key[1]}")
def test_every_row_starts_open_claims_only_for_a_call_and_ends_where_it_may(key):
    rule = RULES[key]
    assert rule.source in OPEN
    assert (rule.claim is None) == (rule.call is Call.NONE)  # a claim exactly when an outside call is made
    assert rule.claim is None or rule.claim in CLAIMED
    assert rule.result in FINAL or (rule.result in OPEN and rule.call is Call.NONE)
    assert rule.text in ("comment", "reason")
    assert (rule.error_code is not None) <= (rule.call is Call.CALL_BACK)  # an Error only in a callback
    if rule.claim is not None:  # a claim left by this row is found again (to reconcile it)
        assert claim_rule(rule.claim, key[0], key[1]) is rule


def test_every_claimed_status_is_claimed_by_some_row_and_lists_from_where_it_was_claimed():
    for status in CLAIMED:
        sources = claimed_from(status)
        assert sources and set(sources) <= OPEN
    # a cancel, a cancel while scheduled, and a hold's cancel
    assert claimed_from(Status.CANCELLING) == (Status.PENDING, Status.HELD, Status.SCHEDULED)
    assert all(claimed_from(status) == () for status in FINAL)


def test_the_timer_and_the_checks_settle_by_every_on_timeout_a_pause_may_ask_for():
    choices = set(validation.PAUSE_BODY.fields["on_timeout"].values)
    assert set(ON_TIMEOUT) == set(CHECKS_ON_TIMEOUT) == choices
    for action in (*ON_TIMEOUT.values(), *CHECKS_ON_TIMEOUT.values()):
        assert all((action, mode) in RULES for mode in (Mode.RESTART, Mode.CALLBACK))
    assert {rule_for(a, Mode.RESTART).actor for a in ON_TIMEOUT.values()} == {Actor.TIMER}
    assert {rule_for(a, Mode.RESTART).actor for a in CHECKS_ON_TIMEOUT.values()} == {Actor.CHECKS}


def test_the_quorum_step_and_the_words_rule_name_rows_that_exist():
    for action, short in QUORUM.items():
        for mode in (Mode.RESTART, Mode.CALLBACK):
            full, counted = rule_for(action, mode), rule_for(short, mode)
            assert counted.call is Call.NONE and counted.result is counted.source is full.source
            assert counted.gated == full.gated  # counting an approval waits for a gate's checks as approving does
    assert all(any(key[0] is action for key in RULES) for action in WORDS_REQUIRED_WITH_APPROVERS)


def test_every_claim_can_be_reconciled_and_every_hold_ending_is_a_checkpoint_row():
    calls = {rule.call for rule in RULES.values() if rule.claim is not None}
    assert calls == {Call.START_RUN, Call.CALL_BACK}
    assert {(Call.START_RUN, True), (Call.START_RUN, False), Call.CALL_BACK} == set(RECONCILED)
    assert set(HOLD_ENDINGS) == set(HoldStatus) - {HoldStatus.ACTIVE}
    assert {RULES[(action, Mode.CHECKPOINT)].source for action in HOLD_ENDINGS.values()} == {Status.HELD}


def test_every_status_a_decision_can_meet_is_described():
    assert set(SAID) == set(Status) - {Status.PENDING}
    assert {result.value for result in CheckResult} == {"passed", "not_yet", "error", "failed"}
