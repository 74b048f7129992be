"""A checkpoint with no hold placed (`shared.checkpoints.reach`, in-process) against one raw point read.

reach() reads the holds (one range query) while it writes the callback's due-index row, and
answers; a background thread calls the WebHook back CHECKPOINT_CALLBACK_DELAY_SECONDS later
(0.05 s here, so those threads run while later checkpoints are timed, as in a busy app) and
deletes the row. The floor is one point read of a pause on a stock client in the same Azurite;
a second floor makes reach()'s two storage calls raw (the row's insert and the holds query, at
once). All are interleaved in random order. The section ends only once every callback reached
the ADF stand-in and no callback row is left, so no background work spills into later sections.
"""

import time
import uuid
from datetime import datetime, timedelta, timezone

from .floors import INSERT_OPTIONS, RawOps
from .harness import SUBSCRIPTION, TARGET, App, Stack, new_table_name, pause_body
from .stats import interleaved

DELAY_SECONDS = 0.05
WARMUP = 20
WAIT_SECONDS = 60


def _callbacks(stack: Stack, names: set) -> list:
    import requests

    return [c for c in requests.get(f"{stack.adf.url}/_standin/callbacks", timeout=30).json()
            if c["callbackId"] in names]


def _rows_left(stack: Stack, table: str) -> int:
    from azure.data.tables import TableClient

    with TableClient.from_connection_string(stack.storage, table_name=table + "expiry") as index:
        return sum(1 for _ in index.query_entities("kind eq 'callback'", select=["RowKey"]))


def _raw_reach(raw: RawOps, holds, uri: str, payload: str) -> None:
    """reach()'s storage calls on stock clients: insert a callback-shaped due row (kind "floor", never sent)
    while querying the active holds."""
    from shared.storage.due_index import DueIndex
    from shared.storage.holds import ACTIVE, PARTITION

    partition, row = DueIndex.keys(uuid.uuid4().hex, datetime.now(timezone.utc) + timedelta(hours=1))
    write = raw._pool.submit(raw.index.create_entity, {"PartitionKey": partition, "RowKey": row, "kind": "floor",
                                                        "callback_uri": uri, "payload": payload, "sends": 0},
                             **INSERT_OPTIONS)
    list(holds.query_entities("PartitionKey eq @p and RowKey gt @low and RowKey lt @high",
                              parameters={"p": PARTITION, "low": f"{ACTIVE}|", "high": f"{ACTIVE}|~"}))
    write.result()


def run(stack: Stack, app: App, samples: int, seed: int = 1) -> dict:
    """{"checkpoint", "raw_read", "raw_reach": Samples, "checkpoints": made, "callbacks": arrived, "distinct",
    "answered_200", "rows_left": callback rows still in the due index, "wait_seconds": from the last
    checkpoint until all callbacks were seen}."""
    from azure.data.tables import TableClient, TableServiceClient

    from shared.checkpoints import reach
    from shared.targets.callback import checkpoint_payload
    from shared.validation import parse_checkpoint

    table = new_table_name("checkpoint")
    stack.use_table(table, CALLBACK_ALLOWED_HOSTS="127.0.0.1", CHECKPOINT_CALLBACK_DELAY_SECONDS=str(DELAY_SECONDS))
    # As in a deployment where holds were ever placed: the holds table exists, with no active hold.
    with TableServiceClient.from_connection_string(stack.azurite.connection_string) as service:
        service.create_table(table + "holds")
    raw = RawOps(stack.storage, table, stack.arm, SUBSCRIPTION)
    holds = TableClient.from_connection_string(stack.storage, table_name=table + "holds")
    payload = checkpoint_payload({"held": False, "checkpoint": "after_staging"}).decode()
    floor_id = app.pause(pause_body())["pause_id"]  # a real pause entity to read (and the app's clients built)
    # Requests parsed up front: what is timed is reach() alone.
    requests_ = [parse_checkpoint({**TARGET, "run_id": str(uuid.uuid4()), "checkpoint": "after_staging",
                                   "callBackUri": f"{stack.adf.url}/_standin/callbacks/bench-{n}"})
                 for n in range(WARMUP + samples)]

    def checkpoint(n):
        answer = reach(requests_[n])
        if answer != {"held": False, "checkpoint": "after_staging"}:
            raise RuntimeError(f"a checkpoint with no hold answered {answer!r}")

    try:
        for n in range(WARMUP):
            checkpoint(n)
            raw.read(floor_id)
            _raw_reach(raw, holds, requests_[n].callback_uri, payload)
        operations = [("checkpoint", lambda i: checkpoint(WARMUP + i)), ("raw_read", lambda i: raw.read(floor_id)),
                      ("raw_reach", lambda i: _raw_reach(raw, holds, requests_[i].callback_uri, payload))]
        results = interleaved(operations, samples, seed)
        last = time.perf_counter()
        # Wait for the background callbacks (and their rows' deletion) before the section ends.
        names = {f"bench-{n}" for n in range(len(requests_))}
        deadline = last + WAIT_SECONDS
        while True:
            arrived, left = _callbacks(stack, names), _rows_left(stack, table)
            if (len(arrived) >= len(names) and not left) or time.perf_counter() > deadline:
                break
            time.sleep(0.05)
        results.update(checkpoints=len(names), callbacks=len(arrived), rows_left=left,
                       distinct=len({c["callbackId"] for c in arrived}),
                       answered_200=sum(c["status"] == 200 for c in arrived),
                       wait_seconds=time.perf_counter() - last)
        return results
    finally:
        holds.close()
        raw.close()
