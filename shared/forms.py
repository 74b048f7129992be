"""The form a pause asks its approver to fill in: declared in the pause body (`form`) or built from the
restart-mode pipeline's declared parameters, and read back typed (shared.form_values).

Pure: no storage, no HTTP, no SDK. A declared field is checked once, at pause time, and kept as a
normalized dict: always `name`, `label` (the name when not given), `type` and `required`; `max_length`
for string / text (4000 when not given); `help`, `default`, `choices`, `min`, `max`, `pattern` only when
given. Values in it are typed as the field's values are (a datetime as UTC text ending in Z, a number
as a float). A pattern must compile with RE2, which matches in linear time: what RE2 cannot compile
(backreferences, lookaround) is refused here, so no value can stall a request later.
"""

import json
import re


from shared.form_values import (ABSENT, DEFAULT_MAX_LENGTH, MAX_JSON_CHARS, MAX_MAX_LENGTH, MAX_SAFE_INTEGER,
                                TEXT_TYPES, TYPERS, TYPES, FormReading, PatternRefused, ValueRefused, check_input,
                                compile_pattern, read_form, shown, to_text, typed_value)
from shared.schema import INVALID, Boolean, Choice, Field, Integer, ListOf, Object, Text, Value

__all__ = ["FORM", "FormField", "FormReading", "check_input", "compile_pattern", "from_pipeline", "read_form",
           "shown", "to_text", "typed_value", "TYPES"]

MAX_FIELDS = 30
MAX_CHOICES = 100
MAX_PATTERN = 500
CHOICE_TYPES = ("choice", "multi_choice")
RANGE_TYPES = ("integer", "number", "date", "datetime")
RESERVED = ("pause_id",)  # the app passes it to every run it starts
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,119}")  # an ADF parameter name
# ADF's parameter types, compared case-insensitively ("String" in the SDK, "string" in the studio's JSON).
# SecureString / SecureObject are never on a form: what is typed on a page is recorded with the approval.
ADF_TYPES = {"string": "string", "int": "integer", "float": "number", "bool": "boolean", "array": "array",
             "object": "object"}

_ITEM = Object("One field of the form.", fields={
    "name": Text("The value's name: an ADF parameter name (a letter or _, then letters, digits or _; at most "
                 "120), unique in the form, not pause_id.", max_chars=120, pattern=NAME,
                 rule_text="a letter or _, then letters, digits or _ (at most 120)"),
    "label": Text("What the page calls the field (default: its name).", max_chars=200, nonblank=True),
    "help": Text("A hint shown under the label.", max_chars=1000, multiline=True),
    "type": Choice("string: one line; text: several lines; integer; number; boolean: a checkbox (unchecked is "
                   "false); date: YYYY-MM-DD; datetime: a moment, kept as UTC (2025-01-31T16:30:00Z); choice: one "
                   "of `choices`; multi_choice: a list of them; array / object: JSON text of that kind (for "
                   "pipeline parameters of those types).", values=TYPES),
    "required": Boolean("The value must be given (for a boolean: sent, which a checkbox always is).",
                        default=False),
    "default": Value("Filled in on the page: a value of the field, typed as the field's values are.",
                     max_bytes=MAX_JSON_CHARS),
    "choices": ListOf(Text("", max_chars=200, nonblank=True), "For choice and multi_choice (and only them): "
                      "the distinct options.", max_items=MAX_CHOICES, unique_items=True),
    "min": Value("For integer, number, date and datetime: the least value (a datetime with its offset).",
                 max_bytes=64),
    "max": Value("For integer, number, date and datetime: the greatest value, not less than min.", max_bytes=64),
    "max_length": Integer("For string and text: the most characters (default 4000).", minimum=1,
                          maximum=MAX_MAX_LENGTH),
    "pattern": Text("For string and text: an RE2 regular expression the whole value must match (no "
                    "backreferences or lookaround: matching takes time linear in the value).",
                    max_chars=MAX_PATTERN, nonblank=True),
}, required=("name", "type"))


def _only_for(item, spec, key, kinds, path, problems) -> bool:
    """Whether `key` is given for a field of a type that takes it (a problem if given for another)."""
    if key not in item:
        return False
    if spec["type"] not in kinds:
        problems.add(f"{path}.{key}", "not_allowed", f"is only for a field of type {' or '.join(kinds)}")
        return False
    return True


def _declare_choices(item, spec, path, problems):
    if _only_for(item, spec, "choices", CHOICE_TYPES, path, problems):
        if len(set(item["choices"])) < len(item["choices"]):
            problems.add(f"{path}.choices", "unique", "must not list a choice twice")
        spec["choices"] = item["choices"]
    elif spec["type"] in CHOICE_TYPES:
        problems.add(f"{path}.choices", "required", f"is required for a field of type {spec['type']}")


def _declare_bounds(item, spec, path, problems):
    for key in ("min", "max"):
        if _only_for(item, spec, key, RANGE_TYPES, path, problems):
            try:
                spec[key] = TYPERS[spec["type"]](item[key])
            except ValueRefused as refused:
                problems.add(f"{path}.{key}", refused.rule, str(refused))
    if "min" in spec and "max" in spec and spec["min"] > spec["max"]:
        problems.add(f"{path}.min", "range", "must not be greater than max")


def _declare_text(item, spec, path, problems):
    if spec["type"] in TEXT_TYPES:
        spec["max_length"] = DEFAULT_MAX_LENGTH
    if _only_for(item, spec, "max_length", TEXT_TYPES, path, problems):
        spec["max_length"] = item["max_length"]
    if _only_for(item, spec, "pattern", TEXT_TYPES, path, problems):
        try:
            compile_pattern(item["pattern"])
            spec["pattern"] = item["pattern"]
        except PatternRefused as refused:
            reason = str(refused)
            problems.add(f"{path}.pattern", "re2", "must be an RE2 expression, which matches in linear time (no "
                                                   f"backreferences or lookaround): {reason}")


def _declare(value, path, problems):
    """One field, normalized, or INVALID with its problems added."""
    item = _ITEM.check(value, path, problems)
    if item is INVALID:
        return INVALID
    if item["name"] in RESERVED:
        problems.add(f"{path}.name", "reserved", "is the app's own parameter (every run it starts is given it)")
        return INVALID
    spec = {"name": item["name"], "label": item.get("label", item["name"]), "type": item["type"],
            "required": item.get("required", False)}
    if "help" in item:
        spec["help"] = item["help"]
    errors_before = len(problems.errors)
    _declare_choices(item, spec, path, problems)
    _declare_bounds(item, spec, path, problems)
    _declare_text(item, spec, path, problems)
    if len(problems.errors) > errors_before:
        return INVALID
    if "default" in item:
        try:
            default = typed_value(spec, item["default"])
        except ValueRefused as refused:
            problems.add(f"{path}.default", refused.rule, f"must be a value of the field: it {refused}")
            return INVALID
        if default is not ABSENT:
            spec["default"] = default
    return spec


# The JSON Schema of a value of each type: a default's and (for the range types) min's and max's.
_DATE_SCHEMA = {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
_MOMENT_SCHEMA = {"type": "string", "format": "date-time",
                  "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}:[0-9]{2})$"}
_VALUE_SCHEMAS = {
    "string": {"type": "string"}, "text": {"type": "string"}, "boolean": {"type": "boolean"},
    "integer": {"type": "integer", "minimum": -MAX_SAFE_INTEGER, "maximum": MAX_SAFE_INTEGER},
    "number": {"type": "number"}, "date": _DATE_SCHEMA, "datetime": _MOMENT_SCHEMA, "choice": {"type": "string"},
    "multi_choice": {"type": "array", "items": {"type": "string"}}, "array": {"type": "array"},
    "object": {"type": "object"},
}


def _type_rules() -> list:
    """For each type: what its default must be, and which of choices / min / max / max_length / pattern it
    takes (`false`: that property must be absent)."""
    rules = []
    for kind in TYPES:
        properties = {"default": _VALUE_SCHEMAS[kind]}
        properties.update({key: _VALUE_SCHEMAS[kind] if kind in RANGE_TYPES else False for key in ("min", "max")})
        properties.update({key: {} if kind in TEXT_TYPES else False for key in ("max_length", "pattern")})
        then = {"properties": properties}
        properties["choices"] = {"type": "array"} if kind in CHOICE_TYPES else False
        if kind in CHOICE_TYPES:
            then["required"] = ["choices"]
        rules.append({"if": {"properties": {"type": {"const": kind}}, "required": ["type"]}, "then": then})
    return rules


class FormField(Field):
    """A pause's `form`: "pipeline", or a list of 1-30 fields; checks to the normalized fields."""

    def check(self, value, path, problems):
        if value == "pipeline":
            return value
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_FIELDS:
            problems.add(path, "items", f'must be "pipeline" or a list of 1 to {MAX_FIELDS} fields')
            return INVALID
        fields = [_declare(item, f"{path}[{i}]", problems) for i, item in enumerate(value)]
        seen = {}
        for i, spec in enumerate(fields):
            if spec is not INVALID and spec["name"] in seen:
                problems.add(f"{path}[{i}].name", "unique", f"is already the name of {path}[{seen[spec['name']]}]")
                fields[i] = INVALID
            elif spec is not INVALID:
                seen[spec["name"]] = i
        return INVALID if INVALID in fields else fields

    def schema(self):
        item = _ITEM.schema()
        item["properties"]["name"]["not"] = {"enum": list(RESERVED)}
        item["allOf"] = _type_rules()
        fields = {"type": "array", "items": item, "minItems": 1, "maxItems": MAX_FIELDS,
                  "description": "The fields, in the order the page shows them; names unique. A default, min "
                                 "and max must be values of their field, min not greater than max."}
        pipeline = {"const": "pipeline",
                    "description": "Restart mode only: the fields are the pipeline's declared parameters, read "
                                   "when the pause is made (String, Int, Float, Bool, Array, Object; not "
                                   "SecureString, SecureObject or pause_id). A parameter without a default is "
                                   "required; values in `parameters` are filled in."}
        return self._described({"oneOf": [pipeline, fields]})


FORM = FormField("Values the approver gives on the confirmation page (a plain HTML form), checked on the "
                 "server and passed on typed: as run parameters in restart mode (over `parameters`), as "
                 "`Output.input` in callback mode. A JSON approve sends them as `input`.")


def _typed_or_absent(spec, value):
    try:
        return typed_value(spec, value)
    except ValueRefused:
        return ABSENT


def _prefilled(spec, value):
    """A value from the pause's `parameters` as the field's default; text standing for a value of another
    type ("5" for an Int) is read as JSON; what is neither is not filled in."""
    typed = _typed_or_absent(spec, value)
    if typed is ABSENT and isinstance(value, str) and spec["type"] not in TEXT_TYPES:
        try:
            typed = _typed_or_absent(spec, json.loads(value))
        except (ValueError, RecursionError):
            pass
    return typed


def from_pipeline(parameters: dict, prefill: dict | None = None) -> list:
    """The fields of a pipeline's declared parameters, in their order: `parameters` is {name: {"type": ADF
    type, "default_value": value (absent or None: none)}}, `prefill` the pause's `parameters`.

    A parameter with a default is optional and shows it; one without is required. A prefilled value is
    shown instead of the default. A String whose value shown has a line break or tab is a `text` field. A
    default or prefilled value that is not a value of the field is not shown (the pipeline's own default
    still applies when the field is left empty). Secure, unknown-typed and pause_id parameters are left out.
    """
    fields = []
    for name, declared in parameters.items():
        kind = ADF_TYPES.get(str((declared or {}).get("type", "")).lower())
        if kind is None or name in RESERVED or not isinstance(name, str) or not NAME.fullmatch(name):
            continue
        has_default = (declared or {}).get("default_value") is not None
        shown_values = [declared["default_value"]] if has_default else []
        if (prefill or {}).get(name) is not None:
            shown_values.append(prefill[name])
        if kind == "string" and any(isinstance(v, str) and set(v) & set("\t\r\n") for v in shown_values):
            kind = "text"
        spec = {"name": name, "label": name, "type": kind, "required": not has_default}
        if kind in TEXT_TYPES:
            spec["max_length"] = MAX_MAX_LENGTH  # the pipeline sets no limit; this is the most a form allows
        typed = ABSENT
        for value in reversed(shown_values):  # the prefill first, then the pipeline's default
            typed = _prefilled(spec, value)
            if typed is not ABSENT:
                break
        if typed is not ABSENT:
            spec["default"] = typed
        fields.append(spec)
    return fields
