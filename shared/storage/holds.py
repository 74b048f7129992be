"""Holds: an operator's "pause matching runs at their next checkpoint", stored with their own index.

Table `<table>holds`, one partition ("holds"):

    hold|<hold_id>                      the hold's record (scope, reason, status, who and when)
    active|<hold_id>                    one row per active hold, with its scope: what a checkpoint reads
    ended|<inverted ended_at>|<hold_id> released and cancelled holds, newest first

A hold changes status in one batch transaction (the record, conditional on its ETag, and the move
of its index row), so two operators releasing at once change it once, and the index never says
otherwise. A checkpoint matches holds with one range query of the `active|` rows. A hold whose
`expires_at` has passed counts as released (by expiry) wherever it is read; the timer and the
listings then write that down.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from shared.clients import built_once
from shared.clock import as_utc, iso
from shared.errors import NotFound
from shared.lifecycle.model import HoldStatus
from shared.settings import get_settings
from shared.storage.status_index import inverted
from shared.storage.tables import Conflict, forgotten_with_settings, submit, table, translate

PARTITION = "holds"
SCOPE_PARTS = ("subscription_id", "resource_group", "factory_name", "pipeline_name", "run_id")
ACTIVE, RELEASED, CANCELLED = HoldStatus.ACTIVE, HoldStatus.RELEASED, HoldStatus.CANCELLED
HOLD_ID = re.compile(r"[0-9a-f]{32}")
EXPIRY = "expiry"  # who ends a hold whose expires_at passed


@dataclass(frozen=True)
class Hold:
    hold_id: str
    scope: dict          # part -> pattern (lower case); parts not given match anything
    reason: str
    status: str          # as stored
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    ended_at: datetime | None = None
    ended_by: str | None = None
    comment: str | None = None
    etag: str | None = None

    def status_at(self, now: datetime) -> str:
        """An active hold past its expiry is released (by expiry), whether or not that was written yet."""
        if self.status == ACTIVE and self.expires_at is not None and now >= self.expires_at:
            return RELEASED
        return self.status

    def active_at(self, now: datetime) -> bool:
        return self.status_at(now) == ACTIVE

    def matches(self, target: dict) -> bool:
        return all(wildcard_match(pattern, (target.get(part) or "").lower()) for part, pattern in self.scope.items())

    def record(self, now: datetime) -> dict:
        status = self.status_at(now)
        expired = status != self.status
        return {"hold_id": self.hold_id, "status": status, "scope": dict(self.scope), "reason": self.reason,
                "created_at": iso(self.created_at), "created_by": self.created_by,
                "expires_at": iso(self.expires_at),
                "ended_at": iso(self.expires_at if expired else self.ended_at),
                "ended_by": EXPIRY if expired else self.ended_by,
                "comment": self.comment}


def wildcard_match(pattern: str, text: str) -> bool:
    """Whether `text` matches `pattern`, where * stands for any text (and nothing else is special).

    The greedy two-pointer walk takes at most len(pattern) x len(text) steps, so no pattern an
    operator writes can make a checkpoint slow (a regex of many `.*` can backtrack for ever).
    """
    p = t = 0
    star, resume = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] != "*" and pattern[p] == text[t]:
            p, t = p + 1, t + 1
        elif p < len(pattern) and pattern[p] == "*":
            star, resume, p = p, t, p + 1
        elif star >= 0:
            resume += 1
            p, t = star + 1, resume
        else:
            return False
    return all(char == "*" for char in pattern[p:])


def _utc(value):
    if not isinstance(value, datetime):
        return None
    return as_utc(value)


def _from_entity(entity: dict, etag: str | None = None) -> Hold:
    return Hold(hold_id=entity["RowKey"].rsplit("|", 1)[-1],
                scope={part: entity[f"scope_{part}"] for part in SCOPE_PARTS if entity.get(f"scope_{part}")},
                reason=entity.get("reason") or "", status=entity.get("status") or ACTIVE,
                created_at=_utc(entity.get("created_at")), created_by=entity.get("created_by"),
                expires_at=_utc(entity.get("expires_at")), ended_at=_utc(entity.get("ended_at")),
                ended_by=entity.get("ended_by"), comment=entity.get("comment"), etag=etag)


def _properties(hold: Hold) -> dict:
    return {"status": hold.status, "reason": hold.reason, "created_at": hold.created_at,
            "created_by": hold.created_by, "expires_at": hold.expires_at,
            **{f"scope_{part}": pattern for part, pattern in hold.scope.items()}}


class HoldStore:
    def __init__(self, table_client):
        self._table = table_client

    @translate("holds")
    def add(self, hold: Hold) -> None:
        """The record and its active row in one transaction (creating the table on first use)."""
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
        from azure.data.tables import TableTransactionError

        properties = {k: v for k, v in _properties(hold).items() if v is not None}
        operations = [("create", {"PartitionKey": PARTITION, "RowKey": f"hold|{hold.hold_id}", **properties}),
                      ("create", {"PartitionKey": PARTITION, "RowKey": f"{ACTIVE}|{hold.hold_id}", **properties})]
        try:
            submit(self._table, operations)
        except (ResourceNotFoundError, TableTransactionError) as exc:
            if "TableNotFound" not in str(exc):
                raise
            try:
                self._table.create_table()
            except ResourceExistsError:
                pass
            submit(self._table, operations)

    @translate("holds")
    def get(self, hold_id: str) -> Hold:
        from azure.core.exceptions import ResourceNotFoundError

        if not HOLD_ID.fullmatch(hold_id or ""):
            raise NotFound("No hold has that id.")
        try:
            entity = self._table.get_entity(partition_key=PARTITION, row_key=f"hold|{hold_id}")
        except ResourceNotFoundError:
            raise NotFound("No hold has that id.") from None
        return _from_entity(dict(entity), entity.metadata["etag"])

    @translate("holds query")
    def active(self) -> list[Hold]:
        """Every hold stored as active (one range query: what a checkpoint costs)."""
        from azure.core.exceptions import ResourceNotFoundError

        rows = self._table.query_entities("PartitionKey eq @p and RowKey gt @low and RowKey lt @high",
                                          parameters={"p": PARTITION, "low": f"{ACTIVE}|", "high": f"{ACTIVE}|~"})
        try:
            # The ETag is the active row's; ending a hold needs its record's, read in write_down_expiry.
            return [_from_entity(dict(row)) for row in rows]
        except ResourceNotFoundError:
            return []

    @translate("holds query")
    def ended(self, status: str, limit: int) -> list[Hold]:
        """The latest released or cancelled holds, newest first."""
        from azure.core.exceptions import ResourceNotFoundError

        rows = self._table.query_entities(
            "PartitionKey eq @p and RowKey gt @low and RowKey lt @high and status eq @s",
            parameters={"p": PARTITION, "low": "ended|", "high": "ended|~", "s": status}, results_per_page=limit)
        try:
            return [_from_entity(dict(row)) for row in next(rows.by_page())]
        except (StopIteration, ResourceNotFoundError):
            return []

    @translate("holds")
    def end(self, hold: Hold, status: str, ended_at: datetime, ended_by: str | None, comment: str | None) -> Hold:
        """Active → released/cancelled, in one transaction conditional on the record's ETag; Conflict if it changed.

        The record is the hold's truth; its active and ended rows only list it. A listing row the table has lost, or
        kept (both only by a hand edit: the rows change together), does not keep the hold from ending for good:
        the transaction goes again without that row's precondition."""
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError, UpdateMode

        ended = Hold(**{**hold.__dict__, "status": status, "ended_at": ended_at, "ended_by": ended_by,
                        "comment": comment, "etag": None})
        properties = {k: v for k, v in {**_properties(ended), "ended_at": ended_at, "ended_by": ended_by,
                                        "comment": comment}.items() if v is not None}
        operations = [
            ("update", {"PartitionKey": PARTITION, "RowKey": f"hold|{hold.hold_id}", **properties},
             {"mode": UpdateMode.REPLACE, "etag": hold.etag, "match_condition": MatchConditions.IfNotModified}),
            ("delete", {"PartitionKey": PARTITION, "RowKey": f"{ACTIVE}|{hold.hold_id}"}),
            ("create", {"PartitionKey": PARTITION, "RowKey": f"ended|{inverted(ended_at)}|{hold.hold_id}",
                        **properties})]
        for _ in range(3):
            try:
                submit(self._table, operations)
                return ended
            except TableTransactionError as exc:
                if exc.status_code == 412:  # the record changed since it was read: ended (or being ended) by another
                    raise Conflict() from exc
                refused = operations[exc.index][0] if 0 <= exc.index < len(operations) else None
                if (refused, exc.status_code) == ("delete", 404):  # the active row is gone already
                    del operations[exc.index]
                elif (refused, exc.status_code) == ("create", 409):  # the ended row is there already
                    operations[exc.index] = ("upsert", operations[exc.index][1], {"mode": UpdateMode.REPLACE})
                else:
                    raise  # storage failing, or the table edited beyond these: said as such
        raise Conflict()


@forgotten_with_settings
@built_once
def get_holds() -> HoldStore:
    return HoldStore(table(get_settings().holds_table))
