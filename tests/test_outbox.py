"""The outbox promises a WebHook that was answered `202` its callback, once: the callback is owed as a
due-index row written before the answer, due when the timer should take over from the app's own
send; each send is claimed on the row's ETag, so the app and the timer never both send; a delivered
callback's row goes, one surely not delivered (or whose answer was lost) goes again later with the
identical bytes, within CALLBACK_REDELIVERY_ATTEMPTS, and one refused for good is dropped."""

import json
import time
from datetime import timedelta

import pytest

from shared import outbox
from shared.clock import utcnow
from shared.lifecycle.model import SweepOutcome
from shared.storage.due_index import DueIndex, get_due_index
from shared.storage.tables import Conflict
from shared.targets import callback

pytestmark = pytest.mark.integration

OUTPUT = {"held": False, "checkpoint": "after_staging"}
PAYLOAD = callback.checkpoint_payload(OUTPUT)
# With these settings a send can take 3 connection attempts of 1 s, then 5 s for the answer, and 15 s spare:
# 23 s; the timer takes over 2 + 23 = 25 s after the answer.
WINDOW, BACKSTOP = timedelta(seconds=23), timedelta(seconds=25)


@pytest.fixture
def hook(configure, adf):
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1", CHECKPOINT_CALLBACK_DELAY_SECONDS="2",
              CALLBACK_CONNECT_TIMEOUT_SECONDS="1", CALLBACK_READ_TIMEOUT_SECONDS="5",
              CALLBACK_REDELIVERY_SECONDS="60", CALLBACK_REDELIVERY_ATTEMPTS="4")
    return lambda name: f"{adf.url}/_standin/callbacks/{name}"


@pytest.fixture
def now():
    return utcnow().replace(microsecond=0)


def received(adf, name):
    return [c for c in adf.callbacks if c["callbackId"] == name]


def rows(moment):
    return list(get_due_index().due(moment))


def test_a_callback_is_owed_as_a_row_due_when_the_timer_should_take_over(hook, now):
    assert outbox.backstop_due(now) == now + BACKSTOP
    due, etag = outbox.add(hook("owed"), PAYLOAD, now)
    assert due.kind == outbox.KIND and etag and DueIndex.due_at(due) == now + BACKSTOP
    assert rows(now + BACKSTOP - timedelta(seconds=1)) == []
    assert rows(now + BACKSTOP) == [due]
    entity, _ = get_due_index().read_row(due)
    assert (entity["callback_uri"], entity["payload"], entity["sends"]) == (hook("owed"), PAYLOAD.decode(), 0)


def test_a_dropped_callback_is_never_sent(hook, adf, now):
    due, _ = outbox.add(hook("dropped"), PAYLOAD, now)
    outbox.drop(due)
    assert outbox.settle(due, now + BACKSTOP) == SweepOutcome.ALREADY_SETTLED
    assert rows(now + timedelta(days=1)) == [] and received(adf, "dropped") == []


def test_the_timer_sends_a_callback_the_app_did_not_and_then_forgets_it(hook, adf, now):
    due, _ = outbox.add(hook("orphan"), PAYLOAD, now)
    assert outbox.settle(due, now + BACKSTOP) == SweepOutcome.CHECKPOINT_CONTINUED
    [sent] = received(adf, "orphan")
    assert sent["status"] == 200 and sent["body"] == {"Output": OUTPUT, "StatusCode": "200"}
    assert rows(now + timedelta(days=1)) == []
    assert outbox.settle(due, now + timedelta(hours=1)) == SweepOutcome.ALREADY_SETTLED
    assert len(received(adf, "orphan")) == 1


def test_a_send_claimed_elsewhere_is_not_made_again_until_that_send_must_have_ended(hook, adf, now):
    due, etag = outbox.add(hook("claimed"), PAYLOAD, now)
    entity, _ = get_due_index().read_row(due)
    get_due_index().take_send(due, etag, 1, now)  # the app's thread claimed its send (and died sending)
    with pytest.raises(Conflict):
        outbox.send(due, etag, entity, now)
    assert outbox.settle(due, now + WINDOW - timedelta(seconds=1)) == SweepOutcome.RESCHEDULED
    assert received(adf, "claimed") == []
    assert outbox.settle(due, now + WINDOW) == SweepOutcome.REDELIVERED  # the second send, as the row counts
    assert [c["status"] for c in received(adf, "claimed")] == [200]
    assert rows(now + timedelta(days=1)) == []


def test_send_soon_calls_back_shortly_after_the_answer_and_removes_the_row(hook, adf, configure, now):
    configure(CHECKPOINT_CALLBACK_DELAY_SECONDS="0.05")
    due, etag = outbox.add(hook("soon"), PAYLOAD, now)
    outbox.send_soon(due, etag, hook("soon"), PAYLOAD)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (not received(adf, "soon") or get_due_index().read_row(due)[0]):
        time.sleep(0.02)
    assert [c["status"] for c in received(adf, "soon")] == [200]
    assert get_due_index().read_row(due) == (None, None)


def test_a_throttled_callback_goes_again_later_with_the_identical_bytes(hook, adf, now):
    adf.inject("callback", "before", status=429)  # refused, surely not delivered
    due, _ = outbox.add(hook("throttled"), PAYLOAD, now)
    assert outbox.settle(due, now) == SweepOutcome.RETRY
    assert rows(now + timedelta(seconds=59)) == []
    [moved] = rows(now + timedelta(seconds=60))
    entity, _ = get_due_index().read_row(moved)
    assert entity["sends"] == 1 and "429" in entity["last_error"] and entity["payload"] == PAYLOAD.decode()
    assert outbox.settle(moved, now + timedelta(seconds=60)) == SweepOutcome.REDELIVERED
    first, second = received(adf, "throttled")
    assert (first["status"], second["status"]) == (429, 200) and first["body"] == second["body"]
    assert rows(now + timedelta(days=1)) == []


def test_a_callback_throttled_on_every_send_is_given_up_after_the_attempts(hook, adf, now):
    adf.inject("callback", "before", status=429, count=4)
    due, _ = outbox.add(hook("always-throttled"), PAYLOAD, now)
    for day in range(3):
        assert outbox.settle(due, now + timedelta(days=day)) == SweepOutcome.RETRY
        [due] = rows(now + timedelta(days=30))
    assert outbox.settle(due, now + timedelta(days=3)) == SweepOutcome.UNDELIVERED  # the fourth send was the last
    assert rows(now + timedelta(days=30)) == [] and len(received(adf, "always-throttled")) == 4


def test_a_callback_refused_for_good_is_dropped_after_one_send(hook, adf, now):
    adf.inject("callback", "before", status=404, code="NotFound")
    due, _ = outbox.add(hook("refused"), PAYLOAD, now)
    assert outbox.settle(due, now) == SweepOutcome.UNDELIVERED
    assert rows(now + timedelta(days=1)) == []
    assert [c["status"] for c in received(adf, "refused")] == [404]


def test_an_unconfirmed_callback_is_resent_at_doubling_intervals_until_the_attempts_run_out(hook, adf, now):
    adf.inject("callback", "after", status=500, count=4)  # delivered, but every answer is lost
    due, _ = outbox.add(hook("unconfirmed"), PAYLOAD, now)
    moment = now
    for wait in (60, 120, 240):  # CALLBACK_REDELIVERY_SECONDS, doubling after each send
        assert outbox.settle(due, moment) == SweepOutcome.UNCONFIRMED
        moment += timedelta(seconds=wait)
        assert rows(moment - timedelta(seconds=1)) == []
        [due] = rows(moment)
    assert outbox.settle(due, moment) == SweepOutcome.UNDELIVERED  # the fourth send was the last
    assert rows(now + timedelta(days=1)) == []
    sent = received(adf, "unconfirmed")
    assert len(sent) == 4 and {json.dumps(c["body"], sort_keys=True) for c in sent} == {
        json.dumps({"Output": OUTPUT, "StatusCode": "200"}, sort_keys=True)}
