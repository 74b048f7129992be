"""The storage edge (shared/storage/tables.py) against a real Azurite: its own entity-group
transaction envelope does what the SDK's submit_transaction does, and refuses what it refuses."""

import gc
import socket
import uuid
from datetime import datetime, timezone

import pytest
from azure.core import MatchConditions
from azure.data.tables import TableServiceClient, TableTransactionError, UpdateMode

from shared.storage.tables import submit

pytestmark = pytest.mark.integration


@pytest.fixture
def tables(azurite):
    """Two fresh tables: one written by the app's transactions, one by the SDK's, for comparison."""
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    ours = service.create_table("lean" + uuid.uuid4().hex[:10])
    sdks = service.create_table("sdk" + uuid.uuid4().hex[:10])
    yield ours, sdks
    for table in (ours, sdks):
        service.delete_table(table.table_name)
    service.close()


def contents(table):
    return sorted((e["PartitionKey"], e["RowKey"], {k: v for k, v in e.items() if k not in ("PartitionKey", "RowKey")})
                  for e in table.list_entities())


ENTITY = {"PartitionKey": "index", "RowKey": "decided|it's 50% & more", "at": datetime(2026, 12, 6, 5, 25, 13,
          14055, tzinfo=timezone.utc), "n": 5, "f": 1.5, "ok": True, "b": b"\x00\xff", "s": "caf\u00e9 \u2603", "e": ""}


def test_a_transaction_writes_exactly_what_the_sdks_writes(tables):
    for table in tables:
        table.create_entity({"PartitionKey": "index", "RowKey": "open|a b", "x": 1})
        table.create_entity({"PartitionKey": "index", "RowKey": "merged", "kept": "yes", "v": 1})
    operations = [("delete", {"PartitionKey": "index", "RowKey": "open|a b"}),
                  ("upsert", ENTITY, {"mode": UpdateMode.REPLACE}),
                  ("upsert", {"PartitionKey": "index", "RowKey": "merged", "v": 2}, {"mode": UpdateMode.MERGE}),
                  ("create", {"PartitionKey": "index", "RowKey": "created", "v": "new"})]
    ours, sdks = tables
    submit(ours, operations)
    sdks.submit_transaction(operations)
    assert contents(ours) == contents(sdks)
    assert [row for _, row, _ in contents(ours)] == ["created", ENTITY["RowKey"], "merged"]


def test_an_update_conditional_on_a_stale_etag_is_refused_whole(tables):
    ours, _ = tables
    ours.create_entity({"PartitionKey": "p", "RowKey": "a", "v": 1})
    fresh = ours.get_entity("p", "a").metadata["etag"]
    ours.update_entity({"PartitionKey": "p", "RowKey": "a", "v": 2})  # the etag moves on
    stale_update = ("update", {"PartitionKey": "p", "RowKey": "a", "v": 3},
                    {"mode": UpdateMode.REPLACE, "etag": fresh, "match_condition": MatchConditions.IfNotModified})
    with pytest.raises(TableTransactionError, match="412"):
        submit(ours, [("create", {"PartitionKey": "p", "RowKey": "b"}), stale_update])
    assert [row for _, row, _ in contents(ours)] == ["a"]  # nothing of it applied
    assert ours.get_entity("p", "a")["v"] == 2


def test_deleting_a_row_that_is_gone_and_a_missing_table_are_refused_as_the_sdk_refuses_them(tables, azurite):
    ours, _ = tables
    with pytest.raises(TableTransactionError, match="404"):
        submit(ours, [("delete", {"PartitionKey": "p", "RowKey": "missing"})])
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    try:
        with pytest.raises(TableTransactionError, match="TableNotFound"):
            submit(service.get_table_client("missing" + uuid.uuid4().hex[:8]), [("create", {"PartitionKey": "p",
                                                                                             "RowKey": "x"})])
    finally:
        service.close()


def test_nothing_to_do_sends_nothing(tables):
    submit(tables[0], [])
    assert contents(tables[0]) == []


BATCH_HEAD = "--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_1\r\n\r\n"
BATCH_TAIL = "--changesetresponse_1--\r\n--batchresponse_1--\r\n"


def part(status_line: str, body: str = "") -> str:
    return ("--changesetresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            f"{status_line}\r\nContent-Type: application/json;odata=minimalmetadata\r\n\r\n{body}\r\n")


ERROR = '{"odata.error":{"code":"%s","message":{"lang":"en-US","value":"0:It went wrong.\\nRequestId:x"}}}'


@pytest.mark.parametrize("status, body, raised, code", [
    (202, BATCH_HEAD + part("HTTP/1.1 500 Internal Server Error", ERROR % "InternalError") + BATCH_TAIL,
     "unavailable", 500),
    (202, BATCH_HEAD + part("HTTP/1.0 409 Conflict", ERROR % "EntityAlreadyExists") + BATCH_TAIL, "refused", 409),
    (202, BATCH_HEAD + part("HTTP/1.1 204 No Content") + BATCH_TAIL, "unavailable", None),  # 1 result for 2 ops
    (202, "<html>a proxy's page</html>", "unavailable", None),
    (413, "", "too large", 413),
])
def test_an_answer_that_is_not_every_operation_applied_is_never_read_as_success(status, body, raised, code):
    """Answers a service (or a proxy in front of it) might give, made by a local server: each is an error
    of the kind its callers handle, never a silent success."""
    from azure.data.tables import TableServiceClient
    from werkzeug.wrappers import Response

    from local_dev.functions_host import serve
    from shared.errors import Unavailable
    from shared.storage.tables import translate

    content_type = "text/html" if body.startswith("<") else "multipart/mixed; boundary=batchresponse_1"
    app = Response(body, status=status, content_type=content_type)
    with serve(lambda environ, start: app(environ, start)) as server:
        service = TableServiceClient.from_connection_string(
            f"DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={'a' * 88};TableEndpoint={server.url}/acct;",
            retry_total=0)
        table = service.get_table_client("t")
        operations = [("upsert", {"PartitionKey": "p", "RowKey": "a"}), ("delete", {"PartitionKey": "p", "RowKey": "b"})]
        try:
            with pytest.raises(Exception) as failure:
                translate("test")(lambda: submit(table, operations))()
        finally:
            service.close()
    error = failure.value
    if raised == "unavailable":
        assert isinstance(error, Unavailable)
    elif raised == "refused":
        assert isinstance(error, TableTransactionError) and error.status_code == code
        assert "EntityAlreadyExists" in error.message and "\\n" not in error.message  # the JSON escape read
    else:
        from azure.data.tables import RequestTooLargeError

        assert isinstance(error, RequestTooLargeError)


def test_a_json_field_merged_shorter_across_a_chunk_boundary_reads_back_whole(tables):
    """A MERGE keeps chunks it does not name: the ones the shorter value no longer has are emptied."""
    import json

    from azure.data.tables import UpdateMode

    from shared.storage.tables import CHUNK_BYTES, pack_json, unpack_json

    table = tables[0]
    long = json.dumps(["x" * 100] * (CHUNK_BYTES // 50))  # over two chunks
    table.create_entity({"PartitionKey": "p", "RowKey": "r", **pack_json("field", long)})
    stored = table.get_entity("p", "r")
    assert unpack_json(stored, "field") == long and "field__2" in stored
    table.update_entity({"PartitionKey": "p", "RowKey": "r", **pack_json("field", '["short"]', over=stored)},
                        mode=UpdateMode.MERGE)
    assert json.loads(unpack_json(table.get_entity("p", "r"), "field")) == ["short"]
    # Without `over` the old tail stays and the value no longer reads: what the emptied chunks prevent.
    table.update_entity({"PartitionKey": "p", "RowKey": "r", **pack_json("field", long)}, mode=UpdateMode.MERGE)
    table.update_entity({"PartitionKey": "p", "RowKey": "r", **pack_json("field", '["short"]')},
                        mode=UpdateMode.MERGE)
    assert unpack_json(table.get_entity("p", "r"), "field") != '["short"]'


def test_every_tables_client_is_made_with_the_service_never_while_others_are_in_use(app_env, monkeypatch):
    """Making a TableClient re-links the service's shared policies into its new pipeline; a request passing
    through them in another thread then failed ("'_SansIOHTTPPolicyRunner' object has no attribute 'next'",
    seen as a 500 when a cold instance's first requests came at once). So none is made after the service."""
    import threading

    from shared.storage import catalog, due_index, holds, pauses, status_index, tables

    made = []
    making = TableServiceClient.get_table_client
    monkeypatch.setattr(TableServiceClient, "get_table_client",
                        lambda self, name, **kw: made.append(name) or making(self, name, **kw))
    tables.reset_clients()
    start, failures = threading.Barrier(8), []

    def first_uses():
        start.wait()
        try:
            for getter in (pauses.get_store, due_index.get_due_index, status_index.get_status_index, holds.get_holds,
                           catalog.get_catalog):
                getter()
        except Exception as exc:  # noqa: BLE001 (any failure is the finding)
            failures.append(exc)

    workers = [threading.Thread(target=first_uses) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == [] and len(made) == 7 == len(set(made))  # one client per table, all made at once
    assert pauses.get_store()._table is tables.table(pauses.get_settings().pauses_table)
    tables.reset_clients()


@pytest.mark.parametrize("fault", ["before", "after"])
def test_a_transaction_retried_after_a_5xx_leaves_no_connection_open_when_the_retry_fails(storage, fault):
    """The SDK's retry policy drops an answer it retries (a 503, a 500) unread and unclosed; a transaction's
    answer is streamed, so that one still held its connection. When the retry failed too (the connection
    dropped), the error's traceback kept the answer in a reference cycle and no one closed the connection:
    the garbage collector found its socket open later (a ResourceWarning in whichever test ran then)."""
    from azure.core.exceptions import ServiceResponseError

    from shared.settings import get_settings
    from shared.storage.tables import reset_clients, table

    pauses = table(get_settings().pauses_table)
    pauses.create_table()
    storage.inject(fault, methods={"POST"}, path=r"\$batch")
    storage.inject("drop", methods={"POST"}, path=r"\$batch")
    with pytest.raises(ServiceResponseError) as raised:  # kept until the end: its traceback holds the answer
        submit(pauses, [("upsert", {"PartitionKey": "p", "RowKey": "r"})])
    reset_clients()  # as between tests
    left_open = [sock for sock in gc.get_objects()
                 if isinstance(sock, socket.socket) and sock.fileno() != -1 and _peer_port(sock) == storage.port]
    for sock in left_open:  # closed here, not by the garbage collector in a later test
        socket.close(sock.detach())
    assert [kind for _, path, kind in storage.log if path.endswith("$batch")] == [fault, "drop"]
    assert left_open == [], f"a connection was left open after {raised.value!r}"


def _peer_port(sock):
    """The port a TCP socket is connected to; None for any other socket (a Unix socket, a listener, one closed)."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        return sock.getpeername()[1]
    except (OSError, IndexError, TypeError):
        return None
