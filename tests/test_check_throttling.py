"""ARM throttles the reads of `adf_run` checks as it does any read (250, then 25 a second per subscription
and identity): for the app's own work that costs time, never a check attempt (CONTRACT.md, *Throttling is
backpressure*). The stand-in's read bucket is scaled down here."""

import contextlib
import json
import logging
import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests
from azure.core.exceptions import HttpResponseError

from local_dev.adf_standin import AdfStandin
from local_dev.arm_throttle import Throttle
from shared import due_work, sweep
from shared.lifecycle.model import SweepOutcome
from shared.targets.adf import DEV_TOKEN
from tests.support import TARGET, ManualClock, create_pipeline, sdk_client

pytestmark = pytest.mark.integration

SCOPE = {name: TARGET[name] for name in ("subscription_id", "resource_group", "factory_name")}


def now():
    return datetime.now(timezone.utc)


def finished_run(standin) -> str:
    run_id = sdk_client(standin).pipelines.create_run(TARGET["resource_group"], TARGET["factory_name"],
                                                      TARGET["pipeline_name"], parameters={"pause_id": "upstream"},
                                                      enforce_https=False).run_id
    standin.finish_run(run_id, "Succeeded")
    return run_id


def check_pause(api, standin, run_id, name) -> dict:
    """A callback-mode pause that continues once the upstream run has succeeded; one attempt allowed, so an
    attempt spent on a 429 would end it by timeout."""
    response = api.pause({**SCOPE, "callBackUri": f"{standin.url}/_standin/callbacks/{name}", "check_max_attempts": 1,
                          "checks": [{"name": "upstream", "adf_run": {"run_id": run_id},
                                      "expect": {"status": ["Succeeded"]}}]})
    assert response.status_code == 202, response.get_body()
    return api.json(response)


def drain_reads(standin, run_id) -> None:
    """Spend the read bucket of the app's identity in the stand-in until ARM answers 429."""
    client = sdk_client(standin, token=DEV_TOKEN, retry_total=0)
    for _ in range(1000):
        try:
            client.pipeline_runs.get(TARGET["resource_group"], TARGET["factory_name"], run_id, enforce_https=False)
        except HttpResponseError as exc:
            assert exc.status_code == 429
            return
    raise AssertionError("the read bucket never ran dry")


@contextlib.contextmanager
def one_check_with_reads_spent(api, configure, name, **settings):
    """A stand-in whose read bucket (4, refilled 1 a second) refills only when the test moves its clock, a
    callback-mode pause with one adf_run check on a finished run, and then the bucket spent: yields
    (stand-in, clock, the pause as made). `settings`: more app settings for the test."""
    clock = ManualClock()
    with AdfStandin(throttle=Throttle(reads=4, reads_per_second=1, clock=clock)) as standin:
        create_pipeline(standin, parameters=("day", "n"))
        configure(ARM_ENDPOINT=standin.url, CALLBACK_ALLOWED_HOSTS="127.0.0.1", **settings)
        run_id = finished_run(standin)
        created = check_pause(api, standin, run_id, name)
        drain_reads(standin, run_id)
        yield standin, clock, created


def get_run_counts(standin) -> dict:
    rows = requests.get(f"{standin.url}/_standin/throttling", timeout=5).json()
    return {kind: sum(row[kind] for row in rows if row["operation"] == "getRun") for kind in ("answered", "throttled")}


def test_a_check_that_arm_throttles_is_deferred_without_spending_its_attempt(api, configure):
    with one_check_with_reads_spent(api, configure, "throttled") as (standin, clock, created):
        before = get_run_counts(standin)

        assert sweep.sweep(now()) == {"deferred": 1}
        record = api.record(created["pause_id"])
        assert record["status"] == "pending" and record["check_attempts"] == 0, record
        after = get_run_counts(standin)  # the attempt was taken, met one 429 and was given back: no wait, no repeat
        assert (after["answered"] - before["answered"], after["throttled"] - before["throttled"]) == (0, 1)
        assert standin.callbacks == []

        clock.advance(10)  # the bucket holds tokens again; the item comes back after Retry-After
        assert sweep.sweep(now() + timedelta(seconds=30)) == {"restarted": 1}
        record = api.record(created["pause_id"])
        assert (record["status"], record["decided_by"], record["check_attempts"]) == ("restarted", "checks", 1)
        assert record["checks"][0]["result"] == "passed"
        [callback] = standin.callbacks
        assert callback["body"]["StatusCode"] == "200"


def test_an_attempt_is_given_back_even_when_storage_refuses_the_first_tries(api, configure, storage):
    """The give-back is a conditional write of what surely happened (ARM processed nothing): tried again when
    storage refuses it, as any record of an outcome is, so a storage blip does not spend the attempt."""
    with one_check_with_reads_spent(api, configure, "blip", STORAGE_RETRY_TOTAL="0") as (_, clock, created):
        pauses = rf"/{api.table_name}(?:\(|\?|$)"  # the pauses table, not its indexes
        storage.inject("pass", methods={"PUT", "PATCH", "MERGE"}, path=pauses)  # the attempt's claim lands
        storage.inject("before", methods={"PUT", "PATCH", "MERGE"}, path=pauses, count=2)  # the give-back's do not
        seen = len(storage.log)
        assert sweep.sweep(now()) == {"deferred": 1}
        writes = [fault for method, path, fault in storage.log[seen:] if re.search(pauses, path) and method != "GET"]
        assert writes == [None, "before", "before", None]  # the claim, the give-back refused twice, then landed
        record = api.record(created["pause_id"])
        assert (record["status"], record["check_attempts"]) == ("pending", 0), record
        clock.advance(10)
        assert sweep.sweep(now() + timedelta(seconds=30)) == {"restarted": 1}
        assert api.record(created["pause_id"])["check_attempts"] == 1


def test_a_give_back_that_landed_unanswered_is_known_to_have_landed(api, configure, storage, caplog):
    with one_check_with_reads_spent(api, configure, "landed", STORAGE_RETRY_TOTAL="0") as (_, _, created):
        pauses = rf"/{api.table_name}(?:\(|\?|$)"
        storage.inject("pass", methods={"PUT", "PATCH", "MERGE"}, path=pauses)  # the attempt's claim
        storage.inject("after", methods={"PUT", "PATCH", "MERGE"}, path=pauses)  # the give-back lands, unanswered
        caplog.set_level(logging.INFO, logger="shared.checks.monitor")
        assert sweep.sweep(now()) == {"deferred": 1}
    assert api.record(created["pause_id"])["check_attempts"] == 0
    said = [record.getMessage() for record in caplog.records if record.name == "shared.checks.monitor"]
    assert any("given back" in line for line in said) and not any("dropped" in line for line in said), said


def test_many_checks_go_at_the_pace_arm_allows_reads_and_each_attempt_counts_once(api, configure):
    """Twelve checks due at once against a read bucket the test has spent (refilled 8 a second): the timer
    reads the remaining-reads header and paces itself, so hardly a read is throttled and none costs an
    attempt."""
    with AdfStandin(throttle=Throttle(reads=40, reads_per_second=8)) as standin:
        create_pipeline(standin, parameters=("day", "n"))
        configure(ARM_ENDPOINT=standin.url, CALLBACK_ALLOWED_HOSTS="127.0.0.1", ARM_READS_PER_SECOND="8",
                  ARM_READS_LOW_WATER="2")
        run_id = finished_run(standin)
        ids = [check_pause(api, standin, run_id, f"paced-{n}")["pause_id"] for n in range(12)]
        drain_reads(standin, run_id)
        before = get_run_counts(standin)
        started = time.monotonic()
        outcomes = {}
        while time.monotonic() - started < 30 and outcomes.get("restarted", 0) < len(ids):
            for outcome, count in sweep.sweep(now()).items():
                outcomes[outcome] = outcomes.get(outcome, 0) + count
            time.sleep(0.1)
        counts = get_run_counts(standin)
    assert outcomes.get("restarted") == len(ids) and "expired" not in outcomes, outcomes
    for pause_id in ids:
        record = api.record(pause_id)
        assert (record["status"], record["check_attempts"]) == ("restarted", 1), record
    assert sorted(call["callbackId"] for call in standin.callbacks) == sorted(f"paced-{n}" for n in range(12))
    assert counts["answered"] - before["answered"] == len(ids)  # one read each
    assert counts["throttled"] - before["throttled"] <= 2  # the first, sent before ARM had said anything


def test_a_check_deferred_on_the_queue_comes_back_holding_a_read_slot_not_a_write_slot(api, configure, azurite,
                                                                                        table):
    """Through the queue: the read ARM throttled gives the attempt back; coming back early, the read pacer
    defers the item to a read slot, which its message carries as a read slot (a write slot would let a start
    past the write bucket's margin); at the slot it is checked once and continues."""
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy

    name = f"due-{uuid.uuid4().hex[:12]}"
    with one_check_with_reads_spent(api, configure, "queued", DUE_WORK_QUEUE=name) as (standin, clock, created), \
            QueueClient.from_connection_string(azurite.connection_string, name + "-paced",
                                               message_decode_policy=TextBase64DecodePolicy()) as paced:

        def next_paced_message():
            deadline = time.monotonic() + 10
            while not (found := list(paced.receive_messages(max_messages=1, visibility_timeout=30))):
                assert time.monotonic() < deadline, "no message came back on the paced queue"
                time.sleep(0.1)
            [message] = found
            return message.content

        moment = now()
        assert due_work.enqueue_due(moment) == {"enqueued": 1}
        with QueueClient.from_connection_string(azurite.connection_string, name,
                                                message_decode_policy=TextBase64DecodePolicy()) as main:
            [message] = main.receive_messages(max_messages=1)
        assert due_work.settle(message.content, 1, moment) is SweepOutcome.DEFERRED  # the read met a 429
        assert api.record(created["pause_id"])["check_attempts"] == 0
        throttled = next_paced_message()
        assert not {"s", "sr"} & set(json.loads(throttled))  # ARM said when: no slot was handed out
        # Back when its check is due again (moment + Retry-After: before the app's read pacer lets reads go again,
        # which counts Retry-After from the 429's arrival, however long the message took), it is deferred to a
        # read slot of its own, the attempt not taken.
        due_again = table.get_entity(created["pause_id"], "pause")["next_check_at"]
        assert due_work.settle(throttled, 1, due_again) is SweepOutcome.DEFERRED
        body = json.loads(again := next_paced_message())
        assert "sr" in body and "s" not in body, body
        assert api.record(created["pause_id"])["check_attempts"] == 0

        clock.advance(10)
        assert due_work.settle(again, 1, now() + timedelta(seconds=30)) is SweepOutcome.RESTARTED
        record = api.record(created["pause_id"])
        assert (record["status"], record["check_attempts"]) == ("restarted", 1), record
        assert [call["callbackId"] for call in standin.callbacks] == ["queued"]
