"""The due index promises the timer a small, ordered read: `due(now)` yields every row due at or before
`now` (to the second, the boundary included), oldest first across its hour partitions, and nothing later;
adding a row twice keeps one, removing a row already gone is fine, moving puts the new row down before
the old one goes, and a row it did not write (a malformed key) is skipped rather than stopping the read."""

from datetime import datetime, timedelta, timezone

import pytest

from shared.storage.due_index import Due, DueIndex, get_due_index
from shared.storage.tables import Conflict

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 10, 59, 59, tzinfo=timezone.utc)
IDS = [f"{n:032x}" for n in range(1, 10)]


def due_ids(index, now, **kwargs):
    return [due.pause_id for due in index.due(now, **kwargs)]


def test_due_yields_rows_oldest_first_across_hour_partitions_and_nothing_later(app_env):
    index = get_due_index()
    moments = {IDS[0]: T0 + timedelta(hours=1, minutes=31), IDS[1]: T0, IDS[2]: T0 + timedelta(seconds=1),
               IDS[3]: T0 - timedelta(days=1), IDS[4]: T0 + timedelta(hours=2)}
    for pause_id, moment in moments.items():
        index.add(pause_id, moment)
    now = T0 + timedelta(hours=1, minutes=31)
    found = list(index.due(now))
    assert [due.pause_id for due in found] == [IDS[3], IDS[1], IDS[2], IDS[0]]
    assert [due.partition_key for due in found] == ["2026022810", "2026030110", "2026030111", "2026030112"]
    assert [DueIndex.due_at(due) for due in found] == sorted(moments[due.pause_id] for due in found)
    assert all(due.attempts == 0 and due.kind is None for due in found)


def test_a_row_is_due_from_its_second_on_not_a_second_before(app_env):
    index = get_due_index()
    index.add(IDS[0], T0)
    assert due_ids(index, T0 - timedelta(seconds=1)) == []
    assert due_ids(index, T0) == [IDS[0]]  # exactly at the boundary
    assert due_ids(index, T0 + timedelta(microseconds=999_999)) == [IDS[0]]
    # The same moment in another time zone is the same row.
    index.add(IDS[0], T0.astimezone(timezone(timedelta(hours=-5))))
    assert due_ids(index, T0 + timedelta(days=1)) == [IDS[0]]


def test_adding_the_same_row_twice_keeps_one_and_keeps_its_attempts(app_env):
    index = get_due_index()
    index.add(IDS[0], T0)
    [row] = index.due(T0)
    assert index.count_attempt(row, "ADF did not answer") == 1
    index.add(IDS[0], T0)
    [again] = index.due(T0)
    assert again == Due(IDS[0], row.partition_key, row.row_key, 1, None)
    assert index.count_attempt(again, "still not") == 2


def test_remove_deletes_only_its_row_and_a_row_already_gone_is_fine(app_env):
    index = get_due_index()
    index.add(IDS[0], T0)
    index.add(IDS[0], T0 + timedelta(minutes=5))  # a pause may briefly have two rows (a move in flight)
    index.add(IDS[1], T0)
    first = next(due for due in index.due(T0) if due.pause_id == IDS[0])
    index.remove(first)
    index.remove(first)
    assert due_ids(index, T0 + timedelta(hours=1)) == [IDS[1], IDS[0]]
    assert [DueIndex.due_at(due) for due in index.due(T0 + timedelta(hours=1))] == [T0, T0 + timedelta(minutes=5)]


def test_move_reschedules_a_row_and_a_move_to_the_same_second_keeps_it(app_env):
    index = get_due_index()
    index.add(IDS[0], T0)
    [row] = index.due(T0)
    index.move(row, T0 + timedelta(hours=3))
    assert due_ids(index, T0 + timedelta(hours=3) - timedelta(seconds=1)) == []
    [moved] = index.due(T0 + timedelta(hours=3))
    assert moved.pause_id == IDS[0] and DueIndex.due_at(moved) == T0 + timedelta(hours=3)
    index.move(moved, T0 + timedelta(hours=3, microseconds=500))  # the same key: not deleted by its own move
    assert list(index.due(T0 + timedelta(days=1))) == [moved]


def test_due_reads_page_by_page_without_gaps_or_repeats(app_env):
    index = get_due_index()
    for number, pause_id in enumerate(IDS):
        index.add(pause_id, T0 + timedelta(minutes=20 * number))  # spread over four hour partitions
    assert due_ids(index, T0 + timedelta(days=1), page_size=2) == IDS


def test_remove_many_deletes_a_partitions_rows_also_when_one_is_gone_already(app_env):
    index = get_due_index()
    for number, pause_id in enumerate(IDS[:5]):
        index.add(pause_id, T0 - timedelta(seconds=number))
    rows = list(index.due(T0))
    index.remove(rows[2])  # another timer instance got to one first: the batch is refused, then sent without it
    index.remove_many(rows)
    assert list(index.due(T0)) == []
    index.add(IDS[0], T0)
    index.add(IDS[1], T0 + timedelta(hours=1))
    with pytest.raises(ValueError, match="one partition"):
        index.remove_many(list(index.due(T0 + timedelta(hours=1))))


@pytest.mark.parametrize("gone, requests", [
    (2, ["POST", "DELETE", "POST", "DELETE", "POST"]),
    (3, ["POST", "DELETE"] * 3 + ["POST"]),
    (50, ["POST", "DELETE"] * 3 + ["POST"] + ["DELETE"] * 47),  # all gone (two timers): one by one after 4 tries
])
def test_a_batch_delete_refused_for_rows_gone_already_goes_again_without_them(app_env, monkeypatch, gone, requests):
    """The refusal names the row gone (Table storage's "<index>:" prefix): that one is deleted on its own and the
    rest go in a batch again, not one request a row; a few times, then one by one."""
    import random

    from azure.core.pipeline.transport import RequestsTransport

    index = get_due_index()
    for number in range(50):
        index.add(f"{number:032x}", T0 - timedelta(seconds=number))
    rows = list(index.due(T0))
    for row in random.Random(gone).sample(rows, gone):  # settled meanwhile by someone else
        index.remove(row)
    sent, send = [], RequestsTransport.send

    def counted(self, request, **kwargs):
        sent.append(request.method)
        return send(self, request, **kwargs)

    monkeypatch.setattr(RequestsTransport, "send", counted)
    index.remove_many(rows)
    monkeypatch.undo()
    assert sent == requests
    assert list(index.due(T0)) == []


def test_rows_the_app_did_not_write_are_skipped_and_odd_attempts_read_as_none(app_env, azurite):
    from azure.data.tables import TableClient

    index = get_due_index()
    index.add(IDS[0], T0)  # creates the table
    partition, _ = DueIndex.keys(IDS[0], T0)
    with TableClient.from_connection_string(azurite.connection_string, table_name=app_env + "expiry") as table:
        table.create_entity({"PartitionKey": partition, "RowKey": "20260301T105900"})
        table.create_entity({"PartitionKey": partition, "RowKey": "20260301T105901-not-a-pause-id"})
        table.create_entity({"PartitionKey": partition, "RowKey": f"20260301T105902-{IDS[1]}", "attempts": "lots",
                             "kind": "mystery"})
    found = list(index.due(T0))
    assert [(due.pause_id, due.attempts, due.kind) for due in found] == [(IDS[1], 0, None), (IDS[0], 0, None)]
    assert DueIndex.due_at(Due(IDS[2], partition, "garbage")) == datetime.min.replace(tzinfo=timezone.utc)


def test_due_on_a_table_not_created_yet_is_empty(app_env):
    assert list(get_due_index().due(T0)) == []


def test_a_row_with_properties_is_claimed_once_per_etag_and_moved_with_them(app_env):
    index = get_due_index()
    partition, row_key = DueIndex.keys(IDS[0], T0)
    etag = index.add_row({"PartitionKey": partition, "RowKey": row_key, "kind": "callback", "payload": "{}",
                          "sends": 0})
    [row] = index.due(T0)
    assert row.kind == "callback"
    index.take_send(row, etag, 1, T0)
    with pytest.raises(Conflict):
        index.take_send(row, etag, 1, T0)  # the same ETag again: someone else claimed it first
    entity, _ = index.read_row(row)
    assert entity["sends"] == 1 and entity["sending_at"] == T0 and entity["payload"] == "{}"
    index.move_row(row, {"kind": "callback", "payload": "{}", "sends": 1}, T0 + timedelta(minutes=2))
    assert index.read_row(row) == (None, None)
    [moved] = index.due(T0 + timedelta(minutes=2))
    assert moved.kind == "callback" and index.read_row(moved)[0]["sends"] == 1
