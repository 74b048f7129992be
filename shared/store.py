"""Pause records in Azure Table storage: one entity per pause, found by a point read.

Layout: PartitionKey = pause id, RowKey = "pause". Spreading pauses over partitions keeps
point reads and conditional writes independent of how many pauses exist. JSON-valued fields
(`data` can be 256 KiB) are stored as UTF-8 in binary properties of at most 32 KiB each,
because a single Table property holds at most 64 KiB.
"""

import base64
import binascii
import functools
import json
import logging
from typing import NamedTuple

from .errors import InvalidRequest, NotFound, Unavailable
from .settings import Settings, get_settings

logger = logging.getLogger(__name__)

ROW_KEY = "pause"
CHUNK_BYTES = 32 * 1024
JSON_FIELDS = ("parameters", "data", "notification", "source", "input")


class Conflict(Exception):
    """The entity changed since it was read (its ETag no longer matches)."""


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
    """Turn the SDK's storage failures into the app's errors, at this one edge."""
    from azure.core.exceptions import (AzureError, HttpResponseError, ResourceModifiedError,
                                       ResourceNotFoundError)

    def decorate(method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except ResourceModifiedError as exc:
                raise Conflict() from exc
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
        return wrapper
    return decorate


class PauseStore:
    """Reads and writes pause entities; every write that decides a pause is conditional."""

    def __init__(self, table_client):
        self._table = table_client

    @classmethod
    def from_settings(cls, settings: Settings) -> "PauseStore":
        from azure.data.tables import TableClient

        # Bounded retries and timeouts: an outage answers 503 within seconds, not minutes.
        table = TableClient.from_connection_string(
            settings.storage_connection, table_name=settings.pauses_table,
            retry_total=2, retry_backoff_factor=0.2, connection_timeout=3, read_timeout=10)
        return cls(table)

    @_translate("create")
    def add(self, pause_id: str, properties: dict) -> str:
        """Insert a new pause (never overwrites); return its ETag."""
        from azure.core.exceptions import ResourceNotFoundError

        entity = {"PartitionKey": pause_id, "RowKey": ROW_KEY, **properties}
        try:
            return self._table.create_entity(entity)["etag"]
        except ResourceNotFoundError:
            # First pause ever: create the table once, then insert.
            self._create_table()
            return self._table.create_entity(entity)["etag"]

    def _create_table(self):
        from azure.core.exceptions import ResourceExistsError

        try:
            self._table.create_table()
        except ResourceExistsError:
            pass

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
        from azure.core.exceptions import ResourceNotFoundError

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
        return Page(entities, _encode_cursor(pages.continuation_token))


@functools.lru_cache(maxsize=1)
def get_store() -> PauseStore:
    """The process's one store (and so one Table client), built on first use."""
    return PauseStore.from_settings(get_settings())
