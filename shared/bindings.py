"""What the triggers declare, decided when `function_app` is imported (the Functions host indexes the functions then).

A binding expression (`%SETTING%`) has no default of its own, and the host does not start a function whose
expression names a missing setting; app settings are environment variables of the worker that indexes the
functions too, so each choice is made here from them.
"""

import os

from shared.connections import storage_account
from shared.settings import DEFAULT_SWEEP_SCHEDULE, PACED_SUFFIX, due_work_queue_of


def sweep_schedule(env=os.environ) -> str:
    """The timer trigger's schedule: the app setting by reference (`%PAUSE_SWEEP_SCHEDULE%`, which the
    Functions host resolves) when it is set, else the default."""
    return "%PAUSE_SWEEP_SCHEDULE%" if (env.get("PAUSE_SWEEP_SCHEDULE") or "").strip() else DEFAULT_SWEEP_SCHEDULE


def due_work_trigger(env=os.environ, paced: bool = False) -> tuple[str, str] | None:
    """The queue trigger's queue (DUE_WORK_QUEUE as the app reads it, trimmed; with `paced`, the queue of work waiting
    for ARM, `<DUE_WORK_QUEUE>-paced`) and connection (the prefix of the storage settings the app reads, so the
    trigger reads the queue the timer writes to).

    None when the timer settles due work itself (DUE_WORK_QUEUE empty, or an identity-based connection that
    names no queue endpoint): then no queue function is registered, so the host listens on no queue the app
    never writes to, and never tries one whose endpoint it could not know. None too for settings the app refuses:
    importing the app must not fail (every function would fail with it), and the app names what is wrong when it
    first reads them.
    """
    try:
        storage = storage_account(env)
        queue = due_work_queue_of(env, storage)
    except Exception:  # noqa: BLE001 (SettingsError, or whatever a malformed value raises)
        return None
    return (queue + (PACED_SUFFIX if paced else ""), storage.setting) if queue else None
