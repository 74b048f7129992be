"""Fill a pauses table with many realistic pauses, fast.

Each pause is its own partition (PartitionKey = pause id), so a batch transaction (one
partition, up to 100 entities) cannot carry more than one of them. Instead:

- pause entities are cloned from one the app stored (same properties, fresh id, secret hash
  and times) and inserted one by one, by many threads over plain keep-alive HTTP with a
  table SAS: no SDK pipeline per entity, so Azurite, not the client, sets the pace;
- their due-index rows share a partition per expiry hour, so they go in batch
  transactions of up to 100 rows of one partition, on one more thread. The batch body is
  written here rather than by `submit_transaction`: the SDK builds and parses it with the
  `email` package, which costs ~10x the client CPU (2,000 rows/s at 70 % of a core against
  6,800 rows/s at 6 % on this machine), and the client shares the two cores with Azurite;
- decided pauses (`due="decided"`) get no due-index row but their decision row in the status
  index, whose one partition takes the same batches. On Azurite these are slow and get slower:
  it checks each insert against every row of its partition (LokiJS uses the PartitionKey index,
  then scans for the RowKey), so 100,000 rows in one partition take ~30 minutes here, against
  ~2 minutes for as many pauses. No request shape avoids that; Table storage has no such cost.

Both work against real Table storage too; nothing depends on an Azurite leniency.
"""

import http.client
import json
import random
import secrets
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from azure.core.credentials import AzureNamedKeyCredential
from azure.data.tables import AccountSasPermissions, ResourceTypes, TableClient, generate_account_sas
from azure.data.tables._serialize import _add_entity_properties  # the SDK's own entity -> JSON

from local_dev.azurite import ACCOUNT_NAME
from shared.storage.due_index import DueIndex
from shared.storage.backfill import MARKER
from shared.storage.status_index import OPEN, PARTITION, decision_row, open_key

BATCH = 100
INSERT_THREADS = 12


def fill(azurite, table: str, template: dict, count: int, seed: int = 7, due: str = "never", vary=None) -> list:
    """Add `count` pending pauses shaped like `template` to `table`, with their due-index rows; return their ids.

    `due` says when the timer wants them: "never" (they expire within the next 30 days, never
    during a run), "expired" (they expired within the last hour), or "check" (they expire later,
    but a check attempt fell due within the last hour: `template` must be a pause with checks).
    "decided" adds final pauses instead (restarted or cancelled within the last week), as the app
    leaves them once the timer dropped their due rows: a decision row in the status index each,
    no due row and no open row. `vary(entity, pause_id)` changes each clone (a callback URL of its own).
    """
    if due not in ("never", "expired", "check", "decided"):
        raise ValueError(f"due must be never, expired, check or decided, not {due!r}")
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    ids = []
    index_rows = defaultdict(list)
    status_rows = []
    chunks = [[] for _ in range(INSERT_THREADS)]
    for i in range(count):
        created = now - timedelta(seconds=rng.randrange(7 * 86400))
        if due == "expired":
            expires = now - timedelta(seconds=rng.randrange(1, 3600))
        else:
            expires = now + timedelta(seconds=rng.randrange(3600, 30 * 86400))  # never due during the run
        pause_id = "%032x" % rng.getrandbits(128)
        ids.append(pause_id)
        entity = {**template, "PartitionKey": pause_id, "secret_hash": secrets.token_hex(32),
                  "created_at": created, "expires_at": expires}
        entity.pop("index_key", None)  # the template's open row is not theirs
        if vary is not None:
            vary(entity, pause_id)
        due_at = expires
        if due == "check":
            due_at = entity["next_check_at"] = now - timedelta(seconds=rng.randrange(1, 3600))
        if due == "decided":
            _decide(entity, pause_id, created, rng)
            status_rows.append(_add_entity_properties(decision_row(pause_id, entity)))
        else:
            partition, row = DueIndex.keys(pause_id, due_at)
            index_rows[partition].append({"PartitionKey": partition, "RowKey": row})
        chunks[i % INSERT_THREADS].append(json.dumps(_add_entity_properties(entity)).encode())

    # An account SAS (add only): a table SAS is not accepted on the $batch path.
    sas = generate_account_sas(AzureNamedKeyCredential(ACCOUNT_NAME, azurite.account_key),
                               resource_types=ResourceTypes(object=True), permission=AccountSasPermissions(add=True),
                               expiry=now + timedelta(hours=6))
    errors = []
    with ThreadPoolExecutor(INSERT_THREADS + 2, thread_name_prefix="bulk") as pool:
        futures = [pool.submit(_insert_all, azurite, table, sas, chunk) for chunk in chunks]
        futures.append(pool.submit(_index_all, azurite, table + "expiry", sas, index_rows))
        futures.append(pool.submit(_index_all, azurite, table + "status", sas, {PARTITION: status_rows}))
        for future in futures:
            try:
                future.result()
            except Exception as exc:  # report every failing loader, not just the first
                errors.append(exc)
    if errors:
        raise RuntimeError(f"bulk load failed: {errors[0]!r} (and {len(errors) - 1} more)")
    # Loaded pauses are as a current version leaves them: the timer has no older ones to index.
    with TableClient.from_connection_string(azurite.connection_string, table_name=table + "status") as client:
        client.upsert_entity({"PartitionKey": PARTITION, "RowKey": MARKER, "cursor": "", "done": True})
    return ids


def _decide(entity: dict, pause_id: str, created: datetime, rng: random.Random) -> None:
    """Make `entity` final the way shared.lifecycle.engine leaves it (it keeps the key of its open row):
    mostly approved (a run started), some cancelled, within an hour of being made."""
    decided = created + timedelta(seconds=rng.randrange(1, 3600))
    approved = rng.random() < 0.8
    outcome = ({"status": "restarted", "run_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "comment": "Numbers look right"} if approved
               else {"status": "cancelled", "reason": "Duplicates in the staged rows"})
    entity.update(outcome, decided_at=decided, claimed_at=decided, decided_by="approver@example.test",
                  client_ip="203.0.113.7", user_agent="Mozilla/5.0 (bench)",
                  index_key=open_key(OPEN, created, pause_id))


HEADERS = {"Accept": "application/json;odata=nometadata", "DataServiceVersion": "3.0",
           "x-ms-version": "2019-02-02"}


def _insert_all(azurite, table: str, sas: str, bodies: list) -> None:
    connection = http.client.HTTPConnection(azurite.host, azurite.port, timeout=30)
    headers = {**HEADERS, "Content-Type": "application/json", "Prefer": "return-no-content"}
    try:
        for body in bodies:
            connection.request("POST", f"/{ACCOUNT_NAME}/{table}?{sas}", body, headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 204:
                raise RuntimeError(f"insert answered {response.status}: {answer[:300]!r}")
    finally:
        connection.close()


def _index_all(azurite, table: str, sas: str, rows_by_partition: dict) -> None:
    connection = http.client.HTTPConnection(azurite.host, azurite.port, timeout=60)
    try:
        for rows in rows_by_partition.values():
            for start in range(0, len(rows), BATCH):
                part = rows[start:start + BATCH]
                boundary, body = _batch_body(f"http://{azurite.host}:{azurite.port}/{ACCOUNT_NAME}/{table}", part)
                connection.request("POST", f"/{ACCOUNT_NAME}/$batch?{sas}", body,
                                   {**HEADERS, "Content-Type": f"multipart/mixed; boundary={boundary}"})
                response = connection.getresponse()
                answer = response.read()
                if response.status != 202 or answer.count(b"HTTP/1.1 204") != len(part):
                    raise RuntimeError(f"batch answered {response.status}: {answer[:500]!r}")
    finally:
        connection.close()


def _batch_body(table_url: str, rows: list) -> tuple[str, bytes]:
    """An OData batch with one changeset inserting `rows` (one partition), as Table storage takes it."""
    batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    parts = [f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"]
    for number, row in enumerate(rows):
        parts.append(f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                     f"POST {table_url} HTTP/1.1\r\nContent-Type: application/json\r\n"
                     f"Accept: application/json;odata=nometadata\r\nPrefer: return-no-content\r\n"
                     f"DataServiceVersion: 3.0\r\nContent-ID: {number}\r\n\r\n{json.dumps(row)}\r\n")
    parts.append(f"--{changeset}--\r\n--{batch}--\r\n")
    return batch, "".join(parts).encode()


def count_rows(connection_string: str, table: str) -> int:
    """How many entities `table` holds (a full scan: only for checking a load)."""
    with TableClient.from_connection_string(connection_string, table_name=table) as client:
        return sum(1 for _ in client.list_entities(select=["PartitionKey"], results_per_page=1000))
