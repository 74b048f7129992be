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
  6,800 rows/s at 6 % on this machine), and the client shares the two cores with Azurite.

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
from shared.store import DueIndex

BATCH = 100
INSERT_THREADS = 12


def fill(azurite, table: str, template: dict, count: int, seed: int = 7, due: str = "never") -> list:
    """Add `count` pending pauses shaped like `template` to `table`, with their due-index rows; return their ids.

    `due` says when the timer wants them: "never" (they expire within the next 30 days, never
    during a run), "expired" (they expired within the last hour), or "check" (they expire later,
    but a check attempt fell due within the last hour: `template` must be a pause with checks).
    """
    if due not in ("never", "expired", "check"):
        raise ValueError(f"due must be never, expired or check, not {due!r}")
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    ids = []
    index_rows = defaultdict(list)
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
        due_at = expires
        if due == "check":
            due_at = entity["next_check_at"] = now - timedelta(seconds=rng.randrange(1, 3600))
        chunks[i % INSERT_THREADS].append(json.dumps(_add_entity_properties(entity)).encode())
        partition, row = DueIndex.keys(pause_id, due_at)
        index_rows[partition].append({"PartitionKey": partition, "RowKey": row})

    # An account SAS (add only): a table SAS is not accepted on the $batch path.
    sas = generate_account_sas(AzureNamedKeyCredential(ACCOUNT_NAME, azurite.account_key),
                               resource_types=ResourceTypes(object=True), permission=AccountSasPermissions(add=True),
                               expiry=now + timedelta(hours=6))
    errors = []
    with ThreadPoolExecutor(INSERT_THREADS + 1, thread_name_prefix="bulk") as pool:
        futures = [pool.submit(_insert_all, azurite, table, sas, chunk) for chunk in chunks]
        futures.append(pool.submit(_index_all, azurite, table + "expiry", sas, index_rows))
        for future in futures:
            try:
                future.result()
            except Exception as exc:  # report every failing loader, not just the first
                errors.append(exc)
    if errors:
        raise RuntimeError(f"bulk load failed: {errors[0]!r} (and {len(errors) - 1} more)")
    return ids


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
