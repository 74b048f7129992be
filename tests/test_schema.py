"""Declarative request schemas (shared/schema.py): each field checks a value to what the app keeps, or reports
every problem as `{"field", "rule", "message"}` under its full path and gives INVALID; a field sent as null counts
as absent unless its presence selects a mode; size limits are reported apart, so a malformed body is a 400 and only
an otherwise valid one over a limit is a 413; and each field renders the JSON Schema that accepts what it accepts."""

import re

import jsonschema
import pytest

from shared.errors import InvalidRequest, PayloadTooLarge
from shared.schema import (INVALID, AnyJson, Boolean, Choice, EmailList, IdentityList, Integer, ListOf, Object,
                           Problems, Text, Url)


def checked(field, value, path="f"):
    """(what the check gives, the errors as (field, rule), the fields over their size limit)."""
    problems = Problems()
    result = field.check(value, path, problems)
    return result, [(e["field"], e["rule"]) for e in problems.errors], [e["field"] for e in problems.too_large]


def test_problems_raise_a_400_naming_each_field_once_before_any_size_problem():
    problems = Problems()
    problems.raise_if_any("pause body")  # nothing wrong: nothing raised
    problems.add_too_large("data", 10)
    problems.add("a", "type", "must be a string")
    problems.add("a", "pattern", "must be a name")
    problems.add("b.c", "required", "is required")
    with pytest.raises(InvalidRequest) as invalid:
        problems.raise_if_any("pause body")
    assert invalid.value.detail == "The pause body has invalid fields: a, b.c."
    assert [e["rule"] for e in invalid.value.errors] == ["type", "pattern", "required"]


def test_size_problems_alone_raise_a_413_naming_each_field():
    problems = Problems()
    problems.add_too_large("data", 10)
    problems.add_too_large("source", 20)
    with pytest.raises(PayloadTooLarge) as too_large:
        problems.raise_if_any("pause body")
    assert too_large.value.detail == "The pause body is over the size limit: data, source."
    assert too_large.value.extra["errors"][1] == {"field": "source", "rule": "max_size",
                                                  "message": "must serialize to at most 20 bytes"}


NAME = Text(max_chars=8, pattern=re.compile(r"[a-z]+|id-[0-9]+"), rule_text="a name", nonblank=True)
NOTE = Text(multiline=True)


@pytest.mark.parametrize("field, value, rule", [
    (NAME, "abc", None), (NAME, "id-42", None), (NAME, "abcdefgh", None),
    (NAME, 5, "type"), (NAME, None, "type"), (NAME, "  ", "required"), (NAME, "ab\x00", "control_characters"),
    (NAME, "abcdefghi", "max_length"), (NAME, "abc1", "pattern"), (NAME, "id-42x", "pattern"),  # all of it matches
    (NOTE, "two\r\nlines\tand a tab", None), (NOTE, "a\x0bb", "control_characters"),
    (NOTE, "a\x7f", "control_characters"),
])
def test_text_is_a_string_without_control_characters_within_its_length_and_pattern(field, value, rule):
    result, errors, _ = checked(field, value)
    assert (result, errors) == ((value, []) if rule is None else (INVALID, [("f", rule)]))


@pytest.mark.parametrize("value, rule", [
    (1, None), (10, None), (0, "range"), (11, "range"), (True, "type"), (3.5, "type"), ("3", "type"),
    (3.0, None), (11.0, "range"), (1e300, "range"),
])
def test_an_integer_is_a_whole_number_within_its_bounds_and_never_a_boolean(value, rule):
    result, errors, _ = checked(Integer(minimum=1, maximum=10), value)
    assert (result, errors) == ((value, []) if rule is None else (INVALID, [("f", rule)]))
    assert rule is not None or type(result) is int  # 3.0 is 3, as JSON Schema's "integer" has it


OUTER = Object(fields={
    "name": Text(), "flag": Boolean(), "kind": Choice(values=("a", "b")), "url": Url(max_length=200),
    "inner": Object(fields={"n": Integer(minimum=0, maximum=9)}, required=("n",)),
}, required=("name",))


def test_a_closed_object_names_every_unknown_missing_and_bad_field_by_its_path():
    value = {"flag": "yes", "kind": "c", "inner": {"n": 10, "m": 1}, "extra": 1}
    result, errors, _ = checked(OUTER, value, "")
    assert result is INVALID
    assert sorted(errors) == [("extra", "unknown_field"), ("flag", "type"), ("inner.m", "unknown_field"),
                              ("inner.n", "range"), ("kind", "enum"), ("name", "required")]
    assert checked(OUTER, [], "")[1] == [("(body)", "type")] and checked(OUTER, [], "outer")[1] == [("outer", "type")]


def test_null_counts_as_absent_except_for_a_field_whose_presence_selects_a_mode():
    result, errors, _ = checked(OUTER, {"name": "x", "flag": None, "inner": None}, "")
    assert (result, errors) == ({"name": "x"}, [])
    assert checked(OUTER, {"name": None}, "")[1] == [("name", "required")]
    assert checked(OUTER, {"name": "x", "url": None}, "")[1] == [("url", "url")]  # Url: null is not "no URL"
    assert checked(OUTER, {"name": "x", "url": "https://Host.Example/p"}, "")[0] == {
        "name": "x", "url": "https://host.example/p"}


FREE = Object(max_bytes=32, key_pattern=re.compile(r"[a-z_]+"), key_rule="lower-case names",
              reserved={"pause_id": "is set by the app"})


def test_a_free_form_object_checks_its_keys_and_then_its_size():
    assert checked(FREE, {"day": "2026-11-25"}, "parameters") == ({"day": "2026-11-25"}, [], [])
    assert checked(FREE, {"pause_id": "x", "Day": 1}, "parameters")[1] == [("parameters.pause_id", "reserved"),
                                                                           ("parameters.Day", "pattern")]
    big = {"day": "x" * 40}
    assert checked(FREE, big, "parameters") == (INVALID, [], ["parameters"])  # only the size: a 413
    assert checked(FREE, {**big, "Day": 1}, "parameters")[1:] == ([("parameters.Day", "pattern")], [])  # a 400 first


def test_any_json_is_kept_as_its_canonical_text_within_its_size():
    assert checked(AnyJson(max_bytes=64), {"z": 1, "a": [1.5, "é", None]})[0] == '{"z":1,"a":[1.5,"é",null]}'
    assert checked(AnyJson(max_bytes=5), "abcd") == (INVALID, [], ["f"])  # "abcd" with its quotes is 6 bytes


def test_lists_are_bounded_and_each_bad_item_is_named_by_its_index():
    digits = ListOf(Integer(minimum=0, maximum=9), min_items=1, max_items=3)
    assert checked(digits, [0, 9]) == ([0, 9], [], [])
    assert checked(digits, [])[1] == checked(digits, [1, 2, 3, 4])[1] == [("f", "items")]
    assert checked(digits, [1, "2", 10])[1] == [("f[1]", "type"), ("f[2]", "range")]
    emails = EmailList(max_items=2)
    assert checked(emails, "ops@contoso.com")[0] == ["ops@contoso.com"]  # one address is a list of one
    assert checked(emails, ["a@contoso.com", "a@contoso.com"])[0] == ["a@contoso.com"]
    assert checked(emails, ["a@contoso.com", "Ops <b@contoso.com>"])[1] == [("f[1]", "email")]
    assert checked(emails, ["a@contoso.com"] * 3)[1] == [("f", "max_items")]


def test_a_list_whose_items_are_distinct_says_so_and_leaves_the_check_to_the_body_with_its_other_problems():
    channels = ListOf(Text(), max_items=3, unique_items=True)
    assert channels.schema()["uniqueItems"] is True and "uniqueItems" not in ListOf(Text(), max_items=3).schema()
    assert checked(channels, ["ops", "ops"]) == (["ops", "ops"], [], [])  # pause_rules names it, with the rest


def test_identities_are_kept_in_their_compared_form_and_may_not_repeat():
    people = IdentityList(max_items=3)
    assert checked(people, ["Alice@Contoso.com", "bob@contoso.com"])[0] == ["alice@contoso.com", "bob@contoso.com"]
    assert checked(people, ["Alice@Contoso.com", "alice@CONTOSO.com"])[1] == [("f", "unique")]
    assert checked(people, ["alice@contoso.com", "\u212aate@contoso.com"])[1] == [("f[1]", "identity")]  # Kelvin K


@pytest.mark.parametrize("field, value", [
    (NAME, "abc"), (NAME, "abc1"), (NAME, "abcdefghi"), (NAME, "ab\x00"), (NAME, 5),
    (NOTE, "a\nb"), (NOTE, "a\x0bb"),
    (Integer(minimum=1, maximum=10), 10), (Integer(minimum=1, maximum=10), 11), (Integer(minimum=1, maximum=10), True),
    (Choice(values=("a", "b")), "b"), (Choice(values=("a", "b")), "c"),
    (Boolean(), False), (Boolean(), 0),
    (EmailList(max_items=2), "a@contoso.com"), (EmailList(max_items=2), []), (EmailList(max_items=2), ["a@b.c"] * 3),
    (ListOf(Boolean(), max_items=2), [True]), (ListOf(Boolean(), max_items=2), []),
    (ListOf(Text(), max_items=3, unique_items=True), ["a", "b"]),
    (Integer(minimum=1, maximum=10), 3.0), (Integer(minimum=1, maximum=10), 3.5),
    (OUTER, {"name": "x", "inner": {"n": 1}}), (OUTER, {"name": "x", "inner": {}}), (OUTER, {"extra": 1}),
    (FREE, {"day": "x"}), (FREE, {"Day": "x"}), (FREE, {"pause_id": "x"}),
])
def test_the_rendered_schema_accepts_what_the_check_accepts(field, value):
    accepted = checked(field, value)[0] is not INVALID
    assert jsonschema.Draft202012Validator(field.schema()).is_valid(value) is accepted


def test_the_rendered_schema_refuses_a_blank_text_the_check_refuses():
    reason = Text(nonblank=True, multiline=True)
    assert checked(reason, "   ")[1] == [("f", "required")]
    assert not jsonschema.Draft202012Validator(reason.schema()).is_valid("   ")
    # Blank as str.strip() has it, which JavaScript's \s is not: U+0085 is blank, U+FEFF is not.
    for text in ("\u0085", "\u3000 \u2028", "\ufeff", "a\u0085"):
        assert jsonschema.Draft202012Validator(reason.schema()).is_valid(text) is (checked(reason, text)[0] is not INVALID)
