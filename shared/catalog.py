"""The catalog: pipelines a person may ask to run, with someone else's approval (step 1: the entries).

An entry names its pipeline, its approvers and who may request it; it is checked as a pause body is
when it is stored (the factory allowed, the pipeline there and declaring `pause_id`, the form fitting
it), so a request made from it later can only fail for reasons of its own. `"form": "pipeline"` is
stored as given: each request reads the pipeline's parameters afresh. Stored by `shared.storage.catalog`.
"""

import json
import logging
import re
from datetime import datetime

from shared import notices, pause_forms, pause_rules, people, validation
from shared.clock import iso, utcnow
from shared.errors import Forbidden, InvalidRequest, NotFound
from shared.forms import FORM
from shared.jsonbody import canonical, parse_object
from shared.schema import INVALID, Field, ListOf, Object, Problems, Text
from shared.settings import get_settings
from shared.storage.catalog import StoredEntry, get_catalog
from shared.targets import identity
from shared.targets.adf import PipelineTarget, get_adf
from shared.validation import PAUSE_BODY, RESTART_TARGET_FIELDS

logger = logging.getLogger(__name__)

ENTRY_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
ENTRY_RULE = "1-63 of a-z, 0-9 and -, starting with a letter or digit"
MAX_REQUESTERS = 50
MAX_ENTRY_BYTES = 128 * 1024
# `*@` and a domain as `people.valid_address` takes one (for "name@" and it, at most 254 characters): dot-separated
# labels of 1-63 letters, digits and inner hyphens, the last not all digits (its length only roughly).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_LAST = r"(?:[0-9]*[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?|[0-9]+-[A-Za-z0-9-]{0,60}[A-Za-z0-9])"
_DOMAIN_PATTERN = rf"^\*@(?:{_LABEL}\.)+{_LAST}$"


class Requester(Field):
    """Who may request a run: an identity (as `shared.schema.Identity` checks it), or `*@domain` for
    everyone of that domain; checked to the form it is compared in."""

    def check(self, value, path, problems):
        if isinstance(value, str) and value.startswith("*@"):
            domain = value[2:]
            # The domain is held to the rules of an address's domain: `*@` alone or `*@x` names nobody.
            if people.key(value) is not None and people.valid_address(f"name@{domain}"):
                return people.key(value)
            problems.add(path, "requester", "must be an e-mail address or UPN, or *@ and a domain like *@contoso.com")
            return INVALID
        if people.key(value) is None or not people.valid_address(value):
            problems.add(path, "requester", "must be an e-mail address or UPN, or *@ and a domain like *@contoso.com")
            return INVALID
        return people.key(value)

    def schema(self):
        # (`format` only annotates, so a value starting *@ is held to the pattern by the branch that refuses it.)
        return self._described({"type": "string", "maxLength": 254, "anyOf": [
            {"format": "email", "not": {"pattern": "^\\*@"}}, {"pattern": _DOMAIN_PATTERN, "maxLength": 251}]})


TARGET = Object("The pipeline a request runs (as a restart-mode pause names it).",
                fields={name: PAUSE_BODY.fields[name] for name in (*RESTART_TARGET_FIELDS, "tenant_id")},
                required=RESTART_TARGET_FIELDS)

ENTRY_BODY = Object("Register or replace a catalog entry: a pipeline people may ask to run, with approval. At most "
                    f"{MAX_ENTRY_BYTES} bytes serialized.", fields={
    "title": Text("What the entry is called on the request pages.", nonblank=True, max_chars=200),
    "description": Text("What running it does, for the requester and the approvers.", max_chars=4000,
                        multiline=True),
    "target": TARGET,
    "form": FORM,
    "approvers": PAUSE_BODY.fields["approvers"],
    "required_approvals": PAUSE_BODY.fields["required_approvals"],
    "requesters": ListOf(Requester("An identity (e-mail or UPN), or *@domain for everyone of that domain."),
                         "Who may request a run.", max_items=MAX_REQUESTERS, unique_items=True),
    "start_window": PAUSE_BODY.fields["start_window"],
    "expires_in": PAUSE_BODY.fields["expires_in"],
    "notify": PAUSE_BODY.fields["notify"],
    "allow_self_approval": PAUSE_BODY.fields["allow_self_approval"],
}, required=("title", "target", "approvers", "requesters"))
ENTRY_BODY.also = pause_rules.described(ENTRY_BODY.fields)  # what the fields together must be, as a pause's


def check_entry_id(entry: str) -> str:
    """The entry id of a route, or a 400 naming `entry`."""
    if not ENTRY_ID.fullmatch(entry or ""):
        raise InvalidRequest("Invalid catalog entry id.", [{"field": "entry", "rule": "pattern",
                                                            "message": f"must be {ENTRY_RULE}"}])
    return entry


def parse_entry(body: dict) -> dict:
    """The checked fields of an entry body, or a 400 naming each bad field (413 over size)."""
    problems = Problems()
    values = ENTRY_BODY.check(body, "", problems)
    if values is not INVALID:
        pause_rules.check_approvers(values, problems)
        requesters = values.get("requesters") or []
        if len(set(requesters)) != len(requesters):
            problems.add("requesters", "unique", "must not name anyone twice")
        if len(canonical(values).encode("utf-8")) > MAX_ENTRY_BYTES:
            problems.add_too_large("(body)", MAX_ENTRY_BYTES)
    problems.raise_if_any("catalog entry")
    return values


def pause_body(entry: str, fields: dict, requested_by: str | None, values: dict) -> dict:
    """The body of the pause a request of the entry makes, as `POST /api/pause` takes it: the entry's
    pipeline, approvers and terms, the requester's values as the run's parameters. Without `notify` the
    approvers are emailed their links (someone must learn that a request waits)."""
    body = {**fields["target"], "parameters": values, "approvers": fields["approvers"],
            "notify": fields.get("notify", {}),
            "notification": {"title": fields["title"],
                             **({"message": fields["description"]} if fields.get("description") else {})},
            "source": {"catalog_entry": entry, "catalog_title": fields["title"]},
            **{name: fields[name] for name in ("required_approvals", "start_window", "expires_in",
                                               "allow_self_approval") if name in fields}}
    if requested_by is not None:
        body["requested_by"] = requested_by
    return body


def _check_requests(entry: str, values: dict, settings) -> None:
    """A request of the entry is a pause: refuse an entry whose requests could not be made or told."""
    request = validation.parse_pause(pause_body(entry, values, None, {}))
    try:
        notices.check(request, settings)
    except InvalidRequest as refused:
        if "notify" in values:
            raise
        raise InvalidRequest("Requests of this entry email the approvers their links (notify is left out), but this "
                             "app has no SMTP server configured (SMTP_HOST); name chat channels in notify instead.",
                             refused.errors) from None


def _check_target(entry: str, values: dict) -> None:
    """Refuse what a request could only fail on later: the factory, the tenant, the pipeline, the form,
    telling the approvers."""
    settings = get_settings()
    _check_requests(entry, values, settings)
    fields = values["target"]
    target = PipelineTarget(*(fields[name] for name in RESTART_TARGET_FIELDS), fields.get("tenant_id"))
    if not target.allowed_by(settings.allowed_factories):
        raise Forbidden("This app may not start pipelines in that factory (see ALLOWED_FACTORIES).")
    identity.check_tenant(fields.get("tenant_id"), settings)
    if settings.check_pipeline_exists:
        problem = get_adf().check_target(target)
        if problem is not None:
            field = f"target.{problem.field}"  # every field ADF can fault is one of the target's
            raise InvalidRequest(f"{field} {problem.message}.",
                                 [{"field": field, "rule": problem.rule, "message": problem.message}])
    if values.get("form"):
        pause_forms.resolve(values["form"], target, {})  # stored as given: a request reads the pipeline afresh


def _record(stored: StoredEntry) -> dict:
    return {"entry": stored.entry, **json.loads(stored.fields_json), "updated_at": iso(stored.updated_at),
            "updated_by": stored.updated_by}


def put_entry(entry: str, body: dict, updated_by: str | None, now: datetime | None = None) -> tuple[dict, bool]:
    """Register or replace an entry; the stored entry, and whether it is new."""
    entry = check_entry_id(entry)
    values = parse_entry(body)
    _check_target(entry, values)
    stored = StoredEntry(entry, canonical(values), now or utcnow(), updated_by)
    created = get_catalog().put(stored)
    logger.info("catalog entry %s entry=%s by=%s", "added" if created else "replaced", entry, updated_by)
    return _record(stored), created


def get_entry(entry: str) -> dict:
    return _record(get_catalog().get(check_entry_id(entry)))


def delete_entry(entry: str, deleted_by: str | None) -> None:
    """Remove an entry; requests already made from it are ordinary pauses and stay as they are."""
    get_catalog().delete(check_entry_id(entry))
    logger.info("catalog entry deleted entry=%s by=%s", entry, deleted_by)


def list_entries(limit: int, cursor: str | None) -> dict:
    """One page of entries in id order, and the cursor of the next (None on the last)."""
    entries, next_cursor = get_catalog().page(limit, cursor)
    return {"items": [_record(stored) for stored in entries], "cursor": next_cursor}


# What the console offers to fill in for a new entry: every required field, empty.
_SKELETON = {"title": "", "description": "", "target": {name: "" for name in RESTART_TARGET_FIELDS},
             "form": "pipeline", "approvers": [], "requesters": []}


def entry_text(entry: str) -> dict:
    """An entry's fields as JSON to edit (for an id with no entry yet, every required field empty), and
    the entry as stored (None when new)."""
    try:
        record = get_entry(entry)
    except NotFound:
        return {"text": json.dumps(_SKELETON, indent=2), "record": None}
    fields = {k: v for k, v in record.items() if k not in ("entry", "updated_at", "updated_by")}
    return {"text": json.dumps(fields, indent=2, ensure_ascii=False), "record": record}


def body_from_text(text: str) -> dict:
    """The JSON an operator typed in the console, as an entry body, or a 400 naming `entry_json`."""
    try:
        return parse_object(text.encode("utf-8"))
    except InvalidRequest as refused:
        raise InvalidRequest(refused.detail, [{**error, "field": "entry_json"} for error in refused.errors]) from None
