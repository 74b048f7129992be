"""What a check's answer means (shared/checks/expect.py), judged without any network."""

import json

import pytest

from shared.checks.expect import Result, json_at, judge

DOC = {"status": "OK", "rows": 3, "flag": True, "items": [{"id": 7}], "odd key": None}


@pytest.mark.parametrize("path, found, value", [
    ("$.status", True, "OK"), ("$.items[0].id", True, 7), ("$['odd key']", True, None), ("$.items[3]", False, None),
    ("$.missing", False, None), ("$", True, DOC),
])
def test_a_json_path_finds_what_is_there_and_only_that(path, found, value):
    assert json_at(DOC, path) == (found, value)


@pytest.mark.parametrize("expect, result", [
    ({"json": {"path": "$.status", "equals": "OK"}}, Result.PASSED),
    ({"json": {"path": "$.status", "in": ["RUNNING", "OK"]}}, Result.PASSED),
    ({"json": {"path": "$.rows", "ge": 3}}, Result.PASSED),
    ({"json": {"path": "$.rows", "gt": 3}}, Result.NOT_YET),
    ({"json": {"path": "$.flag", "equals": 1}}, Result.NOT_YET),   # JSON equality: true is not 1
    ({"json": {"path": "$.flag", "ge": 0}}, Result.NOT_YET),       # a boolean is not a number
    ({"json": {"path": "$.missing", "exists": False}}, Result.PASSED),
    ({"json": {"path": "$['odd key']", "equals": None}}, Result.PASSED),  # JSON null, there
    ({"json": {"path": "$.missing", "equals": None}}, Result.NOT_YET),    # absent is not null
    ({"status": [200]}, Result.PASSED),
    ({"status": [204]}, Result.NOT_YET),
])
def test_an_answer_is_judged_by_its_expectation(expect, result):
    assert judge(expect, 200, json.dumps(DOC).encode()).result is result


def test_without_an_expectation_any_2xx_passes_and_what_is_kept_is_short():
    assert judge({}, 204, b"").result is Result.PASSED and judge({}, 500, b"").result is Result.NOT_YET
    long = judge({"json": {"path": "$.s", "equals": "x"}}, 200, json.dumps({"s": "y" * 10_000}).encode())
    assert long.result is Result.NOT_YET and len(long.detail) < 300


DEEP = "the answer is nested deeper than 64 levels"


@pytest.mark.parametrize("text, seen", [
    (b"[" * 64 + b"]" * 64, "$.rows does not exist"),
    (b"[" * 65 + b"]" * 65, DEEP),
    (b'{"a":' * 65 + b"1" + b"}" * 65, DEEP),
    (b"[" * 1_000_000, DEEP),                                              # past the recursion limit: at once
    (b'{"s": "' + b"[" * 500 + b'"}', "$.rows does not exist"),            # brackets in a string do not nest
    (b'{"s": "\\"' + b"[" * 500 + b'"}', "$.rows does not exist"),         # nor after an escaped quote in it
    (b'["\\\\", ' + b"[" * 64 + b"]" * 64 + b"]", DEEP),                  # an escaped backslash ends the escape
    (b"[]" * 100_000, "not JSON"), (b'"' + b"[" * 100, "not JSON"),
])
def test_an_answer_nested_deeper_than_64_levels_is_an_error_and_strings_do_not_nest(text, seen):
    found = judge({"json": {"path": "$.rows", "exists": True}}, 200, text)
    assert seen in found.detail
    assert found.result is (Result.ERROR if seen == DEEP else Result.NOT_YET)
