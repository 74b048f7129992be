"""The due-work queue: one message per due item, which a queue-triggered function settles (shared.due_work).

Azure Queue storage, in the pauses' storage account (queue DUE_WORK_QUEUE). Messages are base64 text,
as the Functions host's queue trigger reads them by default (`messageEncoding`). Queue storage has no
batch send: a batch of messages is sent by a small pool of threads sharing one client, so 10,000 items
take seconds, not minutes. The SDK may send a message again after an answer that was lost: a message
twice is safe (every settle is a conditional claim, and one for work no longer due is dropped), while a
message never sent is only found again when its item's lease runs out.
"""

import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import NamedTuple

from shared.clients import built_once
from shared.outbound import http_transport
from shared.settings import POISON_SUFFIX, get_settings
from shared.storage.credential import credential
from shared.storage.due_index import Due
from shared.storage.tables import forgotten_with_settings, translate

logger = logging.getLogger(__name__)

SENDERS = 16  # concurrent sends of one batch (the storage account takes 2,000 messages a second per queue)
MAX_QUEUE_NAME = 63


# A deferred item's ARM slot (shared.targets.pacing.Slot: kind, time), under a key per kind of slot.
_SLOT_KEYS = {"writes": "s", "reads": "sr"}


def encode(due: Due, slot: tuple[str, float] | None = None, found: datetime | None = None) -> str:
    """A due row as a message: its keys, kind and pause (the row itself is read when it is settled), the
    ARM slot a deferred item was given (shared.targets.pacing), and when the timer found a row due whose key
    no longer says so (a pause's row, moved by its lease: shared.due_work)."""
    body = {"v": 1, "id": due.pause_id, "p": due.partition_key, "r": due.row_key, "k": due.kind}
    if slot is not None and slot[0] in _SLOT_KEYS:
        body[_SLOT_KEYS[slot[0]]] = round(slot[1], 3)
    if found is not None:
        body["f"] = int(found.timestamp())
    return json.dumps(body, separators=(",", ":"))


def decode(text: str) -> Due | None:
    """The due row a message names, or None for a message the app did not write."""
    return decode_message(text).due


class Message(NamedTuple):
    due: Due | None  # None: a message the app did not write
    slot: tuple[str, float] | None  # (kind, time)
    found: datetime | None


def decode_message(text: str) -> Message:
    """What a message says: the due row it names, its ARM slot, when its row was found due."""
    try:
        body = json.loads(text)
        if body.get("v") == 1 and all(isinstance(body.get(key), str) for key in ("id", "p", "r")):
            kind = body.get("k")
            slots = [(name, float(at)) for name, key in _SLOT_KEYS.items() if _finite(at := body.get(key))]
            return Message(Due(body["id"], body["p"], body["r"], 0, kind if isinstance(kind, str) else None),
                           slots[0] if slots else None, _moment(body.get("f")))
    except (ValueError, AttributeError, OverflowError):
        pass
    return Message(None, None, None)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _moment(value) -> datetime | None:
    try:
        return datetime.fromtimestamp(value, timezone.utc) if _finite(value) else None
    except (ValueError, OverflowError, OSError):  # out of the platform's range
        return None


class Sent(NamedTuple):
    sent: int
    failed: list  # the Due rows whose message could not be sent


class DueQueue:
    def __init__(self, queue_client):
        self._queue = queue_client  # (closed by `_queue_client`'s cache when settings change: not this one's to close)

    @translate("queue")
    def send(self, due: Due, delay_seconds: int = 0, slot: tuple[str, float] | None = None,
             found: datetime | None = None) -> None:
        """One message, visible after `delay_seconds` (the queue's limit is 7 days)."""
        self._send(encode(due, slot, found), delay_seconds)

    def _send(self, text: str, delay_seconds: int = 0) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        delay = max(0, min(int(delay_seconds), 7 * 86400 - 1)) or None
        try:
            self._queue.send_message(text, visibility_timeout=delay)
        except ResourceNotFoundError:  # the first message ever: the queue is made now
            from azure.core.exceptions import ResourceExistsError

            try:
                self._queue.create_queue()
            except ResourceExistsError:
                pass
            self._queue.send_message(text, visibility_timeout=delay)

    def send_many(self, dues: list) -> Sent:
        """A message for each row, several at once; the rows whose send failed are returned, not raised."""
        if not dues:
            return Sent(0, [])
        failed = []

        def one(due):
            try:
                self._send(encode(due))
                return None
            except Exception as exc:  # counted and logged; the row's lease runs out and it is sent again
                logger.warning("could not enqueue pause_id=%s: %s", due.pause_id, exc)
                return due

        with ThreadPoolExecutor(max_workers=min(SENDERS, len(dues)), thread_name_prefix="enqueue") as pool:
            failed = [due for due in pool.map(one, dues) if due is not None]
        return Sent(len(dues) - len(failed), failed)


class Backlog(NamedTuple):
    """How much due work waits, as Queue storage counts its messages (approximately: it may lag a little). None:
    storage did not say."""
    queued: int | None  # on the due-work queue, visible or not (delayed, or being settled)
    paced: int | None   # back on the paced queue, waiting for ARM's write limit
    poison: int | None  # moved aside by the Functions host, from either queue: not the app's, or given up on
    poison_queues: tuple  # where (the host's names for them)


def backlog() -> Backlog | None:
    """The due-work queues' message counts (four requests, at once); None when the timer settles due work itself
    (DUE_WORK_QUEUE empty)."""
    settings = get_settings()
    if not settings.due_work_queue:
        return None
    main, paced = settings.due_work_queue, settings.paced_work_queue
    names = [main, paced] + [name for name in map(_poison_name, (main, paced)) if name]
    counts = dict(zip(names, _counters().map(_count, names)))
    poisoned = [counts[name] for name in names[2:]]
    return Backlog(counts[main], counts[paced], None if None in poisoned else sum(poisoned), tuple(names[2:]))


@built_once
def _counters() -> ThreadPoolExecutor:
    """Threads for backlog()'s four requests: one pool for every console view, not four new threads each."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="backlog")


def _poison_name(name: str) -> str | None:
    """As the Functions host names a queue's poison queue: none for a poison queue, or a name it would make too
    long."""
    if name.endswith(POISON_SUFFIX) or len(name) + len(POISON_SUFFIX) > MAX_QUEUE_NAME:
        return None
    return name + POISON_SUFFIX


def _count(name: str) -> int | None:
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    try:
        return _queue_client(name).get_queue_properties().approximate_message_count
    except ResourceNotFoundError:  # made with its first message
        return 0
    except AzureError as exc:
        logger.warning("could not count the messages of queue %s: %s", name, exc)
        return None


@forgotten_with_settings
@built_once
def _queue_client(name: str):
    """One client per queue, for its sends, receives and counts alike."""
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

    settings = get_settings()
    limits = settings.limits
    account = settings.storage
    # The app's transport, as the tables' (shared.outbound.http_transport): a keep-alive pool for SENDERS sends and
    # the settles running at once (requests' own pool of 10 closed and reopened a connection for each send beyond
    # it), and no scan of the environment for proxies on every request.
    options = {"message_encode_policy": TextBase64EncodePolicy(), "message_decode_policy": TextBase64DecodePolicy(),
               "retry_total": limits.storage_retry_total,
               "transport": http_transport(connection_timeout=limits.storage_connect_timeout_seconds,
                                           read_timeout=limits.storage_read_timeout_seconds)}
    if account.uses_identity:
        return QueueClient(account.queue_endpoint, name, credential=credential(), **options)
    return QueueClient.from_connection_string(account.connection_string, name, **options)


@forgotten_with_settings
@built_once
def get_due_queue() -> DueQueue:
    return DueQueue(_queue_client(get_settings().due_work_queue))


@forgotten_with_settings
@built_once
def get_paced_queue() -> DueQueue:
    """The queue work waiting for ARM's write limit comes back on (`Settings.paced_work_queue`)."""
    return DueQueue(_queue_client(get_settings().paced_work_queue))
