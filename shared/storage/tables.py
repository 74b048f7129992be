"""The one module that talks to azure-data-tables: the service client, error translation at this
edge, inserts, cursors, the JSON codec, and keys the app's instances share.

The tables the app keeps (pauses, the due index, the status index, holds) are modules beside
this one, each using only the public functions here.

JSON-valued fields (`data` can be 256 KiB) are stored as UTF-8 in binary properties of at most
32 KiB each, because a single Table property holds at most 64 KiB.
"""

import base64
import binascii
import functools
import inspect
import json
import logging
from typing import NamedTuple

from shared.clients import built_once
from shared.outbound import http_transport
from shared.errors import InvalidRequest, NotFound, Unavailable
from shared.settings import get_settings

logger = logging.getLogger(__name__)

CHUNK_BYTES = 32 * 1024


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


def encode_cursor(token) -> str | None:
    if not token:
        return None
    return base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None):
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


def translate(action: str):
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


def insert(table, entity: dict) -> str:
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


@built_once
def service():
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


@functools.lru_cache(maxsize=8)
def shared_key(name: str) -> bytes:
    """A random 32-byte key every instance of the app shares: made by whichever instance needs it
    first (an insert, which never overwrites) and kept in `<table>keys`; read once per process."""
    return _shared_key(name)


@translate("key")
def _shared_key(name: str) -> bytes:
    import secrets

    from azure.core.exceptions import ResourceExistsError

    table = service().get_table_client(get_settings().keys_table)
    try:
        insert(table, {"PartitionKey": "keys", "RowKey": name, "key": secrets.token_bytes(32)})
    except ResourceExistsError:
        pass  # another instance made it first: use theirs
    return bytes(table.get_entity(partition_key="keys", row_key=name)["key"])


_RESET: list = []


def forgotten_with_settings(cached):
    """Register a cached client getter (`built_once`) that `reset_clients` forgets."""
    _RESET.append(cached)
    return cached


def reset_clients() -> None:
    """Forget the cached clients (tests change settings between cases)."""
    for cached in (service, shared_key, *_RESET):
        cached.cache_clear()
