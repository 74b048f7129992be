"""The request bodies the app accepts, declared once (shared.schema) and parsed into typed values.

The same declarations produce the OpenAPI document (shared.web.openapi), so what is published is
what is enforced. One 400 names every bad field with its rule.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from shared.check_fields import (CHECKS_MODES, DEFAULT_CHECK_EVERY, DEFAULT_CHECK_MAX_ATTEMPTS, DEFAULT_CHECKS_MODE,
                                 GUID, MAX_CALLBACK_URI, PIPELINE_NAME, CheckField)
from shared import pause_rules
from shared.forms import FORM
from shared.windows import START_WINDOW
from shared.errors import InvalidRequest
from shared.lifecycle.model import HoldStatus, Status
from shared.schema import (INVALID, AnyJson, Boolean, Choice, EmailList, Identity, IdentityList, Integer, ListOf,
                           Object, Problems, Text, Url)

DEFAULT_EXPIRES_IN = 86400
MIN_EXPIRES_IN, MAX_EXPIRES_IN = 60, 2592000
MAX_DATA_BYTES = 256 * 1024
MAX_INPUT_BYTES = 64 * 1024
MAX_COMMENT_CHARS = 2000
MAX_APPROVERS = 20
MAX_ESCALATION_APPROVERS = 10
CHANNEL_NAME = re.compile(r"[a-z0-9-]{1,40}")  # notify.channels: the app setting CHANNEL_<NAME> is its webhook
RESTART_TARGET_FIELDS = (*pause_rules.TARGET_FIELDS, "pipeline_name")  # the factory, and the pipeline it starts
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100

HOLD_SCOPE_CHARS = r"[A-Za-z0-9_\-.() *]"  # a hold's scope part: what a name may hold, and * for any text
HOURS = r"[0-9]{1,4}(\.[0-9]{1,2})?"  # a form's number of hours (parse_hours)
BLANK_PART = "^ *$"  # a hold's scope part left blank (JSON Schema; the check is str.strip())

# Azure resource group: 1-90 of letters, digits, _ - . ( ), not ending in a period.
_RESOURCE_GROUP = re.compile(r"[\w\-.()]{0,89}[\w\-()]")

PAUSE_BODY = Object(
    "Create a pause. With `callBackUri` (added by the ADF WebHook activity) the pipeline fields are "
    "not needed: the waiting run continues through the callback.",
    fields={
        "subscription_id": Text("Subscription of the factory to start the pipeline in (restart mode).",
                                nonblank=True, pattern=re.compile(GUID), rule_text="a subscription GUID"),
        "resource_group": Text("Resource group of the factory (restart mode).", nonblank=True, max_chars=90,
                               pattern=_RESOURCE_GROUP, json_pattern=r"^[A-Za-z0-9_\-.()]{0,89}[A-Za-z0-9_\-()]$",
                               rule_text="a resource group name: letters, digits, _ - . ( ), not ending in a period"),
        "factory_name": Text("Data factory name (restart mode).", nonblank=True, max_chars=63,
                             pattern=re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{1,61}[A-Za-z0-9]"),
                             rule_text="3-63 letters, digits or hyphens, starting and ending with a letter or digit"),
        "pipeline_name": Text("Pipeline to start on approval (restart mode).", nonblank=True, max_chars=140,
                              pattern=PIPELINE_NAME, json_pattern=r"^[A-Za-z0-9_][^.+?/<>*#%&:\\\u0000-\u001f\u007f]{0,139}$",
                              rule_text="an ADF pipeline name: starting with a letter, digit or _ and without "
                              ". + ? / < > * # % & : \\"),
        "tenant_id": Text("Tenant (GUID) of the factory, when it is not the app's own (needs CROSS_TENANT_CLIENT_ID).",
                          pattern=re.compile(GUID), rule_text="a tenant GUID"),
        "parameters": Object("Parameters of the started run; the app adds `pause_id`.", max_bytes=64 * 1024,
                             key_pattern=re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}"),
                             key_rule="parameter names must start with a letter or _ and hold only letters, digits and _",
                             reserved={"pause_id": "is set by the app to the pause's id"}),
        "data": AnyJson("Any JSON kept with the pause and returned exactly; at most 256 KiB serialized.",
                        max_bytes=MAX_DATA_BYTES),
        "expires_in": Integer("Seconds until the links expire.", minimum=MIN_EXPIRES_IN, maximum=MAX_EXPIRES_IN,
                              default=DEFAULT_EXPIRES_IN),
        "on_timeout": Choice("What happens when nobody decides in time.", values=("expire", "restart"),
                             default="expire"),
        "notification": Object("Plain texts shown on the pages (always escaped).", fields={
            "title": Text("Heading of the pages and the email.", max_chars=200),
            "message": Text("What the approver should know.", max_chars=4000, multiline=True),
            "success_message": Text("Shown after approval.", max_chars=2000, multiline=True),
        }),
        "notify": Object("Who the app tells: an email with the links (needs the SMTP_* settings; with "
                         "`approvers` each gets their own links, and `email` may be left out) and chat channels "
                         "(the shared links).", fields={
            "email": EmailList("Recipients (default: the approvers, unless only channels are named).", max_items=20),
            "subject": Text("Email subject.", max_chars=200),
            "channels": ListOf(Text("A channel: the app setting CHANNEL_<NAME> holds its Teams Workflows or Slack "
                                    "webhook URL.", pattern=CHANNEL_NAME, rule_text="1-40 of a-z, 0-9 and -"),
                               "Chat channels the request is posted to, with the shared links.", max_items=5,
                               unique_items=True),
        }),
        "approvers": IdentityList("Who may decide (e-mail or UPN). Each gets a personal link; with sign-in, the "
                                  "shared link works for them too.", max_items=MAX_APPROVERS),
        "required_approvals": Integer("Distinct approvals needed before the pipeline continues.", minimum=1,
                                      maximum=MAX_APPROVERS, default=1),
        "requested_by": Identity("Who asked; never counts as an approver and cannot decide (unless "
                                 "`allow_self_approval`)."),
        "allow_self_approval": Boolean("Let `requested_by` decide too.", default=False),
        "return_approver_links": Boolean("Return each approver's personal links in the answer, for the caller to "
                                         "deliver itself (recorded: whoever holds them can approve in the "
                                         "approvers' names). Without it the app emails them (`notify`).",
                                         default=False),
        "checks": ListOf(CheckField("An HTTP check or an ADF run check."), "What must hold (polled by the timer).",
                         max_items=10),
        "checks_mode": Choice("auto: continue by itself when every check passes; gate: people decide, but only "
                              "after every check passed.", values=CHECKS_MODES, default=DEFAULT_CHECKS_MODE),
        "remind_every": Integer("While pending, remind whoever was asked and has not acted, every this many seconds "
                                "(not before the first interval).", minimum=300, maximum=604800),
        "remind_max": Integer("Reminders at most (with remind_every).", minimum=1, maximum=20, default=3),
        "escalate_after": Integer("Seconds (less than expires_in): once, if still pending then, escalate to "
                                  "escalate_to.", minimum=60, maximum=MAX_EXPIRES_IN),
        "escalate_to": Object("Who is asked when the pause escalates (with escalate_after): at least one of them.",
                              fields={
            "approvers": IdentityList("Approvers added then, each with a personal link of their own by email (the "
                                      "pause must name approvers; none of these may be one already).",
                                      max_items=MAX_ESCALATION_APPROVERS),
            "email": EmailList("Addresses emailed the request then, with the shared links.", max_items=20),
            "channels": ListOf(Text("A channel, as in notify.channels.", pattern=CHANNEL_NAME,
                                    rule_text="1-40 of a-z, 0-9 and -"),
                               "Chat channels the request is posted to then, with the shared links.", max_items=5,
                               unique_items=True),
        }),
        "check_every": Integer("Seconds between attempts.", minimum=60, maximum=86400, default=DEFAULT_CHECK_EVERY),
        "check_max_attempts": Integer("Attempts before the pause settles by on_timeout.", minimum=1, maximum=1000,
                                      default=DEFAULT_CHECK_MAX_ATTEMPTS),
        "form": FORM,
        "start_window": START_WINDOW,
        "allow_start_at": Boolean("Let the approver choose a later start (at most 30 days ahead; inside start_window "
                                  "when there is one).", default=False),
        "source": Object("Free-form context kept for audit, e.g. the calling run's id.", max_bytes=16 * 1024),
        "callBackUri": Url("Added by the ADF WebHook activity; selects callback mode.", max_length=MAX_CALLBACK_URI),
    },
)
PAUSE_BODY.also = pause_rules.described(PAUSE_BODY.fields)  # what the fields together must be, as JSON Schema

APPROVE_BODY = Object("Approve: start the pipeline (or continue the waiting run).", fields={
    "comment": Text("Kept with the decision.", max_chars=MAX_COMMENT_CHARS, multiline=True),
    "input": Object("JSON only: kept with the decision and passed to a waiting WebHook activity; with a form, its "
                    "values, checked against it.", max_bytes=MAX_INPUT_BYTES),
    "start_at": Text("With allow_start_at: when the run starts, ISO 8601 (2026-12-07T02:30:00+01:00; without an "
                     "offset, in the start window's time zone, else UTC). At most 30 days ahead, inside the window.",
                     max_chars=40),
})
APPROVE_FORM = Object("The approve page's form.", fields={"comment": APPROVE_BODY.fields["comment"],
                                                          "start_at": APPROVE_BODY.fields["start_at"]})
CANCEL_BODY = Object("Cancel the pause.", fields={
    "reason": Text("Why; passed to a waiting WebHook activity as the error message.",
                   max_chars=MAX_COMMENT_CHARS, multiline=True),
})

REASSIGN_BODY = Object("Hand a named approver's part on to someone else.", fields={
    "to": Identity("Who decides instead (e-mail or UPN): they get a personal link of their own by email."),
    "comment": Text("Why; kept with the reassignment.", max_chars=MAX_COMMENT_CHARS, multiline=True),
}, required=("to",))

CHECKPOINT_BODY = Object(
    "A run reached a checkpoint (sent by an ADF WebHook activity, which adds `callBackUri`).", fields={
        "subscription_id": PAUSE_BODY.fields["subscription_id"],
        "resource_group": PAUSE_BODY.fields["resource_group"],
        "factory_name": PAUSE_BODY.fields["factory_name"],
        "pipeline_name": PAUSE_BODY.fields["pipeline_name"],
        "run_id": Text("The run that reached the checkpoint: @pipeline().RunId.", pattern=re.compile(GUID),
                       rule_text="a run id (GUID)"),
        "checkpoint": Text("Which checkpoint of the pipeline, e.g. after_staging.", max_chars=64,
                           pattern=re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}"),
                           rule_text="1-64 letters, digits, spaces, _ . -"),
        "callBackUri": PAUSE_BODY.fields["callBackUri"],
    }, required=("subscription_id", "resource_group", "factory_name", "pipeline_name", "run_id", "checkpoint",
                 "callBackUri"))
HOLD_SCOPE = (*RESTART_TARGET_FIELDS, "run_id")  # a hold matches runs by their factory, pipeline and id
HOLD_BODY = Object("Place a hold: runs matching the scope wait at their next checkpoint.", fields={
    "scope": Object("Which runs: at least one part; each exact or with * for any text (Load_*).", fields={
        part: Text(f"{part} to match.", max_chars=140, pattern=re.compile(HOLD_SCOPE_CHARS + "{1,140}"),
                   rule_text="1-140 letters, digits, spaces or _ - . ( ), with * for any text")
        for part in HOLD_SCOPE}, also={  # parse_hold: at least one part, none blank
            "minProperties": 1, "allOf": [{"properties": {part: {"not": {"pattern": BLANK_PART}}
                                                          for part in HOLD_SCOPE}}]}),
    "reason": Text("Why; shown to everyone whose run waits.", nonblank=True, max_chars=MAX_COMMENT_CHARS,
                   multiline=True),
    "expires_in": Integer("Seconds until the hold releases by itself.", minimum=60, maximum=MAX_EXPIRES_IN),
}, required=("scope", "reason"))
RELEASE_BODY = Object("Release a hold: its checkpoints continue (unless another hold still holds them).", fields={
    "comment": Text("Passed to the continuing runs.", max_chars=MAX_COMMENT_CHARS, multiline=True),
})
HOLD_CANCEL_BODY = Object("Cancel a hold: its checkpoints fail with HoldCancelled.", fields={
    "reason": Text("Why; the runs' error message.", nonblank=True, max_chars=MAX_COMMENT_CHARS, multiline=True),
}, required=("reason",))
HOLD_STATUS_QUERY = Choice("Only holds with this status.", values=tuple(status.value for status in HoldStatus))

STATUS_QUERY = Choice("Only pauses with this status.", values=tuple(status.value for status in Status))


@dataclass
class PauseRequest:
    """A validated pause body; JSON-valued fields are kept in their canonical serialized form."""

    subscription_id: str | None  # None only in callback mode
    resource_group: str | None
    factory_name: str | None
    pipeline_name: str | None
    tenant_id: str | None
    parameters: dict
    data_json: str | None
    expires_in: int
    on_timeout: str
    notification: dict
    source: dict | None
    notify: dict | None = None
    callback_uri: str | None = None
    approvers: list | None = None
    required_approvals: int = 1
    requested_by: str | None = None
    allow_self_approval: bool = False
    return_approver_links: bool = False
    checks: list | None = None
    checks_mode: str = DEFAULT_CHECKS_MODE
    check_every: int = DEFAULT_CHECK_EVERY
    check_max_attempts: int = DEFAULT_CHECK_MAX_ATTEMPTS
    remind_every: int | None = None
    remind_max: int = 3
    escalate_after: int | None = None
    escalate_to: dict | None = None
    form: list | str | None = None  # the fields, or "pipeline": read from the restart-mode pipeline
    start_window: dict | None = None
    allow_start_at: bool = False
    requested_from: dict | None = None  # {entry, title}: a run requested from the catalog (never from a body)

    @property
    def deciders(self) -> list:
        """The approvers who may decide: the requester is not one, unless self-approval is allowed."""
        return [a for a in self.approvers or () if self.allow_self_approval or a != self.requested_by]

    @property
    def emails(self) -> bool:
        """Whether an email is asked for: `notify.email`, or approvers to tell when no channel is named."""
        return self.notify is not None and ("email" in self.notify or not self.notify.get("channels"))

    @property
    def channels(self) -> tuple:
        return tuple((self.notify or {}).get("channels") or ())

    @property
    def mode(self) -> str:
        """`callback` when ADF's WebHook activity waits on a callBackUri, else `restart`."""
        return "callback" if self.callback_uri else "restart"


@dataclass
class Decision:
    """A validated approve or cancel body."""

    comment: str | None = None
    input: dict | None = None
    start_at: datetime | None = None  # a later start the approver chose (allow_start_at), checked against the pause
    start_at_text: str | None = None  # ... as it was sent


def parse_pause(body: dict) -> PauseRequest:
    """Validate a pause body, or raise InvalidRequest / PayloadTooLarge.

    With a callBackUri (callback mode) the pipeline fields are optional: the run that waits is
    the one that called. The callBackUri's host is checked against the allow-list later (403).
    """
    problems = Problems()
    # The key's presence selects callback mode: "", null or a number is a 400, never restart mode.
    callback_mode = "callBackUri" in body
    values = PAUSE_BODY.check(body, "", problems, required=() if callback_mode else RESTART_TARGET_FIELDS)
    if values is not INVALID:
        pause_rules.check_approvers(values, problems)
        pause_rules.check_checks(values, problems)
        pause_rules.check_reminders(values, problems)
        pause_rules.check_escalation(values, values.get("expires_in", DEFAULT_EXPIRES_IN), problems)
        pause_rules.check_form(values, callback_mode, problems)
    problems.raise_if_any("pause request")
    return PauseRequest(
        **{name: values.get(name) for name in RESTART_TARGET_FIELDS},
        tenant_id=values.get("tenant_id"), parameters=values.get("parameters") or {},
        data_json=values.get("data"), expires_in=values.get("expires_in", DEFAULT_EXPIRES_IN),
        on_timeout=values.get("on_timeout", "expire"), notification=values.get("notification") or {},
        source=values.get("source"), notify=values.get("notify"), callback_uri=values.get("callBackUri"),
        approvers=values.get("approvers"), required_approvals=values.get("required_approvals", 1),
        requested_by=values.get("requested_by"), allow_self_approval=values.get("allow_self_approval", False),
        return_approver_links=values.get("return_approver_links", False), checks=values.get("checks"),
        checks_mode=values.get("checks_mode", DEFAULT_CHECKS_MODE),
        check_every=values.get("check_every", DEFAULT_CHECK_EVERY),
        check_max_attempts=values.get("check_max_attempts", DEFAULT_CHECK_MAX_ATTEMPTS),
        remind_every=values.get("remind_every"), remind_max=values.get("remind_max", 3),
        escalate_after=values.get("escalate_after"), escalate_to=values.get("escalate_to"), form=values.get("form"),
        start_window=values.get("start_window"), allow_start_at=values.get("allow_start_at", False))


@dataclass
class CheckpointRequest:
    subscription_id: str
    resource_group: str
    factory_name: str
    pipeline_name: str
    run_id: str
    checkpoint: str
    callback_uri: str


def parse_checkpoint(body: dict) -> CheckpointRequest:
    problems = Problems()
    values = CHECKPOINT_BODY.check(body, "", problems)
    problems.raise_if_any("checkpoint")
    return CheckpointRequest(**{name: values[name] for name in ("subscription_id", "resource_group", "factory_name",
                                                                 "pipeline_name", "run_id", "checkpoint")},
                             callback_uri=values["callBackUri"])


@dataclass
class HoldRequest:
    scope: dict
    reason: str
    expires_in: int | None


def parse_hold(body: dict) -> HoldRequest:
    problems = Problems()
    values = HOLD_BODY.check(body, "", problems)
    if values is not INVALID:
        scope = values["scope"]
        if not scope:
            problems.add("scope", "required", f"must name at least one of {', '.join(HOLD_SCOPE)}")
        for part, pattern in scope.items():
            if not pattern.strip():
                problems.add(f"scope.{part}", "nonblank", "must not be blank")
    problems.raise_if_any("hold")
    return HoldRequest(scope={k: v.strip() for k, v in values["scope"].items()}, reason=values["reason"].strip(),
                       expires_in=values.get("expires_in"))


def parse_reassign(fields: dict) -> tuple[str, str | None]:
    """Validate a reassign body: (to, comment)."""
    problems = Problems()
    values = REASSIGN_BODY.check(fields, "", problems)
    problems.raise_if_any("request")
    return values["to"], (values.get("comment") or "").strip() or None


def parse_decision(fields: dict, schema: Object) -> Decision:
    """Validate an approve or cancel body against `schema`."""
    problems = Problems()
    values = schema.check(fields, "", problems)
    problems.raise_if_any("request")
    text = values.get("comment", values.get("reason"))
    return Decision(comment=(text.strip() or None) if text else None, input=values.get("input"),
                    start_at_text=(values.get("start_at") or "").strip() or None)


def parse_query(field, name: str, text: str | None):
    """A query parameter checked by its declared field (None when absent)."""
    if text is None:
        return None
    problems = Problems()
    value = field.check(text, name, problems)
    problems.raise_if_any("query")
    return None if value is INVALID else value


def parse_hours(text, name: str) -> int | None:
    """A form's "hours" field as seconds (None when left empty), or a 400 naming it."""
    text = text.strip() if isinstance(text, str) else text
    if text is None or text == "":
        return None
    seconds = round(float(text) * 3600) if isinstance(text, str) and re.fullmatch(HOURS, text) else None
    if seconds is None or not 60 <= seconds <= MAX_EXPIRES_IN:
        raise InvalidRequest("Invalid number of hours.", [{"field": name, "rule": "format",
                                                           "message": "must be a number of hours from 0.02 to 720, "
                                                                      "e.g. 4 or 1.5"}])
    return seconds


def form_text(fields: dict, name: str) -> str:
    """A form field's text ("" when absent), or a 400 naming it when a JSON body sent something else."""
    value = fields.get(name, "")
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be text.", [{"field": name, "rule": "type", "message": "must be a string"}])
    return value


def parse_limit(text: str | None) -> int:
    """The `limit` query parameter: a whole number from 1 to MAX_PAGE_SIZE."""
    if text is None or text == "":
        return DEFAULT_PAGE_SIZE
    if not re.fullmatch(r"[0-9]{1,6}", text) or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise InvalidRequest("Invalid limit.", [{"field": "limit", "rule": "range",
                                                 "message": f"must be a whole number from 1 to {MAX_PAGE_SIZE}"}])
    return int(text)
