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
import re
from typing import NamedTuple

from shared.clients import built_once
from shared.errors import InvalidRequest, NotFound, Unavailable
from shared.outbound import http_transport
from shared.settings import get_settings
from shared.storage.credential import NoToken, access_hint, credential, identity_hint

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


def pack_json(name: str, text: str | None, over: dict | None = None) -> dict:
    """Spread serialized JSON over `<name>__0`, `<name>__1`, … binary properties.

    `over`: the entity this is merged onto. A MERGE keeps properties it does not name, so chunks the
    stored value had beyond the new one's are written empty; left alone they would be joined to it.
    """
    if text is None:
        return {}
    raw = text.encode("utf-8")
    chunks = {f"{name}__{i}": raw[start:start + CHUNK_BYTES]
              for i, start in enumerate(range(0, max(len(raw), 1), CHUNK_BYTES))}
    i = len(chunks)
    while over is not None and f"{name}__{i}" in over:
        chunks[f"{name}__{i}"] = b""
        i += 1
    return chunks


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


def bad_cursor() -> InvalidRequest:
    """The 400 for a cursor this API did not return (crafted, or from another listing)."""
    return InvalidRequest("The cursor is not one this API returned.",
                          [{"field": "cursor", "rule": "format", "message": "must be a cursor from a previous page"}])


def decode_cursor(cursor: str | None):
    if not cursor:
        return None
    try:
        token = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(token, dict) and all(isinstance(v, str) for v in token.values()):
            return token
    except (ValueError, binascii.Error):
        pass
    raise bad_cursor()


def one_page(pages_from, cursor: str | None) -> tuple[list[dict], str | None]:
    """One page of a listing that resumes at `cursor` (`pages_from(token)` gives the SDK's pages from a
    continuation token), and the cursor of the next page. A table not made yet is an empty listing; a
    cursor the service refuses (400) is one this API did not return."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    token = decode_cursor(cursor)
    pages = pages_from(token)
    try:
        entities = [dict(entity) for entity in next(pages)]
    except (StopIteration, ResourceNotFoundError):
        return [], None
    except HttpResponseError as exc:
        if token is not None and exc.status_code == 400:  # a cursor crafted to look like ours
            raise bad_cursor() from exc
        raise
    return entities, encode_cursor(pages.continuation_token)


def translate(action: str):
    """Turn the SDK's storage failures into the app's errors, at this one edge.

    Generator methods (queries read page by page) are translated while they are iterated.
    """

    def translated(call):
        # Imported on first call, not when the module is: importing function_app stays light.
        from azure.core.exceptions import (AzureError, HttpResponseError, ResourceExistsError, ResourceModifiedError,
                                           ResourceNotFoundError)

        try:
            return call()
        except NoToken as exc:
            logger.error("no token for storage during %s (%s): %s", action, exc, identity_hint())
            raise Unavailable("Pause storage refused the app's credential; nothing was changed. "
                              "The app's logs say what to configure.") from exc
        except ResourceModifiedError as exc:
            raise Conflict() from exc
        except ResourceExistsError as exc:
            raise AlreadyExists() from exc
        except ResourceNotFoundError as exc:
            raise NotFound("No pause has that id or token.") from exc
        except HttpResponseError as exc:
            if exc.status_code in (401, 403):
                # The app's credential was refused: a missing role (Storage Table Data Contributor) or
                # key, or a token for another account. Nothing was changed; an operator must act.
                logger.error("storage refused the app's credential during %s (%s): %s", action,
                             getattr(exc, "error_code", None) or exc.status_code, access_hint())
                raise Unavailable("Pause storage refused the app's credential; nothing was changed. "
                                  "The app's logs say what to configure.") from exc
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


def submit(table, operations: list) -> None:
    """Commit one entity-group transaction (one partition, at most 100 operations), as
    `TableClient.submit_transaction` does; raise TableTransactionError when the service refuses it.

    The SDK builds each operation's request (its own request builders, so keys, ETags and entity
    types are encoded exactly as it encodes them), but its batch envelope runs every operation
    through a policy pipeline on a new thread pool and reads the answer with the email package's
    MIME parser: ~4 ms of CPU per transaction, most of what a decision's status-index update
    cost. The envelope is a few lines of text, written and read here. (These reach into the SDK's
    private batch helpers; azure-data-tables is pinned, and tests/test_tables.py holds this to the
    SDK's own results.)
    """
    import uuid

    from azure.core.rest import HttpRequest
    from azure.data.tables._error import _decode_error
    from azure.data.tables._table_batch import TableBatchOperations

    base = f"{table.scheme}://{table._primary_hostname}"
    batch = TableBatchOperations(config=table._client._config, endpoint=base, table_name=table.table_name,
                                 is_cosmos_endpoint=False)
    for operation in operations:
        batch.add_operation(operation)
    if not batch.requests:
        return
    boundary, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    parts = [_part(index, request) for index, request in enumerate(batch.requests)]
    body = (f"--{boundary}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
            + "".join(f"--{changeset}\r\n{part}" for part in parts)
            + f"--{changeset}--\r\n\r\n--{boundary}--\r\n").encode("utf-8")
    request = HttpRequest("POST", f"{base}/$batch", content=body, headers={
        "x-ms-version": table.api_version, "DataServiceVersion": "3.0", "MaxDataServiceVersion": "3.0;NetFx",
        "Content-Type": f"multipart/mixed; boundary={boundary}", "Accept": "application/json"})
    # Streamed: no attempt to decode MIME as JSON. Every attempt's answer is read as it arrives (the hook
    # runs inside the SDK's retry policy, once per attempt), so its connection goes back to the pool: the
    # policy drops an answer it retries (a 503, a 500) unread and unclosed, and a streamed one still holds
    # its connection. When the retry failed too, the error's traceback kept that answer in a reference
    # cycle and no one closed the connection; the garbage collector found its socket open, much later.
    response = table._client.send_request(request, stream=True, raw_response_hook=_read_answer)
    if response.status_code == 413:
        from azure.data.tables._error import RequestTooLargeError

        raise _decode_error(response, error_message="The transaction request was too large",
                            error_type=RequestTooLargeError)
    if response.status_code != 202:
        raise _decode_error(response)
    _check_answer(response, len(batch.requests))


def _read_answer(pipeline_response) -> None:
    pipeline_response.http_response.read()


def _part(index: int, request) -> str:
    """One operation of a changeset: its request line, headers and JSON body, as the service reads it."""
    content = request.content
    if isinstance(content, bytes):
        content = content.decode("utf-8")
    headers = "".join(f"{name}: {value}\r\n" for name, value in request.headers.items())
    return (f"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: {index}\r\n\r\n"
            f"{request.method} {request.url} HTTP/1.1\r\n{headers}\r\n{content or ''}\r\n")


_PART_STATUS = re.compile(r"^HTTP/1\.[01] (\d{3})[^\r\n]*\r?\n(.*?)(?=^--changesetresponse|^--batchresponse|\Z)",
                          re.S | re.M)
_ERROR = re.compile(r'"code"\s*:\s*"([^"]*)".*?"value"\s*:\s*("(?:[^"\\]|\\.)*")', re.S)


def _check_answer(response, operations: int) -> None:
    """Return when every operation of the transaction succeeded; else raise as the SDK does.

    A refused transaction answers one part, the refused operation's error: TableTransactionError,
    carrying that part's status (so a 5xx still reads as storage unavailable) and error code. An
    answer that is not one part per operation, each a success, cannot be told to have applied:
    ServiceResponseError (storage unavailable; conditional writes make a retry safe).
    """
    from azure.core.exceptions import ServiceResponseError
    from azure.data.tables import TableTransactionError

    text = response.text() if "multipart/mixed" in (response.headers.get("Content-Type") or "") else ""
    parts = [(int(match.group(1)), match.group(2)) for match in _PART_STATUS.finditer(text)]
    refused = next(((status, body) for status, body in parts if not 200 <= status < 300), None)
    if refused is not None:
        status, body = refused
        found = _ERROR.search(body)
        code, message = (found.group(1), json.loads(found.group(2))) if found else ("TransactionFailed", body[:500])
        error = TableTransactionError(message=f"{message}\nErrorCode:{code}", response=response)
        error.status_code, error.error_code = status, code
        raise error
    if len(parts) != operations:
        raise ServiceResponseError(f"the transaction's answer held {len(parts)} results for {operations} operations")


class Storage(NamedTuple):
    service: object  # azure.data.tables.TableServiceClient
    tables: dict     # table name -> TableClient

    def close(self) -> None:  # what built_once calls when it forgets this
        self.service.close()


@built_once
def storage() -> Storage:
    from azure.data.tables import TableServiceClient

    # One service client (one connection pool) for every table. Bounded retries and timeouts:
    # an outage answers 503 within seconds (by default at worst about 2 x (3 + 4) s), not minutes.
    # Retrying writes is safe here: inserts use fresh random keys and updates are conditional,
    # so a repeat cannot apply twice (the callers recognise their own earlier success).
    settings = get_settings()
    limits = settings.limits
    options = {"retry_total": limits.storage_retry_total, "retry_backoff_factor": 0.2,
               "transport": http_transport(connection_timeout=limits.storage_connect_timeout_seconds,
                                          read_timeout=limits.storage_read_timeout_seconds)}
    account = settings.storage
    if account.uses_identity:
        client = TableServiceClient(endpoint=account.table_endpoint, credential=credential(), **options)
    else:
        client = TableServiceClient.from_connection_string(account.connection_string, **options)
    # Every table's client is made here, before anyone holds the service: making one re-links the
    # service's shared retry and redirect policies into the new client's pipeline, and a request
    # passing through them in another thread meanwhile fails ("'_SansIOHTTPPolicyRunner' object has
    # no attribute 'next'": seen as a 500 on a cold instance's concurrent first requests).
    names = (settings.pauses_table, settings.expiry_table, settings.status_table, settings.holds_table,
             settings.keys_table, settings.catalog_table, settings.requests_table)
    return Storage(client, {name: client.get_table_client(name) for name in names})


def service():
    """The app's TableServiceClient."""
    return storage().service


def table(name: str):
    """The TableClient of one of the app's tables (made with the service, never later)."""
    return storage().tables[name]


@built_once
def shared_key(name: str) -> bytes:
    """A random 32-byte key every instance of the app shares: made by whichever instance needs it
    first (an insert, which never overwrites) and kept in `<table>keys`; read once per process
    (concurrent first uses make one round trip, not one each)."""
    return _shared_key(name)


@translate("key")
def _shared_key(name: str) -> bytes:
    import secrets

    from azure.core.exceptions import ResourceExistsError

    keys = table(get_settings().keys_table)
    try:
        insert(keys, {"PartitionKey": "keys", "RowKey": name, "key": secrets.token_bytes(32)})
    except ResourceExistsError:
        pass  # another instance made it first: use theirs
    return bytes(keys.get_entity(partition_key="keys", row_key=name)["key"])


_RESET: list = []


def forgotten_with_settings(cached):
    """Register a cached client getter (`built_once`) that `reset_clients` forgets."""
    _RESET.append(cached)
    return cached


def reset_clients() -> None:
    """Forget the cached clients (tests change settings between cases)."""
    for cached in (storage, credential, shared_key, *_RESET):
        cached.cache_clear()
