"""Pace the app's background ARM calls (createRun from the timer or the queue, and the reads of adf_run
checks) to what ARM allows.

Azure Resource Manager limits writes with a token bucket per subscription and principal (200, refilled
at 10 a second; reads 250, 25 a second: Microsoft Learn, "Understand how Azure Resource Manager throttles
requests"). Every answer says how many remain (`x-ms-ratelimit-remaining-subscription-writes`, or
`-reads`), and an empty bucket answers 429 with Retry-After and does not process the request. One
Pacer keeps one kind: the gateway has one for writes and one for reads. Throttling must cost time, never a
failed pause, so background work asks here before it claims a pause: while the bucket looks nearly
empty it is told how long to wait, and defers the item by that much instead of calling.

The estimate is per process: the last remaining count ARM reported for the (tenant, subscription) (the
lower of the principal's and the subscription's, `-global-`, which every principal in it spends),
refilled since at this process's share of ARM's rate, minus the calls this process started since. Other
processes and instances spend the same bucket: over a few seconds, the refill less this process's own
calls less what the bucket gained is theirs (`_Others`), so each process learns what the others spend a
second and keeps the rest of the refill for its own slots (together, ARM's rate; three processes at the
whole rate each met a 429 on 9 % of their calls). Slots go no further ahead than SLOT_HORIZON_SECONDS,
since what the others spend changes, and since a deferred item comes back to whichever process takes its
message: near the end of a backlog, the slots one process handed out at its share run on after the others'
have run out (40 s ahead, two processes' last starts went at half of ARM's rate for up to 40 s). Every
call, a deferred one back at its slot too, leaves a margin (ARM_WRITES_LOW_WATER) for the calls the others
have in flight. A 429 says the others spend more than this process allowed for: its share is halved at once
(a window measured later gives back what they do not spend), and its Retry-After holds every background call to
that subscription back until it has passed. Until ARM's first answer only BLIND_CALLS go from the queue. So a
scale-out of many new instances, each taking ARM's whole rate for itself until it has measured the others, stays
under 5 % of 429s (simulated with 40: 3 %; 63 % before those three rules). The queue behind the slots moves up by
the room ARM's count shows above the margin, so that a held-back item is deferred about once, not again and
again. A person's click never waits here.
"""

import contextlib
import contextvars
import random
import threading
import time
from dataclasses import dataclass, field
from typing import NamedTuple

from shared.errors import UpstreamThrottled

WRITES, READS = "writes", "reads"  # the two kinds of ARM's buckets, one Pacer each (shared.targets.adf)
# What every ARM answer says remains of each kind: of this principal's bucket, and of the subscription's, which
# all its principals share (15 times as large); a service that overrides ARM's limits sends `-resource-requests`
# instead of both.
REMAINING = {WRITES: "x-ms-ratelimit-remaining-subscription-writes",
             READS: "x-ms-ratelimit-remaining-subscription-reads"}
REMAINING_GLOBAL = {kind: header.replace("-subscription-", "-subscription-global-")
                    for kind, header in REMAINING.items()}
REMAINING_OVERRIDDEN = "x-ms-ratelimit-remaining-subscription-resource-requests"
OTHERS_WINDOW_SECONDS = 5  # what the others spend is measured over this long
SLOT_HORIZON_SECONDS = 20  # while others spend the bucket (or may), slots go this far ahead at most
MIN_SHARE = 1 / 16  # however much the others spend, this process keeps this share of the refill
# Before ARM has said anything of a bucket, at most this many calls go (and no more than the margin) where settles
# are spread over instances (`background(spread=True)`): every instance a scale-out adds starts blind, and 20 each
# from 32 instances were 440 calls more than the bucket held. (The timer alone settles in one process, and a start
# it defers waits for its next run: it goes blind up to the margin.)
BLIND_CALLS = 4
UNANSWERED_SECONDS = 60  # a call started while nothing is known of its bucket has ended by then, answered or not
SLOT_MEMORY_SECONDS = 60  # a remembered slot this far past is forgotten (the item was settled elsewhere)
MAX_SLOTS_REMEMBERED = 20_000


@dataclass
class _Others:
    """What the other processes spend of one bucket a second, from ARM's counts over windows of OTHERS_WINDOW_SECONDS:
    the refill of a window, less the calls this process started in it, less what the bucket gained, is theirs.
    Answers come back out of order (a count heard later may be older), so the bucket's level at either end of
    a window is the lowest count heard in the second before."""

    rate: float = 0.0
    start: float | None = None  # when the window began
    level: float = 0.0          # the bucket then
    own: int = 0                # the calls this process started since
    low: float = 0.0            # the lowest count heard lately
    low_at: float = -1e9
    most: float = 0.0           # the most ARM ever said remains (about the bucket's size, which it never passes)
    measured: bool = False      # a window has been measured

    def heard(self, remaining: int, now: float, refill: float) -> None:
        if remaining <= self.low or now - self.low_at > 1.0:
            self.low, self.low_at = float(remaining), now
        self.most = max(self.most, float(remaining))
        if self.start is not None and now - self.start < OTHERS_WINDOW_SECONDS:
            return
        elapsed = now - self.start if self.start is not None else 0.0
        # Not measured: a window that began with the bucket full, or one stretched over a quiet spell (the
        # bucket may have filled up in it): the refill then was wasted, not spent.
        if self.start is not None and self.level < self.most - 1 and elapsed <= 2 * OTHERS_WINDOW_SECONDS:
            self.rate = max(0.0, refill * elapsed - self.own - (self.low - self.level)) / elapsed
            self.measured = True
        self.start, self.level, self.own = now, self.low, 0


@dataclass
class _Bucket:
    remaining: float | None = None  # as last estimated (None: nothing heard from ARM yet)
    at: float = 0.0                 # when (epoch seconds: the timer's `now` may be given, in tests moved)
    blocked_until: float = 0.0      # a 429's Retry-After
    next_slot: float = 0.0          # when the next deferred write may go (slots handed out 1/refill apart)
    last_slot: float = 0.0          # the end of the slots handed out (next_slot, less what ARM's count has room for)
    blind: int = 0                  # writes started before ARM said anything of this bucket
    others: _Others = field(default_factory=_Others)  # what other processes spend of it


class Later(float):
    """A wait that holds no slot: the call asks again after it, as a fresh one."""


class Slot(NamedTuple):
    """When a deferred item may call again, as one pacer gave it: it holds with that pacer only (a read slot
    lets no write past the low water mark)."""
    kind: str  # WRITES or READS
    at: float


class Pacer:
    def __init__(self, refill_per_second: float, low_water: float, kind: str = WRITES, clock=time.time):
        self.kind = kind
        self._refill, self._low = refill_per_second, low_water
        # The calls that go before ARM's first count, settled from the queue or not: at least one (or none ever
        # would), at most the margin.
        self._blind = {True: max(1, min(low_water, BLIND_CALLS)), False: max(1, low_water)}
        self._clock = clock
        self._buckets: dict[tuple, _Bucket] = {}
        self._slots: dict[str, float] = {}  # item -> the slot it was given, for work that cannot carry its slot
        self._lock = threading.Lock()

    def _estimate(self, bucket: _Bucket, now: float) -> float | None:
        """What remains for this process: refilled at its own share of ARM's rate (the others spend the rest)."""
        if bucket.remaining is None:
            return None
        return bucket.remaining + (now - bucket.at) * self._own_rate(bucket)

    def _catch_up(self, bucket: _Bucket, level: float, now: float) -> None:
        """Tokens above the margin are room for fresh writes now: the queue behind the slots handed out moves up
        by as many (from its end as handed out, so a count heard again is not counted twice)."""
        surplus = max(0.0, level - self._low)
        bucket.next_slot = max(now, bucket.last_slot - surplus / self._own_rate(bucket))

    def acquire(self, key: tuple, now: float | None = None, slot: float | None = None,
                item: str | None = None, cost: int = 1) -> float:
        """0 when `cost` calls may go now (counted against the estimate), else the seconds to wait first.

        A call that must wait is given a slot of its own, 1/refill after the previous one, so that the
        calls held back come back one by one at the rate the bucket refills rather than all at once:
        each is deferred once, not again and again (slots are handed out at this process's share of the refill;
        unless it has seen it is alone, SLOT_HORIZON_SECONDS ahead at most, and a call beyond is told to ask
        `Later`, without a slot). Coming back at its `slot`, a call goes ahead of the fresh ones, as long as
        the low water mark is left, as every call leaves it: for the calls other instances have in flight. Work
        that cannot carry its slot (a due-index row, moved to the second) names its `item` instead: the slot
        given to it is remembered here for a while, and an item back early is told the rest of its wait, not
        given a new slot."""
        with self._lock:
            now = self._clock() if now is None else now
            if slot is None and item is not None:
                slot = self._slots.get(item)
                if slot is not None and slot < now - SLOT_MEMORY_SECONDS:  # from long ago: not held any more
                    del self._slots[item]
                    slot = None
            bucket = self._buckets.setdefault(key, _Bucket())
            estimate = self._estimate(bucket, now)
            if estimate is not None:
                self._catch_up(bucket, estimate, now)  # (after a quiet spell, slots handed out long ago hold none back)
            if estimate is None and bucket.blind and now - bucket.at >= UNANSWERED_SECONDS:
                bucket.blind = 0  # calls whose answers (without a count) were lost: none is in flight by now
            if now >= bucket.blocked_until:
                holds = slot is not None and now >= slot - 0.05
                floor = self._low + cost - 1
                # Until ARM's first count: a few calls (one lot, however many, when none is in flight).
                if estimate is None and (bucket.blind + cost <= self._blind[_SPREAD.get()] or not bucket.blind):
                    bucket.blind += cost
                    bucket.at = now
                    return self._went(bucket, item, cost)
                if estimate is not None and estimate >= floor - 1e-6 and (holds or bucket.next_slot <= now):
                    bucket.remaining, bucket.at = estimate - cost, now
                    return self._went(bucket, item, cost)
            if slot is not None and slot - 0.05 > now and slot >= bucket.blocked_until:
                return slot - now + 0.001  # back before its slot: the rest of its wait
            own = self._own_rate(bucket)
            short = 0.0 if estimate is None else max(0.0, self._low + cost - 1 - estimate) / own
            given = max(bucket.next_slot, bucket.blocked_until, now + short)
            alone = bucket.others.measured and bucket.others.rate < self._refill * MIN_SHARE
            if given - now > SLOT_HORIZON_SECONDS and not alone:  # what the others spend changes: no slot this far
                return Later(SLOT_HORIZON_SECONDS * random.uniform(0.5, 1.0))  # ahead; ask again then (not all at once)
            bucket.next_slot = bucket.last_slot = given + cost / own
            if item is not None:
                if len(self._slots) >= MAX_SLOTS_REMEMBERED:  # the oldest half: items settled elsewhere
                    self._slots = dict(list(self._slots.items())[MAX_SLOTS_REMEMBERED // 2:])
                self._slots.pop(item, None)
                self._slots[item] = given  # (insertion order is age order)
            return given - now + 0.001

    def _own_rate(self, bucket: _Bucket) -> float:
        """The refill this process may hand out as slots: ARM's, less what the others are seen to spend."""
        return max(self._refill - bucket.others.rate, self._refill * MIN_SHARE)

    def _went(self, bucket: _Bucket, item: str | None, cost: int) -> float:
        bucket.others.own += cost
        if item is not None:
            self._slots.pop(item, None)
        return 0.0

    def go_or_defer(self, key: tuple, now: float, item: str, why: str, cost: int = 1) -> None:
        """Return when `cost` calls may go now; else raise UpstreamThrottled(`why`) carrying the Slot given, for
        the item to be deferred to it (it comes back holding that slot: `holding`)."""
        wait_for = self.acquire(key, now, slot_held(self.kind), item, cost)
        if wait_for > 0:
            paced = UpstreamThrottled(why, wait_for)
            paced.slot = None if isinstance(wait_for, Later) else Slot(self.kind, now + wait_for)  # it goes then
            raise paced

    def observed(self, key: tuple, remaining: int, now: float | None = None) -> None:
        """What an answer from ARM said remains. Answers come back out of order and before the writes this
        process started since are counted, so a count a little above the estimate is taken as stale: the
        lower of the two stands (others spending the same bucket show as a lower count); one well above it
        (the bucket refilled faster, or was reset) is believed, less a margin for writes still in flight."""
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket())
            now = self._clock() if now is None else now
            estimate = self._estimate(bucket, now)
            bucket.others.heard(remaining, now, self._refill)
            if estimate is None:  # the first answer: the other writes started blind are still in flight
                bucket.remaining, bucket.blind = float(remaining - max(0, bucket.blind - 1)), 0
            elif remaining > estimate + self._low:
                bucket.remaining = float(remaining) - self._low
            else:
                bucket.remaining = min(float(remaining), estimate)
            bucket.at = now
            # (Moving the queue up to now whenever a count reached the margin, or twice it, handed slots still held
            # out again: their holders, keeping the margin, were deferred again and again, 22 times for each of
            # 1,200 starts in one process, up to 395 times for one start after another caller's burst.)
            self._catch_up(bucket, bucket.remaining, now)

    def answered(self, key: tuple) -> None:
        """An answer that said nothing of what remains: while nothing is known of the bucket, its call is no
        longer in flight (else calls started blind would be held back for good once ARM stopped counting)."""
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket())
            if bucket.remaining is None and bucket.blind > 0:
                bucket.blind -= 1

    def throttled(self, key: tuple, retry_after: float) -> None:
        """ARM answered 429: nothing goes to that subscription until Retry-After has passed. Others spend more of
        the bucket than this process allowed for, so its share of the refill is halved at once (the next window
        measured gives back what they do not spend): each instance a scale-out adds takes ARM's whole refill for
        itself until it has measured a window, and 32 of them met a 429 on half their calls. Once per Retry-After:
        halved for each 429 of calls in flight together, one process was held to a sixteenth for 40 s."""
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket())
            now = self._clock()
            if now >= bucket.blocked_until:  # once for the calls in flight together, not for each of their 429s
                bucket.others.rate = max(bucket.others.rate, self._refill - self._own_rate(bucket) / 2)
            # ARM did not count a throttled call: counted as this process's own, it would hide as much of what the
            # others spend, and this process would take that much more of the refill in the next window.
            bucket.others.own = max(0, bucket.others.own - 1)
            bucket.blocked_until = max(bucket.blocked_until, now + retry_after)
            bucket.remaining, bucket.at = 0.0, now + retry_after



_BACKGROUND = contextvars.ContextVar("background", default=False)


_SPREAD = contextvars.ContextVar("spread", default=False)


@contextlib.contextmanager
def background(spread: bool = False):
    """Calls made inside are the app's own work (the timer, the queue), not a person's: a 429 is not
    waited out in the SDK but handed back at once, for the item to be deferred. `spread`: settled from the queue,
    on as many instances as the host scales to, each starting blind: only BLIND_CALLS go before ARM's first count
    (the timer alone is one process, whose deferred items wait for its next run: up to the margin)."""
    token = _BACKGROUND.set(True)
    spreading = _SPREAD.set(True) if spread else None
    try:
        yield
    finally:
        if spreading is not None:
            _SPREAD.reset(spreading)
        _BACKGROUND.reset(token)


def in_background() -> bool:
    return _BACKGROUND.get()


_SLOT = contextvars.ContextVar("slot", default=None)


@contextlib.contextmanager
def holding(slot: Slot | None):
    """The work inside comes back at the slot it was given (`Pacer.acquire`)."""
    token = _SLOT.set(slot)
    try:
        yield
    finally:
        _SLOT.reset(token)


def slot_held(kind: str) -> float | None:
    """The time of the slot the work holds with the pacer of `kind`, if it holds one."""
    slot = _SLOT.get()
    return slot.at if slot is not None and slot.kind == kind else None


def hook(pacer: Pacer, key: tuple):
    """A raw-response hook that tells the pacer what each answer says remains of its kind: the lower of the
    principal's and the subscription's counts (others may have spent the subscription's)."""
    headers = (REMAINING[pacer.kind], REMAINING_GLOBAL[pacer.kind], REMAINING_OVERRIDDEN)

    def observe(response) -> None:
        answer = response.http_response.headers
        counts = [count for count in (_count(answer.get(name)) for name in headers) if count is not None]
        if counts:
            pacer.observed(key, min(counts))
        else:
            pacer.answered(key)
    return observe


def _count(text: str | None) -> int | None:
    """A header's count: plain ASCII digits only (`"²".isdigit()` is true, and int() refuses it), and few of
    them (a thousand digits make float() overflow; ARM's buckets hold hundreds)."""
    text = (text or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None
