"""The public record (shared/storage/records.py): built from its one declaration, valid against the
schema the OpenAPI document publishes, never broken by a damaged entity, and never a secret."""

import random
from datetime import datetime, timezone

import jsonschema
import pytest

from shared.lifecycle.model import Mode, Status
from shared.storage.records import RECORD, to_record
from shared.storage.tables import pack_json

SCHEMA = {"type": "object", "properties": {name: field.schema for name, field in RECORD.items()},
          "additionalProperties": False}
WHEN = datetime(2026, 12, 6, 10, 0, tzinfo=timezone.utc)


def entity(mode: Mode, **extra) -> dict:
    """A pause as the app stores it, in `mode`, with what each mode adds."""
    stored = {"PartitionKey": "a" * 32, "RowKey": "pause", "status": Status.PENDING.value, "mode": mode.value,
              "secret_hash": "s" * 64, "callback_uri": "https://dp.svc.datafactory.azure.com/cb?sig=secret",
              "subscription_id": "sub", "resource_group": "rg", "factory_name": "f", "pipeline_name": "p",
              "on_timeout": "expire", "created_at": WHEN, "expires_at": WHEN,
              **pack_json("parameters", '{"day": "x"}'), **pack_json("data", '[1, 2]'),
              **pack_json("notification", '{"title": "t"}'), **pack_json("approvers", '["a@contoso.com"]'),
              **pack_json("approver_secrets", '[["a@contoso.com", "h"]]'), "required_approvals": 1}
    if mode is Mode.CHECKPOINT:
        stored.update(status=Status.HELD.value, checkpoint="after_staging", **pack_json("hold_ids", '["h1"]'))
    return {**stored, **extra}


WITH_CHECKS = {"check_max_attempts": 5, "check_every": 60, "check_attempts": 1, "checks_mode": "gate",
               "checks_passed": False, "next_check_at": WHEN,
               **pack_json("checks", '[{"name": "dq", "http": {"url": "https://x.example/"}}]'),
               **pack_json("check_results", '[{"result": "not_yet", "detail": "RUNNING", "at": "2026-12-06T10:00:00Z",'
                                            ' "attempts": 1}]')}


@pytest.mark.parametrize("stored", [entity(Mode.RESTART), entity(Mode.CALLBACK, callback_confirmed=False),
                                    entity(Mode.CHECKPOINT), entity(Mode.RESTART, **WITH_CHECKS)],
                         ids=["restart", "callback", "checkpoint", "checks"])
def test_a_record_is_valid_against_the_published_schema_and_holds_no_secret(stored):
    record = to_record(stored)
    jsonschema.validate(record, SCHEMA)
    assert "secret_hash" not in record and "approver_secrets" not in record and "callback_uri" not in record
    assert "sig=secret" not in str(record) and "s" * 64 not in str(record)  # the values, under no name either
    assert ("callback_confirmed" in record) == (stored["mode"] != Mode.RESTART)
    assert ("checks" in record) == ("check_max_attempts" in stored)
    assert ("hold_ids" in record) == (stored["mode"] == Mode.CHECKPOINT)


def test_every_declared_field_is_filled_for_some_pause():
    shown = set()
    for stored in (entity(Mode.CALLBACK), entity(Mode.CHECKPOINT), entity(Mode.RESTART, **WITH_CHECKS)):
        shown |= set(to_record(stored))
    assert shown == set(RECORD)


def test_a_damaged_entity_still_gives_a_record_never_an_error():
    garbage = [None, "", "x", 5, -1, 3.5, True, b"\xff\xfe", datetime.min, [], {}]
    rng = random.Random(20261206)
    for _ in range(300):
        stored = entity(rng.choice(list(Mode)), **WITH_CHECKS)
        for name in rng.sample(sorted(stored), k=rng.randint(1, len(stored))):
            if rng.random() < 0.5:
                del stored[name]
            else:
                stored[name] = rng.choice(garbage)
        record = to_record(stored)
        assert set(record) <= set(RECORD)


def test_messages_are_kept_within_their_budget_shortening_the_oldest_details_first():
    import json

    from shared.storage.records import fit_notifications

    notes = [{"channel": "ops", "purpose": "reminder", "at": "2026-12-06T10:00:00Z", "outcome": "failed",
              "detail": f"{i}:" + "x" * 498} for i in range(40)]
    fitted = fit_notifications(notes, budget=12_000)
    assert len(json.dumps(fitted, separators=(",", ":")).encode()) <= 12_000 and len(fitted) == 40
    assert [(n["channel"], n["purpose"], n["at"], n["outcome"]) for n in fitted] == [
        (n["channel"], n["purpose"], n["at"], n["outcome"]) for n in notes]  # never those
    assert fitted[0]["detail"].startswith("0:") and len(fitted[0]["detail"]) <= 81  # the oldest, shortened
    assert fitted[-1]["detail"] == notes[-1]["detail"]  # the newest, kept whole
    assert fit_notifications(notes[:2]) == notes[:2]  # within budget: unchanged


@pytest.mark.parametrize("budget", [9_000, 12_000, 15_123, 20_000])
def test_messages_are_shortened_no_more_than_their_budget_needs_in_utf8_bytes(budget):
    import json

    from shared.storage.records import fit_notifications

    def size(items):
        return len(json.dumps(items, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))

    notes = [{"email": ["ops@contoso.com"], "purpose": "reminder", "at": "2026-12-06T10:00:00Z",
              "outcome": "failed", "detail": f"{i}:" + "é→" * 200} for i in range(40)]
    fitted = fit_notifications(notes, budget=budget)
    shortened = [i for i, (old, new) in enumerate(zip(notes, fitted)) if old != new]
    assert size(fitted) <= budget and shortened == list(range(len(shortened)))  # the oldest first
    undone = [*fitted[:shortened[-1]], notes[shortened[-1]], *fitted[shortened[-1] + 1:]]
    assert size(undone) > budget  # the last one shortened had to be
