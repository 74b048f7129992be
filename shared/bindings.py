"""What the triggers declare, decided when `function_app` is imported (the Functions host indexes the functions then).

A binding expression (`%SETTING%`) has no default of its own, and the host does not start a function whose
expression names a missing setting; app settings are environment variables of the worker that indexes the
functions too, so each choice is made here from them.
"""

import os

from shared.connections import storage_account
from shared.errors import SettingsError
from shared.settings import DEFAULT_SWEEP_SCHEDULE, PACED_SUFFIX, Settings, due_work_queue_of


def sweep_schedule(env=os.environ) -> str:
    """The timer trigger's schedule: the app setting by reference (`%PAUSE_SWEEP_SCHEDULE%`, which the
    Functions host resolves) when it is set, else the default."""
    return "%PAUSE_SWEEP_SCHEDULE%" if (env.get("PAUSE_SWEEP_SCHEDULE") or "").strip() else DEFAULT_SWEEP_SCHEDULE


def due_work_trigger(env=os.environ, paced: bool = False) -> tuple[str, str] | None:
    """The queue trigger's queue (`%DUE_WORK_QUEUE%` when the setting is given, as for the timer's schedule;
    with `paced`, the queue of work waiting for ARM, `%DUE_WORK_QUEUE%-paced`) and connection (the prefix of
    the storage settings the app reads, so the trigger reads the queue the timer writes to).

    None when the timer settles due work itself (DUE_WORK_QUEUE empty, or an identity-based connection that
    names no queue endpoint): then no queue function is registered, so the host listens on no queue the app
    never writes to, and never tries one whose endpoint it could not know.
    """
    try:
        if not due_work_queue_of(env, storage_account(env)):
            return None
    except SettingsError:  # the app says what is wrong on its first use of its settings; the trigger keeps its name
        pass
    queue = "%DUE_WORK_QUEUE%" if (env.get("DUE_WORK_QUEUE") or "").strip() else Settings.due_work_queue
    queue += PACED_SUFFIX if paced else ""
    connection = "PAUSES_STORAGE_CONNECTION" if any(
        key == "PAUSES_STORAGE_CONNECTION" or key.startswith("PAUSES_STORAGE_CONNECTION__") for key in env
        if (env.get(key) or "").strip()) else "AzureWebJobsStorage"
    return queue, connection
