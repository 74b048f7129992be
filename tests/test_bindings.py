"""What the triggers declare (shared.bindings), chosen from the app settings when the host indexes the app."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.bindings import due_work_trigger, sweep_schedule

BASE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
ONLY_TABLES = {"AzureWebJobsStorage__tableServiceUri": "https://a.table.core.windows.net",
               "AzureWebJobsStorage__credential": "managedidentity"}


def test_the_schedule_is_the_setting_by_reference_when_set_else_the_default():
    assert sweep_schedule(BASE) == sweep_schedule({**BASE, "PAUSE_SWEEP_SCHEDULE": " "}) == "0 */1 * * * *"
    assert sweep_schedule({**BASE, "PAUSE_SWEEP_SCHEDULE": "0 */5 * * * *"}) == "%PAUSE_SWEEP_SCHEDULE%"


def test_the_queue_triggers_read_the_queues_the_timer_writes_to():
    assert due_work_trigger(BASE) == ("pauses-due", "AzureWebJobsStorage")
    assert due_work_trigger(BASE, paced=True) == ("pauses-due-paced", "AzureWebJobsStorage")
    assert due_work_trigger({**BASE, "DUE_WORK_QUEUE": "q-1", "PAUSES_STORAGE_CONNECTION": "x"}) == \
        ("q-1", "PAUSES_STORAGE_CONNECTION")
    assert due_work_trigger({**BASE, "DUE_WORK_QUEUE": " q-1 "}, paced=True) == ("q-1-paced", "AzureWebJobsStorage")
    with_queue = {**ONLY_TABLES, "AzureWebJobsStorage__queueServiceUri": "https://a.queue.core.windows.net"}
    assert due_work_trigger(with_queue) == ("pauses-due", "AzureWebJobsStorage")
    # The connection is the one the app reads the queue through: a part it does not read names no other account.
    assert due_work_trigger({**BASE, "PAUSES_STORAGE_CONNECTION__blobServiceUri": "https://b.blob.core.windows.net"}) \
        == ("pauses-due", "AzureWebJobsStorage")


BROKEN = [{**BASE, "DUE_WORK_QUEUE": "Bad_Name"}, {"AzureWebJobsStorage__tableServiceUri": "https://[::1"},
          {**BASE, "PAUSES_STORAGE_CONNECTION__tableServiceUri": "https://[::1"}, {}]


@pytest.mark.parametrize("timer_alone", [{**BASE, "DUE_WORK_QUEUE": ""}, {**BASE, "DUE_WORK_QUEUE": " "}, ONLY_TABLES,
                                         *BROKEN])
def test_no_queue_no_trigger(timer_alone):
    """None listening on a queue nothing writes to, or on one whose endpoint is not known (an identity-based
    connection naming only the table endpoint, where the host's queue listener could not start); none either
    for settings the app refuses (it says why when it first reads them)."""
    assert due_work_trigger(timer_alone) is None and due_work_trigger(timer_alone, paced=True) is None


# (A fresh interpreter each: the broken setting that once made the import raise, not all of them; the rule for each
# is test_no_queue_no_trigger's.)
@pytest.mark.parametrize("storage, queued", [(BASE, True), ({**BASE, "DUE_WORK_QUEUE": ""}, False),
                                             (ONLY_TABLES, False), (BROKEN[1], False)])
def test_the_app_registers_the_queue_functions_only_with_a_queue(storage, queued):
    """And imports whatever the settings: a malformed one fails the app's first use of its settings, naming it,
    never the import, which would take every function with it."""
    # As the host indexes the app: a fresh import, with the app's settings in the environment.
    script = ("import json, function_app\n"
              "print(json.dumps([f.get_function_name() for f in function_app.app.get_functions()]))")
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AzureWebJobsStorage", "PAUSES_STORAGE_CONNECTION", "DUE_WORK_QUEUE"))}
    result = subprocess.run([sys.executable, "-c", script], env={**env, **storage}, capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent, timeout=60, check=True)
    names = set(json.loads(result.stdout))
    assert {"expire_pauses", "pause"} <= names
    assert ({"settle_due_work", "settle_paced_work"} <= names) is queued
    assert ({"settle_due_work", "settle_paced_work"} & names == set()) is not queued
