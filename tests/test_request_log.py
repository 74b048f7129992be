"""The requests log (shared.storage.request_log) against Azurite: slots that cap open requests, taken over
only when their request has ended and only by one of two at once, given back, and the history newest first."""

from datetime import datetime, timedelta, timezone

import pytest

from shared.storage.request_log import Made, get_request_log, partition

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)
WHO = "carol@contoso.com"


def made(number: int, entry: str = "publish") -> Made:
    return Made(f"{number:032x}", entry, "Publish", T0 + timedelta(minutes=number))


def test_slots_cap_open_requests_per_entry_and_free_when_a_request_ends(configure):
    log, ended = get_request_log(), set()

    def still_open(pause_id, taken_at):
        assert taken_at.tzinfo is not None
        return pause_id not in ended

    assert all(log.take_slot(WHO, "publish", 3, made(n), still_open) for n in range(3))
    assert not log.take_slot(WHO, "publish", 3, made(3), still_open)
    assert log.take_slot(WHO, "export", 3, made(4, "export"), still_open)  # each entry has its own
    assert log.take_slot("erin@fabrikam.com", "publish", 3, made(5), still_open)  # and each requester
    ended.add(made(1).pause_id)
    assert log.take_slot(WHO, "publish", 3, made(6), still_open)
    assert not log.take_slot(WHO, "publish", 3, made(7), still_open)
    shown = [m.pause_id for m in log.history(WHO, 10)]
    assert shown == [made(n).pause_id for n in (6, 4, 2, 1, 0)]  # newest first; refused ones never written


def test_a_slot_taken_over_by_someone_else_meanwhile_is_not_taken_twice(configure):
    log = get_request_log()
    assert log.take_slot(WHO, "publish", 1, made(0), lambda *_: True)

    def ended_but_taken_meanwhile(pause_id, taken_at):
        # While this request looks at the slot, another one takes it over first (its ETag changes).
        if pause_id == made(0).pause_id:
            assert log.take_slot(WHO, "publish", 1, made(1), lambda *_: False)
            return False
        return True

    assert not log.take_slot(WHO, "publish", 1, made(2), ended_but_taken_meanwhile)
    assert [m.pause_id for m in log.history(WHO, 10)] == [made(1).pause_id, made(0).pause_id]


def test_taking_the_same_request_again_is_its_own_slot(configure):
    log = get_request_log()
    assert log.take_slot(WHO, "publish", 1, made(0), lambda *_: True)
    assert log.take_slot(WHO, "publish", 1, made(0), lambda *_: True)  # e.g. its first answer was lost


def test_a_slot_given_back_is_free_and_its_history_row_gone(configure):
    log = get_request_log()
    assert log.take_slot(WHO, "publish", 1, made(0), lambda *_: True)
    log.give_back(WHO, made(0))
    assert log.history(WHO, 10) == []
    assert log.take_slot(WHO, "publish", 1, made(1), lambda *_: True)


def test_any_identity_makes_a_valid_partition(configure):
    odd = "o'brien/#?\\@contoso.com"
    assert len(partition(odd)) == 40 and partition(odd) != partition(WHO)
    assert get_request_log().take_slot(odd, "publish", 1, made(0), lambda *_: True)
    assert [m.entry for m in get_request_log().history(odd, 5)] == ["publish"]


def test_a_takeover_whose_answer_was_lost_is_recognised_as_ours(configure):
    log = get_request_log()
    assert log.take_slot(WHO, "publish", 1, made(0), lambda *_: True)

    def ended_and_our_own_send_landed(pause_id, taken_at):
        if pause_id == made(0).pause_id:  # as if our replace had landed and only its answer was lost
            assert log.take_slot(WHO, "publish", 1, made(1), lambda *_: False)
        return False

    assert log.take_slot(WHO, "publish", 1, made(1), ended_and_our_own_send_landed)
    assert [m.pause_id for m in log.history(WHO, 10)] == [made(1).pause_id, made(0).pause_id]


def test_a_slot_given_back_during_a_takeover_is_taken_not_a_500(configure):
    log = get_request_log()
    assert log.take_slot(WHO, "publish", 1, made(0), lambda *_: True)

    def given_back_meanwhile(pause_id, taken_at):
        log.give_back(WHO, made(0))
        return False

    assert log.take_slot(WHO, "publish", 1, made(1), given_back_meanwhile)
    assert [m.pause_id for m in log.history(WHO, 10)] == [made(1).pause_id]
