"""The due index: when each pause (or a callback owed) next needs the timer.

Table `<table>expiry` (named for its first use, kept so existing deployments keep their rows):
small rows keyed by when they are due — a pause's expiry, a check attempt, a stale claim's
reconciliation, an unconfirmed callback's re-send. The timer reads only the rows that are due,
never the pauses.
"""

import logging
import threading
from datetime import datetime, timezone
from typing import NamedTuple

from shared.clients import built_once
from shared.group_commit import GroupCommit
from shared.settings import get_settings
from shared.storage.tables import Conflict, forgotten_with_settings, insert, submit, table, translate
from shared.tokens import PAUSE_ID_PATTERN

logger = logging.getLogger(__name__)

_BATCH_ROUNDS = 3  # a batch delete refused for a row gone already is sent again this often without it

# Rows that carry work of their own, not a pause's: a checkpoint's callback (shared.outbox), a decided
# pause's chat follow-ups (shared.followups), a pending pause's next reminder (shared.reminders), its
# escalation (shared.escalations), a reminder's or escalation's post a channel refused (shared.reposts).
ROW_KINDS = ("callback", FOLLOWUP := "followup", REMINDER := "reminder", ESCALATION := "escalation",
             REPOST := "repost")


class Due(NamedTuple):
    pause_id: str  # or, for a row of kind "callback", the id of the callback it carries
    partition_key: str
    row_key: str
    attempts: int = 0
    kind: str | None = None  # None: a pause's row; else one of ROW_KINDS
    queued_until: datetime | None = None  # a message for it is on the due-work queue until then (a lease)


class DueIndex:
    """When pauses next need the timer: PartitionKey = due hour, RowKey = due second + pause id.

    A pause has a row from creation (its expiry) until the timer finds it settled, so what the
    timer reads stays small however many pauses the table holds. A row is moved (rescheduled)
    by inserting the new one before deleting the old, so a pause is never without one.
    """

    def __init__(self, table_client):
        self._table = table_client

    @staticmethod
    def keys(pause_id: str, due_at) -> tuple[str, str]:
        moment = due_at.astimezone(timezone.utc)
        return moment.strftime("%Y%m%d%H"), f"{moment:%Y%m%dT%H%M%S}-{pause_id}"

    @staticmethod
    def due_at(due: Due) -> datetime:
        """When a row is due, from its key (long ago, for a key the app did not write)."""
        try:
            return datetime.strptime(due.row_key[:15], "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
        except ValueError:
            return datetime.min.replace(tzinfo=timezone.utc)

    @translate("index")
    def add(self, pause_id: str, due_at) -> None:
        """Insert a row (an existing identical one is fine: rows carry no state but attempts)."""
        from azure.core.exceptions import ResourceExistsError

        partition, row = self.keys(pause_id, due_at)
        try:
            insert(self._table, {"PartitionKey": partition, "RowKey": row})
        except ResourceExistsError:
            pass

    @translate("index query")
    def due(self, now, page_size: int = 1000):
        """Every row due at or before `now`, oldest first, read a page at a time as it is iterated."""
        from azure.core.exceptions import ResourceNotFoundError

        partition, row = self.keys("~", now)  # "~" sorts after every hex pause id
        rows = self._table.query_entities("PartitionKey le @p and RowKey le @r", parameters={"p": partition, "r": row},
                                          select=["PartitionKey", "RowKey", "attempts", "kind", "queued_until"],
                                          results_per_page=page_size)
        try:
            for entity in rows:
                row_key = entity.get("RowKey") or ""
                pause_id = row_key.rsplit("-", 1)[-1]
                if "-" not in row_key or not PAUSE_ID_PATTERN.fullmatch(pause_id):
                    # Not a row the app wrote: skipping it keeps one stray row from stopping every run.
                    logger.warning("skipping a malformed due-index row %r/%r", entity.get("PartitionKey"), row_key)
                    continue
                try:
                    attempts = max(0, int(entity.get("attempts") or 0))
                except (TypeError, ValueError):
                    attempts = 0
                kind = entity.get("kind") if entity.get("kind") in ROW_KINDS else None
                leased = entity.get("queued_until")
                yield Due(pause_id, entity["PartitionKey"], row_key, attempts, kind,
                          leased if isinstance(leased, datetime) else None)
        except ResourceNotFoundError:
            return

    @translate("index delete")
    def remove(self, due: Due) -> None:
        """Delete a row; one already gone (another timer instance) is fine."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self._table.delete_entity(partition_key=due.partition_key, row_key=due.row_key)
        except ResourceNotFoundError:
            pass

    def remove_many(self, dues: list) -> None:
        """Delete rows of one partition (at most 100) in one batch transaction. A row gone already (another
        timer instance; a queue message that was not its row's one) has the batch refused whole, the refusal
        naming it (Table storage's "<index>:" prefix): that row is deleted on its own (gone: fine; named wrongly:
        it goes all the same) and the rest in a batch again, up to _BATCH_ROUNDS times; then one by one. With g
        rows gone that is 2g + 1 requests for g up to _BATCH_ROUNDS, at most _BATCH_ROUNDS + 1 more than one a row."""
        rest = list(dues)
        for round_ in range(_BATCH_ROUNDS + 1):
            refused = self._remove_batch(rest) if rest else None
            if refused is None:
                return
            if round_ == _BATCH_ROUNDS:
                break
            self.remove(rest.pop(refused if 0 <= refused < len(rest) else 0))
        for due in rest:
            self.remove(due)

    @translate("index batch delete")
    def _remove_batch(self, dues: list) -> int | None:
        """None when the batch went through; else the index of the operation the refusal names."""
        from azure.data.tables import TableTransactionError

        if len(dues) > 100 or {due.partition_key for due in dues} != {dues[0].partition_key}:
            raise ValueError("a batch deletes at most 100 rows of one partition")
        try:
            submit(self._table, [("delete", {"PartitionKey": due.partition_key, "RowKey": due.row_key})
                                            for due in dues])
            return None
        except TableTransactionError as refused:
            return refused.index if isinstance(refused.index, int) else 0

    def lease(self, dues: list, until: datetime) -> list:
        """Put rows out of the timer's sight until `until`, while a message for each is on the queue; the rows
        as they are then.

        A pause's own row is moved to `until` (new row first, then the old one goes, in batch transactions
        of one partition each), so the timer's next runs do not even read it: its range query ends at now.
        Should its message be lost, the row simply comes due again at `until` (and should its pause have been
        settled meanwhile, its message finds it so and the row goes). A row that carries work of its own (a
        callback owed, a reminder) keeps its key and gets `queued_until`, which the timer skips; one gone
        meanwhile (its work done by someone else) is left out: no message for it."""
        leased = []
        for rows in _batches([due for due in dues if due.kind is not None]):
            leased += self._mark_batch(rows, until)
        pauses, moved = [due for due in dues if due.kind is None], []
        for due in pauses:
            partition, row = self.keys(due.pause_id, until)
            moved.append(due._replace(partition_key=partition, row_key=row, attempts=0, queued_until=None))
        for rows in _batches(moved):
            self._insert_batch(rows)
        for rows in _batches([old for old, new in zip(pauses, moved) if old.row_key != new.row_key]):
            self.remove_many(rows)
        return leased + moved

    @translate("index lease")
    def _mark_batch(self, dues: list, until: datetime) -> list:
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import TableTransactionError, UpdateMode

        def operation(due):
            return ("update", {"PartitionKey": due.partition_key, "RowKey": due.row_key, "queued_until": until},
                    {"mode": UpdateMode.MERGE})
        try:
            submit(self._table, [operation(due) for due in dues])
            return dues
        except TableTransactionError:  # a row is gone: the others one by one
            leased = []
            for due in dues:
                try:
                    self._table.update_entity(operation(due)[1], mode=UpdateMode.MERGE)
                    leased.append(due)
                except ResourceNotFoundError:
                    pass
            return leased

    @translate("index lease")
    def _insert_batch(self, dues: list) -> None:
        """Insert rows of one partition at once (one there already is fine: rows carry no state)."""
        from azure.core.exceptions import ResourceExistsError
        from azure.data.tables import TableTransactionError

        try:
            submit(self._table, [("create", {"PartitionKey": due.partition_key, "RowKey": due.row_key})
                                 for due in dues])
        except TableTransactionError:
            for due in dues:
                try:
                    insert(self._table, {"PartitionKey": due.partition_key, "RowKey": due.row_key})
                except ResourceExistsError:
                    pass

    def move(self, due: Due, due_at) -> None:
        """Reschedule: the new row first, then the old one goes."""
        self.add(due.pause_id, due_at)
        if self.keys(due.pause_id, due_at) != (due.partition_key, due.row_key):
            self.remove(due)

    @staticmethod
    def work_id(kind: str, pause_id: str) -> str:
        """The id of a pause's one row of `kind`: the same in every timer instance, so they cannot fork it."""
        import hashlib

        return hashlib.sha256(f"{kind}:{pause_id}".encode()).hexdigest()[:32]

    @translate("index")
    def add_work(self, kind: str, pause_id: str, due_at, row_id: str | None = None) -> None:
        """Owe work of `kind` on a pause: a row of its own (an id of its own, random unless given, so it
        never meets the pause's own row), carrying the pause's id."""
        import uuid

        partition, row = self.keys(row_id or uuid.uuid4().hex, due_at)
        insert(self._table, {"PartitionKey": partition, "RowKey": row, "kind": kind, "pause_id": pause_id})

    # Rows that carry a callback owed to a WebHook (shared.outbox): the row is its only record.

    @translate("outbox")
    def add_row(self, row: dict) -> str:
        """Insert a row with properties of its own; return its ETag."""
        return insert(self._table, row)

    @translate("outbox")
    def read_row(self, due: Due) -> tuple[dict | None, str | None]:
        """A row with its properties and ETag, or (None, None) when it is gone."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self._table.get_entity(partition_key=due.partition_key, row_key=due.row_key)
        except ResourceNotFoundError:
            return None, None
        return dict(entity), entity.metadata["etag"]

    @translate("outbox")
    def take_send(self, due: Due, etag: str, sends: int, now: datetime) -> None:
        """Claim a row's next send; Conflict when someone else claimed (or finished) it first."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            self._table.update_entity(
                {"PartitionKey": due.partition_key, "RowKey": due.row_key, "sends": sends, "sending_at": now},
                mode=UpdateMode.MERGE, etag=etag, match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise Conflict() from exc

    def move_row(self, due: Due, properties: dict, due_at: datetime) -> None:
        """Reschedule a row with its properties: the new row first, then the old one goes."""
        partition, row = self.keys(due.pause_id, due_at)
        if (partition, row) != (due.partition_key, due.row_key):
            self.add_row({"PartitionKey": partition, "RowKey": row, **properties})
            self.remove(due)

    @translate("index update")
    def count_attempt(self, due: Due, error: str) -> int:
        """Add one failed attempt to the row; return the new count."""
        from azure.data.tables import UpdateMode

        attempts = due.attempts + 1
        self._table.upsert_entity({"PartitionKey": due.partition_key, "RowKey": due.row_key, "attempts": attempts,
                                   "last_error": error[:1000]}, mode=UpdateMode.MERGE)
        return attempts


class GroupedRemovals:
    """The queue function's due-row deletes: each settle's goes with those of the settles running beside it,
    a batch transaction per due hour (`shared.group_commit`), and the settle waits until it is done, as it
    waits for a delete of its own (a row named twice at once is deleted once)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._commits: dict[str, GroupCommit] = {}

    def remove(self, due: Due) -> None:
        with self._lock:
            commit = self._commits.get(due.partition_key)
            if commit is None:
                if len(self._commits) > 64:  # hours long past: their commits are idle
                    self._commits.clear()
                commit = self._commits[due.partition_key] = GroupCommit(self._send, 100)
        commit.add([due])

    @staticmethod
    def _send(dues: list) -> None:
        once = {due.row_key: due for due in dues}
        get_due_index().remove_many(list(once.values()))


def _batches(dues: list):
    """The rows in batch-transaction lots: one partition each, at most 100."""
    found: dict[str, list] = {}
    for due in dues:
        found.setdefault(due.partition_key, []).append(due)
    for rows in found.values():
        for start in range(0, len(rows), 100):
            yield rows[start:start + 100]


@forgotten_with_settings
@built_once
def get_due_index() -> DueIndex:
    """The process's one due index, built on first use."""
    return DueIndex(table(get_settings().expiry_table))


