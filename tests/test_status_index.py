"""The status index: listings by status read only what they show, stay true under concurrent
decisions, repair what they find stale, and an approval stays within its storage budget."""

import json
import re
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

import pytest

from shared import sweep
from shared.storage.pauses import get_store
from shared.storage.status_index import get_status_index
from tests.support import TARGET

pytestmark = pytest.mark.integration


def kinds(log, table_prefix):
    """Classify logged requests to the app's tables: point reads, queries and writes."""
    seen = {"point_read": 0, "query": 0, "write": 0}
    for method, path, _ in log:
        path = unquote(path)
        if not re.search(rf"/{table_prefix}\w*(?:[(?/]|$)|/\$batch", path):
            continue
        if method == "GET":
            seen["point_read" if re.search(r"\(PartitionKey='[^']*',RowKey='[^']*'\)", path) else "query"] += 1
        else:
            seen["write"] += 1
    return seen


def statuses(api, status, limit=100):
    response = api.list(status=status, limit=limit)
    assert response.status_code == 200, response.get_body()
    return [item["pause_id"] for item in api.json(response)["items"]]


def test_listing_by_status_follows_every_decision(api):
    created = [api.created() for _ in range(4)]
    assert set(statuses(api, "pending")) == {c["pause_id"] for c in created}
    assert api.decide("restart", created[0]["token"]).status_code == 200
    assert api.decide("cancel", created[1]["token"], form={"reason": "no"}).status_code == 200
    assert set(statuses(api, "pending")) == {created[2]["pause_id"], created[3]["pause_id"]}
    assert statuses(api, "restarted") == [created[0]["pause_id"]]
    assert statuses(api, "cancelled") == [created[1]["pause_id"]]
    # Open pauses come oldest first.
    assert statuses(api, "pending") == [created[2]["pause_id"], created[3]["pause_id"]]


def test_the_index_is_consistent_under_concurrent_decisions(api):
    created = [api.created() for _ in range(24)]
    barrier = threading.Barrier(16)

    def decide(i):
        barrier.wait()
        action = "restart" if i % 2 else "cancel"
        api.decide(action, created[i]["token"], form={"reason": "x"} if action == "cancel" else None)

    # Sixteen pauses decided at once, two of them by two people each (one of whom gets 409).
    threads = [threading.Thread(target=decide, args=(i,)) for i in range(14)] + \
              [threading.Thread(target=decide, args=(i,)) for i in (12, 13)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = {c["pause_id"]: api.record(c["pause_id"])["status"] for c in created}
    assert set(statuses(api, "pending")) == {p for p, s in records.items() if s == "pending"}
    assert len(statuses(api, "pending")) == 10
    assert set(statuses(api, "restarted")) == {p for p, s in records.items() if s == "restarted"}
    assert set(statuses(api, "cancelled")) == {p for p, s in records.items() if s == "cancelled"}
    open_rows, _ = get_status_index().page("open", 100, None)
    assert {row.pause_id for row in open_rows} == {p for p, s in records.items() if s == "pending"}
    decided = get_status_index().decisions(datetime.now(timezone.utc) - timedelta(hours=1),
                                           datetime.now(timezone.utc) + timedelta(hours=1), 100, None)[0]
    assert sorted(row.pause_id for row in decided) == sorted(p for p, s in records.items() if s != "pending")


def test_a_stale_row_is_repaired_by_the_listing_not_fatal(api):
    kept, decided_behind_its_back = api.created(), api.created()
    stored = get_store().get(decided_behind_its_back["pause_id"])
    # A decision whose index update was lost (the process died between the two writes).
    get_store().update(decided_behind_its_back["pause_id"], {"status": "expired",
                                                             "decided_at": datetime.now(timezone.utc)}, stored.etag)
    assert statuses(api, "pending") == [kept["pause_id"]]
    open_rows, _ = get_status_index().page("open", 100, None)
    assert [row.pause_id for row in open_rows] == [kept["pause_id"]]  # repaired, not just hidden
    assert statuses(api, "expired") == [decided_behind_its_back["pause_id"]]


def test_a_row_without_its_pause_is_dropped_once_old(api):
    from shared.storage.status_index import open_row

    ghost = open_row("open", "f" * 32, datetime.now(timezone.utc) - timedelta(minutes=5), {})
    young = open_row("open", "e" * 32, datetime.now(timezone.utc), {})
    get_status_index().add(ghost)
    get_status_index().add(young)
    assert statuses(api, "pending") == []
    rows, _ = get_status_index().page("open", 100, None)
    assert [row.pause_id for row in rows] == ["e" * 32]  # may still be landing: kept for now


def test_the_timer_writes_the_decision_row_of_a_pause_it_finds_settled(api):
    created = api.created(expires_in=60)
    stored = get_store().get(created["pause_id"])
    # Decided by a process that died before its index update: no decision row, the open row still there.
    get_store().update(created["pause_id"], {"status": "cancelled", "decided_at": datetime.now(timezone.utc)},
                       stored.etag)
    assert sweep.sweep(now=datetime.now(timezone.utc) + timedelta(minutes=2)) == {"already_settled": 1}
    assert statuses(api, "cancelled") == [created["pause_id"]]
    assert statuses(api, "pending") == []  # the listing drops the stale open row
    assert get_status_index().page("open", 100, None)[0] == []


def test_the_timer_sends_its_index_updates_in_few_transactions(api, storage):
    created = [api.created(expires_in=60) for _ in range(30)]
    storage.log.clear()
    assert sweep.sweep(now=datetime.now(timezone.utc) + timedelta(minutes=2)) == {"expired": 30}
    batches = [path for method, path, _ in storage.log if method == "POST" and path.endswith("$batch")]
    # Thirty expiries: their index updates (60 operations) in one transaction, their due rows in one.
    assert len(batches) == 2
    assert set(statuses(api, "expired")) == {c["pause_id"] for c in created} and statuses(api, "pending") == []


def test_an_approval_costs_one_point_read_and_three_writes_and_no_query(api, storage, adf):
    created = api.created()
    storage.log.clear()
    assert api.decide("restart", created["token"]).status_code == 200
    assert kinds(storage.log, api.table_name) == {"point_read": 1, "query": 0, "write": 3}
    assert len(adf.runs) == 1


def test_a_listing_reads_what_it_lists_not_what_was_ever_stored(api, storage):
    waiting = [api.created() for _ in range(3)]
    for _ in range(30):
        decided = api.created()
        api.decide("cancel", decided["token"], form={"reason": "done"})
    storage.log.clear()
    assert set(statuses(api, "pending")) == {c["pause_id"] for c in waiting}
    # One query of the open range, one point read per pause shown; the 30 decided pauses cost nothing.
    assert kinds(storage.log, api.table_name) == {"point_read": 3, "query": 1, "write": 0}


def test_a_checkpoint_with_no_hold_costs_one_query_and_one_transient_write(api, storage, configure, adf):
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1", CHECKPOINT_CALLBACK_DELAY_SECONDS="0.5")

    def checkpoint(name):
        body = {**TARGET, "run_id": "0f8fad5b-d9cb-469f-a165-70867728950e", "checkpoint": "cp",
                "callBackUri": f"{adf.url}/_standin/callbacks/{name}"}
        return api.call("checkpoint", "POST", "checkpoint", body=json.dumps(body).encode(),
                        headers={"Content-Type": "application/json"})

    def settled(writes):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and kinds(storage.log, api.table_name)["write"] < writes:
            time.sleep(0.05)
        return kinds(storage.log, api.table_name)

    api.created()  # the tables exist (a first write to a new table also creates it)
    checkpoint("warm-up")
    time.sleep(1)
    storage.log.clear()
    assert checkpoint("cost").status_code == 202
    assert kinds(storage.log, api.table_name) == {"point_read": 0, "query": 1, "write": 1}
    # Then, after the answer: the send is claimed (a write) and the row deleted (a write).
    assert settled(3) == {"point_read": 0, "query": 1, "write": 3}
    assert [c["status"] for c in adf.callbacks if c["callbackId"] == "cost"] == [200]


def listed(api, status, limit):
    """Every pause `GET /api/pauses?status=` lists, following the cursor page by page."""
    found, cursor = [], None
    for _ in range(100):
        response = api.list(status=status, limit=limit, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.get_body()
        body = api.json(response)
        found += [item["pause_id"] for item in body["items"]]
        assert all(item["status"] == status for item in body["items"])
        cursor = body["cursor"]
        if not cursor:
            return found
    raise AssertionError("the cursor never ended")


def test_every_status_lists_exactly_its_pauses_claimed_ones_included(api, configure, adf, table):
    from shared.lifecycle.model import Status

    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1", CHECKPOINT_CALLBACK_DELAY_SECONDS="0.05")
    hook = f"{adf.url}/_standin/callbacks/every-status"

    def claim(pause_id, status, action, minutes_ago=0):
        """A decision in flight: the claim a process writes before its outside call."""
        entity = table.get_entity(pause_id, "pause")
        entity.update(status=status, claimed_at=datetime.now(timezone.utc) - timedelta(minutes=minutes_ago),
                      claim_action=action, claim_id=f"in-flight-{action}")
        table.update_entity(entity)
        return pause_id

    def callback_pause(**fields):
        response = api.pause({"callBackUri": hook, **fields})
        assert response.status_code == 202, response.get_body()
        return api.json(response)

    def checkpoint():
        """A run held at a checkpoint by a hold of its own (so releasing one holds no other)."""
        run_id = str(uuid.uuid4())
        hold = api.call("place_hold", "POST", "holds", body=json.dumps({"scope": {"run_id": run_id},
                                                                        "reason": "maintenance"}).encode(),
                        headers={"Content-Type": "application/json"})
        assert hold.status_code == 201, hold.get_body()
        body = {**TARGET, "run_id": run_id, "checkpoint": "after_load", "callBackUri": hook}
        held = api.json(api.call("checkpoint", "POST", "checkpoint", body=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}))
        assert held["held"] is True
        return held["pause_id"], api.json(hold)["hold_id"]

    expected = {status.value: set() for status in Status}
    expected["pending"].add(api.created()["pause_id"])
    expected["restarting"].add(claim(api.created()["pause_id"], "restarting", "approve"))
    expected["expiring"].add(claim(callback_pause()["pause_id"], "expiring", "expire"))
    # Cancelling comes from two places: a callback pause being cancelled (from pending, in the open
    # range) and a held checkpoint whose hold was cancelled (from held, in the held range).
    expected["cancelling"].add(claim(callback_pause()["pause_id"], "cancelling", "cancel"))
    expected["cancelling"].add(claim(checkpoint()[0], "cancelling", "hold_cancel"))
    expected["releasing"].add(claim(checkpoint()[0], "releasing", "release"))
    expected["held"].add(checkpoint()[0])
    released, hold_id = checkpoint()
    assert api.call("release_hold", "POST", f"holds/{hold_id}/release", body=b"{}",
                    headers={"Content-Type": "application/json"}, route_params={"hold_id": hold_id}).status_code == 200
    expected["released"].add(released)
    restarted, cancelled = api.created(), api.created()
    assert api.decide("restart", restarted["token"]).status_code == 200
    assert api.decide("cancel", cancelled["token"], form={"reason": "no"}).status_code == 200
    expected["restarted"].add(restarted["pause_id"])
    expected["cancelled"].add(cancelled["pause_id"])
    failed = callback_pause()
    claim(failed["pause_id"], "restarting", "approve", minutes_ago=11)  # its process died mid-callback
    assert api.decide("restart", failed["token"]).status_code == 409  # the click reconciles it: failed
    expected["failed"].add(failed["pause_id"])
    expired = api.created(expires_in=60)
    assert sweep.sweep(now=datetime.now(timezone.utc) + timedelta(minutes=2)) == {"expired": 1}
    expected["expired"].add(expired["pause_id"])

    for status, pause_ids in expected.items():
        assert {api.record(p)["status"] for p in pause_ids} <= {status}
        for limit in (100, 1):
            found = listed(api, status, limit)
            assert sorted(found) == sorted(pause_ids), (status, limit)


def test_each_status_is_listed_from_the_decisions_or_from_the_ranges_its_rules_claim_from(api):
    import base64

    from shared.lifecycle.model import FINAL, Status
    from shared.storage.status_index import ranges_of

    assert {status: ranges_of(status) for status in Status if status not in FINAL} == {
        Status.PENDING: ("open",), Status.SCHEDULED: ("open",), Status.RESTARTING: ("open",),
        Status.EXPIRING: ("open",),
        Status.CANCELLING: ("open", "held"), Status.HELD: ("held",), Status.RELEASING: ("held",)}
    assert all(ranges_of(status) == () for status in FINAL)
    # A cursor into a range the status is not listed from is not one this API returned.
    into_held = base64.urlsafe_b64encode(b'{"range":"held"}').decode().rstrip("=")
    response = api.list(status="pending", cursor=into_held)
    assert response.status_code == 400 and api.json(response)["errors"][0]["field"] == "cursor"
    assert api.list(status="cancelling", cursor=into_held).status_code == 200
