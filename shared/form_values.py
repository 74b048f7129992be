"""The values of a pause's form, typed: from a JSON approve's `input`, or from the approve page's POST.

Pure: no storage, no HTTP, no SDK. A field is a normalized dict (shared.forms declares and checks it);
its value is typed the same way whether it comes from JSON or from the page's text (the text is first
turned into the JSON value it stands for), so the two cannot disagree. Patterns are RE2 (google-re2):
matched in time linear in the value, so no value can stall a request. A field left empty is left out of
the values: nothing is invented for it (a pipeline then uses its own default), except the two inputs
whose absence is itself an answer: an unchecked checkbox is `false`, a multi_choice with nothing chosen
is `[]`.
"""

import functools
import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone, tzinfo

from shared.jsonbody import canonical, depth, unencodable

TYPES = ("string", "text", "integer", "number", "boolean", "date", "datetime", "choice", "multi_choice",
         "array", "object")
TEXT_TYPES = ("string", "text")
DEFAULT_MAX_LENGTH = 4000
MAX_MAX_LENGTH = 10000
MAX_JSON_CHARS = 10000        # an array / object value, as JSON text
MAX_JSON_DEPTH = 64
MAX_SAFE_INTEGER = 2**53 - 1  # what a JSON number carries exactly everywhere (RFC 8259)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab and line breaks allowed
_INTEGER = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")  # HTML's floating-point number
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LOCAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2})?")  # datetime-local
_MOMENT = re.compile(_LOCAL.pattern + r"(?:Z|[+-][0-9]{2}:[0-9]{2})")
_TRUE, _FALSE = ("on", "true", "1"), ("off", "false", "0", "")
ABSENT = object()  # what typed_value gives for an optional field left empty


class ValueRefused(ValueError):
    """A value a field does not take: `rule` names the rule broken, the text says what is wanted."""

    def __init__(self, rule, message):
        super().__init__(message)
        self.rule = rule


class PatternRefused(ValueError):
    """A pattern RE2 cannot compile (a backreference, lookaround): the text says why."""


@functools.lru_cache(maxsize=1)
def _re2_options():
    import re2  # on first use: a form is rare, and every function of the app imports this module

    options = re2.Options()
    options.log_errors = False  # a refused pattern is the caller's problem, not a line on stderr
    return options


def compile_pattern(pattern: str):
    """Compile a field's pattern with RE2, or raise PatternRefused."""
    import re2

    try:
        return re2.compile(pattern, options=_re2_options())
    except (re2.error, UnicodeEncodeError) as refused:
        reason = refused.args[0] if refused.args else refused
        raise PatternRefused(reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)) \
            from refused


# --- Typing a JSON value (a JSON approve's `input`, a default, a bound) ---------------------------------

def _string(value):
    if not isinstance(value, str):
        raise ValueRefused("type", "must be a string")
    return value


def _integer(value):
    if isinstance(value, float) and value.is_integer():  # 3.0 is 3, as JSON Schema's "integer" says
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueRefused("type", "must be an integer")
    if abs(value) > MAX_SAFE_INTEGER:
        raise ValueRefused("range", f"must be between {-MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER}")
    return value


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueRefused("type", "must be a number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValueRefused("range", "must be a finite number")
    return number


def _boolean(value):
    if not isinstance(value, bool):
        raise ValueRefused("type", "must be true or false")
    return value


def _date(value):
    try:
        if isinstance(value, str) and _DATE.fullmatch(value):
            return date.fromisoformat(value).isoformat()
    except ValueError:
        pass
    raise ValueRefused("date", "must be a date like 2025-01-31")


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _datetime(value):
    try:
        if isinstance(value, str) and _MOMENT.fullmatch(value):
            return _utc_text(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        pass
    raise ValueRefused("datetime", "must be a date and time with its offset, like 2025-01-31T17:30:00Z")


def _choices(value):
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueRefused("type", "must be a list of strings")
    return value


def _json_kind(kind, wanted, example):
    def typed(value):
        if not isinstance(value, wanted):
            raise ValueRefused("type", f"must be a JSON {kind}, like {example}")
        if depth(value) > MAX_JSON_DEPTH or unencodable(value):
            raise ValueRefused("json", f"must be nested at most {MAX_JSON_DEPTH} deep, in valid Unicode")
        if len(canonical(value)) > MAX_JSON_CHARS:
            raise ValueRefused("max_length", f"must be at most {MAX_JSON_CHARS} characters as JSON")
        return value
    return typed


TYPERS = {"string": _string, "text": _string, "integer": _integer, "number": _number, "boolean": _boolean,
          "date": _date, "datetime": _datetime, "choice": _string, "multi_choice": _choices,
          "array": _json_kind("array", list, "[1, 2]"), "object": _json_kind("object", dict, '{"a": 1}')}


def _one_of(choices, wanted="must be one of"):
    listed = ", ".join(f'"{choice}"' for choice in choices[:10])
    return f"{wanted} {listed}" + (" (or another of the listed choices)" if len(choices) > 10 else "")


def _shown_bound(field, bound, tz):
    if field["type"] == "datetime":
        return f"{to_text(field, bound, tz)} ({tz})" if tz is not None else bound
    return to_text(field, bound)


def _constrain(field, value, tz):
    """Raise ValueRefused unless `value` (typed) keeps the field's rules."""
    kind = field["type"]
    if kind in TEXT_TYPES:
        if (_CONTROL_TEXT if kind == "text" else _CONTROL).search(value):
            raise ValueRefused("control_characters", "must not contain control characters" +
                               ("" if kind == "text" else " or line breaks"))
        longest = field.get("max_length", DEFAULT_MAX_LENGTH)
        if len(value) > longest:
            raise ValueRefused("max_length", f"must be at most {longest} characters")
        if unencodable(value):  # a lone surrogate (JSON can carry one): RE2 reads UTF-8
            raise ValueRefused("encoding", "must be valid Unicode text")
        if field.get("pattern") is not None and not compile_pattern(field["pattern"]).fullmatch(value):
            raise ValueRefused("pattern", f"must match the pattern {field['pattern']}")
    elif kind == "choice" and value not in field["choices"]:
        raise ValueRefused("enum", _one_of(field["choices"]))
    elif kind == "multi_choice" and not set(value) <= set(field["choices"]):
        raise ValueRefused("enum", _one_of(field["choices"], "must list only"))
    if "min" in field and value < field["min"]:
        raise ValueRefused("range", f"must be at least {_shown_bound(field, field['min'], tz)}")
    if "max" in field and value > field["max"]:
        raise ValueRefused("range", f"must be at most {_shown_bound(field, field['max'], tz)}")


def typed_value(field: dict, value, tz: tzinfo | None = None):
    """The typed value of `field` given `value` (JSON-typed), ABSENT when it is empty (None, blank text)
    and optional; ValueRefused when it is not a value of the field."""
    blank = value is None or (isinstance(value, str) and not value.strip())
    if blank or (value == [] and field["type"] == "multi_choice"):
        if field["required"]:
            raise ValueRefused("required", "is required")
        if blank:
            return ABSENT
    typed = TYPERS[field["type"]](value)
    _constrain(field, typed, tz)
    if field["type"] == "multi_choice":  # each chosen once, in the order the choices are listed
        typed = [choice for choice in field["choices"] if choice in typed]
    return typed


def check_input(form: list, data, path: str = "input"):
    """Check a JSON approve's `input` against the form: (values, errors as {"field", "rule", "message"}).

    Values are JSON-typed already (an integer field needs a JSON integer); `null`, a blank string or an
    absent key leave an optional field out; a key the form does not name is refused. `values` counts
    only when there are no errors."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return {}, [{"field": path, "rule": "type", "message": "must be a JSON object"}]
    names = [field["name"] for field in form]
    errors = [{"field": f"{path}.{str(key)[:64]}", "rule": "unknown_field", "message": "is not a field of the form"}
              for key in data if key not in names]
    values = {}
    for field in form:
        try:
            value = typed_value(field, data.get(field["name"]))
        except ValueRefused as refused:
            errors.append({"field": f"{path}.{field['name']}", "rule": refused.rule, "message": str(refused)})
            continue
        if value is not ABSENT:
            values[field["name"]] = value
    return values, errors


# --- Typing the page's POST (text) -----------------------------------------------------------------------

def _local_moment(text, tz):
    """A datetime-local value read in `tz`, as UTC text; a wall time the clocks skip is refused, one they
    repeat is the first of the two."""
    try:
        wall = datetime.fromisoformat(text) if _LOCAL.fullmatch(text) else None
        moment = wall.replace(tzinfo=tz).astimezone(timezone.utc) if wall else None
        skipped = moment is not None and moment.astimezone(tz).replace(tzinfo=None) != wall
    except (ValueError, OverflowError):
        moment = None
    if moment is None:
        raise ValueRefused("datetime", "must be a date and time like 2025-01-31T17:30")
    if skipped:
        raise ValueRefused("datetime", f"does not exist in {tz} (the clocks change then)")
    return _utc_text(moment)


def _unique_keys(pairs):
    if len({key for key, _ in pairs}) < len(pairs):
        raise ValueError("a key is repeated")
    return dict(pairs)


def _reject(name):
    raise ValueError(f"{name} is not JSON")


def _strict_json(text, kind):
    if len(text) > MAX_JSON_CHARS:
        raise ValueRefused("max_length", f"must be at most {MAX_JSON_CHARS} characters")
    try:
        return json.loads(text, parse_constant=_reject, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError):
        raise ValueRefused("json", "must be JSON text of " + ("an array, like [1, 2]" if kind == "array"
                                                               else 'an object, like {"a": 1}'))


def _from_text(field, texts, tz):
    """The JSON-typed value the posted strings stand for (None when empty); typed_value checks it."""
    kind = field["type"]
    if kind == "boolean":
        if not all(text in _TRUE + _FALSE for text in texts):
            raise ValueRefused("type", "must be checked or not")
        return any(text in _TRUE for text in texts)
    if kind == "multi_choice":
        return [text for text in texts if text.strip()]
    if len(texts) > 1:
        raise ValueRefused("single", "must be sent once")
    text = texts[0] if texts else ""
    if not text.strip() or kind in ("string", "choice"):
        return text
    if kind == "text":
        return text.replace("\r\n", "\n")
    text = text.strip()
    if kind == "integer":
        if not _INTEGER.fullmatch(text):
            raise ValueRefused("type", "must be a whole number, like 42")
        return _integer(int(text) if len(text) <= 20 else MAX_SAFE_INTEGER + 1)  # no 5000-digit int()
    if kind == "number":
        if not _NUMBER.fullmatch(text):
            raise ValueRefused("type", "must be a number, like 2.5")
        return float(text)
    if kind == "datetime":
        return _local_moment(text, tz)
    return _strict_json(text, kind) if kind in ("array", "object") else text


@dataclass(frozen=True)
class FormReading:
    """What the page's POST gave: typed `values` {name: value}, `errors` {name: message}, and what was
    `typed` {name: [text, ...]} for every field of the form, as posted ([] when nothing was), to show
    the page again as it was sent."""

    values: dict
    errors: dict
    typed: dict


def read_form(form: list, posted: dict, tz: tzinfo = timezone.utc) -> FormReading:
    """Read the approve page's POST (`posted`: name -> list of strings, or a multidict) against the form.
    A datetime-local is read in `tz` and kept as UTC text ("2025-01-31T16:30:00Z"). Names the form does
    not have (the anti-forgery token, the comment) are not its business and are ignored."""
    values, errors, typed = {}, {}, {}
    for field in form:
        texts = posted.getlist(field["name"]) if hasattr(posted, "getlist") else posted.get(field["name"], [])
        typed[field["name"]] = texts = [texts] if isinstance(texts, str) else list(texts)
        try:
            value = typed_value(field, _from_text(field, texts, tz), tz)
        except ValueRefused as refused:
            errors[field["name"]] = str(refused)
            continue
        if value is not ABSENT:
            values[field["name"]] = value
    return FormReading(values, errors, typed)


def to_text(field: dict, value, tz: tzinfo = timezone.utc):
    """How a typed value (a default, a bound) is written in the field's input: a datetime as a
    datetime-local in `tz`, an array / object as JSON, a boolean "true" / "false"; a list of the chosen
    for multi_choice."""
    kind = field["type"]
    if kind in ("boolean", "multi_choice"):
        return ("true" if value else "false") if kind == "boolean" else list(value)
    if kind == "number":
        return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))
    if kind == "datetime":
        wall = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(tz).replace(tzinfo=None)
        return wall.isoformat(timespec="seconds" if wall.second else "minutes")
    if kind in ("array", "object"):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def shown(form: list, tz: tzinfo = timezone.utc) -> dict:
    """What the inputs hold before anything is typed (the defaults), in the shape of FormReading.typed;
    an unchecked checkbox sends nothing, so a false default is []."""
    held = {}
    for field in form:
        text = to_text(field, field["default"], tz) if "default" in field else None
        held[field["name"]] = text if isinstance(text, list) else [] if text in (None, "false") else [text]
    return held
