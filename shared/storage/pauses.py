"""The pauses table: one entity per pause, found by a point read.

Layout: PartitionKey = pause id, RowKey = "pause". Spreading pauses over partitions keeps point
reads and conditional writes independent of how many pauses exist. A pause is written together
with its due-index row (when the timer must look at it) and its status-index row.
"""

import functools
import logging
from datetime import timedelta

from shared.clients import POOL_SIZE, built_once
from shared.errors import NotFound
from shared.jsonbody import canonical
from shared.settings import get_settings
from shared.storage.due_index import get_due_index
from shared.storage.records import fit_notifications, json_field
from shared.storage.status_index import get_status_index
from shared.storage.tables import (Conflict, Page, Stored, forgotten_with_settings, insert, one_page, pack_json,
                                   table, translate)

logger = logging.getLogger(__name__)

ROW_KEY = "pause"
# A pause and its index rows are written at once: a row younger than this may be read before its pause.
MISSING_GRACE = timedelta(minutes=2)


class PauseStore:
    """Reads and writes pause entities; every write that decides a pause is conditional."""

    def __init__(self, table_client):
        self._table = table_client

    @translate("create")
    def add(self, pause_id: str, properties: dict) -> str:
        """Insert a new pause (never overwrites); return its ETag.

        The id is 128 random bits, so "already exists" means the SDK's retry of this very insert
        found the first attempt's row (its answer was lost): that is success, not a conflict.
        """
        from azure.core.exceptions import ResourceExistsError

        try:
            return insert(self._table, {"PartitionKey": pause_id, "RowKey": ROW_KEY, **properties})
        except ResourceExistsError:
            entity = self._table.get_entity(partition_key=pause_id, row_key=ROW_KEY, select=["PartitionKey"])
            return entity.metadata["etag"]

    @translate("delete")
    def remove(self, pause_id: str, etag: str) -> None:
        """Delete a pause, only if it still has `etag` (undoes `add`)."""
        from azure.core import MatchConditions

        self._table.delete_entity(partition_key=pause_id, row_key=ROW_KEY, etag=etag,
                                  match_condition=MatchConditions.IfNotModified)

    @translate("read")
    def get(self, pause_id: str) -> Stored:
        """Point-read one pause, or raise NotFound."""
        entity = self._table.get_entity(partition_key=pause_id, row_key=ROW_KEY)
        return Stored(dict(entity), entity.metadata["etag"])

    @translate("update")
    def update(self, pause_id: str, changes: dict, etag: str) -> str:
        """Merge `changes` only if the pause still has `etag`; return the new ETag or raise Conflict."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        entity = {"PartitionKey": pause_id, "RowKey": ROW_KEY, **changes}
        result = self._table.update_entity(entity, mode=UpdateMode.MERGE, etag=etag,
                                           match_condition=MatchConditions.IfNotModified)
        return result["etag"]

    def note(self, pause_id: str, stored: Stored, entries: list) -> dict | None:
        """Append `entries` to the pause's `notifications`; see `renote`."""
        return self.renote(pause_id, stored, lambda kept: kept + entries)

    def renote(self, pause_id: str, stored: Stored, change) -> dict | None:
        """Write `change(notifications)` as the pause's `notifications`, on the pause as it is now
        (something else may have written it since `stored` was read); return the pause as written, or
        None when it kept changing."""
        current = stored
        for _ in range(3):
            kept = json_field(current.entity, "notifications", []) or []
            written = pack_json("notifications", canonical(fit_notifications(change(kept))), over=current.entity)
            try:
                self.update(pause_id, written, current.etag)
                return {**current.entity, **written}
            except Conflict:
                current = self.get(pause_id)
        return None

    @translate("query")
    def page(self, status: str | None, limit: int, cursor: str | None) -> Page:
        """One page of pauses, optionally with one status, plus the cursor of the next page."""
        def pages_from(token):
            if status:
                return self._table.query_entities("status eq @status", parameters={"status": status},
                                                  results_per_page=limit).by_page(continuation_token=token)
            return self._table.list_entities(results_per_page=limit).by_page(continuation_token=token)

        return Page(*one_page(pages_from, cursor))


@forgotten_with_settings
@built_once
def get_store() -> PauseStore:
    """The process's one pause store, built on first use."""
    return PauseStore(table(get_settings().pauses_table))


@built_once
def index_writer():
    """Threads that write index rows while the request's thread writes the pause: a new pause's due-
    and status-index rows, a decision's status-index update."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="index-writer")


def add_pause(pause_id: str, properties: dict, due_at, index_row: dict | None = None) -> str:
    """Insert a new pause, its due-index row (at `due_at`: its expiry, or its first check) and its
    status-index row (`index_row`) at the same time; return the pause's ETag.

    All rows or an error: if an index row fails, the pause is deleted again, since a pause the
    timer cannot find must not exist. (An index row whose pause failed is harmless: the timer
    drops a due row, a listing a status row.) Written at once, a pause costs one round trip to
    storage, not three.
    """
    from concurrent.futures import wait

    rows = [index_writer().submit(get_due_index().add, pause_id, due_at)]
    if index_row is not None:
        rows.append(index_writer().submit(get_status_index().add, index_row))
    try:
        etag = get_store().add(pause_id, properties)
    except BaseException:
        wait(rows)
        raise
    wait(rows)  # both, even when one failed: none is still writing when this returns (or takes the pause back)
    try:
        for row in rows:
            row.result()
    except BaseException:
        try:
            get_store().remove(pause_id, etag)
        except Exception:
            logger.error("pause without its index rows pause_id=%s: an index row and its removal failed", pause_id)
        raise
    return etag


def settles_work(settle):
    """`settle(due, row, stored, now)` of a due-index row of work (follow-ups, a reminder, an escalation) as
    the timer calls it, `settle(due, now, read=None)`: with the row (`read`, with its ETag, when the caller has
    read it already) and the pause whose id it carries. A row gone already is settled; one whose pause is gone
    is removed (MISSING)."""
    from shared.lifecycle.model import SweepOutcome

    @functools.wraps(settle)
    def settled(due, now, read=None):
        row, _ = read or get_due_index().read_row(due)
        if row is None:
            return SweepOutcome.ALREADY_SETTLED
        try:
            stored = get_store().get(row.get("pause_id") or "")
        except NotFound:
            get_due_index().remove(due)
            return SweepOutcome.MISSING
        return settle(due, row, stored, now)

    return settled
