"""A FunctionApp with one queue trigger, for tests/test_queues.py to run in worker processes
(`python -m local_dev.queue_worker --app tests.queue_apps:app`) and in the test's own process.

Each call appends "<pid> <body> <dequeue count>" to the file QUEUE_TEST_MARKS names, so a test sees which
process handled what. A body starting with "m" takes 0.1 s; "block" never returns on its first delivery.
"""

import os
import time

import azure.functions as func

bp = func.Blueprint()


@bp.queue_trigger(arg_name="message", queue_name="%TEST_QUEUE%", connection="AzureWebJobsStorage")
def mark(message: func.QueueMessage) -> None:
    body = message.get_body().decode()
    with open(os.environ["QUEUE_TEST_MARKS"], "a", encoding="utf-8") as marks:
        marks.write(f"{os.getpid()} {body} {message.dequeue_count}\n")
    if body.startswith("m"):
        time.sleep(0.1)
    if body == "block" and message.dequeue_count == 1:
        time.sleep(60)


app = func.FunctionApp()
app.register_functions(bp)
