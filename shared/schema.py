"""Declarative request schemas: one definition both validates a body and describes it in OpenAPI.

A field checks a value and reports each problem as `{"field", "rule", "message"}`; the same field renders itself as
JSON Schema, so the published document cannot drift from what the app accepts. Size limits are reported apart from
other problems: a body that is malformed is a 400, one that is only too large a 413.
"""

import re
from dataclasses import dataclass, field

from shared import people
from shared.errors import InvalidRequest, PayloadTooLarge
from shared.jsonbody import canonical

INVALID = object()  # what a check returns for a value it rejected

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab and newlines allowed
_NO_CONTROL_SCHEMA = "^[^\\u0000-\\u001f\\u007f]*$"
# What str.strip() takes away, spelled out: JavaScript's \s (JSON Schema's) lacks U+0085 and adds U+FEFF.
_BLANK_SCHEMA = "^[\\t\\n\\u000b\\u000c\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]*$"
_NO_CONTROL_MULTILINE_SCHEMA = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"


@dataclass
class Problems:
    errors: list = field(default_factory=list)
    too_large: list = field(default_factory=list)

    def add(self, path, rule, message):
        self.errors.append({"field": path, "rule": rule, "message": message})

    def add_too_large(self, path, limit):
        self.too_large.append({"field": path, "rule": "max_size",
                               "message": f"must serialize to at most {limit} bytes"})

    def raise_if_any(self, what):
        # A malformed field is the caller's first problem; size only matters once the rest is valid.
        if self.errors:
            names = ", ".join(dict.fromkeys(e["field"] for e in self.errors))
            raise InvalidRequest(f"The {what} has invalid fields: {names}.", self.errors)
        if self.too_large:
            names = ", ".join(e["field"] for e in self.too_large)
            raise PayloadTooLarge(f"The {what} is over the size limit: {names}.", self.too_large)


def _join(path, name):
    return f"{path}.{name}" if path else name


class Field:
    """A field of a JSON body: `check` validates a present value, `schema` describes it.

    A field sent as `null` counts as absent, unless `null_is_invalid` (a field whose presence
    selects a mode must not be switched off by `null`) or `null_is_value` (JSON null is what it says).
    """

    null_is_invalid = False
    null_is_value = False

    def __init__(self, description: str = ""):
        self.description = description

    def check(self, value, path: str, problems: Problems):
        raise NotImplementedError

    def schema(self) -> dict:
        raise NotImplementedError

    def _described(self, schema: dict) -> dict:
        return {**schema, "description": self.description} if self.description else schema


class Text(Field):
    """A string: optionally non-blank, at most `max_chars`, matching `pattern` in full."""

    def __init__(self, description="", *, max_chars=None, pattern=None, rule_text="", multiline=False,
                 nonblank=False, json_pattern=None):
        super().__init__(description)
        self.max_chars, self.pattern, self.rule_text = max_chars, pattern, rule_text
        self.multiline, self.nonblank = multiline, nonblank
        self.json_pattern = json_pattern

    def check(self, value, path, problems):
        if not isinstance(value, str):
            problems.add(path, "type", "must be a string")
        elif self.nonblank and not value.strip():
            problems.add(path, "required", "must not be empty")
        elif (_CONTROL_MULTILINE if self.multiline else _CONTROL).search(value):
            problems.add(path, "control_characters", "must not contain control characters")
        elif self.max_chars is not None and len(value) > self.max_chars:
            problems.add(path, "max_length", f"must be at most {self.max_chars} characters")
        elif self.pattern is not None and not self.pattern.fullmatch(value):
            problems.add(path, "pattern", f"must be {self.rule_text}")
        else:
            return value
        return INVALID

    def schema(self):
        schema = {"type": "string"}
        if self.max_chars is not None:
            schema["maxLength"] = self.max_chars
        if self.nonblank:
            schema["minLength"] = 1
            schema["not"] = {"pattern": _BLANK_SCHEMA}  # blank (spaces only) is refused too
        if self.json_pattern or self.pattern is not None:
            schema["pattern"] = self.json_pattern or f"^(?:{self.pattern.pattern})$"
        else:
            schema["pattern"] = _NO_CONTROL_MULTILINE_SCHEMA if self.multiline else _NO_CONTROL_SCHEMA
        return self._described(schema)


class Integer(Field):
    """A whole JSON number within [minimum, maximum], checked to an int: 3.0 is 3, as JSON Schema's "integer"
    says (an ADF expression on a Float parameter writes 3600.0), but `true` is not a number."""

    def __init__(self, description="", *, minimum, maximum, default=None):
        super().__init__(description)
        self.minimum, self.maximum, self.default = minimum, maximum, default

    def check(self, value, path, problems):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        # bool is a subclass of int in Python; `true` is not a number.
        if isinstance(value, bool) or not isinstance(value, int):
            problems.add(path, "type", "must be an integer")
        elif not self.minimum <= value <= self.maximum:
            problems.add(path, "range", f"must be between {self.minimum} and {self.maximum}")
        else:
            return value
        return INVALID

    def schema(self):
        schema = {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}
        if self.default is not None:
            schema["default"] = self.default
        return self._described(schema)


class Choice(Field):
    """One of a fixed set of strings."""

    def __init__(self, description="", *, values, default=None):
        super().__init__(description)
        self.values, self.default = tuple(values), default

    def check(self, value, path, problems):
        if value in self.values and isinstance(value, str):
            return value
        problems.add(path, "enum", "must be one of " + ", ".join(f'"{v}"' for v in self.values))
        return INVALID

    def schema(self):
        schema = {"type": "string", "enum": list(self.values)}
        if self.default is not None:
            schema["default"] = self.default
        return self._described(schema)


class Object(Field):
    """A JSON object: closed (known `fields`, unknown ones refused) or free-form (`fields=None`).

    Free-form objects may restrict their keys (`key_pattern`, `reserved`) and their size. `also`: JSON Schema
    keywords stating what the fields together must be (a field that needs another, at least one field), checked
    where the body is parsed: published, so that a body valid by the document is accepted.
    """

    def __init__(self, description="", *, fields=None, required=(), max_bytes=None, key_pattern=None,
                 key_rule="", reserved=None, also=None):
        super().__init__(description)
        self.fields, self.required, self.max_bytes = fields, tuple(required), max_bytes
        self.key_pattern, self.key_rule, self.reserved, self.also = key_pattern, key_rule, reserved or {}, also or {}

    def check(self, value, path, problems, required=None):
        if not isinstance(value, dict):
            problems.add(path or "(body)", "type", "must be a JSON object")
            return INVALID
        errors_before = len(problems.errors)
        result = dict(value) if self.fields is None else {}
        if self.fields is None:
            for key in value:
                if key in self.reserved:
                    problems.add(_join(path, key), "reserved", self.reserved[key])
                elif self.key_pattern is not None and not self.key_pattern.fullmatch(key):
                    problems.add(_join(path, key[:64]), "pattern", self.key_rule)
        else:
            for key in value:
                if key not in self.fields:
                    problems.add(_join(path, str(key)[:64]), "unknown_field", "is not a known field")
            for name in self.required if required is None else required:
                if value.get(name) is None:
                    problems.add(_join(path, name), "required", "is required")
            for name, sub in self.fields.items():
                if value.get(name) is not None or (name in value and (sub.null_is_invalid or sub.null_is_value)):
                    checked = sub.check(value[name], _join(path, name), problems)
                    if checked is not INVALID:
                        result[name] = checked
        if len(problems.errors) > errors_before:
            return INVALID
        if self.max_bytes is not None and len(canonical(value).encode("utf-8")) > self.max_bytes:
            problems.add_too_large(path, self.max_bytes)
            return INVALID
        return result

    def schema(self):
        schema = {"type": "object"}
        if self.fields is not None:
            schema["properties"] = {name: sub.schema() for name, sub in self.fields.items()}
            schema["additionalProperties"] = False
            if self.required:
                schema["required"] = list(self.required)
        elif self.key_pattern is not None:
            schema["propertyNames"] = {"pattern": f"^(?:{self.key_pattern.pattern})$",
                                       "not": {"enum": list(self.reserved)}} if self.reserved else \
                {"pattern": f"^(?:{self.key_pattern.pattern})$"}
        schema.update(self.also)
        if self.max_bytes is not None:
            schema["description"] = f"{self.description} At most {self.max_bytes} bytes serialized.".strip()
            return schema
        return self._described(schema)


class EmailList(Field):
    """One address or a list of 1…`max_items` addresses; checks to a de-duplicated list."""

    def __init__(self, description="", *, max_items):
        super().__init__(description)
        self.max_items = max_items

    def check(self, value, path, problems):
        addresses = [value] if isinstance(value, str) else value
        if not isinstance(addresses, list) or not addresses:
            problems.add(path, "required", "must be a non-empty list of email addresses")
            return INVALID
        if len(addresses) > self.max_items:
            problems.add(path, "max_items", f"must list at most {self.max_items} addresses")
            return INVALID

        bad = [i for i, a in enumerate(addresses) if not isinstance(a, str) or not people.valid_address(a)]
        for i in bad:
            problems.add(f"{path}[{i}]", "email", "must be an email address like name@example.com")
        return INVALID if bad else list(dict.fromkeys(addresses))

    def schema(self):
        address = {"type": "string", "format": "email", "maxLength": 254}
        return self._described({"oneOf": [address, {"type": "array", "items": address, "minItems": 1,
                                                     "maxItems": self.max_items}]})


class Number(Field):
    """A JSON number (integer or finite decimal, not a boolean)."""

    def check(self, value, path, problems):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.add(path, "type", "must be a number")
            return INVALID
        return value

    def schema(self):
        return self._described({"type": "number"})


class Value(Field):
    """Any JSON value, kept as it is, at most `max_bytes` once serialized (with `null_is_value`,
    `null` too rather than counting as absent)."""

    keep_text = False  # check to the value's canonical text instead

    def __init__(self, description="", *, max_bytes, null_is_value=False):
        super().__init__(description)
        self.max_bytes, self.null_is_value = max_bytes, null_is_value

    def check(self, value, path, problems):
        text = canonical(value)
        if len(text.encode("utf-8")) > self.max_bytes:
            problems.add_too_large(path, self.max_bytes)
            return INVALID
        return text if self.keep_text else value

    def schema(self):
        return self._described({})


class AnyJson(Value):
    """Any JSON value, at most `max_bytes` once serialized; checks to its canonical text."""

    keep_text = True


class ListOf(Field):
    """A list of `min_items`…`max_items` values, each checked by `item`. `unique_items`: the document says none is
    listed twice (JSON Schema's uniqueItems), which is checked where the body is parsed, so that a repeat is named
    with the body's other problems rather than hiding them."""

    def __init__(self, item: Field, description="", *, min_items=1, max_items, unique_items=False):
        super().__init__(description)
        self.item, self.min_items, self.max_items, self.unique_items = item, min_items, max_items, unique_items

    def check(self, value, path, problems):
        if not isinstance(value, list) or not self.min_items <= len(value) <= self.max_items:
            problems.add(path, "items", f"must be a list of {self.min_items} to {self.max_items} items")
            return INVALID
        checked = [self.item.check(item, f"{path}[{i}]", problems) for i, item in enumerate(value)]
        return INVALID if any(item is INVALID for item in checked) else checked

    def schema(self):
        return self._described({"type": "array", "items": self.item.schema(), "minItems": self.min_items,
                                "maxItems": self.max_items, **({"uniqueItems": True} if self.unique_items else {})})


class Boolean(Field):
    """true or false (not 1, not "true")."""

    def __init__(self, description="", *, default=None):
        super().__init__(description)
        self.default = default

    def check(self, value, path, problems):
        if isinstance(value, bool):
            return value
        problems.add(path, "type", "must be true or false")
        return INVALID

    def schema(self):
        schema = {"type": "boolean"}
        if self.default is not None:
            schema["default"] = self.default
        return self._described(schema)


class Identity(Field):
    """A person's sign-in name: an e-mail address or UPN, checked to the form it is compared in."""

    def check(self, value, path, problems):

        compared = people.key(value)
        if compared is None or not people.valid_address(value):
            problems.add(path, "identity", "must be an e-mail address or UPN like name@contoso.com")
            return INVALID
        return compared

    def schema(self):
        return self._described({"type": "string", "format": "email", "maxLength": 254})


class IdentityList(Field):
    """1…`max_items` distinct identities (compared case-insensitively)."""

    def __init__(self, description="", *, max_items):
        super().__init__(description)
        self.max_items = max_items
        self._one = Identity()

    def check(self, value, path, problems):
        if not isinstance(value, list) or not value:
            problems.add(path, "required", "must be a non-empty list of identities")
            return INVALID
        if len(value) > self.max_items:
            problems.add(path, "max_items", f"must list at most {self.max_items} identities")
            return INVALID
        checked = [self._one.check(item, f"{path}[{i}]", problems) for i, item in enumerate(value)]
        if any(item is INVALID for item in checked):
            return INVALID
        if len(set(checked)) != len(checked):
            problems.add(path, "unique", "must not name anyone twice")
            return INVALID
        return checked

    def schema(self):
        return self._described({"type": "array", "items": self._one.schema(), "minItems": 1,
                                "maxItems": self.max_items, "uniqueItems": True})


class Url(Field):
    """A URL the app may later call: parsed by the strict grammar of `shared.urls` and checked to
    its rebuilt form. Where the app may call (the allow-list) is decided later (403)."""

    null_is_invalid = True

    def __init__(self, description="", *, max_length):
        super().__init__(description)
        self.max_length = max_length

    def check(self, value, path, problems):
        from shared.urls import UrlRefused, parse

        try:
            return parse(value).url
        except UrlRefused as refused:
            problems.add(path, "url", str(refused))
            return INVALID

    def schema(self):
        return self._described({"type": "string", "format": "uri", "maxLength": self.max_length})
