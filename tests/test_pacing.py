"""Throttling is backpressure (shared.targets.pacing, shared.sweep): the pacer's estimate of ARM's write
bucket, and the timer deferring a start that ARM throttled, or soon would, without counting it as a
failed attempt and without holding back anything else."""

import time
from datetime import datetime, timedelta, timezone

import pytest

from shared import sweep
from shared.errors import UpstreamThrottled
from shared.storage.due_index import get_due_index
from shared.targets import pacing
from shared.targets.adf import PipelineTarget, get_adf, pacing_key
from tests.support import TARGET

KEY = ("tenant", "sub")


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_before_arm_says_anything_only_a_few_go_blind():
    """Every instance a scale-out adds starts knowing nothing of the bucket: a few writes go (never more than the
    margin), then ARM's first answer says what remains."""
    with pacing.background(spread=True):  # settled from the queue
        pacer = pacing.Pacer(10, 20, clock=Clock())
        blind = pacing.BLIND_CALLS
        assert [pacer.acquire(KEY) for _ in range(blind)] == [0.0] * blind
        assert pacer.acquire(KEY) > 0  # many at once, from each of many instances, would empty the bucket
        pacer.observed(KEY, 180)  # the first answer: the other blind writes are still in flight
        left = 180 - (blind - 1)
        go = left - 20  # all go while the bucket stays above the margin (20): at it, the call held back goes first
        assert [pacer.acquire(KEY) for _ in range(go)] == [0.0] * go
        assert pacer.acquire(KEY) > 0
        reads = pacing.Pacer(25, 25, pacing.READS, clock=Clock())
        assert reads.acquire(KEY, cost=10) == 0.0  # a check reading 10 runs at once: one lot, since none is in flight
        assert reads.acquire(KEY) > 0  # (held back until a count came, it would never go)
        tiny = pacing.Pacer(10, 0.5, clock=Clock())  # ARM_WRITES_LOW_WATER=0.5: one still goes, or none ever would
        assert tiny.acquire(KEY) == 0.0 and tiny.acquire(KEY) > 0


def test_settles_spread_over_a_queue_go_blind_a_few_calls_the_timer_alone_up_to_the_margin():
    """From the queue, every instance of a scale-out starts blind; the timer alone is one process, and a start it
    defers waits for its next run, so it goes blind up to the margin."""
    for spread, blind in ((True, pacing.BLIND_CALLS), (False, 20)):
        pacer = pacing.Pacer(10, 20, clock=Clock())
        with pacing.background(spread=spread):
            with pacing.background():  # (the timer's settle inside the queue's keeps it spread)
                assert [pacer.acquire(KEY) for _ in range(blind)] == [0.0] * blind, spread
                assert pacer.acquire(KEY) > 0, spread


def test_writes_slow_down_before_the_bucket_is_empty_each_given_a_slot_of_its_own():
    clock = Clock()
    pacer = pacing.Pacer(10, 20, clock=clock)
    pacer.observed(KEY, 25)
    assert [pacer.acquire(KEY) for _ in range(6)] == [0.0] * 6  # 25 .. 20 remain before each
    waits = [pacer.acquire(KEY) for _ in range(3)]  # 19: under the margin
    assert waits == pytest.approx([0.101, 0.201, 0.301])  # one slot each, 1/refill apart
    clock.now += 0.1
    assert pacer.acquire(KEY, slot=clock.now) == 0.0  # back at its slot: it goes
    assert pacer.acquire(KEY) > 0.2  # a fresh write queues behind the slots handed out
    assert pacer.acquire(("tenant", "other")) == 0.0  # another subscription's bucket is its own


def test_a_429_holds_writes_back_until_retry_after_then_until_the_margin_refilled():
    clock = Clock()
    pacer = pacing.Pacer(10, 20, clock=clock)
    pacer.throttled(KEY, 7)
    wait = pacer.acquire(KEY)
    # Empty at Retry-After, then 20 tokens at 5 a second: others spent what this process counted on, so it takes
    # half the share it took (a window measured without them gives it back).
    assert wait == pytest.approx(11.001)
    clock.now += wait
    assert pacer.acquire(KEY, slot=clock.now) == 0.0


def test_a_429_halves_the_share_of_the_refill_a_process_hands_out_as_slots():
    """Processes that each took ARM's whole refill for their own (a scale-out's new instances, before they have
    measured what the others spend) hand out half as many slots a second after a 429: once for the calls that were
    in flight together (each of their 429s halving it, one process was held to a sixteenth for 40 s)."""
    clock = Clock()
    pacer = pacing.Pacer(10, 20, clock=clock)
    pacer.observed(KEY, 19)  # under the margin
    assert [pacer.acquire(KEY) for _ in range(2)] == pytest.approx([0.101, 0.201])  # its slots: 1/10 s apart

    def spacing():
        first, second = pacer.acquire(KEY), pacer.acquire(KEY)
        return second - first

    def rate():
        return pacer._own_rate(pacer._buckets[KEY])
    for _ in range(3):  # three calls in flight together, each answered 429
        pacer.throttled(KEY, 1)
    assert rate() == pytest.approx(5) and spacing() == pytest.approx(0.2)  # 5 a second
    clock.now += 1.5  # past its Retry-After, a call meets another
    pacer.throttled(KEY, 1)
    assert rate() == pytest.approx(2.5) and spacing() == pytest.approx(0.4)
    for _ in range(10):
        clock.now += 1.5
        pacer.throttled(KEY, 1)
    assert rate() == pytest.approx(10 * pacing.MIN_SHARE)  # never less than this


def test_a_call_back_at_its_slot_keeps_the_margin_too():
    """With many instances, the calls the others have in flight need the margin: one back at its slot goes once
    the bucket is above it, as a fresh one would (down to one token, 32 instances met a 429 on a third of their
    calls long after they had measured each other)."""
    clock = Clock()
    pacer = pacing.Pacer(10, 20, clock=clock)
    pacer.observed(KEY, 20)
    slot = clock.now + pacer.acquire(KEY)  # under the margin: a slot 0.1 s ahead
    pacer.observed(KEY, 12)  # others spent meanwhile
    clock.now = slot
    wait = pacer.acquire(KEY, slot=slot)
    assert wait > 0
    clock.now += wait
    assert pacer.acquire(KEY, slot=clock.now) == 0.0


def test_an_item_that_cannot_carry_its_slot_is_remembered_and_not_given_another():
    """A timer's due row is moved to the second: back early, an item is told the rest of its wait; back at its
    slot, it goes. Without the memory each early return took a fresh slot and the writes never went."""
    clock = Clock()
    pacer = pacing.Pacer(4, 2, clock=clock)
    pacer.observed(KEY, 0)
    waits = {item: pacer.acquire(KEY, item=item) for item in "abc"}
    assert list(waits.values()) == pytest.approx([0.501, 0.751, 1.001])  # 2 tokens at 4 a second, then 1/4 s apart
    clock.now += 0.3
    assert pacer.acquire(KEY, item="c") == pytest.approx(0.701)  # early: the rest of its own wait
    assert pacer.acquire(KEY, item="d") == pytest.approx(0.951)  # a newcomer still queues behind c
    clock.now += 0.2
    assert pacer.acquire(KEY, item="a") == 0.0  # at its slot
    clock.now += 0.5
    assert [pacer.acquire(KEY, item=item) for item in "bc"] == [0.0, 0.0]
    assert pacer.acquire(KEY, item="a") > 0  # gone, it holds no slot any more: a fresh call waits its turn


def test_several_calls_at_once_take_their_tokens_together_and_an_old_slot_is_forgotten():
    clock = Clock()
    pacer = pacing.Pacer(4, 2, clock=clock)
    pacer.observed(KEY, 4)
    assert pacer.acquire(KEY, item="a", cost=3) == 0.0  # 4 left: 3 go, leaving 1 (the margin keeps 2 for others)
    wait = pacer.acquire(KEY, item="b", cost=2)
    assert wait == pytest.approx(0.501)  # 1 left, 3 wanted (its 2 and the margin's 1): 2 more at 4 a second
    clock.now += wait
    assert pacer.acquire(KEY, item="b", cost=2) == 0.0  # back at its slot: its 2 tokens are there
    pacer.observed(KEY, 0)
    pacer.acquire(KEY, item="c")  # given a slot, then settled by another instance: it never comes back here
    clock.now += pacing.SLOT_MEMORY_SECONDS + 5
    pacer.observed(KEY, 1)
    assert pacer.acquire(KEY, item="c") > 0  # an old slot is not held any more: c keeps the margin like anyone


def test_a_slot_is_held_only_with_the_pacer_that_gave_it():
    """A pause deferred by the read pacer (its adf_run checks) and then continuing (a start) holds no write
    slot: its read slot must not let a write past the write bucket's low water mark."""
    assert pacing.slot_held(pacing.WRITES) is None
    with pacing.holding(pacing.Slot(pacing.READS, 100.0)):
        assert pacing.slot_held(pacing.READS) == 100.0 and pacing.slot_held(pacing.WRITES) is None
        with pacing.holding(pacing.Slot(pacing.WRITES, 200.0)):
            assert pacing.slot_held(pacing.WRITES) == 200.0 and pacing.slot_held(pacing.READS) is None
        assert pacing.slot_held(pacing.READS) == 100.0
    assert pacing.slot_held(pacing.READS) is None


def test_what_arm_says_remains_replaces_the_estimate():
    pacer = pacing.Pacer(10, 20, clock=Clock())
    pacer.observed(KEY, 3)
    assert pacer.acquire(KEY) == pytest.approx(1.701)
    pacer.observed(KEY, 200)
    assert pacer.acquire(KEY) == 0.0


def test_answers_without_a_count_free_the_calls_started_blind():
    """An ARM that stops counting (a service that overrides its limits, a proxy that drops headers) must not
    hold background calls back for good once the first ones went blind."""
    with pacing.background(spread=True):  # settled from the queue
        clock = Clock()
        pacer = pacing.Pacer(10, 20, clock=clock)
        blind = pacing.BLIND_CALLS
        assert [pacer.acquire(KEY) for _ in range(blind)] == [0.0] * blind
        assert pacer.acquire(KEY) > 0
        pacer.answered(KEY)  # one answered, saying nothing of the bucket: it is no longer in flight
        assert pacer.acquire(KEY) == 0.0 and pacer.acquire(KEY) > 0
        clock.now += pacing.UNANSWERED_SECONDS  # the others' answers were lost: none of them is in flight by now
        assert [pacer.acquire(KEY) for _ in range(blind)] == [0.0] * blind


class Answer:
    def __init__(self, headers):
        self.http_response = type("Response", (), {"headers": headers})()


def test_the_hook_reads_the_lower_of_the_principals_and_the_subscriptions_count():
    """ARM throttles when either bucket is empty: the app's own (per principal) or the subscription's, which
    every principal spends (`-global-`); a service with limits of its own counts `-resource-requests`."""
    writes = "x-ms-ratelimit-remaining-subscription-writes"
    pacer = pacing.Pacer(10, 20, clock=Clock())
    pacing.hook(pacer, KEY)(Answer({writes: "199", writes.replace("-writes", "-global-writes"): "3"}))
    assert pacer.acquire(KEY) > 0  # others spent the subscription's bucket: under the margin
    pacer = pacing.Pacer(10, 20, clock=Clock())
    pacing.hook(pacer, KEY)(Answer({"x-ms-ratelimit-remaining-subscription-resource-requests": "5"}))
    assert pacer.acquire(KEY) > 0
    pacer = pacing.Pacer(10, 20, clock=Clock())
    [pacer.acquire(KEY) for _ in range(20)]
    pacing.hook(pacer, KEY)(Answer({writes: "\u00b2"}))  # "²".isdigit(), and int() refuses it: not a count
    assert pacer.acquire(KEY) == 0.0  # an answer all the same


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    from email.utils import formatdate

    from shared.targets.adf import _retry_after

    def after(value):
        return _retry_after(type("Response", (), {"headers": {"Retry-After": value}})())

    assert after("17") == 17.0 and after(" 0 ") == 1.0 and after("nan") == 10.0 and after("soon") == 10.0
    assert 110 <= after(formatdate(time.time() + 120, usegmt=True)) <= 120
    assert after(formatdate(time.time() - 120, usegmt=True)) == 1.0  # already passed: at once, at the floor
    assert after(None) == 10.0
    # A date whose year or zone is too large for the C library is no date: ARM's usual, never an exception.
    assert after("Tue, 01 Dec 99999999999999999999 00:00:00 GMT") == 10.0
    assert after("Tue, 01 Dec 2026 00:00:00 +9999999999999999999999") == 10.0


@pytest.mark.integration
def test_a_subscription_other_principals_spent_holds_background_starts_back(outside_settings, adf_pipeline,
                                                                            monkeypatch):
    """The stand-in's subscription bucket (all principals') is spent by others; the app's own is full. Its
    first start's answer says so, and the next start is deferred rather than sent into a 429."""
    import dataclasses

    frozen = [1000.0]
    monkeypatch.setattr(adf_pipeline.throttle, "limits",
                        dataclasses.replace(adf_pipeline.throttle.limits, clock=lambda: frozen[0]))
    adf_pipeline.throttle.reset()
    subscription = TARGET["subscription_id"]
    for other in range(15):  # the subscription's bucket is 15 times a principal's
        for _ in range(200):
            adf_pipeline.throttle.take(subscription, f"other-app-{other}", "POST")
    frozen[0] += 1.5 / 150  # one token back in it (and half of the next)
    adf, target = get_adf(), PipelineTarget(**TARGET)
    with pacing.background():
        adf.pacer.go_or_defer(pacing_key(target), time.time(), "first", "paced")  # nothing known yet: it goes
        adf.start_run(target, {"day": "1", "n": "1", "pause_id": "first"})
        with pytest.raises(UpstreamThrottled):
            adf.pacer.go_or_defer(pacing_key(target), time.time(), "second", "paced")
    assert len(adf_pipeline.runs) == 1


def share_one_bucket(processes: int, items: int, latency: float = 0.2, in_flight: int = 24, spread: bool = False,
                     anywhere: bool = False, seed: int = 7, deferred=None, spent=None):
    """`processes` pacers (ARM's sizes: 200, 10 a second) each settle their share of `items` due at once through
    the stand-in's own token bucket, on a clock moved 10 ms a step; each call is answered `latency` later and
    a 429's item comes back at its Retry-After, as the queue does (`spread`: anywhere from 50 ms to `latency`
    later, so answers come back out of order; `anywhere`: a deferred item comes back to any process, holding
    its slot, as a queue message does; `deferred`, a Counter, counts each item's deferrals; `spent`, {second: calls}
    another caller of the same principal makes). (calls, when each 429 came, seconds to the last start)."""
    import random

    from local_dev.arm_throttle import ArmThrottle, Throttle

    before = random.getstate()  # (given back at the end: other tests draw from the same generator)
    random.seed(seed)  # the pacer spreads the calls it sends to ask again later: the same spread every run
    clock = Clock()
    clock.now = 0.0
    arm = ArmThrottle(Throttle(clock=clock))
    pacers = [pacing.Pacer(10, 20, clock=clock) for _ in range(processes)]
    waiting = [[(0.0, f"{n}-{k}", None) for k in range(items // processes)] for n in range(processes)]
    answers, calls, throttled = [], 0, []

    def back(n, at, item, slot):
        waiting[random.randrange(processes) if anywhere else n].append((at, item, slot if anywhere else None))

    with pacing.background(spread=True):  # settled from the queue, as the queue's are
        while any(waiting) or answers:
            for _ in range((spent or {}).get(clock.now, 0)):
                arm.take("sub", "the-app", "POST")
            for answer in [answer for answer in answers if answer[0] <= clock.now]:
                answers.remove(answer)
                _, n, item, decision = answer
                if decision.allowed:
                    pacing.hook(pacers[n], KEY)(Answer(decision.headers))
                else:
                    pacers[n].throttled(KEY, decision.retry_after)
                    back(n, clock.now + decision.retry_after, item, None)
            for n, pacer in enumerate(pacers):
                room = in_flight - sum(1 for answer in answers if answer[1] == n)
                for entry in [entry for entry in waiting[n] if entry[0] <= clock.now][:max(0, room)]:
                    waiting[n].remove(entry)
                    _, item, slot = entry
                    wait = pacer.acquire(KEY, slot=slot) if anywhere else pacer.acquire(KEY, item=item)
                    if wait > 0:
                        back(n, clock.now + wait, item, None if isinstance(wait, pacing.Later) else clock.now + wait)
                        if deferred is not None:
                            deferred[item] += 1
                        continue
                    decision = arm.take("sub", "the-app", "POST")
                    calls, throttled = calls + 1, throttled + ([] if decision.allowed else [clock.now])
                    answered = round(clock.now + (random.uniform(0.05, latency) if spread else latency), 2)
                    answers.append((answered, n, item, decision))
            clock.now = round(clock.now + 0.01, 2)
    random.setstate(before)
    return calls, throttled, clock.now


def test_processes_pacing_one_bucket_leave_each_other_its_refill_and_keep_429s_rare():
    """Each process learns from ARM's counts what the others spend (and, from a 429, at once that they spend more
    than it allowed for), and hands out slots at its share of the refill: together they start at ARM's rate, and
    up to 40 instances (the two queue functions at infra/'s cap of 20 each) meet a 429 on under 5 % of their calls,
    almost all while they learn (0 %, 1.1 %, 0 %, 0.4 %, 3.1 % with 1, 3, 8, 16, 40 processes; 80: 12.5 %, hence
    that cap). Before (20 calls each before
    ARM's first answer, a call back at its slot going down to the bucket's last token, a 429 teaching nothing): 2.1 %
    with three, 14 % with eight, 25 % with 16, 63 % with 40, over half of the last long after they had measured
    each other."""
    items = 2400
    floor = (items - 200) / 10  # ARM's 200 at once, then 10 a second
    for processes in (1, 3, 8, 16, 40):
        calls, throttled, took = share_one_bucket(processes, items)
        learned = [moment for moment in throttled if moment >= 4 * pacing.OTHERS_WINDOW_SECONDS]
        assert len(throttled) < 0.05 * calls and len(learned) < 0.005 * calls and took < floor * 1.1, (
            processes, calls, len(throttled), len(learned), took)


def test_a_start_held_back_is_deferred_once_or_twice_not_again_and_again():
    """Each deferral is a message sent (or a due row moved): one process with a backlog defers each start about
    once, and two sharing a bucket a few times (a slot, a 429 while they learn, a wait beyond the slots' horizon).
    When a stale count at the margin let slots still held be handed out again, one process deferred each of 1,200
    starts 22 times; after another caller's burst of 60, one start 395 times."""
    from collections import Counter

    for processes, items, spent, most, per_item in ((1, 1200, None, 5, 2), (1, 2400, {40.0: 60}, 5, 2.2),
                                                    (2, 1250, None, 16, 4)):
        deferred = Counter()
        share_one_bucket(processes, items, anywhere=processes > 1, deferred=deferred, spent=spent)
        assert max(deferred.values()) <= most and sum(deferred.values()) <= per_item * items, (
            processes, spent, max(deferred.values()), sum(deferred.values()))


def test_after_a_quiet_spell_slots_handed_out_long_ago_hold_no_call_back():
    """Slots handed out to a backlog that was then settled elsewhere: a minute later the bucket has room again, and
    a fresh call goes at once (it waited 26 s behind them)."""
    clock = Clock()
    pacer = pacing.Pacer(10, 20, clock=clock)
    pacer.observed(KEY, 100)
    clock.now += 6
    pacer.observed(KEY, 160)  # a window measured: no one else spends this bucket, so slots go as far ahead as needed
    waits = [pacer.acquire(KEY, item=f"i{n}") for n in range(1000)]
    assert waits[-1] > 80  # the last slot 86 s ahead
    clock.now += 60
    assert pacer.acquire(KEY) == 0.0


def test_answers_out_of_order_are_not_taken_for_others_spending():
    """A count heard later may be older: one process alone, its answers anywhere from 50 ms to 1.5 s late,
    keeps ARM's whole rate and meets no 429 (read count by count, its own calls looked like others')."""
    calls, throttled, took = share_one_bucket(1, 1200, latency=1.5, spread=True)
    assert throttled == [] and took < (1200 - 200 + 20) / 10 * 1.05, (calls, len(throttled), took)  # (20: the margin)


def test_two_processes_keep_to_arms_rate_to_the_end_when_deferred_items_come_back_to_either():
    """Queue messages come back to whichever process takes them. Near the end every item left holds a slot, and
    the slots one process handed out at its half of the rate run on after the other's have run out: with slots
    40 s ahead, 1,250 starts went at 85 % of ARM's rate on one of these seeds (92-97 % on the others); 20 s
    ahead, 93-98 % on all four."""
    for seed in (1, 2, 4, 5):
        calls, throttled, took = share_one_bucket(2, 1250, anywhere=True, seed=seed)
        assert 1250 / (200 + 10 * took) >= 0.9 and len(throttled) < 0.02 * calls, (seed, calls, len(throttled), took)


def test_a_process_that_has_seen_it_is_alone_gives_each_call_its_slot_however_far_ahead():
    """No one else spending (a measured window says so), nothing can change its share: a backlog of a thousand
    is deferred once each, to slots a tenth of a second apart, not asked again every SLOT_HORIZON_SECONDS."""
    clock = Clock()
    pacer = pacing.Pacer(10, 20, clock=clock)
    pacer.observed(KEY, 10)
    clock.now += pacing.OTHERS_WINDOW_SECONDS + 1
    pacer.observed(KEY, 10 + 10 * (pacing.OTHERS_WINDOW_SECONDS + 1))  # all the refill still there: alone
    pacer.observed(KEY, 0)  # (then this process spent it)
    waits = [pacer.acquire(KEY, item=f"i{n}") for n in range(1000)]
    assert not any(isinstance(wait, pacing.Later) for wait in waits)
    assert waits[-1] - waits[-2] == pytest.approx(0.1) and waits[-1] > 90


def test_a_quiet_spell_is_not_taken_for_others_spending():
    """Ten minutes without a call: the bucket filled up and the refill went to waste, not to others."""
    clock = Clock()
    pacer = pacing.Pacer(10, 20, clock=clock)
    pacer.observed(KEY, 100)
    clock.now += 600
    pacer.observed(KEY, 199)
    pacer.observed(KEY, 0)
    waits = [pacer.acquire(KEY) for _ in range(5)]
    assert waits[-1] - waits[-2] == pytest.approx(0.1)  # its whole share: one slot each tenth of a second


def test_a_count_too_long_to_be_one_is_no_count():
    pacer = pacing.Pacer(10, 20, clock=Clock())
    [pacer.acquire(KEY) for _ in range(20)]
    pacing.hook(pacer, KEY)(Answer({"x-ms-ratelimit-remaining-subscription-writes": "9" * 400}))  # float() overflows
    assert pacer.acquire(KEY) == 0.0  # an answer without a count: its blind slot is free again


def test_no_slot_is_handed_out_far_ahead_and_a_later_wait_holds_none():
    clock = Clock()
    pacer = pacing.Pacer(10, 20, clock=clock)
    pacer.observed(KEY, 0)
    waits = [pacer.acquire(KEY, item=f"i{n}") for n in range(1000)]
    slotted = [wait for wait in waits if not isinstance(wait, pacing.Later)]
    # The first once the margin (20) has refilled, 2 s on; then one each 1/10 s, up to the horizon.
    assert len(slotted) == pytest.approx((pacing.SLOT_HORIZON_SECONDS - 2) * 10, abs=2)
    assert max(slotted) <= pacing.SLOT_HORIZON_SECONDS + 0.01
    later_waits = waits[len(slotted):]
    assert all(isinstance(wait, pacing.Later) for wait in later_waits)  # beyond: ask again, spread out
    assert pacing.SLOT_HORIZON_SECONDS / 2 <= min(later_waits) and len(set(later_waits)) > 1
    with pytest.raises(UpstreamThrottled) as deferred:
        pacer.go_or_defer(KEY, clock.now, "one more", "paced")
    assert deferred.value.slot is None  # it comes back as a fresh call, holding nothing


def later(created, seconds=1):
    return datetime.fromisoformat(created["expires_at"].replace("Z", "+00:00")) + timedelta(seconds=seconds)


def due_rows(pause_id):
    far = datetime.now(timezone.utc) + timedelta(days=3)
    return [due for due in get_due_index().due(far) if due.pause_id == pause_id]


@pytest.mark.integration
def test_a_start_arm_throttles_is_deferred_to_retry_after_never_counted_and_holds_back_nothing_else(api, adf):
    throttled = api.created(expires_in=60, on_timeout="restart")
    expiring = api.created(expires_in=60)
    adf.inject("createRun", "before", status=429, code="SubscriptionRequestsThrottled", retry_after=30)
    assert sweep.sweep(later(expiring)) == {"deferred": 1, "expired": 1}  # (expiring's expiry is the later one)
    assert api.record(expiring["pause_id"])["status"] == "expired"
    record = api.record(throttled["pause_id"])
    assert record["status"] == "pending" and adf.runs == []
    [row] = due_rows(throttled["pause_id"])
    assert row.attempts == 0 and get_due_index().due_at(row) >= later(expiring, 29)
    assert sweep.sweep(later(expiring, 10)) == {}  # not before Retry-After
    assert sweep.sweep(later(expiring, 45)) == {"restarted": 1}
    [run] = adf.runs
    assert run["parameters"]["pause_id"] == throttled["pause_id"]


@pytest.mark.integration
def test_a_run_lookup_arm_throttles_while_reconciling_is_deferred_never_counted(api, adf, configure):
    """queryPipelineRuns is a write to ARM: throttled while the timer reconciles a stale claim, it costs time."""
    configure(STALE_CLAIM_SECONDS="600", RUN_LOOKUP_RETRY_SECONDS="0")
    created = api.created()
    adf.inject("createRun", "after", status=504, code="GatewayTimeout")
    adf.inject("queryPipelineRuns", "before", status=403, code="AuthorizationFailed")
    assert api.decide("restart", created["token"]).status_code == 502  # the run's fate unknown: the claim stays
    stale = datetime.now(timezone.utc) + timedelta(minutes=11)
    adf.inject("queryPipelineRuns", "before", status=429, code="SubscriptionRequestsThrottled", retry_after=30)
    started = time.monotonic()
    assert sweep.sweep(stale) == {"deferred": 1}
    assert time.monotonic() - started < 5  # handed back at once, not waited out in the SDK
    assert [row.attempts for row in due_rows(created["pause_id"])] in ([0], [0, 0])  # (the expiry's row too)
    assert api.record(created["pause_id"])["status"] == "restarting"
    assert sweep.sweep(stale + timedelta(seconds=45)) == {"reconciled": 1}
    record = api.record(created["pause_id"])
    assert record["status"] == "restarted" and record["run_id"] == adf.runs[0]["runId"] and len(adf.runs) == 1


@pytest.mark.integration
def test_a_start_waits_before_claiming_while_the_bucket_looks_nearly_empty(api, adf, table):
    created = api.created(expires_in=60, on_timeout="restart")
    target = PipelineTarget(TARGET["subscription_id"], TARGET["resource_group"], TARGET["factory_name"],
                            TARGET["pipeline_name"])
    get_adf().pacer.observed(pacing_key(target), 2, later(created).timestamp())  # under the margin
    assert sweep.sweep(later(created)) == {"deferred": 1}
    record = api.record(created["pause_id"])
    stored = table.get_entity(created["pause_id"], "pause")
    assert record["status"] == "pending" and not {"claim_id", "claimed_at"} & set(stored) and adf.runs == []
    get_adf().pacer.observed(pacing_key(target), 150, later(created, 60).timestamp())
    assert sweep.sweep(later(created, 60)) == {"restarted": 1} and len(adf.runs) == 1


@pytest.mark.integration
def test_a_persons_click_arm_throttles_waits_briefly_then_is_told_to_try_again(api, adf, configure):
    configure(ARM_MAX_RETRY_AFTER_SECONDS="0.1")
    created = api.created()
    adf.inject("createRun", "before", status=429, code="SubscriptionRequestsThrottled", retry_after=30)
    response = api.decide("restart", created["token"])
    assert response.status_code == 502 and api.json(response)["code"] == "upstream_throttled"
    assert "try again in a moment" in api.json(response)["detail"] and adf.runs == []
    assert api.record(created["pause_id"])["status"] == "pending"
    assert api.decide("restart", created["token"]).status_code == 200 and len(adf.runs) == 1  # the link still works


def test_calls_arm_throttled_are_not_counted_as_spent_by_this_process():
    """ARM takes no token for a call it throttles: counted as this process's own, 4 throttled calls of 10 would hide
    4 of what the others spent in the window (measured 4.3 a second, not 5), and the process would hand out slots
    at 5.7 a second, not its 5."""
    clock = Clock()
    pacer = pacing.Pacer(10, 20, clock=clock)
    pacer.observed(KEY, 190)
    clock.now += pacing.OTHERS_WINDOW_SECONDS + 1
    pacer.observed(KEY, 100)  # a window begins (the first one began full: not measured)
    assert [pacer.acquire(KEY) for _ in range(10)] == [0.0] * 10
    for _ in range(4):
        pacer.throttled(KEY, 1)  # (the halving a 429 makes at once is replaced by the window's measure)
    clock.now += pacing.OTHERS_WINDOW_SECONDS + 1
    spent_by_others = 5 * (pacing.OTHERS_WINDOW_SECONDS + 1)
    pacer.observed(KEY, 100 + 10 * (pacing.OTHERS_WINDOW_SECONDS + 1) - 6 - spent_by_others)  # 6 of its 10 counted
    pacer.observed(KEY, 0)
    waits = [pacer.acquire(KEY) for _ in range(5)]
    assert waits[-1] - waits[-2] == pytest.approx(1 / 5)  # its share: ARM's 10 a second less the others' 5
