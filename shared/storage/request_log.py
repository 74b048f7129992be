"""Requests people made from the catalog, per requester: the slots that cap their open requests, and a
history to list.

Table `<table>requests`, one partition per requester (PartitionKey: a hash of the identity as compared,
so any identity makes a valid key and every read here is bounded by it). Two kinds of rows:

- `slot|<entry>|<n>` for n < limit: the request holding the slot (`pause_id`, `taken_at`). A request
  takes a slot before its pause is stored, so two requests at once cannot both take the last one: an
  insert fails on a row that exists, and a slot whose request has ended is taken over by a replace
  conditional on the ETag read, which only one of two can win.
- `made|<inverted time>|<pause_id>`: one row per request (entry, title), newest first.

Taking a slot and writing its history row is one entity-group transaction: both or neither.
"""

import hashlib
import logging
from datetime import datetime
from typing import Callable, NamedTuple

from shared.clients import built_once
from shared.clock import as_utc
from shared.settings import get_settings
from shared.storage.status_index import inverted
from shared.storage.tables import forgotten_with_settings, submit, table, translate

logger = logging.getLogger(__name__)


class Made(NamedTuple):
    """One request in a requester's history."""

    pause_id: str
    entry: str
    title: str
    made_at: datetime


def partition(requester: str) -> str:
    """The requester's partition: a hash, since an identity may hold characters a key may not."""
    return hashlib.sha256(requester.encode("utf-8")).hexdigest()[:40]


def _slot_key(entry: str, number: int) -> str:
    return f"slot|{entry}|{number}"


def _made_key(made_at: datetime, pause_id: str) -> str:
    return f"made|{inverted(made_at)}|{pause_id}"


class RequestLog:
    def __init__(self, table_client):
        self._table = table_client

    def _submit(self, operations: list) -> bool:
        """Commit a transaction; False when the service refused it because a row exists, changed or is gone
        (someone else took or gave back the slot), raised for anything else."""
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
        from azure.data.tables import TableTransactionError

        try:
            submit(self._table, operations)
            return True
        except (TableTransactionError, ResourceNotFoundError) as exc:
            code = getattr(exc, "error_code", None) or ""
            if code in ("EntityAlreadyExists", "UpdateConditionNotSatisfied", "ResourceNotFound", "EntityNotFound"):
                return False
            if code != "TableNotFound" and "TableNotFound" not in str(exc):
                raise
        try:  # the first request ever: the table is made now, and the transaction sent once more
            self._table.create_table()
        except ResourceExistsError:
            pass
        submit(self._table, operations)
        return True

    @translate("requests")
    def take_slot(self, requester: str, entry: str, limit: int, made: Made,
                  still_open: Callable[[str, datetime], bool]) -> bool:
        """Take one of the requester's `limit` slots of `entry` for `made` and write its history row, at
        once; False when every slot holds a request that `still_open(pause_id, taken_at)` says is open."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        key = partition(requester)
        history = ("create", {"PartitionKey": key, "RowKey": _made_key(made.made_at, made.pause_id),
                              "pause_id": made.pause_id, "entry": made.entry, "title": made.title,
                              "made_at": made.made_at})
        mine = {"pause_id": made.pause_id, "taken_at": made.made_at}
        held = {row["RowKey"]: row for row in self._slots(key, entry)}
        for number in range(limit):
            row_key = _slot_key(entry, number)
            slot = {"PartitionKey": key, "RowKey": row_key, **mine}
            found = held.get(row_key)
            if found is None:
                if self._submit([("create", slot), history]):
                    return True
                found = self._slot(key, row_key)  # taken meanwhile, or by our own send whose answer was lost
                if found is None:
                    continue
            if found.get("pause_id") == made.pause_id:
                return True
            if still_open(found.get("pause_id") or "", as_utc(found.get("taken_at"))):
                continue
            replace = ("update", slot, {"mode": UpdateMode.REPLACE, "etag": found.metadata["etag"],
                                        "match_condition": MatchConditions.IfNotModified})
            if self._submit([replace, history]):
                return True
            again = self._slot(key, row_key)  # a send whose answer was lost may have taken it for us after all
            if again is None:  # given back meanwhile: free
                if self._submit([("create", slot), history]) or self._holds(key, row_key, made):
                    return True
            elif again.get("pause_id") == made.pause_id:
                return True
        return False

    def _holds(self, key: str, row_key: str, made: Made) -> bool:
        found = self._slot(key, row_key)
        return found is not None and found.get("pause_id") == made.pause_id

    def _slots(self, key: str, entry: str) -> list:
        from azure.core.exceptions import ResourceNotFoundError

        low, high = f"slot|{entry}|", f"slot|{entry}|~"
        try:
            return list(self._table.query_entities("PartitionKey eq @p and RowKey gt @low and RowKey lt @high",
                                                   parameters={"p": key, "low": low, "high": high}))
        except ResourceNotFoundError:
            return []

    def _slot(self, key: str, row_key: str):
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._table.get_entity(partition_key=key, row_key=row_key)
        except ResourceNotFoundError:
            return None

    @translate("requests")
    def give_back(self, requester: str, made: Made) -> None:
        """Undo take_slot for a request whose pause was never stored: its slot (while it still holds it)
        and its history row."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceNotFoundError

        key = partition(requester)
        for slot in self._slots(key, made.entry):
            if slot.get("pause_id") == made.pause_id:
                try:
                    self._table.delete_entity(partition_key=key, row_key=slot["RowKey"], etag=slot.metadata["etag"],
                                              match_condition=MatchConditions.IfNotModified)
                except ResourceNotFoundError:
                    pass
        try:
            self._table.delete_entity(partition_key=key, row_key=_made_key(made.made_at, made.pause_id))
        except ResourceNotFoundError:
            pass

    @translate("requests query")
    def history(self, requester: str, limit: int) -> list[Made]:
        """The requester's latest requests, newest first."""
        from azure.core.exceptions import ResourceNotFoundError

        rows = self._table.query_entities("PartitionKey eq @p and RowKey gt @low and RowKey lt @high",
                                          parameters={"p": partition(requester), "low": "made|", "high": "made|~"},
                                          results_per_page=limit)
        found = []
        try:
            # Pages, not one: the service may answer a short (even empty) page with a continuation.
            for row in rows:
                found.append(Made(row["pause_id"], row["entry"], row.get("title") or row["entry"],
                                  as_utc(row["made_at"])))
                if len(found) == limit:
                    break
        except ResourceNotFoundError:
            return []
        return found


@forgotten_with_settings
@built_once
def get_request_log() -> RequestLog:
    return RequestLog(table(get_settings().requests_table))
