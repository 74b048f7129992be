"""Checkpoints promise that a run waits only while an operator's hold matches it: with no matching hold
`reach` answers "not held" and owes the run one callback (and stores no pause); with one it stores a
held checkpoint the timer looks at by HOLD_RECHECK_SECONDS or the first hold's expiry, and `settle`
continues the run once none of its holds is active, fails it when one was cancelled, and calls back
exactly once, whoever settles it first."""

import time
import uuid
from datetime import timedelta

import pytest

from shared import checkpoints, holds
from shared.clock import utcnow
from shared.errors import AlreadyDecided, Forbidden, HoldEnded, NotFound
from shared.storage.due_index import DueIndex, get_due_index
from shared.storage.pauses import get_store
from shared.storage.status_index import HELD, OPEN, get_status_index
from shared.validation import CheckpointRequest
from tests.support import TARGET

pytestmark = pytest.mark.integration


@pytest.fixture
def hook(configure, adf):
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1", CHECKPOINT_CALLBACK_DELAY_SECONDS="0.05",
              HOLD_RECHECK_SECONDS="120")
    return lambda name: f"{adf.url}/_standin/callbacks/{name}"


@pytest.fixture
def now():
    return utcnow()


def request(hook, name, **fields):
    return CheckpointRequest(**{**TARGET, "run_id": str(uuid.uuid4()), "checkpoint": "after_staging",
                                "callback_uri": hook(name), **fields})


def hold(scope=None, expires_in=None, at=None):
    return holds.new_hold(scope or {"factory_name": TARGET["factory_name"]}, "warehouse maintenance", expires_in,
                          "ops@contoso.com", now=at)


def received(adf, name):
    return [c for c in adf.callbacks if c["callbackId"] == name]


def due_rows(now):
    return list(get_due_index().due(now + timedelta(days=1)))


def index_rows():
    return [row.row_key for kind in (OPEN, HELD) for row in get_status_index().page(kind, 100, None)[0]]


def test_with_no_matching_hold_the_run_passes_and_is_called_back_once_storing_nothing(hook, adf, now):
    hold({"pipeline_name": "Other_*"}, at=now)
    answer = checkpoints.reach(request(hook, "free"), now)
    assert answer == {"held": False, "checkpoint": "after_staging"}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (not received(adf, "free") or due_rows(now)):
        time.sleep(0.02)
    [sent] = received(adf, "free")
    assert sent["status"] == 200 and sent["body"] == {"Output": answer, "StatusCode": "200"}
    assert due_rows(now) == []  # the owed row went once delivered
    assert index_rows() == []


def test_a_matching_hold_stores_a_held_checkpoint_the_timer_looks_at_by_the_recheck(hook, adf, now):
    placed = hold({"pipeline_name": "load_*"}, at=now)
    reached = request(hook, "held")
    answer = checkpoints.reach(reached, now)
    assert answer["held"] is True and answer["hold_ids"] == [placed.hold_id]
    entity = get_store().get(answer["pause_id"]).entity
    assert (entity["status"], entity["mode"], entity["run_id"], entity["checkpoint"]) == (
        "held", "checkpoint", reached.run_id, "after_staging")
    # Its one due row is its own (the callback owed in case it passed was withdrawn), at the recheck.
    [row] = due_rows(now)
    assert row.pause_id == answer["pause_id"] and row.kind is None
    assert DueIndex.due_at(row) == (now + timedelta(seconds=120)).replace(microsecond=0)
    assert [e["PartitionKey"] for e in checkpoints.waiting_on(placed.hold_id)] == [answer["pause_id"]]
    assert [r["pause_id"] for r in checkpoints.show(placed.hold_id, now)["waiting"]] == [answer["pause_id"]]
    assert checkpoints.waiting_on(hold({"run_id": reached.run_id}, at=now).hold_id) == []  # a later hold
    assert received(adf, "held") == []


def test_a_hold_expiring_before_the_recheck_brings_the_timer_then_and_releases_the_run(hook, adf, now):
    placed = hold(expires_in=60, at=now)
    answer = checkpoints.reach(request(hook, "expiring"), now)
    [row] = due_rows(now)
    assert DueIndex.due_at(row) == (now + timedelta(seconds=60)).replace(microsecond=0)
    pause_id = answer["pause_id"]
    assert checkpoints.settle(pause_id, get_store().get(pause_id), now + timedelta(seconds=30)) == \
        now + timedelta(seconds=60)
    record = checkpoints.settle(pause_id, get_store().get(pause_id), now + timedelta(seconds=60))
    assert record["status"] == "released"
    [sent] = received(adf, "expiring")
    assert sent["body"]["Output"]["released_by"] == "expiry"
    assert holds.get(placed.hold_id).status == "released"  # and written down as such


def test_a_run_waits_for_all_its_holds_and_one_cancelled_fails_it_even_after_another_was_released(hook, adf, now):
    first, second = hold(at=now), hold({"pipeline_name": TARGET["pipeline_name"]}, at=now)
    answer = checkpoints.reach(request(hook, "two"), now)
    assert sorted(answer["hold_ids"]) == sorted([first.hold_id, second.hold_id])
    released = checkpoints.end(first.hold_id, holds.RELEASED, "ops@contoso.com", "done", now)
    assert released["status"] == "released" and released["checkpoints"]["still_held"] == [answer["pause_id"]]
    assert received(adf, "two") == []
    cancelled = checkpoints.end(second.hold_id, holds.CANCELLED, "ops@contoso.com", "source data is broken", now)
    assert cancelled["checkpoints"]["failed"] == [answer["pause_id"]]
    [sent] = received(adf, "two")
    assert sent["body"]["Error"]["ErrorCode"] == "HoldCancelled"
    assert "source data is broken" in sent["body"]["Error"]["Message"]
    assert get_store().get(answer["pause_id"]).entity["status"] == "cancelled"
    with pytest.raises(HoldEnded):
        checkpoints.end(second.hold_id, holds.RELEASED, "ops@contoso.com", None, now)


def test_settling_a_checkpoint_someone_else_settled_first_calls_back_nothing_more(hook, adf, now):
    placed = hold(at=now)
    answer = checkpoints.reach(request(hook, "once"), now)
    seen_before = get_store().get(answer["pause_id"])  # what the timer read before the release
    assert checkpoints.end(placed.hold_id, holds.RELEASED, "ops@contoso.com", None, now)["checkpoints"][
        "continued"] == [answer["pause_id"]]
    with pytest.raises(AlreadyDecided):
        checkpoints.settle(answer["pause_id"], seen_before, now + timedelta(minutes=5))
    assert [c["status"] for c in received(adf, "once")] == [200]
    assert index_rows() == []


def test_a_checkpoint_whose_hold_was_deleted_by_hand_continues(hook, adf, now, azurite):
    from azure.data.tables import TableClient

    from shared.settings import get_settings

    placed = hold(at=now)
    answer = checkpoints.reach(request(hook, "orphaned"), now)
    with TableClient.from_connection_string(azurite.connection_string,
                                            table_name=get_settings().holds_table) as table:
        for entity in list(table.list_entities()):
            table.delete_entity(entity["PartitionKey"], entity["RowKey"])
    with pytest.raises(NotFound):
        holds.get(placed.hold_id)
    record = checkpoints.settle(answer["pause_id"], get_store().get(answer["pause_id"]), now)
    assert record["status"] == "released"
    [sent] = received(adf, "orphaned")
    assert sent["status"] == 200 and sent["body"]["Output"]["held"] is True


def test_a_callback_host_not_allowed_is_refused_before_anything_is_owed(hook, adf, now):
    hold(at=now)
    with pytest.raises(Forbidden):
        checkpoints.reach(request(hook, "x", callback_uri="https://attacker.example/cb"), now)
    assert due_rows(now) == [] and index_rows() == []
