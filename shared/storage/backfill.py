"""The one-off backfill of the status index: pauses stored before it existed get their rows.

The timer takes one page per run until the whole pauses table was read, resuming from the
continuation token kept in a marker row of the index; afterwards it costs one point read per run,
and none once this process saw it done.
"""

import logging
from datetime import datetime

from shared.lifecycle.model import CLAIMED
from shared.lifecycle.model import OPEN as OPEN_STATUSES
from shared.settings import get_settings
from shared.storage.status_index import HELD, OPEN, PARTITION, decision_row, open_row, open_summary
from shared.storage.tables import decode_cursor, encode_cursor, insert, submit, table, translate

logger = logging.getLogger(__name__)


MARKER = "~backfill"  # outside every range: how far the one-off backfill of older pauses got


@translate("status index backfill")
def backfill_step(pauses_table, index_table, page_size: int = 500) -> int | None:
    """Index one page of pauses stored before the status index existed (no `index_key`).

    The timer calls this once per run until the whole pauses table was read, resuming from the
    continuation token kept in the marker row; afterwards it costs one point read per run. Open
    pauses get their open row (and `index_key`), final ones their decision row. Returns how many
    pauses it indexed, or None when the backfill is done.
    """
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
    from azure.data.tables import UpdateMode

    try:
        marker = index_table.get_entity(partition_key=PARTITION, row_key=MARKER)
    except ResourceNotFoundError:
        marker = {}
    if marker.get("done"):
        return None
    token = decode_cursor(marker.get("cursor")) if marker.get("cursor") else None
    pages = pauses_table.list_entities(results_per_page=page_size).by_page(continuation_token=token)
    try:
        entities = list(next(pages))
    except (StopIteration, ResourceNotFoundError):
        entities = []
    decided, indexed = [], 0
    for entity in entities:
        if entity.get("index_key") or entity.get("RowKey") != "pause":
            continue
        pause_id, status = entity["PartitionKey"], entity.get("status")
        created = entity.get("created_at")
        if status in OPEN_STATUSES | CLAIMED and isinstance(created, datetime):
            kind = HELD if entity.get("mode") == "checkpoint" else OPEN
            row = open_row(kind, pause_id, created, open_summary(entity))
            try:
                insert(index_table, row)
            except ResourceExistsError:
                pass
            try:  # only onto the pause as it was read: one decided meanwhile keeps its own index rows
                pauses_table.update_entity({"PartitionKey": pause_id, "RowKey": "pause", "index_key": row["RowKey"]},
                                           mode=UpdateMode.MERGE, etag=entity.metadata["etag"],
                                           match_condition=MatchConditions.IfNotModified)
            except (ResourceModifiedError, ResourceNotFoundError):
                index_table.delete_entity(PARTITION, row["RowKey"])
                continue
            indexed += 1
        else:
            row = decision_row(pause_id, dict(entity))
            if row is not None:
                decided.append(("upsert", row, {"mode": UpdateMode.REPLACE}))
                indexed += 1
    for start in range(0, len(decided), 100):  # one partition: 100 rows per transaction
        submit(index_table, decided[start:start + 100])
    cursor = encode_cursor(pages.continuation_token)
    marker = {"PartitionKey": PARTITION, "RowKey": MARKER, "cursor": cursor or "", "done": not cursor}
    try:
        index_table.upsert_entity(marker, mode=UpdateMode.REPLACE)
    except ResourceNotFoundError:  # a new deployment: the index table is made here
        insert(index_table, marker)
    logger.info("status index backfill: %d older pauses indexed%s", indexed, "" if cursor else "; done")
    return indexed


_backfilled: set = set()  # tables whose backfill this process saw done: no read per timer run after that


def backfill(page_size: int = 500) -> int | None:
    """The timer's step of the backfill (never failing the timer); None once it is done."""
    settings = get_settings()
    if settings.status_table in _backfilled:
        return None
    try:
        indexed = backfill_step(table(settings.pauses_table),
                                table(settings.status_table), page_size)
    except Exception as exc:
        logger.warning("status index backfill not advanced this run: %s", getattr(exc, "detail", None) or exc)
        return 0
    if indexed is None:
        _backfilled.add(settings.status_table)
    return indexed


