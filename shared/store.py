"""Pause records in Azure Table storage: one entity per pause, found by a point read.

Layout: PartitionKey = pause id, RowKey = "pause". Spreading pauses over partitions keeps
point reads and conditional writes independent of how many pauses exist. JSON-valued fields
(`data` can be 256 KiB) are stored as UTF-8 in binary properties of at most 32 KiB each,
because a single Table property holds at most 64 KiB.

Beside it, the expiry index (`<table>expiry`) holds one small row per pause keyed by its
expiry time, so the expiry timer reads only the rows that are due, never the whole table.
"""

import base64
import binascii
import functools
import json
import logging
import threading
from datetime import timezone
from typing import NamedTuple

from .errors import InvalidRequest, NotFound, Unavailable
from .settings import get_settings

logger = logging.getLogger(__name__)

ROW_KEY = "pause"
CHUNK_BYTES = 32 * 1024


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

    def decorate(method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            # Imported on first call, not when the module is: importing function_app stays light.
            from azure.core.exceptions import (AzureError, HttpResponseError, ResourceModifiedError,
                                               ResourceNotFoundError)

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


def _insert(table, entity: dict) -> str:
    """Insert (never overwrite) and return the ETag, creating the table on its first use."""
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    # The service answers 204 with the ETag instead of echoing the entity (up to 256 KiB of data) back.
    try:
        return table.create_entity(entity, response_preference="return-no-content")["etag"]
    except ResourceNotFoundError:
        try:
            table.create_table()
        except ResourceExistsError:
            pass
        return table.create_entity(entity, response_preference="return-no-content")["etag"]


class PauseStore:
    """Reads and writes pause entities; every write that decides a pause is conditional."""

    def __init__(self, table_client):
        self._table = table_client

    @_translate("create")
    def add(self, pause_id: str, properties: dict) -> str:
        """Insert a new pause (never overwrites); return its ETag."""
        return _insert(self._table, {"PartitionKey": pause_id, "RowKey": ROW_KEY, **properties})

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


class Due(NamedTuple):
    pause_id: str
    partition_key: str
    row_key: str


class ExpiryIndex:
    """Pauses by expiry time: PartitionKey = expiry hour, RowKey = expiry second + pause id.

    Rows are removed once their pause is settled, so what the timer reads stays small however
    many pauses the table holds.
    """

    def __init__(self, table_client):
        self._table = table_client

    @staticmethod
    def keys(pause_id: str, expires_at) -> tuple[str, str]:
        moment = expires_at.astimezone(timezone.utc)
        return moment.strftime("%Y%m%d%H"), f"{moment:%Y%m%dT%H%M%S}-{pause_id}"

    @_translate("index")
    def add(self, pause_id: str, expires_at) -> None:
        partition, row = self.keys(pause_id, expires_at)
        _insert(self._table, {"PartitionKey": partition, "RowKey": row})

    @_translate("index query")
    def due(self, now, limit: int) -> list[Due]:
        """Up to `limit` rows whose expiry is at or before `now`, oldest hour first."""
        from azure.core.exceptions import ResourceNotFoundError

        partition, row = self.keys("~", now)  # "~" sorts after every hex pause id
        rows = self._table.query_entities("PartitionKey le @p and RowKey le @r", parameters={"p": partition, "r": row},
                                          select=["PartitionKey", "RowKey"], results_per_page=limit)
        found = []
        try:
            for entity in rows:
                found.append(Due(entity["RowKey"].rsplit("-", 1)[1], entity["PartitionKey"], entity["RowKey"]))
                if len(found) >= limit:
                    break
        except ResourceNotFoundError:
            return []
        return found

    @_translate("index delete")
    def remove(self, due: Due) -> None:
        self._table.delete_entity(partition_key=due.partition_key, row_key=due.row_key)


# Keep-alive connections per storage (or ARM) host: one per thread the Functions Python worker
# runs sync invocations on (at most 32), so a busy instance reuses connections, not reopens them.
POOL_SIZE = 32


def http_transport(*, connection_timeout: float, read_timeout: float):
    """The HTTP transport of the app's SDK clients: the SDK's own, with two changes.

    - The keep-alive pool holds POOL_SIZE connections instead of requests' 10, so 32
      concurrent invocations do not open (and throw away) a connection each.
    - requests looks for proxies and a CA bundle in the environment on every request, a scan
      of every environment variable: ~10 % of a Table call here, more on Azure with its many
      app settings. Without a proxy configured, the CA bundle it would find (if any) is read
      once, here, and given to the transport; with a proxy (whose use can depend on the host,
      through NO_PROXY) nothing changes and requests keeps deciding per request.

    The timeouts are given here: a client handed a transport no longer builds one from its
    own keyword arguments.
    """
    from urllib.request import getproxies

    from azure.core.pipeline.transport import RequestsTransport
    from requests import Session
    from requests.adapters import DEFAULT_POOLBLOCK, DEFAULT_POOLSIZE

    options = {"connection_timeout": connection_timeout, "read_timeout": read_timeout}
    if not getproxies():
        # What requests itself would take from the environment: REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE.
        with Session() as probe:
            verify = probe.merge_environment_settings("https://localhost/", {}, None, True, None)["verify"]
        options.update(connection_verify=verify, use_env_settings=False)
    transport = RequestsTransport(**options)
    transport.open()  # creates the session as the SDK configures it (its adapters retry nothing)
    for adapter in transport.session.adapters.values():
        adapter.init_poolmanager(DEFAULT_POOLSIZE, POOL_SIZE, DEFAULT_POOLBLOCK)
    return transport


def built_once(build):
    """Cache what `build()` returns for the process's life; concurrent first calls build it once.

    (functools.lru_cache alone runs `build` in every thread that misses at the same time: a
    cold instance hit by 32 requests built 32 Table clients.) `cache_clear()` forgets it.
    """
    lock = threading.Lock()
    cached = functools.lru_cache(maxsize=1)(build)

    @functools.wraps(build)
    def get():
        with lock:
            return cached()

    get.cache_clear = cached.cache_clear
    return get


@built_once
def _service():
    from azure.data.tables import TableServiceClient

    # One service client (one connection pool) for both tables. Bounded retries and timeouts:
    # an outage answers 503 within seconds (worst case about 2 x (3 + 4) s), not minutes.
    return TableServiceClient.from_connection_string(
        get_settings().storage_connection, retry_total=1, retry_backoff_factor=0.2,
        transport=http_transport(connection_timeout=3, read_timeout=4))


@built_once
def get_store() -> PauseStore:
    """The process's one pause store, built on first use."""
    return PauseStore(_service().get_table_client(get_settings().pauses_table))


@built_once
def get_expiry_index() -> ExpiryIndex:
    """The process's one expiry index, built on first use."""
    return ExpiryIndex(_service().get_table_client(get_settings().expiry_table))


@built_once
def _index_writer():
    """Threads that write expiry-index rows while the request's thread writes the pause."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="expiry-index")


def add_pause(pause_id: str, properties: dict, expires_at) -> str:
    """Insert a new pause and its expiry-index row at the same time; return the pause's ETag.

    Both rows or an error: if the index row fails, the pause is deleted again, since a pause
    the expiry timer cannot find must not exist. (An index row whose pause failed is harmless:
    the timer drops it.) Written at once, a pause costs one round trip to storage, not two.
    """
    from concurrent.futures import wait

    index_row = _index_writer().submit(get_expiry_index().add, pause_id, expires_at)
    try:
        etag = get_store().add(pause_id, properties)
    except BaseException:
        wait([index_row])
        raise
    try:
        index_row.result()
    except BaseException:
        try:
            get_store().remove(pause_id, etag)
        except Exception:
            logger.error("pause without expiry-index row pause_id=%s: its index row and its removal failed",
                         pause_id)
        raise
    return etag


def reset_clients() -> None:
    """Forget the cached clients (tests change settings between cases)."""
    for cached in (_service, get_store, get_expiry_index):
        cached.cache_clear()
