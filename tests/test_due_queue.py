"""The due-work queue (shared.storage.due_queue) against Azurite: messages name a due row and nothing else
is read as one; a batch is sent several at a time, base64 as the host's queue trigger reads it; a
delayed message stays invisible until its time; the queue is made on first use."""

import base64
import json
import uuid

import pytest

from shared.storage.due_index import Due
from shared.storage.due_queue import decode, decode_message, encode, get_due_queue

ROW = Due("a" * 32, "2026120609", "20261206T093000-" + "a" * 32, 3, "reminder")


def test_a_message_names_a_due_row_and_nothing_else_is_read_as_one():
    assert decode(encode(ROW)) == ROW._replace(attempts=0)
    for text in ("", "[]", '{"v": 2}', '{"v": 1, "id": 5}', "not json", '{"v": 1, "id": "x", "p": "y"}'):
        assert decode(text) is None


def test_a_deferred_items_slot_keeps_its_kind_and_only_a_finite_time_is_read():
    """A write slot and a read slot are given by different pacers: each comes back as what it was."""
    for kind in ("writes", "reads"):
        assert decode_message(encode(ROW, (kind, 1765000000.1234)))[:2] == (ROW._replace(attempts=0),
                                                                              (kind, 1765000000.123))
    assert decode_message(encode(ROW)) == (ROW._replace(attempts=0), None, None)
    assert decode_message(encode(ROW, ("other", 1.0))).slot is None  # no key for a kind the app does not pace
    base = {"v": 1, "id": ROW.pause_id, "p": ROW.partition_key, "r": ROW.row_key}
    for odd in ('"s": NaN', '"s": Infinity', '"sr": -Infinity', '"s": true', '"s": "5"', '"sr": null'):
        assert decode_message(json.dumps(base)[:-1] + ", " + odd + "}").slot is None, odd


def test_when_a_row_was_found_due_is_carried_to_the_second_and_only_a_real_time_is_read():
    from datetime import datetime, timezone

    found = datetime(2026, 12, 6, 23, 59, 30, 250000, tzinfo=timezone.utc)
    assert decode_message(encode(ROW, None, found)).found == found.replace(microsecond=0)
    base = {"v": 1, "id": ROW.pause_id, "p": ROW.partition_key, "r": ROW.row_key}
    for odd in ('"f": NaN', '"f": 1e300', '"f": true', '"f": "5"', '"f": null', '"f": -1e20'):
        message = decode_message(json.dumps(base)[:-1] + ", " + odd + "}")
        assert message.due is not None and message.found is None, odd


@pytest.mark.integration
def test_a_batch_is_sent_as_base64_messages_and_a_delayed_one_waits(configure, azurite):
    from azure.storage.queue import QueueClient

    name = f"due-{uuid.uuid4().hex[:12]}"
    configure(DUE_WORK_QUEUE=name)
    rows = [ROW._replace(pause_id=f"{n:032x}") for n in range(40)]
    sent = get_due_queue().send_many(rows)  # the queue does not exist yet: made on first use
    assert (sent.sent, sent.failed) == (40, [])
    get_due_queue().send(ROW, delay_seconds=60)
    with QueueClient.from_connection_string(azurite.connection_string, name) as raw:
        found = [m.content for m in raw.receive_messages(messages_per_page=32, max_messages=64)]
        assert len(found) == 40  # the delayed one is not visible yet
        bodies = [json.loads(base64.b64decode(text)) for text in found]
        assert sorted(body["id"] for body in bodies) == [row.pause_id for row in rows]
        assert raw.get_queue_properties().approximate_message_count == 41


def test_a_batch_keeps_its_connections_open_for_the_next(configure, azurite, monkeypatch, caplog):
    """The queue client pools as many connections as a batch sends at once: later batches reuse them (requests'
    default pool of 10 closed the senders' connections beyond it after each batch, and they were opened again)."""
    import socket

    from shared.storage.due_queue import SENDERS

    configure(DUE_WORK_QUEUE=f"due-{uuid.uuid4().hex[:12]}")
    queue_port = azurite.queue_port
    opened = []
    original = socket.socket.connect

    def counting_connect(sock, address):
        if isinstance(address, tuple) and address[1] == queue_port:
            opened.append(address)
        return original(sock, address)

    monkeypatch.setattr(socket.socket, "connect", counting_connect)
    rows = [ROW._replace(pause_id=f"{n:032x}") for n in range(4 * SENDERS)]
    for _ in range(3):
        assert get_due_queue().send_many(rows).sent == len(rows)
    # However busy each batch was, no connection was opened twice: at most one per sender (+1: the queue is made on
    # first use). Requests' pool of 10 opened 14, then 18: 32 for two batches.
    assert 1 <= len(opened) <= SENDERS + 1, f"{len(opened)} connections for three batches"
    assert "Connection pool is full" not in caplog.text
