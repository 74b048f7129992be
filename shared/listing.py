"""Listing pauses by status through the status index: a page costs what it shows.

Open pauses (pending, and those being decided right now) and held checkpoints are read from their
index range, each row checked against its pause with a point read (in parallel); a row whose pause
is final or gone is repaired on the way. Final statuses are read from the decisions range.
Listing every pause (no status) is the one listing that still reads the pauses table.
"""

import logging
from datetime import datetime, timezone

from shared.clients import POOL_SIZE, built_once
from shared.clock import utcnow
from shared.errors import NotFound
from shared.lifecycle.model import FINAL, Status
from shared.storage import status_index
from shared.storage.pauses import MISSING_GRACE, get_store
from shared.storage.records import to_record
from shared.storage.status_index import DECIDED, get_status_index

logger = logging.getLogger(__name__)



@built_once
def _readers():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="listing")


def _read(pause_id: str):
    try:
        return get_store().get(pause_id).entity
    except NotFound:
        return None


def _created(row_key: str) -> datetime | None:
    try:
        return datetime.strptime(row_key.split("|")[1], "%Y%m%dT%H%M%S%f").replace(tzinfo=timezone.utc)
    except (IndexError, ValueError):
        return None


def _repair(row: status_index.Row, entity: dict | None, now: datetime) -> bool:
    """True when the row is right for its range; else correct the index and return False."""
    if entity is None:
        created = _created(row.row_key)
        if created is None or now - created >= MISSING_GRACE:
            logger.warning("status index row without a pause removed: %s", row.row_key)
            get_status_index().remove(row.row_key)
        return False
    status = entity.get("status")
    if status in FINAL:
        logger.warning("status index repaired: pause_id=%s is %s, not %s", row.pause_id, status,
                       row.row_key.split("|")[0])
        status_index.settled(row.pause_id, entity)
        if entity.get("index_key") != row.row_key:  # settled() drops the pause's own row, not a stray one
            get_status_index().remove(row.row_key)
        return False
    if entity.get("index_key") != row.row_key:
        logger.warning("status index row not the pause's own removed: %s", row.row_key)
        get_status_index().remove(row.row_key)
        return False
    return True


def open_entities(kind: str, limit: int, cursor: str | None, now: datetime | None = None,
                  keep=None) -> tuple[list, str | None]:
    """One page of the open (or held) range: the pauses behind it as they are now, repaired rows left out
    (and, with `keep`, only those whose row it keeps)."""
    rows, next_cursor = get_status_index().page(kind, limit, cursor)
    if keep is not None:
        rows = [row for row in rows if keep(row)]
    return _behind(rows, now or utcnow()), next_cursor


def _behind(rows: list, now: datetime) -> list:
    """The pauses behind open rows, read in parallel; rows found stale are repaired and left out."""
    entities = list(_readers().map(_read, [row.pause_id for row in rows]))
    shown = []
    for row, entity in zip(rows, entities):
        try:
            if _repair(row, entity, now):
                shown.append(entity)
        except Exception as exc:  # a repair that fails is retried by the next listing
            logger.warning("status index repair failed for %s: %s", row.row_key, getattr(exc, "detail", None) or exc)
    return shown


def list_by_status(status: str, limit: int, cursor: str | None) -> dict:
    """`GET /api/pauses?status=`: final statuses from the decisions, the others from the open range(s)
    their pauses are indexed in (a `cancelling` pause may be in either, so both are read in turn)."""
    if status in FINAL:
        rows, next_cursor = get_status_index().page(DECIDED, limit, cursor, status=status)
        entities = [e for e in _readers().map(_read, [row.pause_id for row in rows])
                    if e is not None and e.get("status") == status]
        return {"items": [to_record(e) for e in entities], "cursor": next_cursor}
    rows, next_cursor = get_status_index().page_ranges(status_index.ranges_of(Status(status)), limit, cursor)
    entities = _behind(rows, utcnow())
    return {"items": [to_record(e) for e in entities if e.get("status") == status], "cursor": next_cursor}


def decisions(since: datetime, until: datetime, limit: int, cursor: str | None) -> tuple[list, str | None]:
    """Decision rows (what the index keeps of each) made in [since, until), newest first."""
    rows, next_cursor = get_status_index().decisions(since, until, limit, cursor)
    return [{"pause_id": row.pause_id, **row.properties} for row in rows], next_cursor
