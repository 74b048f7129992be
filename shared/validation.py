"""Validate request bodies into typed values, collecting every problem with its field and rule.

Each check appends `{"field", "rule", "message"}` to a list, so one 400 names every bad field
at once instead of making the caller fix them one by one.
"""

import re
from dataclasses import dataclass, field

from .errors import InvalidRequest, PayloadTooLarge
from .jsonbody import canonical

DEFAULT_EXPIRES_IN = 86400
MIN_EXPIRES_IN, MAX_EXPIRES_IN = 60, 2592000
ON_TIMEOUT = ("expire", "restart")
MAX_DATA_BYTES = 256 * 1024
MAX_PARAMETERS_BYTES = 64 * 1024
MAX_SOURCE_BYTES = 16 * 1024
MAX_INPUT_BYTES = 64 * 1024
MAX_COMMENT_CHARS = 2000
NOTIFICATION_LIMITS = {"title": 200, "message": 4000, "success_message": 2000}

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TENANT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                     r"|[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63}")
# Azure resource group: 1-90 of letters, digits, _ - . ( ), not ending in a period.
_RESOURCE_GROUP = re.compile(r"[\w\-.()]{0,89}[\w\-()]")
# Data factory: 3-63 of letters, digits and hyphens, starting and ending with a letter or digit.
_FACTORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{1,61}[A-Za-z0-9]")
# ADF entity names: up to 140 characters, starting with a letter, digit or underscore,
# none of . + ? / < > * % & : \ (ADF naming rules).
_PIPELINE = re.compile(r"[A-Za-z0-9_][^.+?/<>*%&:\\\x00-\x1f\x7f]{0,139}")
_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab and newlines allowed
MULTILINE_TEXTS = ("notification.message", "notification.success_message", "comment", "reason")

PAUSE_FIELDS = ("subscription_id", "resource_group", "factory_name", "pipeline_name", "tenant_id",
                "parameters", "data", "expires_in", "on_timeout", "notification", "source", "notify",
                "callBackUri")
MAX_RECIPIENTS = 20
MAX_SUBJECT_CHARS = 200
RESTART_TARGET_FIELDS = ("subscription_id", "resource_group", "factory_name", "pipeline_name")


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

    @property
    def mode(self) -> str:
        """`callback` when ADF's WebHook activity waits on a callBackUri, else `restart`."""
        return "callback" if self.callback_uri else "restart"


@dataclass
class Decision:
    """A validated approve or cancel body."""

    comment: str | None = None
    input: dict | None = None


@dataclass
class _Problems:
    errors: list = field(default_factory=list)
    too_large: list = field(default_factory=list)

    def add(self, name, rule, message):
        self.errors.append({"field": name, "rule": rule, "message": message})

    def add_too_large(self, name, limit):
        self.too_large.append({"field": name, "rule": "max_size",
                               "message": f"must serialize to at most {limit} bytes"})

    def raise_if_any(self, what):
        # A malformed field is the caller's first problem; size only matters once the rest is valid.
        if self.errors:
            names = ", ".join(dict.fromkeys(e["field"] for e in self.errors))
            raise InvalidRequest(f"The {what} has invalid fields: {names}.", self.errors)
        if self.too_large:
            names = ", ".join(e["field"] for e in self.too_large)
            raise PayloadTooLarge(f"The {what} is over the size limit: {names}.", self.too_large)


def _text(problems, body, name, *, required=False, max_chars=None, pattern=None, rule_text=""):
    value = body.get(name)
    if value is None:
        if required:
            problems.add(name, "required", "is required")
        return None
    if not isinstance(value, str):
        problems.add(name, "type", "must be a string")
        return None
    if required and not value.strip():
        problems.add(name, "required", "must not be empty")
        return None
    if (_CONTROL_MULTILINE if name in MULTILINE_TEXTS else _CONTROL).search(value):
        problems.add(name, "control_characters", "must not contain control characters")
        return None
    if max_chars is not None and len(value) > max_chars:
        problems.add(name, "max_length", f"must be at most {max_chars} characters")
        return None
    if pattern is not None and not pattern.fullmatch(value):
        problems.add(name, "pattern", f"must be {rule_text}")
        return None
    return value


def _json_object(problems, body, name, max_bytes):
    """Return (object, its canonical JSON) for an optional object field, or (None, None)."""
    value = body.get(name)
    if value is None:
        return None, None
    if not isinstance(value, dict):
        problems.add(name, "type", "must be a JSON object")
        return None, None
    text = canonical(value)
    if len(text.encode("utf-8")) > max_bytes:
        problems.add_too_large(name, max_bytes)
        return None, None
    return value, text


def _unknown_fields(problems, body, known, prefix=""):
    for name in body:
        if name not in known:
            problems.add(prefix + str(name), "unknown_field", "is not a known field")


def parse_pause(body: dict) -> PauseRequest:
    """Validate a pause body, or raise InvalidRequest / PayloadTooLarge.

    With a callBackUri (callback mode) the pipeline fields are optional: the run that waits is
    the one that called. The callBackUri's host is checked against the allow-list later (403).
    """
    problems = _Problems()
    _unknown_fields(problems, body, PAUSE_FIELDS)
    callback_uri = body.get("callBackUri")
    if callback_uri is not None and not isinstance(callback_uri, str):
        problems.add("callBackUri", "type", "must be a string")
        callback_uri = None
    required = callback_uri is None
    target = {
        "subscription_id": _text(problems, body, "subscription_id", required=required, pattern=_GUID,
                                 rule_text="a subscription GUID"),
        "resource_group": _text(problems, body, "resource_group", required=required, max_chars=90,
                                pattern=_RESOURCE_GROUP, rule_text="a resource group name: letters, "
                                "digits, _ - . ( ), not ending in a period"),
        "factory_name": _text(problems, body, "factory_name", required=required, max_chars=63,
                              pattern=_FACTORY, rule_text="3-63 letters, digits or hyphens, starting "
                              "and ending with a letter or digit"),
        "pipeline_name": _text(problems, body, "pipeline_name", required=required, max_chars=140,
                               pattern=_PIPELINE, rule_text="an ADF pipeline name: starting with a "
                               "letter, digit or _ and without . + ? / < > * % & : \\"),
    }
    tenant_id = _text(problems, body, "tenant_id", max_chars=256, pattern=_TENANT,
                      rule_text="a tenant GUID or domain name")

    parameters, _ = _json_object(problems, body, "parameters", MAX_PARAMETERS_BYTES)
    for key in parameters or {}:
        if key == "pause_id":
            problems.add("parameters.pause_id", "reserved", "is set by the app to the pause's id")
        elif not _PARAMETER_NAME.fullmatch(key):
            problems.add(f"parameters.{key[:64]}", "pattern",
                         "parameter names must start with a letter or _ and hold only letters, digits and _")

    data_json = None
    if "data" in body:
        data_json = canonical(body["data"])
        if len(data_json.encode("utf-8")) > MAX_DATA_BYTES:
            problems.add_too_large("data", MAX_DATA_BYTES)

    expires_in = body.get("expires_in", DEFAULT_EXPIRES_IN)
    # bool is a subclass of int in Python; `true` is not a number of seconds.
    if isinstance(expires_in, bool) or not isinstance(expires_in, int):
        problems.add("expires_in", "type", "must be an integer number of seconds")
    elif not MIN_EXPIRES_IN <= expires_in <= MAX_EXPIRES_IN:
        problems.add("expires_in", "range", f"must be between {MIN_EXPIRES_IN} and {MAX_EXPIRES_IN} seconds")

    on_timeout = body.get("on_timeout", "expire")
    if on_timeout not in ON_TIMEOUT:
        problems.add("on_timeout", "enum", 'must be "expire" or "restart"')

    notification = _notification(problems, body)
    source, _ = _json_object(problems, body, "source", MAX_SOURCE_BYTES)
    notify = _notify(problems, body)

    problems.raise_if_any("pause request")
    return PauseRequest(**target, tenant_id=tenant_id, parameters=parameters or {}, data_json=data_json,
                        expires_in=expires_in, on_timeout=on_timeout, notification=notification,
                        source=source, notify=notify, callback_uri=callback_uri)


def _notify(problems, body) -> dict | None:
    """`notify`: {"email": [addresses], "subject": text}; the app sends the approval email."""
    value = body.get("notify")
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.add("notify", "type", "must be a JSON object")
        return None
    _unknown_fields(problems, value, ("email", "subject"), prefix="notify.")
    emails = value.get("email")
    if isinstance(emails, str):
        emails = [emails]
    if not isinstance(emails, list) or not emails:
        problems.add("notify.email", "required", "must be a non-empty list of email addresses")
        emails = []
    elif len(emails) > MAX_RECIPIENTS:
        problems.add("notify.email", "max_items", f"must list at most {MAX_RECIPIENTS} addresses")
        emails = []
    if emails:
        from .mailer import valid_address  # the mail module loads only when email is asked for

        for i, address in enumerate(emails):
            if not isinstance(address, str) or not valid_address(address):
                problems.add(f"notify.email[{i}]", "email", "must be an email address like name@example.com")
    subject = _text(problems, {"notify.subject": value.get("subject")}, "notify.subject",
                    max_chars=MAX_SUBJECT_CHARS)
    return {"email": list(dict.fromkeys(emails)), "subject": subject}


def _notification(problems, body) -> dict:
    value = body.get("notification")
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add("notification", "type", "must be a JSON object")
        return {}
    _unknown_fields(problems, value, NOTIFICATION_LIMITS, prefix="notification.")
    texts = {}
    for key, limit in NOTIFICATION_LIMITS.items():
        text = _text(problems, {f"notification.{key}": value.get(key)}, f"notification.{key}",
                     max_chars=limit)
        if text is not None:
            texts[key] = text
    return texts


def parse_decision(fields: dict, *, text_field: str, allow_input: bool) -> Decision:
    """Validate an approve (`comment`, `input`) or cancel (`reason`) body."""
    problems = _Problems()
    _unknown_fields(problems, fields, (text_field, "input") if allow_input else (text_field,))
    text = _text(problems, fields, text_field, max_chars=MAX_COMMENT_CHARS)
    decision_input = None
    if allow_input:
        decision_input, _ = _json_object(problems, fields, "input", MAX_INPUT_BYTES)
    problems.raise_if_any("request")
    return Decision(comment=(text.strip() or None) if text else None, input=decision_input)


def parse_limit(text: str | None, default: int, maximum: int) -> int:
    """The `limit` query parameter: a whole number from 1 to `maximum`."""
    if text is None or text == "":
        return default
    if not re.fullmatch(r"[0-9]{1,6}", text) or not 1 <= int(text) <= maximum:
        raise InvalidRequest("Invalid limit.", [{"field": "limit", "rule": "range",
                                                 "message": f"must be a whole number from 1 to {maximum}"}])
    return int(text)
