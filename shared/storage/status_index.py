"""The status index: which pauses are open and which were decided when, without reading the pauses.

Table `<table>status`, one partition ("index"), three RowKey ranges:

    open|<created>|<pause_id>            a pending pause (also while a decision on it is in flight)
    held|<created>|<pause_id>            a held checkpoint (also while its callback is in flight)
    decided|<inverted decided>|<pause_id> a decision, newest first, with what the console and CSV show

Every listing is a RowKey range of one partition, so it costs what it lists, however many pauses
were ever stored. A pause keeps its open row's key (`index_key`); when it becomes final one batch
transaction deletes that row and writes its decision row — one write, so an approval that continues
a pipeline costs one point read and three writes (claim, record, index) and no query. (The index
write goes at the same time as the record; if the record does not land, `reopened` undoes it.)

The index is a cache of the pauses' statuses, never the truth: a listing checks every row it shows
against its pause (a point read) and repairs a row that is stale; the timer repairs a settled
pause's rows when it drops its due row, and reconciling a stale claim puts back or withdraws what
an unrecorded decision left. A row whose write failed is therefore late, not wrong.
"""

import contextlib
import contextvars
import json
import logging
from datetime import datetime
from typing import NamedTuple

from shared.clients import built_once
from shared.clock import as_utc
from shared.group_commit import GroupCommit
from shared.lifecycle.model import Status, claimed_from
from shared.settings import get_settings
from shared.storage.tables import (bad_cursor, decode_cursor, encode_cursor, forgotten_with_settings, insert,
                                   one_page, submit, table, translate, unpack_json)

logger = logging.getLogger(__name__)

PARTITION = "index"
OPEN, HELD, DECIDED = "open", "held", "decided"
_MAX_MS = 10 ** 14  # inverted timestamps: newer decisions sort first
# What a decision row carries for the console and the CSV (copied from the pause when it is final).
DECISION_FIELDS = ("status", "mode", "subscription_id", "resource_group", "factory_name", "pipeline_name",
                   "decided_by", "run_id", "requested_by", "checkpoint")
_TEXT_LIMIT = 1000
# The range each open status is indexed in. A claim changes only the pause, not its row, so a
# claimed pause is in the range of the status it was claimed from (see `ranges_of`).
RANGE_OF = {Status.PENDING: OPEN, Status.SCHEDULED: OPEN, Status.HELD: HELD}


class Row(NamedTuple):
    pause_id: str
    row_key: str
    properties: dict


def ranges_of(status: Status) -> tuple[str, ...]:
    """The open ranges holding the pauses in `status`, from the lifecycle's rules (none for a final
    status: those are read from the decisions)."""
    return tuple(dict.fromkeys(RANGE_OF[source] for source in claimed_from(status)))


def open_key(kind: str, created_at: datetime, pause_id: str) -> str:
    return f"{kind}|{as_utc(created_at):%Y%m%dT%H%M%S%f}|{pause_id}"


def inverted(moment: datetime) -> str:
    """Milliseconds counted down, so the newest sorts first in a RowKey range."""
    return f"{_MAX_MS - int(as_utc(moment).timestamp() * 1000):014d}"


def decided_key(decided_at: datetime, pause_id: str) -> str:
    return f"{DECIDED}|{inverted(decided_at)}|{pause_id}"


def open_row(kind: str, pause_id: str, created_at: datetime, summary: dict) -> dict:
    """The row of a new open pause; `summary` holds what a listing filters on before reading the
    pauses (a held checkpoint's `hold_ids`)."""
    return {"PartitionKey": PARTITION, "RowKey": open_key(kind, created_at, pause_id), **summary}


def decision_row(pause_id: str, entity: dict) -> dict | None:
    """The decision row of a final pause (None when it has no decision time to file it under)."""
    decided_at = entity.get("decided_at")
    if not isinstance(decided_at, datetime):
        return None
    row = {"PartitionKey": PARTITION, "RowKey": decided_key(decided_at, pause_id), "decided_at": decided_at}
    for name in DECISION_FIELDS:
        if isinstance(entity.get(name), str):
            row[name] = entity[name][:_TEXT_LIMIT]
    words = entity.get("comment") or entity.get("reason")
    if isinstance(words, str):
        row["words"] = words[:_TEXT_LIMIT]
    for name in ("created_at", "expires_at"):
        if isinstance(entity.get(name), datetime):
            row[name] = entity[name]
    return row


def operations_for(pause_id: str, entity: dict, drop_open: bool = True) -> list:
    """The index operations of a pause that became final: drop its open row, write its decision row."""
    from azure.data.tables import UpdateMode

    operations = []
    opened = entity.get("index_key")
    if drop_open and isinstance(opened, str) and opened.startswith((OPEN + "|", HELD + "|")):
        operations.append(("delete", {"PartitionKey": PARTITION, "RowKey": opened}))
    decided = decision_row(pause_id, entity)
    if decided is not None:
        operations.append(("upsert", decided, {"mode": UpdateMode.REPLACE}))
    return operations


class Deferred:
    """The timer's index updates, gathered and sent 50 pauses to a transaction (the index is one
    partition) instead of one transaction each: settling thousands of pauses costs tens of requests."""

    BATCH = 100  # operations per transaction, Table storage's limit

    def __init__(self):
        import threading

        self._lock = threading.Lock()
        self._operations: list = []

    def add(self, pause_id: str, entity: dict, drop_open: bool = True) -> None:
        with self._lock:
            self._operations.extend(operations_for(pause_id, entity, drop_open))
            full = len(self._operations) >= self.BATCH - 1
            ready, self._operations = (self._operations, []) if full else ([], self._operations)
        self._send(ready)

    def flush(self) -> None:
        with self._lock:
            ready, self._operations = self._operations, []
        self._send(ready)

    @staticmethod
    def _send(operations: list) -> None:
        for start in range(0, len(operations), Deferred.BATCH):
            try:
                get_status_index().submit(operations[start:start + Deferred.BATCH])
            except Exception as exc:  # listings and the timer's next visits repair what is left
                logger.warning("status index: %d deferred updates not written: %s", len(operations),
                               getattr(exc, "detail", None) or exc)


class Grouped:
    """The queue function's index updates: each settle's goes with those of the settles running beside it in
    one transaction (`shared.group_commit`), and the settle waits until it is written, as it waits for a
    write of its own. (A pause settled twice at once has its rows once: a transaction names a row once.)"""

    def __init__(self):
        self._commit = GroupCommit(self._send, Deferred.BATCH)

    def add(self, pause_id: str, entity: dict, drop_open: bool = True) -> None:
        try:
            self._commit.add(operations_for(pause_id, entity, drop_open))
        except Exception as exc:  # listings and the timer's next visits repair what is left
            logger.warning("status index not updated for pause_id=%s (listings repair it): %s", pause_id,
                           getattr(exc, "detail", None) or exc)

    @staticmethod
    def _send(operations: list) -> None:
        once = {operation[1]["RowKey"]: operation for operation in operations}
        get_status_index().submit(list(once.values()))


_deferred = contextvars.ContextVar("status_index_deferred", default=None)


def deferring_now() -> bool:
    """Whether this thread's index updates are being gathered (the timer's run)."""
    return _deferred.get() is not None


@contextlib.contextmanager
def deferring(collector: Deferred):
    """Within this block (one thread), `settled()` hands its updates to `collector`."""
    token = _deferred.set(collector)
    try:
        yield
    finally:
        _deferred.reset(token)


def _pause_id(row_key: str) -> str:
    return row_key.rsplit("|", 1)[-1]


class StatusIndex:
    def __init__(self, table_client):
        self._table = table_client

    @translate("status index")
    def add(self, row: dict) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            insert(self._table, row)
        except ResourceExistsError:
            pass

    @translate("status index")
    def remove(self, row_key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self._table.delete_entity(partition_key=PARTITION, row_key=row_key)
        except ResourceNotFoundError:
            pass

    @translate("status index")
    def submit(self, operations: list) -> None:
        """Submit index operations of the one partition (at most 100) in one transaction; when it is
        refused (an open row gone already) each is done on its own: upserts again, deletes if there."""
        from azure.data.tables import TableTransactionError, UpdateMode

        if not operations:
            return
        if len(operations) > 1:
            try:
                submit(self._table, operations)
                return
            except TableTransactionError:
                pass
        for operation in operations:  # one row: a plain request (the SDK builds a batch at ~10x the CPU)
            if operation[0] == "upsert":
                self._table.upsert_entity(operation[1], mode=UpdateMode.REPLACE)
            else:
                self.remove(operation[1]["RowKey"])

    @translate("status index query")
    def page(self, kind: str, limit: int, cursor: str | None, *, start: str | None = None,
             stop: str | None = None, status: str | None = None) -> tuple[list[Row], str | None]:
        """One page of a range (`kind`'s rows, or [start, stop) within it), and the next page's cursor."""
        low, high = start or f"{kind}|", stop or f"{kind}|~"
        query, parameters = "PartitionKey eq @p and RowKey ge @low and RowKey lt @high", {"p": PARTITION, "low": low,
                                                                                          "high": high}
        if status is not None:
            query, parameters["s"] = query + " and status eq @s", status
        entities, next_cursor = one_page(lambda token: self._table.query_entities(
            query, parameters=parameters, results_per_page=limit).by_page(continuation_token=token), cursor)
        rows = [Row(_pause_id(e["RowKey"]), e["RowKey"],
                    {k: v for k, v in e.items() if k not in ("PartitionKey", "RowKey")}) for e in entities]
        return rows, next_cursor

    def page_ranges(self, kinds: tuple, limit: int, cursor: str | None) -> tuple[list[Row], str | None]:
        """One page over several ranges read one after the other; the cursor says which range it is in."""
        token = decode_cursor(cursor) or {}
        kind = token.pop("range", kinds[0])
        if kind not in kinds:
            raise bad_cursor()
        rows: list[Row] = []
        while True:
            found, following = self.page(kind, limit - len(rows), encode_cursor(token))
            rows += found
            if following:
                return rows, encode_cursor({**decode_cursor(following), "range": kind})
            later = kinds[kinds.index(kind) + 1:]
            if not later:
                return rows, None
            kind, token = later[0], {}
            if len(rows) >= limit:
                return rows, encode_cursor({"range": kind})

    def decisions(self, since: datetime, until: datetime, limit: int, cursor: str | None):
        """Decisions made in [since, until), newest first."""
        return self.page(DECIDED, limit, cursor, start=f"{DECIDED}|{inverted(until)}|~",
                         stop=f"{DECIDED}|{inverted(since)}|~")


@forgotten_with_settings
@built_once
def get_status_index() -> StatusIndex:
    return StatusIndex(table(get_settings().status_table))


def open_summary(entity: dict) -> dict:
    """What a pause's open row carries beside its key: for a held checkpoint, what listings of a hold
    filter on before reading any pause."""
    if entity.get("mode") != "checkpoint":
        return {}
    try:
        hold_ids = json.loads(unpack_json(entity, "hold_ids") or "[]")
    except (ValueError, TypeError):
        hold_ids = []
    return {**{name: entity[name] for name in ("mode", "pipeline_name", "factory_name", "checkpoint")
               if isinstance(entity.get(name), str)}, "hold_ids": ",".join(map(str, hold_ids))}


def withdrawn(pause_id: str, decided_at) -> None:
    """Remove the decision row filed under `decided_at` (a decision whose record never landed);
    never failing the caller."""
    try:
        if isinstance(decided_at, datetime):
            get_status_index().remove(decided_key(decided_at, pause_id))
    except Exception as exc:
        logger.warning("status index decision row not withdrawn for pause_id=%s: %s", pause_id,
                       getattr(exc, "detail", None) or exc)


def reopened(pause_id: str, entity: dict, decided_at) -> None:
    """Undo a decision's index update whose record did not land: the pause's open row back, the
    decision row filed under `decided_at` gone. Never failing the caller (listings repair the rest)."""
    withdrawn(pause_id, decided_at)
    opened = entity.get("index_key")
    try:
        if isinstance(opened, str) and opened.startswith((OPEN + "|", HELD + "|")):
            get_status_index().add({"PartitionKey": PARTITION, "RowKey": opened, **open_summary(entity)})
    except Exception as exc:
        logger.warning("status index not reopened for pause_id=%s (listings repair it): %s", pause_id,
                       getattr(exc, "detail", None) or exc)


def settled(pause_id: str, entity: dict, drop_open: bool = True) -> None:
    """After a pause became final: update the index, never failing the caller (repairs catch up).

    `drop_open=False` (the timer finding a pause settled long ago): only make sure its decision row
    is there; its open row was dropped when it was decided, and a listing drops one that was not.
    """
    collector = _deferred.get()
    if collector is not None:
        collector.add(pause_id, entity, drop_open)
        return
    try:
        get_status_index().submit(operations_for(pause_id, entity, drop_open))
    except Exception as exc:
        logger.warning("status index not updated for pause_id=%s (listings repair it): %s", pause_id,
                       getattr(exc, "detail", None) or exc)
