"""The one-off status-index backfill: older pauses are indexed a page per timer run, resuming from
the stored cursor in whichever process runs next, each pause once, and then it stops reading."""

import pytest

from shared.storage import backfill
from shared.storage.status_index import PARTITION

pytestmark = pytest.mark.integration


def strip_index(api, table, azurite, pause_ids):
    """Make the pauses look as an older version stored them: no `index_key`, no index rows."""
    from azure.data.tables import TableClient

    with TableClient.from_connection_string(azurite.connection_string, table_name=api.table_name + "status") as idx:
        for row in list(idx.list_entities()):
            idx.delete_entity(row["PartitionKey"], row["RowKey"])
    for pause_id in pause_ids:
        entity = table.get_entity(pause_id, "pause")
        del entity["index_key"]
        table.update_entity(entity, mode="replace")


def test_the_backfill_goes_a_page_at_a_time_and_resumes_in_a_new_process(api, table, azurite):
    from azure.data.tables import TableClient

    made = [api.created() for _ in range(5)]
    api.decide("cancel", made[0]["token"], form={"reason": "old"})
    strip_index(api, table, azurite, [m["pause_id"] for m in made])

    steps = []
    while True:
        backfill._backfilled.clear()  # each run as if in a fresh process: only the stored cursor carries on
        indexed = backfill.backfill(page_size=2)
        if indexed is None:
            break
        steps.append(indexed)
        assert len(steps) < 20, "the backfill never finished"
    assert all(0 <= n <= 2 for n in steps) and len(steps) >= 3  # a page per run, never the whole table
    assert sum(steps) == 5  # every older pause indexed exactly once
    with TableClient.from_connection_string(azurite.connection_string, table_name=api.table_name + "status") as idx:
        rows = [r for r in idx.list_entities() if r["RowKey"] != backfill.MARKER]
        marker = idx.get_entity(PARTITION, backfill.MARKER)
    assert len(rows) == 5
    assert all(table.get_entity(m["pause_id"], "pause").get("index_key") for m in made[1:])
    assert marker["done"] is True and marker["cursor"] == ""
    # Done: later runs index nothing again, also in a new process.
    backfill._backfilled.clear()
    assert backfill.backfill() is None and backfill.backfill() is None


def test_a_backfilled_held_checkpoint_is_found_by_its_hold(api, table, azurite, configure):
    """The open row a backfill writes carries what the pause's own would: a held checkpoint's holds."""
    import uuid

    from shared import checkpoints, holds
    from shared.clock import utcnow
    from shared.validation import CheckpointRequest
    from tests.support import TARGET

    configure(CALLBACK_ALLOWED_HOSTS="*.svc.datafactory.azure.com")
    now = utcnow()
    placed = holds.new_hold({"factory_name": TARGET["factory_name"]}, "maintenance", None, "ops@contoso.com", now=now)
    reached = checkpoints.reach(CheckpointRequest(**{
        **TARGET, "run_id": str(uuid.uuid4()), "checkpoint": "after_staging",
        "callback_uri": "https://dpwesteurope.svc.datafactory.azure.com/callback/1"}), now)
    assert [e["PartitionKey"] for e in checkpoints.waiting_on(placed.hold_id)] == [reached["pause_id"]]
    strip_index(api, table, azurite, [reached["pause_id"]])
    assert checkpoints.waiting_on(placed.hold_id) == []
    backfill._backfilled.clear()
    assert backfill.backfill() == 1
    assert [e["PartitionKey"] for e in checkpoints.waiting_on(placed.hold_id)] == [reached["pause_id"]]
