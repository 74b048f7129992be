"""The values of a pause's form (shared/form_values.py), typed the same way from the approve page's POST (text,
as a multidict gives it: a list of strings per name) and from a JSON approve's `input` (JSON-typed): every type's
valid and invalid values, required and empty fields, a datetime-local read in the page's time zone, patterns
matched by RE2 in linear time, what was typed kept for the page, and a default shown in its input reading back
as itself."""

from zoneinfo import ZoneInfo

import pytest

from shared.form_values import (MAX_SAFE_INTEGER, check_input, compile_pattern, read_form, shown, to_text,
                                typed_value)
from shared.forms import FORM
from shared.schema import Problems

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NEW_YORK = ZoneInfo("America/New_York")


def form_of(*fields):
    """Fields normalized as a pause keeps them (each named "f" unless given)."""
    problems = Problems()
    form = FORM.check([{"name": "f", **field} if "name" not in field else field for field in fields], "form",
                      problems)
    assert problems.errors == []
    return form


def page(field, *texts, tz=None):
    """(values, errors) of a page's POST of one field "f" given `texts`."""
    read = read_form(form_of(field), {"f": list(texts)}, **({"tz": tz} if tz else {}))
    return read.values, read.errors


CHOICES = ["dev", "test", "prod"]


# --- the page: each type's text ------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, texts, value", [
    ({"type": "string"}, ["westeurope"], "westeurope"),
    ({"type": "string"}, [" padded "], " padded "),
    ({"type": "text"}, ["one\r\ntwo\tthree"], "one\ntwo\tthree"),
    ({"type": "integer"}, ["42"], 42), ({"type": "integer"}, ["-7"], -7), ({"type": "integer"}, [" 12 "], 12),
    ({"type": "integer"}, [str(MAX_SAFE_INTEGER)], MAX_SAFE_INTEGER),
    ({"type": "integer", "min": 1, "max": 10}, ["10"], 10),
    ({"type": "number"}, ["2.5"], 2.5), ({"type": "number"}, ["-.5"], -0.5), ({"type": "number"}, ["1e3"], 1000.0),
    ({"type": "number"}, ["3"], 3.0),
    ({"type": "boolean"}, ["true"], True), ({"type": "boolean"}, ["on"], True), ({"type": "boolean"}, [], False),
    ({"type": "boolean", "required": True}, [], False),
    ({"type": "date"}, ["2024-02-29"], "2024-02-29"),
    ({"type": "datetime"}, ["2025-01-31T17:30"], "2025-01-31T17:30:00Z"),
    ({"type": "datetime"}, ["2025-01-31T17:30:15"], "2025-01-31T17:30:15Z"),
    ({"type": "choice", "choices": CHOICES}, ["prod"], "prod"),
    ({"type": "multi_choice", "choices": CHOICES}, ["prod", "dev", "prod"], ["dev", "prod"]),
    ({"type": "multi_choice", "choices": CHOICES}, [], []),
    ({"type": "array"}, ['[1, "a", null]'], [1, "a", None]),
    ({"type": "object"}, ['{"a": {"b": [1]}}'], {"a": {"b": [1]}}),
    ({"type": "string", "pattern": "[A-Z]{3}-[0-9]+"}, ["ABC-12"], "ABC-12"),
])
def test_a_valid_text_is_typed(field, texts, value):
    assert page(field, *texts) == ({"f": value}, {})


@pytest.mark.parametrize("field, texts, message", [
    ({"type": "string"}, ["two\nlines"], "must not contain control characters or line breaks"),
    ({"type": "string", "max_length": 3}, ["abcd"], "must be at most 3 characters"),
    ({"type": "text"}, ["x" * 4001], "must be at most 4000 characters"),
    ({"type": "string", "pattern": "[A-Z]{3}"}, ["ABCD"], "must match the pattern [A-Z]{3}"),
    ({"type": "integer", "min": 1, "max": 10}, ["11"], "must be at most 10"),
    ({"type": "integer", "min": 1}, ["0"], "must be at least 1"),
    ({"type": "number"}, ["1,5"], "must be a number, like 2.5"),
    ({"type": "number"}, ["+1"], "must be a number, like 2.5"),
    ({"type": "number"}, ["NaN"], "must be a number, like 2.5"),
    ({"type": "number"}, ["1e400"], "must be a finite number"),
    ({"type": "number", "max": 1}, ["1.5"], "must be at most 1"),
    ({"type": "boolean"}, ["maybe"], "must be checked or not"),
    ({"type": "date"}, ["2025-02-29"], "must be a date like 2025-01-31"),
    ({"type": "date"}, ["31/01/2025"], "must be a date like 2025-01-31"),
    ({"type": "date", "max": "2025-01-31"}, ["2025-02-01"], "must be at most 2025-01-31"),
    ({"type": "datetime"}, ["2025-01-31 17:30"], "must be a date and time like 2025-01-31T17:30"),
    ({"type": "datetime"}, ["2025-01-31T17:30Z"], "must be a date and time like 2025-01-31T17:30"),
    ({"type": "datetime"}, ["2025-01-31T25:00"], "must be a date and time like 2025-01-31T17:30"),
    ({"type": "choice", "choices": CHOICES}, ["staging"], 'must be one of "dev", "test", "prod"'),
    ({"type": "choice", "choices": CHOICES}, ["prod", "dev"], "must be sent once"),
    ({"type": "multi_choice", "choices": CHOICES}, ["dev", "qa"], 'must list only "dev", "test", "prod"'),
    ({"type": "multi_choice", "choices": CHOICES, "required": True}, [], "is required"),
    ({"type": "array"}, ["[1, 2"], "must be JSON text of an array, like [1, 2]"),
    ({"type": "array"}, ['{"a": 1}'], "must be a JSON array, like [1, 2]"),
    ({"type": "array"}, ["[NaN]"], "must be JSON text of an array, like [1, 2]"),
    ({"type": "object"}, ['{"a": 1, "a": 2}'], 'must be JSON text of an object, like {"a": 1}'),
    ({"type": "object"}, ["[1]"], 'must be a JSON object, like {"a": 1}'),
    ({"type": "array"}, ["[" + "1," * 5000 + "1]"], "must be at most 10000 characters"),
    ({"type": "array"}, ["[" * 100 + "]" * 100], "must be nested at most 64 deep, in valid Unicode"),
])
def test_an_invalid_text_is_refused_with_a_message_for_its_field(field, texts, message):
    assert page(field, *texts) == ({}, {"f": message})


@pytest.mark.parametrize("text", ["1.5", "1e3", "+5", "12abc", "0x10", "1_000", "\u0663", "--1"])
def test_a_bad_integer_says_a_whole_number_is_wanted(text):
    assert page({"type": "integer"}, text) == ({}, {"f": "must be a whole number, like 42"})


@pytest.mark.parametrize("text", [str(2**53), str(-2**53), "9" * 5000])
def test_an_integer_beyond_what_json_carries_exactly_is_refused(text):
    assert page({"type": "integer"}, text) == ({}, {"f": "must be between -9007199254740991 and 9007199254740991"})


@pytest.mark.parametrize("kind", ["string", "text", "integer", "number", "date", "datetime", "array", "object"])
def test_an_empty_or_blank_field_is_left_out_when_optional_and_refused_when_required(kind):
    for texts in ([], [""], ["   "]):
        assert page({"type": kind}, *texts) == ({}, {})
        assert page({"type": kind, "required": True}, *texts) == ({}, {"f": "is required"})


def test_an_empty_optional_field_is_left_out_even_with_a_default():
    assert page({"type": "integer", "default": 5}, "") == ({}, {})


def test_what_was_typed_is_kept_for_every_field_and_other_names_are_ignored():
    form = form_of({"name": "n", "type": "integer"}, {"name": "b", "type": "boolean"},
                   {"name": "m", "type": "multi_choice", "choices": CHOICES})
    read = read_form(form, {"n": ["1.5"], "m": ["dev", "prod"], "comment": ["ok"], "antiforgery": ["t"]})
    assert read.values == {"b": False, "m": ["dev", "prod"]}
    assert read.errors == {"n": "must be a whole number, like 42"}
    assert read.typed == {"n": ["1.5"], "b": [], "m": ["dev", "prod"]}


def test_a_single_string_is_taken_as_a_list_of_one():
    assert read_form(form_of({"type": "integer"}), {"f": "3"}).values == {"f": 3}


def test_a_multidict_gives_every_value_of_a_name():
    class MultiDict(dict):
        def getlist(self, name):
            return super().get(name, [])

        def get(self, name, default=None):  # a multidict's get gives the first value only
            return super().get(name, [default])[0]

    posted = MultiDict({"f": ["prod", "dev"]})
    assert read_form(form_of({"type": "multi_choice", "choices": CHOICES}), posted).values == {"f": ["dev", "prod"]}


def test_text_that_is_not_valid_unicode_is_refused_before_any_pattern():
    values, errors = check_input(form_of({"type": "string", "pattern": "x+"}), {"f": "\udc00"})
    assert [(e["field"], e["rule"]) for e in errors] == [("input.f", "encoding")]


# --- the page: a datetime-local in the page's time zone ------------------------------------------------------------

@pytest.mark.parametrize("text, tz, utc", [
    ("2025-01-31T17:30", AMSTERDAM, "2025-01-31T16:30:00Z"),       # winter: +01:00
    ("2025-07-01T17:30", AMSTERDAM, "2025-07-01T15:30:00Z"),       # summer: +02:00
    ("2025-10-26T02:30", AMSTERDAM, "2025-10-26T00:30:00Z"),       # repeated hour: the first of the two
    ("2025-01-31T17:30:05", NEW_YORK, "2025-01-31T22:30:05Z"),
])
def test_a_datetime_is_read_in_the_pages_time_zone_and_kept_as_utc(text, tz, utc):
    assert page({"type": "datetime"}, text, tz=tz) == ({"f": utc}, {})


def test_a_wall_time_the_clocks_skip_is_refused():
    assert page({"type": "datetime"}, "2025-03-30T02:30", tz=AMSTERDAM) == (
        {}, {"f": "does not exist in Europe/Amsterdam (the clocks change then)"})


def test_a_datetimes_bounds_are_compared_in_utc_and_said_in_the_pages_zone():
    field = {"type": "datetime", "min": "2025-01-31T16:00:00Z"}
    assert page(field, "2025-01-31T17:00", tz=AMSTERDAM) == ({"f": "2025-01-31T16:00:00Z"}, {})
    assert page(field, "2025-01-31T16:59", tz=AMSTERDAM) == (
        {}, {"f": "must be at least 2025-01-31T17:00 (Europe/Amsterdam)"})


# --- patterns run in linear time ------------------------------------------------------------------------------------

def test_a_pattern_that_backtracks_in_python_is_matched_by_re2_promptly():
    assert compile_pattern(r"(a+)+$").fullmatch("a" * 100000 + "b") is None
    assert compile_pattern(r"(a+)+$").fullmatch("a" * 100000)
    field = {"type": "text", "max_length": 10000, "pattern": "(a+)+$"}
    assert page(field, "a" * 9999 + "b") == ({}, {"f": "must match the pattern (a+)+$"})


def test_a_pattern_matches_the_whole_value():
    field = {"type": "string", "pattern": "[0-9]+"}
    assert page(field, "12") == ({"f": "12"}, {})
    assert page(field, "12a")[1] and page(field, "a12")[1]


# --- a JSON approve's input -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, typed", [
    ({"type": "string"}, "x", "x"), ({"type": "text"}, "a\nb", "a\nb"), ({"type": "integer"}, 5, 5),
    ({"type": "integer"}, 5.0, 5),  # a whole number, as JSON Schema's "integer" has it
    ({"type": "number"}, 5, 5.0), ({"type": "number"}, 2.5, 2.5), ({"type": "boolean"}, False, False),
    ({"type": "date"}, "2025-01-31", "2025-01-31"),
    ({"type": "datetime"}, "2025-01-31T17:30:00+01:00", "2025-01-31T16:30:00Z"),
    ({"type": "datetime"}, "2025-01-31T17:30Z", "2025-01-31T17:30:00Z"),
    ({"type": "choice", "choices": CHOICES}, "dev", "dev"),
    ({"type": "multi_choice", "choices": CHOICES}, ["prod", "dev"], ["dev", "prod"]),
    ({"type": "multi_choice", "choices": CHOICES}, [], []),
    ({"type": "array"}, [], []), ({"type": "object"}, {"a": None}, {"a": None}),
])
def test_a_json_value_of_the_fields_type_is_taken(field, value, typed):
    assert check_input(form_of(field), {"f": value}) == ({"f": typed}, [])
    assert type(check_input(form_of(field), {"f": value})[0]["f"]) is type(typed)


@pytest.mark.parametrize("field, value, rule", [
    ({"type": "string"}, 5, "type"), ({"type": "integer"}, "5", "type"), ({"type": "integer"}, 5.5, "type"),
    ({"type": "integer"}, True, "type"), ({"type": "integer"}, 2**53, "range"), ({"type": "number"}, "2.5", "type"),
    ({"type": "number"}, 10**400, "range"), ({"type": "boolean"}, "true", "type"), ({"type": "boolean"}, 1, "type"),
    ({"type": "date"}, "2025-1-31", "date"), ({"type": "datetime"}, "2025-01-31T17:30:00", "datetime"),
    ({"type": "datetime"}, 1738344600, "datetime"), ({"type": "choice", "choices": CHOICES}, "qa", "enum"),
    ({"type": "multi_choice", "choices": CHOICES}, "dev", "type"), ({"type": "array"}, "[1]", "type"),
    ({"type": "object"}, [], "type"), ({"type": "string", "required": True}, "  ", "required"),
    ({"type": "integer", "required": True}, None, "required"),
])
def test_a_json_value_not_of_the_fields_type_is_refused_naming_the_field(field, value, rule):
    values, errors = check_input(form_of(field), {"f": value})
    assert [(e["field"], e["rule"]) for e in errors] == [("input.f", rule)]


def test_a_key_the_form_does_not_name_and_a_missing_required_field_are_both_named():
    values, errors = check_input(form_of({"type": "integer", "required": True}), {"g": 1})
    assert [(e["field"], e["rule"]) for e in errors] == [("input.g", "unknown_field"), ("input.f", "required")]


def test_input_must_be_an_object_and_absent_input_is_an_empty_one():
    form = form_of({"type": "integer"})
    assert check_input(form, [1]) == ({}, [{"field": "input", "rule": "type", "message": "must be a JSON object"}])
    assert check_input(form, None) == ({}, [])
    assert check_input(form, {"f": None}, path="body.input") == ({}, [])
    assert check_input(form_of({"type": "integer", "required": True}), {}, path="x")[1][0]["field"] == "x.f"


def test_typed_value_says_absent_for_an_empty_optional_field():
    from shared.form_values import ABSENT

    assert typed_value(form_of({"type": "string"})[0], "") is ABSENT


# --- defaults shown in their inputs ---------------------------------------------------------------------------------

def test_every_default_shown_in_its_input_reads_back_as_itself():
    form = form_of({"name": "s", "type": "string", "default": "x"}, {"name": "i", "type": "integer", "default": -3},
                   {"name": "n", "type": "number", "default": 0.1}, {"name": "m", "type": "number", "default": 1e20},
                   {"name": "b", "type": "boolean", "default": True},
                   {"name": "c", "type": "boolean", "default": False},
                   {"name": "d", "type": "date", "default": "2025-01-31"},
                   {"name": "t", "type": "datetime", "default": "2025-07-01T15:30:00Z"},
                   {"name": "u", "type": "datetime", "default": "2025-07-01T15:30:20Z"},
                   {"name": "o", "type": "choice", "choices": CHOICES, "default": "test"},
                   {"name": "p", "type": "multi_choice", "choices": CHOICES, "default": ["dev", "prod"]},
                   {"name": "a", "type": "array", "default": [1, "é"]}, {"name": "j", "type": "object", "default": {}})
    held = shown(form, AMSTERDAM)
    assert held["t"] == ["2025-07-01T17:30"] and held["u"] == ["2025-07-01T17:30:20"]
    assert held["b"] == ["true"] and held["c"] == [] and held["a"] == ['[1, "é"]'] and held["i"] == ["-3"]
    read = read_form(form, held, AMSTERDAM)
    assert read.errors == {}
    assert read.values == {field["name"]: field["default"] for field in form}


def test_a_bound_is_written_as_its_input_takes_it():
    field = form_of({"type": "datetime", "min": "2025-01-31T16:00:00Z"})[0]
    assert to_text(field, field["min"], NEW_YORK) == "2025-01-31T11:00"
    assert to_text(form_of({"type": "number"})[0], 3.0) == "3"
