"""Pause and restart called in-process (as the Functions host calls them) against their raw floors.

The operations are interleaved in a fresh random order on every round, so a noisy neighbour
slows the app and its floor alike instead of whichever happened to run at that moment.
"""


from .floors import RawOps
from .harness import SUBSCRIPTION, App, Stack, approve_body, new_table_name, pause_body
from .stats import interleaved

WARMUP = 20


def run(stack: Stack, app: App, samples: int, seed: int = 1) -> dict:
    """Measure every operation `samples` times; return name -> Samples."""
    table = new_table_name()
    stack.use_table(table)
    body, approve = pause_body(), approve_body()
    # Warm-up: builds the app's clients, imports the ADF SDK, opens connections, creates the tables.
    for _ in range(WARMUP):
        app.restart(app.pause(body)["token"], approve)
    raw = RawOps(stack.storage, table, stack.arm, SUBSCRIPTION)
    tuned = RawOps(stack.storage, table, stack.arm, SUBSCRIPTION, app_transport=True)
    try:
        template = raw.template(app.pause(body)["pause_id"])
        for ops in (raw, tuned):
            for _ in range(WARMUP):
                ops.insert_two(ops.clone(template))
                ops.insert_two_concurrently(ops.clone(template))
                ops.insert_three_concurrently(ops.clone(template))
                ops.restart(app.pause(body)["pause_id"], "warm-up")
        # One pending pause per restart, made by the app, so every side decides identical entities.
        for_app = [app.pause(body)["token"] for _ in range(samples)]
        for_raw = [app.pause(body)["pause_id"] for _ in range(samples)]
        for_tuned = [app.pause(body)["pause_id"] for _ in range(samples)]

        operations = [
            ("pause", lambda i: app.pause(body)),
            ("raw_insert_one", lambda i: raw.insert_one(raw.clone(template))),
            ("raw_insert_two", lambda i: raw.insert_two(raw.clone(template))),
            ("raw_insert_two_concurrently", lambda i: raw.insert_two_concurrently(raw.clone(template))),
            ("raw_insert_three_concurrently", lambda i: raw.insert_three_concurrently(raw.clone(template))),
            ("app_transport_insert_one", lambda i: tuned.insert_one(tuned.clone(template))),
            ("app_transport_insert_two", lambda i: tuned.insert_two(tuned.clone(template))),
            ("restart", lambda i: app.restart(for_app[i], approve)),
            ("raw_restart", lambda i: raw.restart(for_raw[i], "Numbers look right")),
            ("app_transport_restart", lambda i: tuned.restart(for_tuned[i], "Numbers look right")),
        ]
        return interleaved(operations, samples, seed)
    finally:
        raw.close()
        tuned.close()
