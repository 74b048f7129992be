"""Listing promises pages that cost what they show and are true when shown: open statuses come from
their index ranges oldest first, final ones from the decisions newest first, each row checked against
its pause; a row found stale (its pause final, gone for longer than a write takes, or not the pause's
own row) is repaired and left out, and following the cursor visits every pause once, with no gaps."""

from datetime import timedelta

import pytest

from shared import listing, pauses
from shared.clock import utcnow
from shared.storage.pauses import MISSING_GRACE, get_store
from shared.storage.status_index import OPEN, get_status_index, open_row
from shared.validation import Decision, parse_pause
from shared.web.http import Caller
from tests.conftest import BASE
from tests.support import TARGET

pytestmark = pytest.mark.integration

NOBODY = Caller(None, None, None)


def create(now):
    return pauses.create_pause(parse_pause(dict(TARGET)), BASE, now=now)


def cancel(created, now, comment="not today"):
    return pauses.cancel(created["token"], Decision(comment=comment), NOBODY, now=now)


def every_page(status, limit):
    """Follow the cursor to the end; return the pause ids in order and the size of each page."""
    found, sizes, cursor = [], [], None
    for _ in range(50):
        page = listing.list_by_status(status, limit, cursor)
        assert all(item["status"] == status for item in page["items"])
        found += [item["pause_id"] for item in page["items"]]
        sizes.append(len(page["items"]))
        cursor = page["cursor"]
        if not cursor:
            return found, sizes
    raise AssertionError("the cursor never ended")


def open_row_keys():
    return [row.row_key for row in get_status_index().page(OPEN, 100, None)[0]]


@pytest.fixture
def start():
    return utcnow() - timedelta(hours=1)


def test_an_open_status_is_listed_oldest_first_page_by_page_without_gaps_or_repeats(app_env, start):
    created = {offset: create(start + timedelta(seconds=offset)) for offset in (30, 10, 50, 20, 40)}
    oldest_first = [created[offset]["pause_id"] for offset in sorted(created)]
    assert every_page("pending", 100)[0] == oldest_first
    found, sizes = every_page("pending", 2)
    assert found == oldest_first and sizes[:3] == [2, 2, 1]
    assert every_page("restarted", 2)[0] == []


def test_a_final_status_is_listed_from_the_decisions_newest_first(app_env, start):
    created = [create(start) for _ in range(4)]
    for offset, pause in zip((10, 30, 20), created):
        cancel(pause, start + timedelta(minutes=offset))
    newest_first = [created[1]["pause_id"], created[2]["pause_id"], created[0]["pause_id"]]
    assert every_page("cancelled", 100)[0] == newest_first
    assert every_page("cancelled", 1)[0] == newest_first
    assert every_page("pending", 100)[0] == [created[3]["pause_id"]]
    assert every_page("expired", 100)[0] == []


def test_a_row_whose_pause_became_final_is_repaired_and_shortens_only_its_page(app_env, start):
    first, stale, last = (create(start + timedelta(seconds=n)) for n in range(3))
    stored = get_store().get(stale["pause_id"])
    # Decided by a process that died before its index update: the open row is still there.
    get_store().update(stale["pause_id"], {"status": "expired", "decided_at": start + timedelta(minutes=5)},
                       stored.etag)
    page = listing.list_by_status("pending", 2, None)
    assert [item["pause_id"] for item in page["items"]] == [first["pause_id"]]
    assert page["cursor"]
    following = listing.list_by_status("pending", 2, page["cursor"])
    assert [item["pause_id"] for item in following["items"]] == [last["pause_id"]]
    assert stale["pause_id"] not in "".join(open_row_keys())  # repaired in the index, not only hidden
    assert every_page("expired", 10)[0] == [stale["pause_id"]]


def test_a_row_without_its_pause_is_kept_while_its_pause_may_be_landing_then_removed(app_env):
    created_at = utcnow()
    ghost = open_row(OPEN, "f" * 32, created_at, {})
    get_status_index().add(ghost)
    assert listing.open_entities(OPEN, 10, None, now=created_at + MISSING_GRACE - timedelta(seconds=1)) == ([], None)
    assert open_row_keys() == [ghost["RowKey"]]
    assert listing.open_entities(OPEN, 10, None, now=created_at + MISSING_GRACE) == ([], None)
    assert open_row_keys() == []


def test_a_second_row_of_an_open_pause_is_removed_and_the_pause_listed_once(app_env, start):
    pause = create(start)
    own = get_store().get(pause["pause_id"]).entity["index_key"]
    stray = open_row(OPEN, pause["pause_id"], start - timedelta(hours=1), {})
    get_status_index().add(stray)
    assert open_row_keys() == [stray["RowKey"], own]
    assert every_page("pending", 10)[0] == [pause["pause_id"]]
    assert open_row_keys() == [own]


def test_keep_leaves_rows_out_before_their_pauses_are_read(app_env, start):
    kept, skipped = create(start), create(start + timedelta(seconds=1))
    stored = get_store().get(skipped["pause_id"])
    get_store().update(skipped["pause_id"], {"status": "cancelled", "decided_at": start}, stored.etag)
    entities, cursor = listing.open_entities(OPEN, 10, None, keep=lambda row: row.pause_id == kept["pause_id"])
    assert [entity["PartitionKey"] for entity in entities] == [kept["pause_id"]] and cursor is None
    # The row left out was not read, so not repaired either: the next full listing does that.
    assert len(open_row_keys()) == 2
    assert [entity["PartitionKey"] for entity in listing.open_entities(OPEN, 10, None)[0]] == [kept["pause_id"]]
    assert len(open_row_keys()) == 1


def test_decisions_are_those_made_in_the_window_newest_first(app_env, start):
    created = [create(start) for _ in range(3)]
    for offset, pause in zip((10, 20, 30), created):
        cancel(pause, start + timedelta(minutes=offset), comment=f"at {offset}")
    rows, cursor = listing.decisions(start + timedelta(minutes=10), start + timedelta(minutes=30), 10, None)
    assert [row["pause_id"] for row in rows] == [created[1]["pause_id"], created[0]["pause_id"]] and cursor is None
    assert rows[0]["status"] == "cancelled" and rows[0]["words"] == "at 20"
    assert rows[0]["decided_at"] == start + timedelta(minutes=20)
    first, cursor = listing.decisions(start, start + timedelta(hours=1), 2, None)
    rest, end = listing.decisions(start, start + timedelta(hours=1), 2, cursor)
    assert [row["pause_id"] for row in first + rest] == [p["pause_id"] for p in reversed(created)] and end is None



def test_an_open_row_of_a_final_pause_without_index_key_is_removed_by_the_listing(app_env, start, table):
    from azure.data.tables import UpdateMode

    pause = create(start)
    # What the backfill leaves when its open row landed but the pause's index_key write did not.
    entity = table.get_entity(pause["pause_id"], "pause")
    del entity["index_key"]
    table.update_entity(entity, mode=UpdateMode.REPLACE)
    cancel(pause, start + timedelta(minutes=1))  # the decision drops the open row it knows of: none
    assert every_page("pending", 10)[0] == []
    assert every_page("cancelled", 10)[0] == [pause["pause_id"]]
    assert open_row_keys() == []  # the stray row is gone, not hidden by every listing
