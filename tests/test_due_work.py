"""Due work through the queue (shared.due_work, shared.storage.due_queue) against Azurite's Queue service and
the strict ADF stand-in: the timer leases and enqueues each due item once, a message settles it through
the same engine, a message for work no longer due (or a second copy) changes nothing, throttling re-sends
the message for later without spending a dequeue, and the last dequeue marks the pause failed, saying why."""

import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta

import pytest

from shared import due_work
from shared.lifecycle.model import SweepOutcome
from shared.settings import get_settings
from shared.storage.due_index import get_due_index

pytestmark = pytest.mark.integration


@pytest.fixture
def queue(configure, azurite):
    """A fresh due-work queue for the test; its raw client, to look at the messages."""
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy

    name = f"due-{uuid.uuid4().hex[:12]}"
    configure(DUE_WORK_QUEUE=name)
    client = QueueClient.from_connection_string(azurite.connection_string, name,
                                                message_decode_policy=TextBase64DecodePolicy())
    yield client
    client.close()


def later(created, seconds=1):
    return datetime.fromisoformat(created["expires_at"].replace("Z", "+00:00")) + timedelta(seconds=seconds)


def take(queue, visibility=30) -> list:
    """Every message visible now (taken: invisible for `visibility` seconds)."""
    return [(m.content, m.dequeue_count) for m in queue.receive_messages(messages_per_page=32,
                                                                          visibility_timeout=visibility)]


def test_due_items_are_enqueued_once_and_settled_by_their_messages(api, adf, queue):
    expiring = [api.created(expires_in=60) for _ in range(3)]
    restarting = api.created(expires_in=60, on_timeout="restart")
    moment = later(restarting)
    assert due_work.enqueue_due(moment) == {"enqueued": 4}
    assert due_work.enqueue_due(moment) == {}  # leased: out of the timer's sight while on the queue
    assert list(get_due_index().due(moment)) == []  # (its query does not even read them)
    messages = take(queue)
    assert len(messages) == 4 and all(count == 1 for _, count in messages)
    outcomes = sorted(due_work.settle(text, count, moment).value for text, count in messages)
    assert outcomes == ["expired", "expired", "expired", "restarted"]
    assert [api.record(p["pause_id"])["status"] for p in expiring] == ["expired"] * 3
    [run] = adf.runs
    assert run["parameters"]["pause_id"] == restarting["pause_id"]
    assert due_work.enqueue_due(moment) == {}  # nothing due any more


def test_a_start_from_the_queue_is_paced_as_one_of_many_instances_and_the_timers_as_one(api, adf, queue,
                                                                                       configure, monkeypatch):
    """Settled from the queue, a start is paced as the host scales the function out (each new instance goes only a
    few calls blind); settled by the timer alone (no queue), as one process's."""
    from shared import sweep
    from shared.targets import pacing

    spread, acquire = [], pacing.Pacer.acquire

    def noted(self, *args, **kwargs):
        spread.append(pacing._SPREAD.get())
        return acquire(self, *args, **kwargs)

    monkeypatch.setattr(pacing.Pacer, "acquire", noted)
    created = api.created(expires_in=60, on_timeout="restart")
    due_work.enqueue_due(later(created))
    [(text, count)] = take(queue)
    assert due_work.settle(text, count, later(created)) is SweepOutcome.RESTARTED and spread == [True]
    configure(DUE_WORK_QUEUE="")
    created = api.created(expires_in=60, on_timeout="restart")
    assert sweep.sweep(later(created)) == {"restarted": 1} and spread == [True, False]


def test_a_message_for_work_no_longer_due_and_a_second_copy_change_nothing(api, adf, queue):
    created = api.created(expires_in=60, on_timeout="restart")
    moment = later(created)
    due_work.enqueue_due(moment)
    [(text, _)] = take(queue)
    answers = []
    both = threading.Barrier(2)

    def settle():
        both.wait()
        answers.append(due_work.settle(text, 1, moment))

    threads = [threading.Thread(target=settle) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert SweepOutcome.RESTARTED in answers and len(adf.runs) == 1  # two copies at once: one run
    assert due_work.settle(text, 1, moment) is SweepOutcome.ALREADY_SETTLED  # its row is gone: dropped
    assert len(adf.runs) == 1


def test_an_expiry_and_a_callback_cost_the_table_requests_the_readme_counts(api, adf, queue, configure,
                                                                           monkeypatch):
    """Per item: its pause read (its due row is not: a pause past its expiry is decided whichever message comes),
    the decision written (a callback's claim, then what came of it), the status index and the due row's delete
    (counted at the SDKs' transport; settled one at a time, each sends its own batch transactions)."""
    from azure.core.pipeline.transport import RequestsTransport

    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1")
    name = f"counted-{uuid.uuid4().hex[:8]}"
    plain = api.created(expires_in=60)
    hooked = api.json(api.pause(expires_in=60, callBackUri=f"{adf.url}/_standin/callbacks/{name}"))
    moment = later(hooked, 2)
    due_work.enqueue_due(moment)
    messages = take(queue)
    sent, send = [], RequestsTransport.send

    def counted(self, request, **kwargs):
        sent.append((request.method, request.url.split("?")[0]))
        return send(self, request, **kwargs)

    monkeypatch.setattr(RequestsTransport, "send", counted)
    assert [due_work.settle(text, count, moment).value for text, count in messages] == ["expired", "expired"]
    monkeypatch.undo()
    pauses = f"/{get_settings().pauses_table}("
    reads = [url for method, url in sent if method == "GET"]
    assert [pauses in url for url in reads] == [True, True]
    assert Counter(method for method, _ in sent) == {"GET": 2, "PATCH": 3, "POST": 4}
    assert [api.record(p["pause_id"])["status"] for p in (plain, hooked)] == ["expired", "expired"]
    assert [c["callbackId"] for c in adf.callbacks].count(name) == 1
    assert due_work.enqueue_due(moment + timedelta(days=1)) == {}  # their rows are gone


def test_a_row_of_work_is_read_once_by_its_message(queue, adf, configure, monkeypatch):
    """A message for a row of work (a checkpoint's callback) reads its row once: the settle it is handed to uses
    the row the message read, not a second read of its own."""
    from datetime import timezone

    from azure.core.pipeline.transport import RequestsTransport

    from shared import outbox

    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1", CHECKPOINT_CALLBACK_DELAY_SECONDS="2")
    now, name = datetime.now(timezone.utc).replace(microsecond=0), f"cb-{uuid.uuid4().hex[:8]}"
    outbox.add(f"{adf.url}/_standin/callbacks/{name}", b'{"Output": {}}', now - timedelta(minutes=5))
    assert due_work.enqueue_due(now) == {"enqueued": 1}
    [(text, count)] = take(queue)
    reads, send = [], RequestsTransport.send

    def counted(self, request, **kwargs):
        if request.method == "GET":
            reads.append(request.url.split("?")[0])
        return send(self, request, **kwargs)

    monkeypatch.setattr(RequestsTransport, "send", counted)
    assert due_work.settle(text, count, now) is SweepOutcome.CHECKPOINT_CONTINUED
    monkeypatch.undo()
    assert len(reads) == 1 and f"/{get_settings().expiry_table}(" in reads[0]
    assert [c["callbackId"] for c in adf.callbacks].count(name) == 1


def rows_of(pause_id, moment):
    return [due for due in get_due_index().due(moment + timedelta(days=30)) if due.pause_id == pause_id]


def test_a_message_whose_row_is_gone_leaves_a_pause_not_yet_expired_alone(api, queue):
    """A message whose row another decision moved is dropped before anything is done: its pause is not acted on,
    and no row is forked from its key."""
    from shared.storage.due_queue import decode

    created = api.created(expires_in=60)
    moment = later(created)
    due_work.enqueue_due(moment)
    [(text, count)] = take(queue)
    get_due_index().remove(decode(text))  # moved by another decision
    assert due_work.settle(text, count, moment - timedelta(seconds=30)) is SweepOutcome.ALREADY_SETTLED
    assert api.record(created["pause_id"])["status"] == "pending"
    assert rows_of(created["pause_id"], moment) == []
    assert take(queue) == []


@pytest.mark.parametrize("again", ["a copy delivered again", "kept past its lease"])
def test_a_message_that_may_not_be_its_rows_one_is_dropped_though_its_pause_is_past_expiry(api, adf, queue,
                                                                                           configure, again):
    """A copy of a message whose first delivery was deferred (the row moved on), or a message kept past its lease
    (the timer sent the row again under a new key): its row gone, it is dropped before anything is done, not
    deferred by ARM's 429 onto a row of its own (a fork: two rows, two messages, two createRun tries a round)."""
    configure(DUE_QUEUE_LEASE_SECONDS="30")
    created = api.created(expires_in=60, on_timeout="restart")
    moment, now = later(created), later(created, 32)
    assert due_work.enqueue_due(moment) == {"enqueued": 1}
    adf.inject("createRun", "before", count=5, status=429, code="SubscriptionRequestsThrottled", retry_after=1)
    if again == "kept past its lease":
        assert due_work.enqueue_due(moment + timedelta(seconds=31)) == {"enqueued": 1}
        (first, _), (second, count) = take(queue)
    else:
        [(first, _)] = take(queue)
        second, count, now = first, 2, later(created, 20)  # within its lease, which the deferral renews
    outcomes = [due_work.settle(first, 1, now), due_work.settle(second, count, now)]
    assert sorted(outcome.value for outcome in outcomes) == ["already_settled", "deferred"]
    assert len(rows_of(created["pause_id"], moment)) == 1 and adf.runs == []


def sent_again(api, queue, configure):
    """A restart-mode pause past its expiry whose first message was kept past its 30 s lease, so the timer sent its
    row again under a new key: (the pause, when it fell due, now, the first message, the row's own message)."""
    configure(DUE_QUEUE_LEASE_SECONDS="30")
    created = api.created(expires_in=60, on_timeout="restart")
    moment, now = later(created), later(created, 32)
    assert due_work.enqueue_due(moment) == {"enqueued": 1}
    assert due_work.enqueue_due(moment + timedelta(seconds=31)) == {"enqueued": 1}
    (first, _), (second, _) = take(queue)
    return created, moment, now, first, second


def test_a_message_kept_past_its_lease_decides_its_pause_once_and_the_rows_own_then_finds_it_settled(
        api, adf, queue, configure):
    """A message whose row the timer sent again (its lease ran out) reads only the pause, past its expiry: it takes
    the decision, by the pause's conditional claim; the row's own message then finds the pause settled and removes
    the row. One run, no row left."""
    created, moment, now, first, second = sent_again(api, queue, configure)
    outcomes = [due_work.settle(first, 1, now), due_work.settle(second, 1, now)]
    assert [outcome.value for outcome in outcomes] == ["restarted", "already_settled"]
    assert len(adf.runs) == 1 and rows_of(created["pause_id"], moment) == []


def test_a_message_that_is_not_its_rows_one_does_not_fail_the_pause_on_its_last_dequeue(api, adf, queue, configure):
    """Refused on its last dequeue, a message whose row has moved on leaves the pause to the row's own message,
    which fails it saying why when its own dequeues run out."""
    created, moment, now, first, second = sent_again(api, queue, configure)
    adf.inject("createRun", "before", count=2, status=404, code="PipelineNotFound")
    assert due_work.settle(first, 5, now) is SweepOutcome.ALREADY_SETTLED
    assert api.record(created["pause_id"])["status"] == "pending"
    assert due_work.settle(second, 5, now) is SweepOutcome.FAILED
    record = api.record(created["pause_id"])
    assert record["status"] == "failed" and "5 attempts" in record["last_error"]


def test_a_message_not_its_rows_one_is_refused_once_not_on_every_dequeue(api, adf, queue, configure):
    """Refused (the pipeline is gone), a message whose row has moved on is dropped at once rather than raised for
    the host to deliver again: one createRun, not one a dequeue beside the row's own message's."""
    created, moment, now, first, second = sent_again(api, queue, configure)
    adf.inject("createRun", "before", count=20, status=404, code="PipelineNotFound")
    assert due_work.settle(first, 1, now) is SweepOutcome.ALREADY_SETTLED
    import requests

    with requests.get(f"{adf.url}/_standin/throttling", timeout=5) as answer:
        assert sum(row["answered"] + row["throttled"] for row in answer.json() if row["operation"] == "createRun") == 1
    assert api.record(created["pause_id"])["status"] == "pending" and rows_of(created["pause_id"], moment) != []


def test_a_scheduled_callback_started_by_a_message_not_its_rows_one_is_re_sent_on_schedule(api, adf, queue,
                                                                                            configure):
    """A scheduled start is decided long before its callback is sent: the re-send's schedule runs from the send
    (recorded with it), not from the decision. The first message, kept past its lease, starts the pause at the
    window's opening and its callback's answer is lost; the row the timer sent again does not send it again."""
    from shared import pauses
    from shared.validation import Decision
    from shared.web.http import Caller
    from tests.test_scheduled import EVENING, NIGHT, OPENING

    configure(DUE_QUEUE_LEASE_SECONDS="30", CALLBACK_ALLOWED_HOSTS="127.0.0.1")
    name = f"night-{uuid.uuid4().hex[:8]}"
    created = api.json(api.pause({"callBackUri": f"{adf.url}/_standin/callbacks/{name}", "start_window": NIGHT,
                                  "expires_in": 3 * 86400}))
    assert pauses.approve(created["token"], Decision(), Caller(None, None, None), now=EVENING)["status"] == "scheduled"
    assert due_work.enqueue_due(OPENING + timedelta(seconds=1)) == {"enqueued": 1}
    assert due_work.enqueue_due(OPENING + timedelta(seconds=32)) == {"enqueued": 1}
    (first, _), (second, _) = take(queue)
    adf.inject("callback", "after", status=500, count=1)
    outcomes = [due_work.settle(first, 1, OPENING + timedelta(seconds=33)),
                due_work.settle(second, 1, OPENING + timedelta(seconds=34))]
    assert [outcome.value for outcome in outcomes] == ["unconfirmed", "rescheduled"]
    assert [c["callbackId"] for c in adf.callbacks].count(name) == 1
    resend = OPENING + timedelta(seconds=33 + get_settings().limits.callback_redelivery_seconds)
    rows = sorted(get_due_index().due_at(row) for row in rows_of(created["pause_id"], OPENING))
    assert rows[:-1] == [resend] and rows[-1] > OPENING + timedelta(days=1)  # the re-send's; its expiry's


def test_a_message_the_queue_sdk_sent_twice_is_dropped_the_second_time(api, adf, queue, configure):
    """A send that landed but whose answer was lost is sent again by the SDK's retry: two messages for one row,
    each delivered once and within its lease. The second finds the row the first moved on gone."""
    configure(DUE_QUEUE_LEASE_SECONDS="30")
    created = api.created(expires_in=60, on_timeout="restart")
    moment, now = later(created), later(created, 20)
    assert due_work.enqueue_due(moment) == {"enqueued": 1}
    [(text, _)] = take(queue)
    adf.inject("createRun", "before", count=5, status=429, code="SubscriptionRequestsThrottled", retry_after=1)
    outcomes = [due_work.settle(text, 1, now), due_work.settle(text, 1, now + timedelta(seconds=1))]
    assert [outcome.value for outcome in outcomes] == ["deferred", "already_settled"]
    assert len(rows_of(created["pause_id"], moment)) == 1


def test_a_message_kept_past_its_lease_does_not_call_back_a_second_time(api, adf, queue, configure):
    """A callback that failed is re-sent on its schedule. The first message, kept past its lease, decides the pause
    (its row gone, it moves none); the row the timer sent again finds the callback unconfirmed but its re-send not
    due yet, and moves to when it is: one send, one row."""
    configure(DUE_QUEUE_LEASE_SECONDS="30", CALLBACK_ALLOWED_HOSTS="127.0.0.1")
    name = f"again-{uuid.uuid4().hex[:8]}"
    hooked = api.json(api.pause(expires_in=60, callBackUri=f"{adf.url}/_standin/callbacks/{name}"))
    moment, now = later(hooked), later(hooked, 32)
    assert due_work.enqueue_due(moment) == {"enqueued": 1}
    assert due_work.enqueue_due(moment + timedelta(seconds=31)) == {"enqueued": 1}
    (first, _), (second, _) = take(queue)
    adf.inject("callback", "after", status=500, count=1)
    outcomes = [due_work.settle(first, 1, now), due_work.settle(second, 1, now + timedelta(seconds=1))]
    assert [outcome.value for outcome in outcomes] == ["unconfirmed", "rescheduled"]
    assert [c["callbackId"] for c in adf.callbacks].count(name) == 1
    [row] = rows_of(hooked["pause_id"], moment)
    resend = datetime.fromisoformat(api.record(hooked["pause_id"])["decided_at"].replace("Z", "+00:00")) + \
        timedelta(seconds=get_settings().limits.callback_redelivery_seconds)
    assert get_due_index().due_at(row) == resend.replace(microsecond=0)


def test_throttling_sends_the_message_again_for_later_on_the_paced_queue_and_spends_no_dequeue(api, adf, queue,
                                                                                                azurite):
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy

    created = api.created(expires_in=60, on_timeout="restart")
    moment = later(created)
    due_work.enqueue_due(moment)
    [(text, count)] = take(queue)
    adf.inject("createRun", "before", status=429, code="SubscriptionRequestsThrottled", retry_after=1)
    assert due_work.settle(text, count, moment) is SweepOutcome.DEFERRED
    assert api.record(created["pause_id"])["status"] == "pending" and adf.runs == []
    # It comes back on the paced queue (not behind whatever the main queue holds), invisible until Retry-After.
    with QueueClient.from_connection_string(azurite.connection_string, queue.queue_name + "-paced",
                                            message_decode_policy=TextBase64DecodePolicy()) as paced:
        assert take(paced) == [] and take(queue) == []
        time.sleep(1.2)
        [(again, count)] = take(paced)
    assert take(queue) == []
    from shared.storage.due_queue import decode

    assert decode(again) == decode(text) and count == 1  # a new message: its dequeues start afresh
    assert due_work.settle(again, count, moment + timedelta(seconds=2)) is SweepOutcome.RESTARTED
    assert due_work.enqueue_due(moment + timedelta(seconds=2)) == {}


def test_the_last_dequeue_marks_the_pause_failed_saying_why(api, adf, queue):
    created = api.created(expires_in=60, on_timeout="restart")
    moment = later(created)
    due_work.enqueue_due(moment)
    [(text, _)] = take(queue)
    adf.inject("createRun", "before", count=100, status=400, code="BadRequest")
    for dequeue in range(1, 5):  # the host delivers it again after each failure
        with pytest.raises(Exception):
            due_work.settle(text, dequeue, moment)
        assert api.record(created["pause_id"])["status"] == "pending"
    assert due_work.settle(text, 5, moment) is SweepOutcome.FAILED
    record = api.record(created["pause_id"])
    assert record["status"] == "failed"
    assert "5 attempts" in record["last_error"] and "BadRequest" in record["last_error"]
    assert due_work.enqueue_due(moment) == {}


def test_a_lease_that_ran_out_sends_the_item_again(api, queue, configure):
    configure(DUE_QUEUE_LEASE_SECONDS="30")
    created = api.created(expires_in=60)
    moment = later(created)
    assert due_work.enqueue_due(moment) == {"enqueued": 1}
    assert due_work.enqueue_due(moment + timedelta(seconds=31)) == {"enqueued": 1}  # its message was lost?
    texts = [text for text, _ in take(queue)]
    assert len(texts) == 2 and texts[0] != texts[1] and all(created["pause_id"] in text for text in texts)
    assert {due_work.settle(text, 1, moment + timedelta(seconds=31)).value for text in texts} == \
        {"expired", "already_settled"}


def test_a_row_left_as_it_was_comes_back_within_a_timer_period_not_at_its_lease_end(queue, monkeypatch):
    """A row whose pause is not there (a create that failed half-way) is given MISSING_GRACE from when the timer
    found it due, not from its leased key, which lies DUE_QUEUE_LEASE_SECONDS ahead: it is dropped, not sent
    round the queue every lease for ever."""
    from datetime import timezone

    monkeypatch.setattr(due_work, "LOOK_AGAIN_SECONDS", 0)  # (60: a timer period)
    orphan, now = uuid.uuid4().hex, datetime.now(timezone.utc).replace(microsecond=0)
    get_due_index().add(orphan, now - timedelta(hours=1))
    assert due_work.enqueue_due(now) == {"enqueued": 1}
    [(text, count)] = take(queue)
    assert due_work.settle(text, count, now) is SweepOutcome.RESCHEDULED  # its pause may be being written
    [(again, count)] = take(queue)  # back after a timer period, not after the lease
    assert due_work.settle(again, count, now + timedelta(minutes=2)) is SweepOutcome.MISSING
    assert take(queue) == [] and due_work.enqueue_due(now + timedelta(days=1)) == {}  # the row is gone


def test_the_grace_runs_from_when_the_row_was_found_due_though_a_short_lease_moves_it_each_round(
        queue, configure, monkeypatch):
    """With a lease shorter than twice a timer period plus the grace, each look-again moves the row on; the
    messages say when it was found due, so the grace still runs out."""
    from datetime import timezone

    from shared.storage.due_queue import DueQueue

    configure(DUE_QUEUE_LEASE_SECONDS="200")
    send = DueQueue.send  # each message visible at once (the test moves `now` a timer period a look instead)
    monkeypatch.setattr(DueQueue, "send", lambda self, due, delay=0, *args: send(self, due, 0, *args))
    orphan, now = uuid.uuid4().hex, datetime.now(timezone.utc).replace(microsecond=0)
    get_due_index().add(orphan, now - timedelta(hours=1))
    due_work.enqueue_due(now)
    outcomes = []
    for look in range(5):
        [(text, count)] = take(queue)
        outcomes.append(due_work.settle(text, count, now + timedelta(seconds=60 * look)).value)
        if outcomes[-1] != "rescheduled":
            break
    assert outcomes == ["rescheduled", "rescheduled", "missing"]
    assert take(queue) == [] and due_work.enqueue_due(now + timedelta(days=1)) == {}


def test_a_callback_whose_send_is_in_progress_elsewhere_is_looked_at_again_after_a_timer_period(
        queue, adf, configure, monkeypatch):
    """Leased for 15 minutes, a checkpoint's callback whose send another instance claimed (and died making)
    would wait past the WebHook's own timeout (10 minutes by default); its message comes back instead."""
    from datetime import timezone

    from shared import outbox
    from shared.targets import callback

    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1", CHECKPOINT_CALLBACK_DELAY_SECONDS="2",
              CALLBACK_CONNECT_TIMEOUT_SECONDS="1", CALLBACK_READ_TIMEOUT_SECONDS="5")
    monkeypatch.setattr(due_work, "LOOK_AGAIN_SECONDS", 0)  # (60: a timer period)
    now, name = datetime.now(timezone.utc).replace(microsecond=0), f"cb-{uuid.uuid4().hex[:8]}"
    due, etag = outbox.add(f"{adf.url}/_standin/callbacks/{name}", b'{"Output": {}}', now - timedelta(minutes=5))
    get_due_index().take_send(due, etag, 1, now - timedelta(seconds=5))  # an instance claimed it, and died
    assert due_work.enqueue_due(now) == {"enqueued": 1}
    [(text, count)] = take(queue)
    assert due_work.settle(text, count, now) is SweepOutcome.RESCHEDULED
    [(again, count)] = take(queue)
    assert due_work.settle(again, count, now + callback.send_window()) is SweepOutcome.REDELIVERED
    assert [c["callbackId"] for c in adf.callbacks].count(name) == 1
    assert take(queue) == []


def test_a_row_moved_by_its_settle_is_not_sent_again(api, queue, table, monkeypatch):
    """A settle that moved its row (a decision in flight: due again once it is stale) leaves it to its new key."""
    monkeypatch.setattr(due_work, "LOOK_AGAIN_SECONDS", 0)
    read_row = type(get_due_index()).read_row
    created = api.created(expires_in=60)
    moment = later(created)
    due_work.enqueue_due(moment)
    [(text, count)] = take(queue)
    from azure.data.tables import UpdateMode

    table.update_entity({"PartitionKey": created["pause_id"], "RowKey": "pause", "status": "restarting",
                         "claimed_at": moment}, mode=UpdateMode.MERGE)
    reads = []
    monkeypatch.setattr(type(get_due_index()), "read_row", lambda self, due: reads.append(due) or read_row(self, due))
    assert due_work.settle(text, count, moment) is SweepOutcome.RESCHEDULED
    assert take(queue) == []
    assert len(reads) == 1  # whether it is still there; not again after moving it (it knows it moved it)


def test_the_timer_enqueues_with_a_queue_and_settles_itself_without_one(api, queue, configure, table,
                                                                       registered_functions):
    from datetime import timezone

    from azure.data.tables import UpdateMode

    def made_due():
        created = api.created(expires_in=60)
        past = datetime.now(timezone.utc) - timedelta(minutes=1)
        entity = table.get_entity(created["pause_id"], "pause")
        entity["expires_at"] = past  # as if it had been made a while ago
        table.update_entity(entity, mode=UpdateMode.REPLACE)
        get_due_index().add(created["pause_id"], past)
        return created["pause_id"]

    timer = registered_functions["expire_pauses"].get_user_function()
    queued = made_due()
    timer(None)
    assert api.record(queued)["status"] == "pending" and len(take(queue, 1)) == 1
    configure(DUE_WORK_QUEUE="")
    settled_here = made_due()
    timer(None)
    assert api.record(settled_here)["status"] == "expired"
    assert api.record(queued)["status"] == "pending"  # its message is on the queue: the timer leaves it be
    # Until its lease runs out: then the timer settles it too (its message, on a queue nothing reads now, no matter).
    from shared import sweep

    lease = timedelta(seconds=get_settings().limits.due_queue_lease_seconds)
    assert sweep.sweep(datetime.now(timezone.utc) + lease + timedelta(seconds=5)).get("expired") == 1
    assert api.record(queued)["status"] == "expired"


def test_host_json_holds_the_deliveries_the_app_counts_on():
    import json
    from pathlib import Path

    from shared.settings import Limits

    queues = json.loads((Path(__file__).resolve().parent.parent / "host.json").read_text())["extensions"]["queues"]
    assert queues["maxDequeueCount"] == Limits().queue_max_dequeue_count
    assert queues["batchSize"] == 16


def test_the_paced_queue_has_a_trigger_of_its_own_on_the_same_connection():
    from local_dev.queues import queue_functions

    import function_app

    # (The triggers' names were fixed when function_app was imported, with the tests' settings: tests/conftest.py.)
    env = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    found = {function.name: (function.queue_name, function.connection) for function in
             queue_functions(function_app.app, env)}
    main, connection = found["settle_due_work"]
    assert found["settle_paced_work"] == (main + "-paced", connection)

