"""How a pause body declares an automated check: an HTTP endpoint or an ADF run, and what counts as
passed. Declared once (shared.schema) for validation and the OpenAPI document alike; the checks
themselves are run by shared.checks."""

import re

from shared.schema import INVALID, Boolean, Choice, Field, Integer, ListOf, Number, Object, Text, Url, Value
from shared.urls import MAX_URL_LENGTH

# What a pause with checks gets when it does not say (declared here once; shared.validation and
# shared.checks use these).
CHECKS_MODES = ("auto", "gate")
DEFAULT_CHECKS_MODE = "auto"
DEFAULT_CHECK_EVERY = 300         # seconds between attempts
DEFAULT_CHECK_MAX_ATTEMPTS = 20

# Shared with the pause body's declarations (shared.validation).
MAX_CALLBACK_URI = MAX_URL_LENGTH
GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# ADF entity names: up to 140 characters, starting with a letter, digit or underscore,
# none of . + ? / < > * # % & : \ (ADF naming rules; the REST spec's pipelineName pattern).
PIPELINE_NAME = re.compile(r"[A-Za-z0-9_][^.+?/<>*#%&:\\\x00-\x1f\x7f]{0,139}")

# Only settings made for this: a pause must not be able to send any other app setting anywhere.
_SETTING_NAME = re.compile(r"CHECK_HEADER_[A-Za-z0-9_]{1,100}")
# A small JSONPath: $ then .name, [index] or ['name'] steps.
JSON_PATH = re.compile(r"\$(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]{1,6}\]|\['[^'\\\x00-\x1f\x7f]{1,128}'\])*")
JSON_OPERATORS = ("equals", "in", "lt", "le", "gt", "ge", "exists")
RUN_STATUSES = ("Queued", "InProgress", "Succeeded", "Failed", "Canceling", "Cancelled")

HTTP_CHECK = Object("Call a URL on CHECK_ALLOWED_HOSTS.", fields={
    "url": Url("https URL on CHECK_ALLOWED_HOSTS (plain http only for loopback hosts listed exactly).",
               max_length=MAX_CALLBACK_URI),
    "method": Choice("HTTP method.", values=("GET", "POST"), default="GET"),
    "body": Value("JSON body of a POST.", max_bytes=16 * 1024),
    "header_setting": Text("Name of an app setting, CHECK_HEADER_<name>, holding one header, 'Name: value' "
                           "(keeps secrets out of the pause); the setting CHECK_HEADER_<name>_HOSTS lists the "
                           "hosts it may be sent to.", pattern=_SETTING_NAME,
                           rule_text="an app setting name starting CHECK_HEADER_"),
}, required=("url",), also={"if": {"required": ["body"]},  # CheckField.check: a body only with POST
                             "then": {"required": ["method"], "properties": {"method": {"const": "POST"}}}})
# (A body of null is none to the app, as any field sent as null is; the document describes values, not null: saying
# so here made schemathesis's generation of every check twice as slow.)
JSON_EXPECT = Object(f"What the JSON answer must show: path and exactly one of {', '.join(JSON_OPERATORS)}.", fields={
    "path": Text("Where in the answer: $.a.b[0]", pattern=JSON_PATH, rule_text="a path like $.status or $.rows[0]"),
    "equals": Value("Equal to this (null too).", max_bytes=4096, null_is_value=True),
    "in": ListOf(Value("", max_bytes=4096), "One of these.", max_items=50),
    **{op: Number(f"{label} this.") for op, label in (("lt", "Less than"), ("le", "At most"), ("gt", "Greater than"),
                                                      ("ge", "At least"))},
    "exists": Boolean("Whether the path must exist (true) or not (false)."),
}, required=("path",), also={"minProperties": 2, "maxProperties": 2})
# (Exactly one operator, checked by CheckField, stated as two properties: `path` is required and every other field
# declared is an operator, so this holds only while that is so (tests/test_check_fields.py says it). A oneOf of seven
# `required`s said the same and made schemathesis's coverage of POST /pause 2.2× as slow.)
HTTP_EXPECT = Object("What counts as passed (default: any 2xx).", fields={
    "status": ListOf(Integer("", minimum=100, maximum=599), "Passing statuses.", max_items=20),
    "json": JSON_EXPECT,
})
ADF_RUN_CHECK = Object("A run in the pause's factory.", fields={
    "run_id": Text("The run's id.", pattern=re.compile(GUID), rule_text="a run id (GUID)"),
    "pipeline_name": Text("The pipeline the run must belong to.", max_chars=140, pattern=PIPELINE_NAME,
                          rule_text="an ADF pipeline name"),
}, required=("run_id",))
ADF_EXPECT = Object("Which run statuses pass.", fields={
    "status": ListOf(Choice("", values=RUN_STATUSES), "Passing statuses.", max_items=6),
}, required=("status",))


class CheckField(Field):
    """One check: a `name`, and either `http` (with an optional `expect`) or `adf_run` (with `expect`)."""

    _NAME = Text("", max_chars=64, pattern=re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}"),
                 rule_text="1-64 letters, digits, spaces, _ . -")

    def check(self, value, path, problems):
        if not isinstance(value, dict):
            problems.add(path, "type", "must be a JSON object")
            return INVALID
        kinds = [kind for kind in ("http", "adf_run") if kind in value]
        unknown = set(value) - {"name", "http", "adf_run", "expect"}
        for key in sorted(unknown):
            problems.add(f"{path}.{str(key)[:64]}", "unknown_field", "is not a known field")
        if len(kinds) != 1:
            problems.add(path, "one_of", "must have exactly one of http or adf_run")
            return INVALID
        kind = kinds[0]
        name = self._NAME.check(value.get("name"), f"{path}.name", problems) if "name" in value else INVALID
        if "name" not in value:
            problems.add(f"{path}.name", "required", "is required")
        body = (HTTP_CHECK if kind == "http" else ADF_RUN_CHECK).check(value[kind], f"{path}.{kind}", problems)
        expect = value.get("expect")
        if expect is None and kind == "adf_run":
            problems.add(f"{path}.expect", "required", "is required")
            return INVALID
        expected = (HTTP_EXPECT if kind == "http" else ADF_EXPECT).check({} if expect is None else expect,
                                                                         f"{path}.expect", problems)
        if INVALID in (name, body, expected):
            return INVALID
        if kind == "http":
            operators = [op for op in JSON_OPERATORS if op in (expected.get("json") or {})]
            if "json" in expected and len(operators) != 1:
                problems.add(f"{path}.expect.json", "one_of", "must have exactly one of " + ", ".join(JSON_OPERATORS))
                return INVALID
            if body.get("body") is not None and body.get("method", "GET") != "POST":
                problems.add(f"{path}.http.body", "post_only", "is sent only with method POST")
                return INVALID
        return {"name": name, kind: body, "expect": expected}

    def schema(self):
        name = self._NAME.schema()
        return self._described({"oneOf": [
            {"type": "object", "required": ["name", "http"], "additionalProperties": False,
             "properties": {"name": name, "http": HTTP_CHECK.schema(), "expect": HTTP_EXPECT.schema()}},
            {"type": "object", "required": ["name", "adf_run", "expect"], "additionalProperties": False,
             "properties": {"name": name, "adf_run": ADF_RUN_CHECK.schema(), "expect": ADF_EXPECT.schema()}}]})


