"""Restart with few and with many pauses stored: the time must not grow with the table.

One table per size, filled by `bulk.fill`. The sizes are measured in alternating blocks
(the app re-pointed at the other table between blocks, its first calls untimed), so drift
on a shared machine lands on every size alike.
"""

from .bulk import fill
from .floors import RawOps
from .harness import SUBSCRIPTION, App, Stack, approve_body, new_table_name, pause_body
from .stats import Samples

BLOCK = 25
WARMUP_PER_BLOCK = 3


def run(stack: Stack, app: App, sizes: list, samples: int, progress=print) -> tuple[dict, dict]:
    """Return size -> {name: Samples} for restart, raw_restart, raw_read and pause, and size -> its table."""
    body, approve = pause_body(), approve_body()
    blocks = max(1, samples // BLOCK)
    tables, tokens, raws, pending, results = {}, {}, {}, {}, {}
    try:
        for size in sizes:
            table = tables[size] = new_table_name(f"flat{size}x")
            stack.use_table(table)
            mine = [app.pause(body) for _ in range(blocks * (BLOCK + WARMUP_PER_BLOCK))]
            tokens[size] = [created["token"] for created in mine]
            raw = raws[size] = RawOps(stack.storage, table, stack.arm, SUBSCRIPTION)
            template = raw.template(mine[0]["pause_id"])
            pending[size] = [raw.clone(template) for _ in range(blocks * BLOCK)]
            for entity in pending[size]:
                raw.insert_one(entity)
            fillers = size - len(mine) - len(pending[size])
            if fillers > 0:
                progress(f"loading {fillers:,} pauses into the {size:,} table")
                fill(stack.azurite, table, template, fillers)
            results[size] = {name: Samples(name) for name in ("restart", "raw_restart", "raw_read", "pause")}

        for block in range(blocks):
            for size in sizes:
                stack.use_table(tables[size])
                raw, mine, theirs = raws[size], tokens[size], pending[size]
                for _ in range(WARMUP_PER_BLOCK):
                    app.restart(mine.pop(), approve)
                measured = results[size]
                for i in range(BLOCK):
                    entity = theirs[block * BLOCK + i]
                    measured["restart"].time(app.restart, mine.pop(), approve)
                    measured["raw_restart"].time(raw.restart, entity["PartitionKey"], "Numbers look right")
                    measured["raw_read"].time(raw.read, entity["PartitionKey"])
                    measured["pause"].time(app.pause, body)
        return results, tables
    finally:
        for raw in raws.values():
            raw.close()
