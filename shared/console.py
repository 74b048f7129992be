"""The operators' console: who may use it, what it shows, and what operators do there.

Operators are signed in through App Service Authentication (APPROVER_SIGN_IN=easyauth; locally
the development sign-in) and listed in OPERATORS or given the app role `Pauses.Operator`. Every
list is read from an index (open pauses, held checkpoints, active holds, decisions by time), so
the console reads what it shows, however many pauses were ever stored. Operators place, release
and cancel holds and cancel pauses, recorded as themselves; approving stays with the approvers.
"""

import csv
import io
import logging
import re
from datetime import date, datetime, time, timedelta, timezone

from shared import checkpoints, holds, listing
from shared.approvers import Principal
from shared.clock import iso, utcnow
from shared.errors import ConsoleSignIn, InvalidRequest, NotAnOperator, NotFound
from shared.lifecycle.engine import decide
from shared.lifecycle.model import Action, Audit, Mode
from shared.settings import get_settings
from shared.storage import due_queue, status_index
from shared.storage.pauses import get_store
from shared.storage.records import to_record
from shared.validation import Decision

logger = logging.getLogger(__name__)

OPERATOR_ROLE = "Pauses.Operator"
PAGE = 100              # rows per section shown
RECENT = timedelta(days=7)
MAX_EXPORT_DAYS = 366
MAX_EXPORT_ROWS = 50_000  # one answer within the front end's time limit


def operator(principal: Principal | None) -> str:
    """The signed-in operator's name, or raise 401 (sign in first) / 403 (not an operator, or no sign-in)."""
    settings = get_settings()
    if settings.approver_sign_in != "easyauth":
        raise NotAnOperator("The console is for signed-in operators: it needs APPROVER_SIGN_IN=easyauth (App "
                            "Service Authentication in front of the app) and OPERATORS or the Pauses.Operator role.")
    if principal is None:
        raise ConsoleSignIn("The console is for operators: sign in with your work account.")
    if principal.name in settings.operators or OPERATOR_ROLE in principal.roles:
        return principal.name
    raise NotAnOperator(f"You are signed in as {principal.name}, who is not an operator of this app (OPERATORS or "
                        f"the {OPERATOR_ROLE} app role).")


def overview(now: datetime | None = None) -> dict:
    """Everything waiting, for the console's front page."""
    now = now or utcnow()
    pending, more_pending = listing.open_entities(status_index.OPEN, PAGE, None, now)
    held, more_held = listing.open_entities(status_index.HELD, PAGE, None, now)
    decided, more_decided = listing.decisions(now - RECENT, now + timedelta(minutes=1), PAGE, None)
    return {
        "pending": [to_record(e) for e in pending], "more_pending": bool(more_pending),
        "held": [to_record(e) for e in held], "more_held": bool(more_held),
        "holds": holds.listed(holds.ACTIVE, PAGE, now),
        "decided": [_decision_view(row) for row in decided], "more_decided": bool(more_decided),
        "backlog": due_queue.backlog(), "due_work_queue": get_settings().due_work_queue,
    }


def _decision_view(row: dict) -> dict:
    return {**row, **{name: iso(row.get(name)) for name in ("decided_at", "created_at", "expires_at")}}


def pause(pause_id: str) -> dict:
    """A pause's full record (the audit trail is in it: approvals, who decided, from where)."""
    from shared import tokens

    if not tokens.PAUSE_ID_PATTERN.fullmatch(pause_id or ""):
        raise NotFound("No pause has that id.")
    return to_record(get_store().get(pause_id).entity)


def cancel_pause(pause_id: str, reason: str | None, who: str, client_ip: str | None, user_agent: str | None,
                 now: datetime | None = None) -> dict:
    """An operator cancels a pending pause (or fails a held checkpoint), recorded as them."""
    from shared import tokens

    now = now or utcnow()
    if not reason:
        raise InvalidRequest("Say why you cancel: the pipeline's owner and the approvers will read it.",
                             [{"field": "reason", "rule": "required", "message": "is required"}])
    if not tokens.PAUSE_ID_PATTERN.fullmatch(pause_id or ""):
        raise NotFound("No pause has that id.")
    stored = get_store().get(pause_id)
    action = Action.HOLD_CANCEL if stored.entity.get("mode") == Mode.CHECKPOINT else Action.CANCEL
    audit = Audit(decided_by=who, client_ip=client_ip, user_agent=user_agent, via="console")
    record = decide(pause_id, stored, action, Decision(comment=reason), audit, now)
    logger.info("pause cancelled from the console pause_id=%s by=%s", pause_id, who)
    return record


def end_hold(hold_id: str, status: str, who: str, words: str | None) -> dict:
    if status == holds.CANCELLED and not words:
        raise InvalidRequest("Say why you cancel the hold: every run waiting on it fails with this message.",
                             [{"field": "reason", "rule": "required", "message": "is required"}])
    return checkpoints.end(hold_id, status, who, words)


def _day(text: str | None, name: str) -> date:
    try:
        day = date.fromisoformat(text or "")
        if 2000 <= day.year <= 9998:
            return day
    except ValueError:
        pass
    raise InvalidRequest(f"{name} must be a date.", [{"field": name, "rule": "format",
                                                      "message": "must be a date, YYYY-MM-DD, from 2000 to 9998"}])


CSV_COLUMNS = ("decided_at", "pause_id", "status", "mode", "pipeline_name", "factory_name", "resource_group",
               "subscription_id", "checkpoint", "requested_by", "decided_by", "run_id", "words", "created_at")


# A formula character (= + - @, tab, CR) where a spreadsheet may start a cell: at the start of the
# text, or after a character some spreadsheet splits a line on. Which separator is used depends on
# the locale and the import dialog (";" in much of Europe, a tab, "|"), and quoting does not help,
# since quotes count only at the start of a field of the separator actually used; a newline may
# start a new row in an importer that ignores quotes. Spaces in between do not stop it (an importer
# may trim them). Lookahead only, so a tab or CR that is both separator and formula character is
# checked again for what follows it.
# Separators a spreadsheet may split a cell or a line on: , ; | tab, and every line or record break
# (\v \f \x1c-\x1e \x85 \u2028 \u2029, which str.splitlines() honours too).
_FORMULA_START = re.compile(r"(?:^|(?<=[,;\t|\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029]))( *)(?=[=+\-@\t\r])")


def _cell(value) -> str:
    """A CSV cell no spreadsheet will run, however it splits it: ' before every formula start.

    Times, ids, statuses and names never hold a separator followed by a formula character, nor
    start with one, so they are written as they are.
    """
    text = "" if value is None else str(value)
    return _FORMULA_START.sub(r"\1'", text)


def decisions_csv(since_text: str | None, until_text: str | None) -> tuple[str, str]:
    """Decisions made from `since` to `until` (whole UTC days, both included) as CSV; and a file name."""
    since, until = _day(since_text, "from"), _day(until_text, "to")
    if until < since:
        raise InvalidRequest("to is before from.", [{"field": "to", "rule": "range",
                                                     "message": "must be on or after from"}])
    if (until - since).days >= MAX_EXPORT_DAYS:
        raise InvalidRequest("Export at most a year at a time.", [{"field": "to", "rule": "range",
                                                                    "message": f"at most {MAX_EXPORT_DAYS} days after from"}])
    start = datetime.combine(since, time.min, timezone.utc)
    stop = datetime.combine(until + timedelta(days=1), time.min, timezone.utc)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    cursor, written = None, 0
    while True:
        rows, cursor = listing.decisions(start, stop, 1000, cursor)
        for row in rows:
            view = _decision_view(row)
            writer.writerow([_cell(view.get(column)) for column in CSV_COLUMNS])
        written += len(rows)
        if not cursor:
            break
        if written >= MAX_EXPORT_ROWS:
            raise InvalidRequest(f"More than {MAX_EXPORT_ROWS} decisions in that range: export a shorter one.",
                                 [{"field": "to", "rule": "range", "message": "choose a range with fewer decisions"}])
    return out.getvalue(), f"decisions-{since.isoformat()}-to-{until.isoformat()}.csv"
