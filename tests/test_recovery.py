"""Recovery (shared/lifecycle/recovery.py) settles what a decision left unfinished, and never starts or sends
anything new: a claim is stale STALE_CLAIM_SECONDS after it was made; reconciling a stale restart claim asks
Data Factory (the run found → recorded as the claim's outcome; none → the pause is released, and its link works
again; ADF cannot be asked → the claim stays), a stale callback claim ends failed; an unconfirmed callback is
re-sent byte for byte, once per call, by one timer instance, until confirmed or CALLBACK_REDELIVERY_ATTEMPTS sends;
and a pause the timer cannot settle is given up as failed unless it became final meanwhile."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared.clock import iso
from shared.errors import DamagedRecord
from shared.lifecycle.recovery import give_up, is_stale, reconcile, redeliver
from shared.storage import status_index
from shared.storage.pauses import get_store
from shared.storage.tables import Conflict
from shared.targets.outside import Unknown
from tests.support import TARGET, sdk_client

pytestmark = pytest.mark.integration

FAST = {"ARM_READ_TIMEOUT_SECONDS": "0.5", "CALLBACK_READ_TIMEOUT_SECONDS": "0.5", "ARM_RETRY_TOTAL": "0",
        "CALLBACK_ALLOWED_HOSTS": "127.0.0.1"}
LATER = timedelta(minutes=11)  # past the default STALE_CLAIM_SECONDS


@pytest.fixture
def fast(configure):
    configure(**FAST)


def claim(table, pause_id, status="restarting", action="approve", by=None) -> datetime:
    """What a process that died mid-decision leaves behind: a claim with no outcome; return its moment."""
    entity = table.get_entity(pause_id, "pause")
    claimed_at = datetime.now(timezone.utc)
    entity.update(status=status, claimed_at=claimed_at, claim_action=action, claim_id="dead-process",
                  **({"claimed_by": by} if by else {}))
    table.update_entity(entity)
    return claimed_at


def callback_pause(api, adf, name):
    return api.json(api.pause({"callBackUri": f"{adf.url}/_standin/callbacks/{name}"}))


def unconfirmed(api, adf):
    """A callback-mode pause decided just now whose callback's answer was lost: (its id, when it was decided)."""
    created = callback_pause(api, adf, f"unconfirmed-{uuid.uuid4().hex[:8]}")
    adf.inject("callback", "before", count=1, status=503)
    assert api.decide("restart", created["token"]).status_code == 202
    decided = datetime.fromisoformat(api.record(created["pause_id"])["decided_at"].replace("Z", "+00:00"))
    return created["pause_id"], decided


def land_unanswered(monkeypatch, field: str, error: Exception) -> list:
    """The pauses store's first write carrying `field` lands, and its answer is lost: `error` (a 412 the storage
    SDK's retry met, or no answer at all). Returns every write carrying `field`, as they are made."""
    store_type, written = type(get_store()), []
    update = store_type.update

    def landed_unanswered(self, pid, changes, etag):
        etag = update(self, pid, changes, etag)
        if field in changes:
            written.append(changes)
            if len(written) == 1:
                raise error
        return etag

    monkeypatch.setattr(store_type, "update", landed_unanswered)
    return written


def listed(api, status):
    return [item["pause_id"] for item in api.json(api.list(status=status))["items"]]


def filed_as_decided(pause_id, claimed_at):
    """What a decision whose record never landed may leave: the index already updated, under the claim's moment."""
    entity = get_store().get(pause_id).entity
    status_index.settled(pause_id, {**entity, "status": "restarted", "decided_at": claimed_at})


def index_rows(azurite, api):
    """The status index's rows as (range, status), read straight from Azurite."""
    from azure.data.tables import TableClient

    with TableClient.from_connection_string(azurite.connection_string, f"{api.table_name}status") as index:
        return sorted((row["RowKey"].split("|")[0], row.get("status")) for row in index.list_entities())


def test_a_claim_is_stale_from_stale_claim_seconds_after_it_was_made(configure):
    configure(STALE_CLAIM_SECONDS="60")
    made = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
    assert not is_stale({"claimed_at": made}, made + timedelta(seconds=59.999))
    assert is_stale({"claimed_at": made}, made + timedelta(seconds=60))
    assert is_stale({"claimed_at": made.replace(tzinfo=None)}, made + timedelta(seconds=60))  # written by hand: UTC
    with pytest.raises(DamagedRecord, match="claimed_at is missing"):
        is_stale({"PartitionKey": "p" * 32, "status": "restarting"}, made)


def test_a_stale_restart_claim_whose_run_exists_is_recorded_as_decided_when_it_was_claimed(api, adf, table, fast,
                                                                                            azurite):
    created = api.created()
    pause_id = created["pause_id"]
    claimed_at = claim(table, pause_id, by="alice@contoso.com")
    run_id = sdk_client(adf).pipelines.create_run(TARGET["resource_group"], TARGET["factory_name"],
                                                  TARGET["pipeline_name"], parameters={"pause_id": pause_id},
                                                  enforce_https=False).run_id
    landed = reconcile(pause_id, get_store().get(pause_id), claimed_at + LATER)
    assert landed.entity["status"] == "restarted" and landed.entity["run_id"] == run_id
    record = api.record(pause_id)
    assert (record["status"], record["run_id"], record["decided_by"]) == ("restarted", run_id, "alice@contoso.com")
    assert record["decided_at"] == iso(claimed_at)
    assert "the run was found in Data Factory and recorded" in record["last_error"]
    assert len(adf.runs) == 1  # looked up, never started again
    assert listed(api, "restarted") == [pause_id] and index_rows(azurite, api) == [("decided", "restarted")]


def test_a_stale_restart_claim_without_a_run_is_released_and_its_link_works_again(api, adf, table, fast, azurite):
    created = api.created()
    pause_id = created["pause_id"]
    claimed_at = claim(table, pause_id)
    filed_as_decided(pause_id, claimed_at)
    landed = reconcile(pause_id, get_store().get(pause_id), claimed_at + LATER)
    assert landed.entity["status"] == "pending" and landed.entity["claim_id"] != "dead-process"
    record = api.record(pause_id)
    assert record["status"] == "pending" and record["run_id"] is None and record["decided_at"] is None
    assert "released" in record["last_error"] and adf.runs == []
    assert listed(api, "pending") == [pause_id] and index_rows(azurite, api) == [("open", None)]  # its open row back
    assert api.decide("restart", created["token"]).status_code == 200
    [run] = adf.runs
    assert api.record(pause_id)["run_id"] == run["runId"]


def test_when_data_factory_cannot_be_asked_the_claim_stays_for_the_next_try(api, adf, table, fast):
    created = api.created()
    pause_id = created["pause_id"]
    claimed_at = claim(table, pause_id)
    adf.inject("queryPipelineRuns", "before", status=403, code="AuthorizationFailed")
    with pytest.raises(Unknown) as unknown:
        reconcile(pause_id, get_store().get(pause_id), claimed_at + LATER)
    assert unknown.value.code == "RunLookupFailed" and "AuthorizationFailed" in str(unknown.value)
    entity = table.get_entity(pause_id, "pause")
    assert (entity["status"], entity["claim_id"]) == ("restarting", "dead-process")  # untouched
    assert reconcile(pause_id, get_store().get(pause_id), claimed_at + LATER).entity["status"] == "pending"


@pytest.mark.parametrize("status, action, by, decided_by", [
    ("restarting", "approve", "alice@contoso.com", "alice@contoso.com"),
    ("cancelling", "cancel", None, "expiry timer"),
    ("expiring", "expire", None, "expiry timer"),
])
def test_a_stale_callback_claim_ends_failed_since_its_arrival_cannot_be_asked(api, adf, table, fast, azurite, status,
                                                                             action, by, decided_by):
    created = callback_pause(api, adf, "stale")
    pause_id = created["pause_id"]
    claimed_at = claim(table, pause_id, status, action, by)
    filed_as_decided(pause_id, claimed_at)
    now = claimed_at + LATER
    assert reconcile(pause_id, get_store().get(pause_id), now).entity["status"] == "failed"
    record = api.record(pause_id)
    assert (record["status"], record["decided_by"], record["decided_at"]) == ("failed", decided_by, iso(now))
    assert "whether it arrived is unknown" in record["last_error"]
    assert adf.callbacks == [] and adf.runs == []  # nothing sent, nothing started
    assert listed(api, "failed") == [pause_id]
    assert index_rows(azurite, api) == [("decided", "failed")]  # filed under its own moment, not the claim's


def test_a_reconciliation_that_lost_the_race_returns_the_pause_as_it_is_and_overwrites_nothing(api, adf, table,
                                                                                               fast):
    created = callback_pause(api, adf, "raced")
    pause_id = created["pause_id"]
    claimed_at = claim(table, pause_id)
    seen = get_store().get(pause_id)
    entity = table.get_entity(pause_id, "pause")  # meanwhile another instance recorded the outcome
    entity.update(status="restarted", callback_confirmed=True, claim_id="the-other-one")
    table.update_entity(entity)
    current = reconcile(pause_id, seen, claimed_at + LATER)
    assert (current.entity["status"], current.entity["claim_id"]) == ("restarted", "the-other-one")
    assert api.record(pause_id)["status"] == "restarted" and api.record(pause_id)["last_error"] is None


def test_an_unconfirmed_callback_is_re_sent_byte_for_byte_and_confirmed(api, adf, table, fast):
    created = callback_pause(api, adf, "resend")
    adf.inject("callback", "before", status=503)  # may have arrived: recorded as sent, unconfirmed
    assert api.decide("restart", created["token"], json_body={"comment": "go"}).status_code == 202
    pause_id = created["pause_id"]
    assert redeliver(pause_id, get_store().get(pause_id), datetime.now(timezone.utc)) is True
    record = api.record(pause_id)
    assert record["status"] == "restarted" and record["callback_confirmed"] is True
    first, again = adf.callbacks
    assert (first["status"], again["status"]) == (503, 200) and first["body"] == again["body"]
    assert again["body"]["Output"]["comment"] == "go"
    assert table.get_entity(pause_id, "pause")["callback_attempts"] == 2


def test_re_sending_is_taken_by_one_timer_backs_off_and_gives_up_at_the_bound(api, adf, configure):
    configure(CALLBACK_REDELIVERY_SECONDS="60", CALLBACK_REDELIVERY_ATTEMPTS="3", **FAST)
    created = callback_pause(api, adf, "bounded")
    pause_id = created["pause_id"]
    adf.inject("callback", "before", count=3, status=503)
    assert api.decide("restart", created["token"]).status_code == 202
    now = datetime.now(timezone.utc)
    seen = get_store().get(pause_id)
    assert redeliver(pause_id, seen, now) == now + timedelta(seconds=120)  # 60 s, doubled after the second send
    assert api.record(pause_id)["last_error"].endswith("sent 2 time(s)")
    with pytest.raises(Conflict):  # another timer instance took this send: it is not sent twice
        redeliver(pause_id, seen, now)
    assert redeliver(pause_id, get_store().get(pause_id), now) is False
    record = api.record(pause_id)
    assert record["callback_confirmed"] is False and record["status"] == "restarted"
    assert record["last_error"].startswith("CallbackServerError")
    assert record["last_error"].endswith("sent 3 time(s); gave up re-sending")
    assert redeliver(pause_id, get_store().get(pause_id), now) is False  # at the bound: nothing more is sent
    assert len(adf.callbacks) == 3 and len({str(c["body"]) for c in adf.callbacks}) == 1


def test_another_row_of_an_unconfirmed_callback_keeps_to_its_re_send_schedule(api, adf, configure):
    """A pause's other row coming due before its callback's re-send (its expiry, a copy of a queue message) does not
    re-send early: the record says when the re-send is due (its last send and the sends so far), and the row moves
    there, onto the re-send's own row."""
    from shared import sweep
    from shared.storage.due_index import get_due_index

    configure(CALLBACK_REDELIVERY_SECONDS="600", **FAST)
    created = api.json(api.pause(expires_in=60, callBackUri=f"{adf.url}/_standin/callbacks/early"))
    pause_id = created["pause_id"]
    adf.inject("callback", "before", count=2, status=503)
    assert api.decide("restart", created["token"]).status_code == 202
    decided = datetime.fromisoformat(api.record(pause_id)["decided_at"].replace("Z", "+00:00"))
    resend = (decided + timedelta(seconds=600)).replace(microsecond=0)
    rows = lambda: sorted(get_due_index().due_at(due) for due in get_due_index().due(resend + timedelta(days=1))
                          if due.pause_id == pause_id)  # noqa: E731
    assert sweep.sweep(decided + timedelta(seconds=61)) == {"rescheduled": 1}  # its expiry's row
    assert len(adf.callbacks) == 1 and rows() == [resend]
    assert sweep.sweep(resend - timedelta(seconds=1)) == {}
    assert sweep.sweep(resend) == {"rescheduled": 1} and len(adf.callbacks) == 2  # sent again; 503 again
    assert rows() == [resend + timedelta(seconds=1200)]  # doubled, from this send
    record = get_store().get(pause_id).entity
    assert record["callback_attempts"] == 2 and record["callback_sent_at"] == resend


def test_the_next_re_send_is_due_by_the_record_to_the_second(configure):
    from shared.lifecycle.recovery import resend_due
    from shared.targets import callback

    configure(CALLBACK_REDELIVERY_SECONDS="60", CALLBACK_REDELIVERY_ATTEMPTS="4")
    decided = datetime(2026, 12, 7, 6, 0, 0, 500_000, tzinfo=timezone.utc)
    whole, sent = decided.replace(microsecond=0), decided + timedelta(minutes=5)
    assert resend_due({"decided_at": decided, "callback_attempts": 1, "callback_sent_at": decided}) == \
        whole + timedelta(seconds=60)
    assert resend_due({"decided_at": decided, "callback_attempts": 2, "callback_sent_at": sent}) == \
        whole + timedelta(minutes=5, seconds=120)  # doubled, from the last send
    # Written before sends were timed: the intervals so far, from the decision.
    assert resend_due({"decided_at": decided, "callback_attempts": 1}) == whole + timedelta(seconds=60)
    assert resend_due({"decided_at": decided, "callback_attempts": 3}) == whole + timedelta(seconds=60 + 120 + 240)
    assert resend_due({"decided_at": decided, "callback_attempts": 4, "callback_sent_at": sent}) is None  # given up
    assert resend_due({"callback_attempts": 1}) is None
    # A send taken and not recorded as done (even the last allowed): due once it must have ended, to be taken again.
    window = callback.send_window()
    for attempts in (2, 4):
        taken = {"decided_at": decided, "callback_attempts": attempts, "callback_sent_at": sent,
                 "callback_taken_id": "a"}
        assert resend_due(taken) == (sent + window).replace(microsecond=0)
        assert resend_due({**taken, "callback_done_id": "a"}) == (
            None if attempts == 4 else whole + timedelta(minutes=5, seconds=120))
    # A send id of the intermediate version that wrote no done id does not read as a send not done.
    assert resend_due({"decided_at": decided, "callback_attempts": 2, "callback_sent_at": sent,
                       "callback_send_id": "a"}) == whole + timedelta(minutes=5, seconds=120)


def test_a_scheduled_callbacks_re_send_runs_from_its_send_not_its_decision(api, adf, configure):
    """Started at the window's opening, a day after it was decided, a callback whose answer was lost is re-sent
    CALLBACK_REDELIVERY_SECONDS after that send: the pause's expiry row, due before then, moves on without sending."""
    from shared import pauses, sweep
    from shared.validation import Decision
    from shared.web.http import Caller
    from tests.test_scheduled import EVENING, NIGHT, OPENING

    configure(CALLBACK_REDELIVERY_SECONDS="600", **FAST)
    name = f"night-{uuid.uuid4().hex[:8]}"
    expires_in = int((OPENING - datetime.now(timezone.utc)).total_seconds()) + 120
    created = api.json(api.pause({"callBackUri": f"{adf.url}/_standin/callbacks/{name}", "start_window": NIGHT,
                                  "expires_in": expires_in}))
    assert pauses.approve(created["token"], Decision(), Caller(None, None, None), now=EVENING)["status"] == "scheduled"
    expires_at = datetime.fromisoformat(api.record(created["pause_id"])["expires_at"].replace("Z", "+00:00"))
    adf.inject("callback", "after", status=500, count=1)
    assert sweep.sweep(OPENING + timedelta(seconds=1)) == {"unconfirmed": 1}
    assert sweep.sweep(expires_at + timedelta(seconds=1)) == {"rescheduled": 1}  # its expiry's row
    assert [c["callbackId"] for c in adf.callbacks].count(name) == 1
    assert sweep.sweep(OPENING + timedelta(seconds=601)) == {"redelivered": 1}
    assert [c["callbackId"] for c in adf.callbacks].count(name) == 2


@pytest.mark.parametrize("answer", ["412 to the SDK's retry", "none"])
def test_a_re_send_whose_taking_landed_unanswered_is_sent(api, adf, configure, monkeypatch, answer):
    """The conditional write that takes a re-send lands, but its answer is lost: the storage SDK's retry meets a
    412, or no answer comes at all. Read back by its send id, it is this instance's, and the callback is sent (not
    counted and skipped)."""
    from shared import sweep
    from shared.errors import Unavailable

    configure(CALLBACK_REDELIVERY_SECONDS="600", **FAST)
    pause_id, decided = unconfirmed(api, adf)
    landed = land_unanswered(monkeypatch, "callback_taken_id",
                             Conflict() if answer != "none" else Unavailable("Pause storage is unavailable."))
    assert sweep.sweep(decided + timedelta(seconds=601)) == {"redelivered": 1}
    assert len(landed) == 1 and len(adf.callbacks) == 2
    assert api.record(pause_id)["callback_confirmed"] is True


def test_a_re_send_taken_and_never_recorded_done_is_taken_again_under_its_number_once_it_must_have_ended(
        api, adf, configure, monkeypatch):
    """The last re-send allowed is taken (the write lands, its answer is lost) and storage does not answer the
    read-back either: nothing was sent, and the record cannot say so. Not recorded as done, the send is taken
    again under the same number once it must have ended, and made: not counted as made and given up on."""
    from shared import sweep
    from shared.errors import Unavailable
    from shared.targets import callback

    configure(CALLBACK_REDELIVERY_SECONDS="600", CALLBACK_REDELIVERY_ATTEMPTS="2", **FAST)
    pause_id, decided = unconfirmed(api, adf)
    store_type, failing = type(get_store()), []
    update, get = store_type.update, store_type.get

    def landed_unanswered(self, pid, changes, etag):
        written = update(self, pid, changes, etag)
        if "callback_taken_id" in changes and not failing:
            failing.append("read")
            raise Unavailable("Pause storage is unavailable.")
        return written

    def unanswered_once(self, pid):
        if failing == ["read"]:
            failing.append("done")
            raise Unavailable("Pause storage is unavailable.")
        return get(self, pid)

    monkeypatch.setattr(store_type, "update", landed_unanswered)
    monkeypatch.setattr(store_type, "get", unanswered_once)
    taken = decided + timedelta(seconds=601)
    assert sweep.sweep(taken) == {"retry": 1} and len(adf.callbacks) == 1  # taken; not sent
    ended = (taken + callback.send_window()).replace(microsecond=0)
    assert sweep.sweep(ended - timedelta(seconds=1)) == {"rescheduled": 1}  # it may still be running
    assert sweep.sweep(ended) == {"redelivered": 1} and len(adf.callbacks) == 2
    record = get_store().get(pause_id).entity
    assert record["callback_attempts"] == 2 and record["callback_confirmed"] is True


def test_a_re_sends_outcome_is_recorded_over_a_note_written_while_it_was_out(api, adf, configure, monkeypatch):
    """A chat note written to the pause while its callback is re-sent makes the outcome's conditional write meet a
    412: the outcome is still this send's to record, so it is written on the pause as it is now, and the send is
    not taken again for want of it."""
    from shared import sweep
    from shared.storage.records import json_field
    from shared.targets import callback

    configure(CALLBACK_REDELIVERY_SECONDS="600", **FAST)
    pause_id, decided = unconfirmed(api, adf)
    deliver = callback.deliver

    def noted_meanwhile(uri, body):
        answer = deliver(uri, body)
        get_store().note(pause_id, get_store().get(pause_id), [{"channel": "teams", "outcome": "sent"}])
        return answer

    monkeypatch.setattr(callback, "deliver", noted_meanwhile)
    resend = decided + timedelta(seconds=601)
    assert sweep.sweep(resend) == {"redelivered": 1}
    monkeypatch.undo()
    record = get_store().get(pause_id).entity
    assert record["callback_confirmed"] is True and record["callback_attempts"] == 2
    assert [note["channel"] for note in json_field(record, "notifications")] == ["teams"]
    assert sweep.sweep(resend + callback.send_window() + timedelta(days=1)) == {"already_settled": 1}  # its expiry's
    assert len(adf.callbacks) == 2


def test_a_re_sends_outcome_that_landed_unanswered_is_not_written_again(api, adf, configure, monkeypatch):
    """The write recording a re-send's outcome lands, but the storage SDK's retry of it meets a 412: read back,
    the outcome is there (this send's id as done), and it is not written a second time."""
    from shared import sweep

    configure(CALLBACK_REDELIVERY_SECONDS="600", **FAST)
    pause_id, decided = unconfirmed(api, adf)
    outcomes = land_unanswered(monkeypatch, "callback_done_id", Conflict())
    assert sweep.sweep(decided + timedelta(seconds=601)) == {"redelivered": 1}
    monkeypatch.undo()
    assert len(outcomes) == 1 and len(adf.callbacks) == 2
    record = get_store().get(pause_id).entity
    assert record["callback_confirmed"] is True and record["callback_done_id"] == record["callback_taken_id"]


def test_a_re_send_taken_again_meanwhile_leaves_its_outcome_to_the_taker(api, adf, configure, monkeypatch):
    """While a re-send is out, another instance takes the send again (this one looked dead to it): the outcome is
    the last taker's to record, so this send writes none over its taking, and the pause reads as that taker left
    it (its send not yet recorded as done)."""
    from shared import sweep
    from shared.targets import callback

    configure(CALLBACK_REDELIVERY_SECONDS="600", **FAST)
    pause_id, decided = unconfirmed(api, adf)
    deliver, store = callback.deliver, get_store()

    def taken_again_meanwhile(uri, body):
        answer = deliver(uri, body)
        current = store.get(pause_id)
        store.update(pause_id, {"callback_taken_id": "another-instance"}, current.etag)
        return answer

    monkeypatch.setattr(callback, "deliver", taken_again_meanwhile)
    assert sweep.sweep(decided + timedelta(seconds=601)) == {"redelivered": 1}
    monkeypatch.undo()
    record = store.get(pause_id).entity
    assert record["callback_taken_id"] == "another-instance" and "callback_done_id" not in record
    assert record.get("callback_confirmed") is not True and record["callback_attempts"] == 2


def test_a_given_up_callbacks_other_row_is_removed_not_moved(api, adf, configure):
    """Once re-sending has given up, nothing is owed: the pause's other row (its expiry's) goes."""
    from shared import sweep
    from shared.storage.due_index import get_due_index

    configure(CALLBACK_REDELIVERY_SECONDS="600", CALLBACK_REDELIVERY_ATTEMPTS="2", **FAST)
    created = api.json(api.pause(expires_in=900, callBackUri=f"{adf.url}/_standin/callbacks/given-up"))
    pause_id = created["pause_id"]
    adf.inject("callback", "before", count=2, status=503)
    assert api.decide("restart", created["token"]).status_code == 202
    decided = datetime.fromisoformat(api.record(pause_id)["decided_at"].replace("Z", "+00:00"))
    assert sweep.sweep(decided + timedelta(seconds=601)) == {"undelivered": 1}  # the second send: the last
    expires_at = datetime.fromisoformat(api.record(pause_id)["expires_at"].replace("Z", "+00:00"))
    assert sweep.sweep(expires_at + timedelta(seconds=1)) == {"undelivered": 1}  # its expiry's row, removed
    assert [due for due in get_due_index().due(decided + timedelta(days=1)) if due.pause_id == pause_id] == []
    assert len(adf.callbacks) == 2


def test_giving_up_fails_an_open_or_claimed_pause_and_leaves_a_final_one_alone(api, adf, table, fast):
    now = datetime.now(timezone.utc)
    stuck, claimed, decided = api.created(), api.created(), api.created()
    claim(table, claimed["pause_id"])
    assert api.decide("cancel", decided["token"], form={"reason": "not needed"}).status_code == 200
    why = "The timer could not settle this pause in 5 attempts; last: " + "x" * 2000
    for pause in (stuck, claimed, decided):
        give_up(pause["pause_id"], why, now)
    for pause in (stuck, claimed):
        record = api.record(pause["pause_id"])
        assert (record["status"], record["decided_by"], record["decided_at"]) == ("failed", "expiry timer", iso(now))
        assert record["last_error"] == why[:1000]
    assert api.record(decided["pause_id"])["status"] == "cancelled"
    assert sorted(listed(api, "failed")) == sorted([stuck["pause_id"], claimed["pause_id"]])
    give_up("0" * 32, why, now)  # a pause that is gone: nothing to do, nothing raised
    assert adf.runs == []


def test_giving_up_is_recognised_when_its_write_landed_unanswered(api, storage, configure):
    """A landed write whose answer was lost (the storage SDK's retry then meets a 412) is read back as
    the timer's own: the pause is failed and filed so, not left to be given up again."""
    configure(STORAGE_RETRY_TOTAL="1")
    lost = api.created()
    storage.inject("after", methods={"PUT", "PATCH", "MERGE"}, path=rf"/{api.table_name}\(", count=1)
    assert give_up(lost["pause_id"], "stuck", datetime.now(timezone.utc)) is True
    assert [fault for _, _, fault in storage.log if fault] == ["after"]  # the write did land unanswered
    assert api.record(lost["pause_id"])["status"] == "failed" and listed(api, "failed") == [lost["pause_id"]]
    assert lost["pause_id"] not in listed(api, "pending")
