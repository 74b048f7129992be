"""Listing the pending pauses (`GET /api/pauses?status=pending`) with few and with many decided pauses stored.

Each table holds 20 pending pauses made by the app (each with its open row in the status index)
and N decided pauses loaded by `bulk.fill(due="decided")` (a decision row each, no open row).
The listing reads the open range of the status index (one query), then each of the 20 pauses
(point reads, in parallel), so it must not grow with the decided pauses. Its floors, on stock
clients: the same query followed by the same 20 point reads in parallel (the whole listing, raw),
and, to show its parts, that query alone and one point read. Sizes alternate in blocks, as in
`flat`. (Azurite filters every row of a table for any query, so there the raw query itself
grows with the rows the status index holds; Table storage seeks to the range.)
"""

from concurrent.futures import ThreadPoolExecutor

from .bulk import count_rows, fill
from .floors import RawOps
from .harness import SUBSCRIPTION, App, Stack, new_table_name, pause_body
from .stats import Samples

PENDING = 20
BLOCK = 10
WARMUP_PER_BLOCK = 2


def _open_range(client) -> list:
    """The one query the listing makes, raw: the first page of the open range."""
    from shared.storage.status_index import OPEN, PARTITION

    pages = client.query_entities("PartitionKey eq @p and RowKey ge @low and RowKey lt @high",
                                  parameters={"p": PARTITION, "low": f"{OPEN}|", "high": f"{OPEN}|~"},
                                  results_per_page=PENDING).by_page()
    return list(next(pages))


def _raw_listing(client, raw: RawOps, pool: ThreadPoolExecutor) -> None:
    """The listing's storage calls, raw: the open range, then a point read of each pause in it, at once."""
    list(pool.map(raw.read, [row["RowKey"].rsplit("|", 1)[-1] for row in _open_range(client)]))


def run(stack: Stack, app: App, sizes: list, samples: int, progress=print) -> dict:
    """size -> {"listing", "raw_listing", "raw_query", "raw_read": Samples, "listings", "exact": how many listings
    returned exactly the 20 pending ids, and what the load stored: "pauses", "open_rows", "decided_rows"}."""
    from azure.data.tables import TableClient, TableServiceClient

    from shared.pauses import list_pauses

    blocks = max(1, samples // BLOCK)
    tables, pending, raws, indexes, results = {}, {}, {}, {}, {}
    pool = ThreadPoolExecutor(PENDING, thread_name_prefix="raw-listing")
    try:
        for size in sizes:
            table = tables[size] = new_table_name(f"list{size}x")
            stack.use_table(table)
            # Made by the app, so each has its real open row (and makes the three tables).
            pending[size] = [app.pause(pause_body())["pause_id"] for _ in range(PENDING)]
            raws[size] = RawOps(stack.storage, table, stack.arm, SUBSCRIPTION, pool_size=PENDING)
            indexes[size] = TableClient.from_connection_string(stack.storage, table_name=table + "status")
            progress(f"listing: loading {size:,} decided pauses into {table}")
            fill(stack.azurite, table, raws[size].template(pending[size][0]), size, due="decided")
            kinds = [row["RowKey"].split("|", 1)[0] for row in indexes[size].list_entities(select=["RowKey"])]
            results[size] = {"listing": Samples(f"listing {size}"), "raw_listing": Samples(f"raw listing {size}"),
                             "raw_query": Samples(f"raw index query {size}"),
                             "raw_read": Samples(f"raw point read {size}"), "listings": 0, "exact": 0,
                             "pauses": count_rows(stack.storage, table), "open_rows": kinds.count("open"),
                             "decided_rows": kinds.count("decided")}

        for _ in range(blocks):
            for size in sizes:
                stack.use_table(tables[size])
                for _ in range(WARMUP_PER_BLOCK):  # untimed: the app's clients are rebuilt after use_table
                    list_pauses("pending", PENDING, None)
                r, expected = results[size], sorted(pending[size])
                for i in range(BLOCK):
                    page = r["listing"].time(list_pauses, "pending", PENDING, None)
                    r["raw_listing"].time(_raw_listing, indexes[size], raws[size], pool)
                    r["raw_query"].time(_open_range, indexes[size])
                    r["raw_read"].time(raws[size].read, pending[size][i % PENDING])
                    # Speed must not come from listing less (or other) pauses.
                    r["listings"] += 1
                    r["exact"] += sorted(item["pause_id"] for item in page["items"]) == expected
        return results
    finally:
        pool.shutdown()
        for client in [*raws.values(), *indexes.values()]:
            client.close()
        # 100k pauses and as many index rows: give Azurite's memory back before the next sections.
        with TableServiceClient.from_connection_string(stack.azurite.connection_string) as service:
            for table in tables.values():
                for name in (table, table + "expiry", table + "status"):
                    service.delete_table(name)
