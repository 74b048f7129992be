"""Requesting a run from the catalog (APPROVER_SIGN_IN=easyauth): what the signed-in person may request,
an entry's form, the request itself, and the requester's own requests.

A request is an ordinary pause (`shared.catalog.pause_body`): `requested_by` is the signed-in identity,
never a value of the form; the requester's values are the run's parameters; `source` names the entry.
Someone outside an entry's `requesters` is told exactly what they would be told of an entry that does
not exist (403), so nobody learns from these pages which entries there are. A requester holds at most
OPEN_LIMIT open requests of an entry at once: `shared.storage.request_log` keeps the slots that count
them, and two requests at once cannot both take the last one.
"""

import logging
from datetime import datetime, timedelta

from shared import catalog, console, pause_forms, pauses, tokens, validation, windows
from shared.approvers import Principal
from shared.clock import utcnow
from shared.errors import (ConsoleSignIn, DamagedRecord, FormInvalid, InvalidRequest, NotAnOperator, NotARequester, NotFound,
                           TooManyOpenRequests)
from shared.lifecycle.model import FINAL
from shared.schema import Object, Problems
from shared.settings import get_settings
from shared.storage.pauses import get_store
from shared.storage.records import status_of, to_record
from shared.storage.request_log import Made, get_request_log
from shared.targets.adf import PipelineTarget
from shared.validation import RESTART_TARGET_FIELDS

logger = logging.getLogger(__name__)

OPEN_LIMIT = 5           # open requests per requester and entry
LISTED = 20              # a requester's latest requests, shown on the pages
MAX_ENTRIES_READ = 1000  # catalog entries looked through for one listing
# A slot taken for a pause not stored yet: that request is still being made (its checks and ARM calls each
# answer within seconds; a request that cannot store its pause in this time gives up or has failed).
_IN_FLIGHT = timedelta(minutes=10)
# The latest requests read for one entry's page (its own are among the requester's latest of every entry).
_READ_FOR_ENTRY = 100
# What a request's requester and approvers see of it; operators see the whole record, as the console does.
_SHOWN = ("pause_id", "status", "mode", "requested_from", "requested_by", "pipeline_name", "factory_name",
          "parameters", "created_at", "expires_at", "start_window", "start_at", "approvers", "required_approvals",
          "decided_at", "decided_by", "comment", "reason", "run_id")

REQUEST_BODY = Object("Request a run of a catalog entry (JSON; signed in with a bearer token). Who asks is the "
                      "signed-in identity, never a field.", fields={
    "input": Object("The values of the entry's form, checked against it; they become the run's parameters.",
                    max_bytes=validation.MAX_INPUT_BYTES),
})
REQUEST_FORM = Object("The entry page's form: its fields are sent as form.<name>.", fields={})


def parse_body(fields: dict, is_json: bool) -> dict | None:
    """A request's `input` (JSON), after refusing (400) any field but the form's: who asks is never a field."""
    problems = Problems()
    values = (REQUEST_BODY if is_json else REQUEST_FORM).check(
        fields if is_json else {k: v for k, v in fields.items() if not k.startswith("form.")}, "", problems)
    problems.raise_if_any("request")
    return values.get("input") if is_json else None


def requester(principal: Principal | None) -> str:
    """The signed-in person's identity, or 401 (sign in first) / 403 (requesting needs sign-in)."""
    if get_settings().approver_sign_in != "easyauth":
        raise NotARequester("Requesting a run needs sign-in: this app runs without it (APPROVER_SIGN_IN=none), so it "
                            "cannot tell who asks.")
    if principal is None:
        raise ConsoleSignIn("Sign in with your work account to request a run.")
    return principal.name


def may_request(fields: dict, who: str) -> bool:
    """Whether `who` (as compared) is one of the entry's requesters: named, or of a `*@domain` named."""
    for allowed in fields.get("requesters") or ():
        if allowed.startswith("*@"):
            if who.count("@") == 1 and who.endswith(allowed[1:]):
                return True
        elif allowed == who:
            return True
    return False


def _refused() -> NotARequester:
    return NotARequester("You cannot request that: it is not in the catalog, or not open to you. The pages list "
                         "everything you may request; ask the catalog's owner for anything else.")


def entry_for(entry: str, who: str) -> dict:
    """The entry, when `who` may request it; the same 403 when it does not exist or they may not."""
    try:
        record = catalog.get_entry(entry)
    except (InvalidRequest, NotFound):
        raise _refused() from None
    if not may_request(record, who):
        raise _refused()
    return record


def requestable(who: str) -> list[dict]:
    """The entries `who` may request, in id order."""
    found, cursor, read = [], None, 0
    while True:
        page = catalog.list_entries(100, cursor)
        found += [record for record in page["items"] if may_request(record, who)]
        read, cursor = read + len(page["items"]), page["cursor"]
        if not cursor or read >= MAX_ENTRIES_READ:
            return found


def form_of(record: dict) -> list | None:
    """The fields the requester fills in: as listed (checked when the entry was stored), or read afresh from
    the pipeline's declared parameters (`"pipeline"`)."""
    form = record.get("form")
    if form != "pipeline":
        return form or None
    target = record["target"]
    return pause_forms.resolve(form, PipelineTarget(*(target[name] for name in RESTART_TARGET_FIELDS),
                                                    target.get("tenant_id")), {})


def time_zone(record: dict) -> str:
    """The zone date-times on the form are given in: the start window's, else UTC."""
    return record["start_window"]["time_zone"] if record.get("start_window") else "UTC"


def cannot_be_approved(record: dict, who: str) -> bool:
    """Whether a request by `who` could never be approved: they are one of the approvers the quorum needs
    and may not approve their own request."""
    deciders = [a for a in record["approvers"] if record.get("allow_self_approval") or a != who]
    return record.get("required_approvals", 1) > len(deciders)


def make_request(entry: str, who: str, base_url: str, posted: dict | None = None, given: dict | None = None,
                 now: datetime | None = None) -> dict:
    """Request a run of `entry` as `who`: the values from a page's POST (`posted`) or a program's `input`
    (`given`), checked against the entry's form; the pause made, as `POST /api/pause` answers."""
    record = entry_for(entry, who)
    values = _values(record, posted, given)
    if cannot_be_approved(record, who):
        raise NotARequester(f"You are one of the approvers of {record['title']}, and a request needs "
                            f"{record.get('required_approvals', 1)} approvals by others than the requester: there are "
                            "not enough. Ask another requester, or the catalog's owner.")
    request = validation.parse_pause(catalog.pause_body(entry, record, who, values))
    request.requested_from = {"entry": entry, "title": record["title"]}  # only the app says so: not a body field
    now = now or utcnow()
    made = Made(tokens.new_pause_id(), entry, record["title"], now)
    log = get_request_log()
    if not log.take_slot(who, entry, OPEN_LIMIT, made, _still_open(now)):
        raise TooManyOpenRequests(f"You already have {OPEN_LIMIT} open requests of {record['title']}: wait until one "
                                  "is decided (or expires) before asking again.")
    try:
        created = pauses.create_pause(request, base_url, now, pause_id=made.pause_id)
    except Exception:
        _give_back(who, made)
        raise
    logger.info("run requested entry=%s pause_id=%s by=%s", entry, made.pause_id, who)
    return created


def _values(record: dict, posted: dict | None, given: dict | None) -> dict:
    fields = form_of(record)
    if not fields:
        if given:
            raise InvalidRequest("This entry asks for no values.", [
                {"field": "input", "rule": "no_form", "message": "must be left out: the entry has no form"}])
        return {}
    tz = windows.zone(time_zone(record))
    try:
        if posted is not None:
            return pause_forms.values_from_page(fields, posted, tz)
        return pause_forms.values_from_input(fields, given or {})
    except FormInvalid as invalid:
        raise FormInvalid("Some values are not valid; nothing was requested.", invalid.field_errors,
                          invalid.typed) from None


def _still_open(now: datetime):
    def still_open(pause_id: str, taken_at: datetime) -> bool:
        try:
            return status_of(get_store().get(pause_id).entity) not in FINAL
        except DamagedRecord:  # a record no decision can be made on does not hold its requester back
            return False
        except NotFound:  # never stored: only a request still being made holds its slot
            return now - taken_at < _IN_FLIGHT
    return still_open


def _give_back(who: str, made: Made) -> None:
    """A request that failed before its pause was stored gives its slot back (one that was stored keeps it)."""
    try:
        get_store().get(made.pause_id)
        return
    except NotFound:
        pass
    except Exception:  # storage cannot say: the slot frees itself once its request counts as never made
        logger.warning("request slot kept entry=%s pause_id=%s: storage could not say whether the pause exists",
                       made.entry, made.pause_id)
        return
    try:
        get_request_log().give_back(who, made)
    except Exception:
        logger.warning("request slot not given back entry=%s pause_id=%s (it frees itself within %s)", made.entry,
                       made.pause_id, _IN_FLIGHT, exc_info=True)


def mine(who: str, entry: str | None = None) -> list[dict]:
    """`who`'s latest requests (of `entry`, or all), newest first, each as its pause stands now."""
    shown = []
    for made in get_request_log().history(who, LISTED if entry is None else _READ_FOR_ENTRY):
        if entry is not None and made.entry != entry or len(shown) == LISTED:
            continue
        try:
            record = to_record(get_store().get(made.pause_id).entity)
        except NotFound:  # a request whose pause was never stored
            continue
        shown.append({**record, "entry": made.entry, "entry_title": made.title, "open": _is_open(record)})
    return shown


def _is_open(record: dict) -> bool:
    return record.get("status") not in {status.value for status in FINAL}


def request_status(pause_id: str, principal: Principal | None) -> dict:
    """A request as its requester, its approvers and operators may see it; the same 403 for anyone else,
    any pause that is not a request and any id that names nothing."""
    who = requester(principal)
    if not tokens.PAUSE_ID_PATTERN.fullmatch(pause_id or ""):
        raise _not_yours()
    try:
        record = to_record(get_store().get(pause_id).entity)
    except NotFound:
        raise _not_yours() from None
    if not record.get("requested_from"):
        raise _not_yours()
    operator = _operator(principal)
    if who != record.get("requested_by") and who not in (record.get("approvers") or ()) and not operator:
        raise _not_yours()
    if not operator:  # not where each approver was, what was sent to whom, or the pause's other data
        record = {**{name: record.get(name) for name in _SHOWN},
                  "approvals": [{name: approval.get(name) for name in ("approver", "at", "comment", "via")}
                                for approval in record.get("approvals") or ()]}
    return {**record, "viewer": who, "open": _is_open(record)}


def _operator(principal: Principal) -> bool:
    try:
        console.operator(principal)
        return True
    except (NotAnOperator, ConsoleSignIn):
        return False


def _not_yours() -> NotARequester:
    return NotARequester("You cannot see that request: it is not one you made or are asked to approve.")
