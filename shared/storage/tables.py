"""Pause records in Azure Table storage: one entity per pause, found by a point read.

Layout: PartitionKey = pause id, RowKey = "pause". Spreading pauses over partitions keeps
point reads and conditional writes independent of how many pauses exist. JSON-valued fields
(`data` can be 256 KiB) are stored as UTF-8 in binary properties of at most 32 KiB each,
because a single Table property holds at most 64 KiB.

Beside it, the due index (table `<table>expiry`, named for its first use) holds small rows
keyed by when a pause next needs the timer: its expiry, a stale claim's reconciliation, an
unconfirmed callback's re-send. The timer reads only the rows that are due, never the pauses.
"""

import base64
import binascii
import functools
import inspect
import json
import logging
import re
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from shared.clients import POOL_SIZE, built_once, http_transport
from shared.errors import InvalidRequest, NotFound, Unavailable
from shared.settings import get_settings

logger = logging.getLogger(__name__)

ROW_KEY = "pause"
# A pause and its index rows are written at once: a row younger than this may be read before its pause.
MISSING_GRACE = timedelta(minutes=2)
CHUNK_BYTES = 32 * 1024
PAUSE_ID = re.compile(r"[0-9a-f]{32}")


class Conflict(Exception):
    """The entity changed since it was read (its ETag no longer matches)."""


class AlreadyExists(Exception):
    """An insert found the row there already."""


class Stored(NamedTuple):
    entity: dict
    etag: str


class Page(NamedTuple):
    entities: list
    cursor: str | None


def pack_json(name: str, text: str | None) -> dict:
    """Spread serialized JSON over `<name>__0`, `<name>__1`, … binary properties."""
    if text is None:
        return {}
    raw = text.encode("utf-8")
    return {f"{name}__{i}": raw[start:start + CHUNK_BYTES]
            for i, start in enumerate(range(0, max(len(raw), 1), CHUNK_BYTES))}


def unpack_json(entity: dict, name: str) -> str | None:
    """Join the chunks `pack_json` wrote, or None when the field was never stored."""
    parts, i = [], 0
    while f"{name}__{i}" in entity:
        parts.append(bytes(entity[f"{name}__{i}"]))
        i += 1
    return b"".join(parts).decode("utf-8") if parts else None


def _encode_cursor(token) -> str | None:
    if not token:
        return None
    return base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None):
    if not cursor:
        return None
    try:
        token = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(token, dict) and all(isinstance(v, str) for v in token.values()):
            return token
    except (ValueError, binascii.Error):
        pass
    raise InvalidRequest("The cursor is not one this API returned.",
                         [{"field": "cursor", "rule": "format", "message": "must be a cursor from a previous page"}])


def _translate(action: str):
    """Turn the SDK's storage failures into the app's errors, at this one edge.

    Generator methods (queries read page by page) are translated while they are iterated.
    """

    def translated(call):
        # Imported on first call, not when the module is: importing function_app stays light.
        from azure.core.exceptions import (AzureError, HttpResponseError, ResourceExistsError,
                                           ResourceModifiedError, ResourceNotFoundError)

        try:
            return call()
        except ResourceModifiedError as exc:
            raise Conflict() from exc
        except ResourceExistsError as exc:
            raise AlreadyExists() from exc
        except ResourceNotFoundError as exc:
            raise NotFound("No pause has that id or token.") from exc
        except HttpResponseError as exc:
            if exc.status_code and exc.status_code < 500 and exc.status_code not in (408, 429):
                logger.error("storage rejected %s: %s", action, exc.message)
                raise
            logger.warning("storage unavailable during %s: %s", action, exc.message)
            raise Unavailable("Pause storage is unavailable; nothing was changed. Try again shortly.") from exc
        except AzureError as exc:
            logger.warning("storage unreachable during %s: %s", action, exc)
            raise Unavailable("Pause storage is unavailable; nothing was changed. Try again shortly.") from exc

    def decorate(method):
        if inspect.isgeneratorfunction(method):
            @functools.wraps(method)
            def iterate(*args, **kwargs):
                items = method(*args, **kwargs)
                while True:
                    try:
                        yield translated(lambda: next(items))
                    except StopIteration:
                        return
            return iterate

        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            return translated(lambda: method(*args, **kwargs))
        return wrapper
    return decorate


def _insert(table, entity: dict) -> str:
    """Insert (never overwrite) and return the ETag, creating the table on its first use.

    An insert whose answer was lost is sent once more: it cannot apply twice, and "already
    exists" then means the first one landed (the keys are the caller's own).
    """
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError, ServiceResponseError

    def create():
        # The service answers 204 with the ETag instead of echoing the entity (up to 256 KiB of data) back.
        return table.create_entity(entity, response_preference="return-no-content")["etag"]

    try:
        return create()
    except ResourceNotFoundError:
        try:
            table.create_table()
        except ResourceExistsError:
            pass
        return create()
    except ServiceResponseError:
        try:
            return create()
        except ResourceExistsError:
            found = table.get_entity(partition_key=entity["PartitionKey"], row_key=entity["RowKey"],
                                     select=["PartitionKey"])
            return found.metadata["etag"]


class PauseStore:
    """Reads and writes pause entities; every write that decides a pause is conditional."""

    def __init__(self, table_client):
        self._table = table_client

    @_translate("create")
    def add(self, pause_id: str, properties: dict) -> str:
        """Insert a new pause (never overwrites); return its ETag.

        The id is 128 random bits, so "already exists" means the SDK's retry of this very insert
        found the first attempt's row (its answer was lost): that is success, not a conflict.
        """
        from azure.core.exceptions import ResourceExistsError

        try:
            return _insert(self._table, {"PartitionKey": pause_id, "RowKey": ROW_KEY, **properties})
        except ResourceExistsError:
            entity = self._table.get_entity(partition_key=pause_id, row_key=ROW_KEY, select=["PartitionKey"])
            return entity.metadata["etag"]

    @_translate("delete")
    def remove(self, pause_id: str, etag: str) -> None:
        """Delete a pause, only if it still has `etag` (undoes `add`)."""
        from azure.core import MatchConditions

        self._table.delete_entity(partition_key=pause_id, row_key=ROW_KEY, etag=etag,
                                  match_condition=MatchConditions.IfNotModified)

    @_translate("read")
    def get(self, pause_id: str) -> Stored:
        """Point-read one pause, or raise NotFound."""
        entity = self._table.get_entity(partition_key=pause_id, row_key=ROW_KEY)
        return Stored(dict(entity), entity.metadata["etag"])

    @_translate("update")
    def update(self, pause_id: str, changes: dict, etag: str) -> str:
        """Merge `changes` only if the pause still has `etag`; return the new ETag or raise Conflict."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        entity = {"PartitionKey": pause_id, "RowKey": ROW_KEY, **changes}
        result = self._table.update_entity(entity, mode=UpdateMode.MERGE, etag=etag,
                                           match_condition=MatchConditions.IfNotModified)
        return result["etag"]

    @_translate("query")
    def page(self, status: str | None, limit: int, cursor: str | None) -> Page:
        """One page of pauses, optionally with one status, plus the cursor of the next page."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        token = _decode_cursor(cursor)
        if status:
            pages = self._table.query_entities("status eq @status", parameters={"status": status},
                                               results_per_page=limit).by_page(continuation_token=token)
        else:
            pages = self._table.list_entities(results_per_page=limit).by_page(continuation_token=token)
        try:
            entities = [dict(e) for e in next(pages)]
        except (StopIteration, ResourceNotFoundError):
            return Page([], None)
        except HttpResponseError as exc:
            if token is not None and exc.status_code == 400:  # a cursor crafted to look like ours
                raise InvalidRequest("The cursor is not one this API returned.", [
                    {"field": "cursor", "rule": "format", "message": "must be a cursor from a previous page"}]) from exc
            raise
        return Page(entities, _encode_cursor(pages.continuation_token))


class Due(NamedTuple):
    pause_id: str  # or, for a row of kind "callback", the id of the callback it carries
    partition_key: str
    row_key: str
    attempts: int = 0
    kind: str | None = None  # None: a pause's row; "callback": a checkpoint's callback to send (shared.outbox)


class DueIndex:
    """When pauses next need the timer: PartitionKey = due hour, RowKey = due second + pause id.

    A pause has a row from creation (its expiry) until the timer finds it settled, so what the
    timer reads stays small however many pauses the table holds. A row is moved (rescheduled)
    by inserting the new one before deleting the old, so a pause is never without one.
    """

    def __init__(self, table_client):
        self._table = table_client

    @staticmethod
    def keys(pause_id: str, due_at) -> tuple[str, str]:
        moment = due_at.astimezone(timezone.utc)
        return moment.strftime("%Y%m%d%H"), f"{moment:%Y%m%dT%H%M%S}-{pause_id}"

    @staticmethod
    def due_at(due: Due) -> datetime:
        """When a row is due, from its key (long ago, for a key the app did not write)."""
        try:
            return datetime.strptime(due.row_key[:15], "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
        except ValueError:
            return datetime.min.replace(tzinfo=timezone.utc)

    @_translate("index")
    def add(self, pause_id: str, due_at) -> None:
        """Insert a row (an existing identical one is fine: rows carry no state but attempts)."""
        from azure.core.exceptions import ResourceExistsError

        partition, row = self.keys(pause_id, due_at)
        try:
            _insert(self._table, {"PartitionKey": partition, "RowKey": row})
        except ResourceExistsError:
            pass

    @_translate("index query")
    def due(self, now, page_size: int = 1000):
        """Every row due at or before `now`, oldest first, read a page at a time as it is iterated."""
        from azure.core.exceptions import ResourceNotFoundError

        partition, row = self.keys("~", now)  # "~" sorts after every hex pause id
        rows = self._table.query_entities("PartitionKey le @p and RowKey le @r", parameters={"p": partition, "r": row},
                                          select=["PartitionKey", "RowKey", "attempts", "kind"], results_per_page=page_size)
        try:
            for entity in rows:
                row_key = entity.get("RowKey") or ""
                pause_id = row_key.rsplit("-", 1)[-1]
                if "-" not in row_key or not PAUSE_ID.fullmatch(pause_id):
                    # Not a row the app wrote: skipping it keeps one stray row from stopping every run.
                    logger.warning("skipping a malformed due-index row %r/%r", entity.get("PartitionKey"), row_key)
                    continue
                try:
                    attempts = max(0, int(entity.get("attempts") or 0))
                except (TypeError, ValueError):
                    attempts = 0
                kind = entity.get("kind") if entity.get("kind") == "callback" else None
                yield Due(pause_id, entity["PartitionKey"], row_key, attempts, kind)
        except ResourceNotFoundError:
            return

    @_translate("index delete")
    def remove(self, due: Due) -> None:
        """Delete a row; one already gone (another timer instance) is fine."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self._table.delete_entity(partition_key=due.partition_key, row_key=due.row_key)
        except ResourceNotFoundError:
            pass

    def remove_many(self, dues: list) -> None:
        """Delete rows of one partition (at most 100) in one batch transaction; if any is gone
        already (another timer instance), the batch is refused whole and they go one by one."""
        if not self._remove_batch(dues):
            for due in dues:
                self.remove(due)

    @_translate("index batch delete")
    def _remove_batch(self, dues: list) -> bool:
        from azure.data.tables import TableTransactionError

        if len(dues) > 100 or {due.partition_key for due in dues} != {dues[0].partition_key}:
            raise ValueError("a batch deletes at most 100 rows of one partition")
        try:
            self._table.submit_transaction([("delete", {"PartitionKey": due.partition_key, "RowKey": due.row_key})
                                            for due in dues])
            return True
        except TableTransactionError:
            return False

    def move(self, due: Due, due_at) -> None:
        """Reschedule: the new row first, then the old one goes."""
        self.add(due.pause_id, due_at)
        if self.keys(due.pause_id, due_at) != (due.partition_key, due.row_key):
            self.remove(due)

    @_translate("index update")
    def count_attempt(self, due: Due, error: str) -> int:
        """Add one failed attempt to the row; return the new count."""
        from azure.data.tables import UpdateMode

        attempts = due.attempts + 1
        self._table.upsert_entity({"PartitionKey": due.partition_key, "RowKey": due.row_key, "attempts": attempts,
                                   "last_error": error[:1000]}, mode=UpdateMode.MERGE)
        return attempts


@built_once
def _service():
    from azure.data.tables import TableServiceClient

    # One service client (one connection pool) for both tables. Bounded retries and timeouts:
    # an outage answers 503 within seconds (by default at worst about 2 x (3 + 4) s), not minutes.
    # Retrying writes is safe here: inserts use fresh random keys and updates are conditional,
    # so a repeat cannot apply twice (the callers recognise their own earlier success).
    settings = get_settings()
    limits = settings.limits
    return TableServiceClient.from_connection_string(
        settings.storage_connection, retry_total=limits.storage_retry_total, retry_backoff_factor=0.2,
        transport=http_transport(connection_timeout=limits.storage_connect_timeout_seconds,
                                 read_timeout=limits.storage_read_timeout_seconds))


@built_once
def get_store() -> PauseStore:
    """The process's one pause store, built on first use."""
    return PauseStore(_service().get_table_client(get_settings().pauses_table))


@built_once
def get_due_index() -> DueIndex:
    """The process's one due index, built on first use."""
    return DueIndex(_service().get_table_client(get_settings().expiry_table))


@built_once
def _index_writer():
    """Threads that write due-index rows while the request's thread writes the pause."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="expiry-index")


def add_pause(pause_id: str, properties: dict, due_at, index_row: dict | None = None) -> str:
    """Insert a new pause, its due-index row (at `due_at`: its expiry, or its first check) and its
    status-index row (`index_row`) at the same time; return the pause's ETag.

    All rows or an error: if an index row fails, the pause is deleted again, since a pause the
    timer cannot find must not exist. (An index row whose pause failed is harmless: the timer
    drops a due row, a listing a status row.) Written at once, a pause costs one round trip to
    storage, not three.
    """
    from concurrent.futures import wait

    from shared.storage.status_index import get_status_index

    rows = [_index_writer().submit(get_due_index().add, pause_id, due_at)]
    if index_row is not None:
        rows.append(_index_writer().submit(get_status_index().add, index_row))
    try:
        etag = get_store().add(pause_id, properties)
    except BaseException:
        wait(rows)
        raise
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


@functools.lru_cache(maxsize=8)
def shared_key(name: str) -> bytes:
    """A random 32-byte key every instance of the app shares: made by whichever instance needs it
    first (an insert, which never overwrites) and kept in `<table>keys`; read once per process."""
    return _shared_key(name)


@_translate("key")
def _shared_key(name: str) -> bytes:
    import secrets

    from azure.core.exceptions import ResourceExistsError

    table = _service().get_table_client(get_settings().keys_table)
    try:
        _insert(table, {"PartitionKey": "keys", "RowKey": name, "key": secrets.token_bytes(32)})
    except ResourceExistsError:
        pass  # another instance made it first: use theirs
    return bytes(table.get_entity(partition_key="keys", row_key=name)["key"])


def reset_clients() -> None:
    """Forget the cached clients (tests change settings between cases)."""
    from shared.holds import get_holds
    from shared.storage.status_index import get_status_index

    for cached in (_service, get_store, get_due_index, get_status_index, get_holds, shared_key):
        cached.cache_clear()
