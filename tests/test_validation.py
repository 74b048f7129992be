import json

import pytest

from shared import validation
from shared.errors import InvalidRequest, PayloadTooLarge
from shared.jsonbody import parse_object

VALID = {
    "subscription_id": "00000000-0000-0000-0000-000000000001",
    "resource_group": "rg-data",
    "factory_name": "adf-prod-01",
    "pipeline_name": "Load_Sales",
}


def fields_of(exc_info):
    return {e["field"]: e["rule"] for e in exc_info.value.errors}


def test_minimal_restart_body_gets_defaults():
    request = validation.parse_pause(dict(VALID))
    assert request.expires_in == 86400
    assert request.on_timeout == "expire"
    assert request.parameters == {} and request.notification == {} and request.data_json is None


def test_every_missing_pipeline_field_is_named_at_once():
    with pytest.raises(InvalidRequest) as exc_info:
        validation.parse_pause({})
    assert fields_of(exc_info) == {name: "required" for name in validation.RESTART_TARGET_FIELDS}


@pytest.mark.parametrize("field, value, rule", [
    ("subscription_id", "not-a-guid", "pattern"),
    ("subscription_id", 42, "type"),
    ("resource_group", "", "required"),
    ("resource_group", "ends.with.period.", "pattern"),
    ("resource_group", "x" * 91, "max_length"),
    ("factory_name", "ab", "pattern"),
    ("factory_name", "-starts-with-hyphen", "pattern"),
    ("pipeline_name", "has/slash", "pattern"),
    ("pipeline_name", "dot.name", "pattern"),
    ("pipeline_name", "tab\there", "control_characters"),
    ("pipeline_name", "x" * 141, "max_length"),
    ("tenant_id", "not a tenant", "pattern"),
    ("expires_in", True, "type"),
    ("expires_in", 3600.5, "type"),
    ("expires_in", "3600", "type"),
    ("expires_in", 59, "range"),
    ("expires_in", 2592001, "range"),
    ("on_timeout", "explode", "enum"),
    ("parameters", ["a"], "type"),
    ("notification", "hi", "type"),
    ("source", 7, "type"),
    ("pipline_name", "typo", "unknown_field"),
])
def test_bad_field_is_named_with_its_rule(field, value, rule):
    with pytest.raises(InvalidRequest) as exc_info:
        validation.parse_pause({**VALID, field: value})
    assert fields_of(exc_info) == {field: rule}


def test_parameters_may_not_set_pause_id_or_break_naming_rules():
    with pytest.raises(InvalidRequest) as exc_info:
        validation.parse_pause({**VALID, "parameters": {"pause_id": "x", "bad name": 1, "ok_name": 2}})
    assert fields_of(exc_info) == {"parameters.pause_id": "reserved", "parameters.bad name": "pattern"}


def test_notification_texts_are_checked_and_unknown_keys_named():
    with pytest.raises(InvalidRequest) as exc_info:
        validation.parse_pause({**VALID, "notification": {"title": "x" * 201, "mesage": "typo",
                                                          "message": 5}})
    assert fields_of(exc_info) == {"notification.title": "max_length", "notification.mesage": "unknown_field",
                                   "notification.message": "type"}


def test_data_over_256_kib_is_413_and_at_the_limit_is_accepted():
    at_limit = "x" * (256 * 1024 - 2)  # two bytes for the JSON quotes
    assert validation.parse_pause({**VALID, "data": at_limit}).data_json == json.dumps(at_limit)
    with pytest.raises(PayloadTooLarge) as exc_info:
        validation.parse_pause({**VALID, "data": at_limit + "x"})
    assert fields_of(exc_info) == {"data": "max_size"}


def test_data_keeps_key_order_and_unicode():
    data = {"z": 1, "a": [1.5, "é", None, {"k": True}], "m": "日本"}
    request = validation.parse_pause({**VALID, "data": data})
    assert request.data_json == '{"z":1,"a":[1.5,"é",null,{"k":true}],"m":"日本"}'


@pytest.mark.parametrize("body, rule", [
    (b"not json", "json"),
    (b"[1, 2]", "type"),
    (b'"text"', "type"),
    (b'{"a": NaN}', "json"),
    (b'{"a": 1e400}', "json"),
    (b'{"a": 1, "a": 2}', "json"),
    (b"\xff\xfe", "encoding"),
    (b"[" * 100000 + b"]" * 100000, "max_depth"),
    (b'{"d": ' + b"[" * 70 + b"]" * 70 + b"}", "max_depth"),
])
def test_bodies_that_are_not_one_sane_json_object_are_rejected(body, rule):
    with pytest.raises(InvalidRequest) as exc_info:
        parse_object(body)
    assert exc_info.value.errors[0]["rule"] == rule


@pytest.mark.parametrize("fields, schema, expected", [
    ({}, validation.APPROVE_BODY, {}),
    ({"comment": 5}, validation.APPROVE_BODY, {"comment": "type"}),
    ({"comment": "x" * 2001}, validation.APPROVE_BODY, {"comment": "max_length"}),
    ({"comment": "a\x00b"}, validation.APPROVE_BODY, {"comment": "control_characters"}),
    ({"input": [1]}, validation.APPROVE_BODY, {"input": "type"}),
    ({"input": {"a": 1}}, validation.APPROVE_FORM, {"input": "unknown_field"}),
    ({"extra": 1}, validation.APPROVE_BODY, {"extra": "unknown_field"}),
    ({"comment": "x"}, validation.CANCEL_BODY, {"comment": "unknown_field"}),
])
def test_decision_fields_are_checked(fields, schema, expected):
    if not expected:
        assert validation.parse_decision(fields, schema).comment is None
        return
    with pytest.raises(InvalidRequest) as exc_info:
        validation.parse_decision(fields, schema)
    assert fields_of(exc_info) == expected


def test_decision_text_is_trimmed_and_multiline_allowed():
    decision = validation.parse_decision({"reason": "  two\nlines\t "}, validation.CANCEL_BODY)
    assert decision.comment == "two\nlines"


def test_decision_input_over_64_kib_is_413():
    with pytest.raises(PayloadTooLarge):
        validation.parse_decision({"input": {"x": "y" * 70000}}, validation.APPROVE_BODY)


@pytest.mark.parametrize("text, expected", [(None, 20), ("", 20), ("1", 1), ("100", 100)])
def test_limit_defaults_and_bounds(text, expected):
    assert validation.parse_limit(text) == expected


@pytest.mark.parametrize("text", ["0", "101", "-1", "ten", "²", "1" * 20])
def test_limit_outside_bounds_is_400(text):
    with pytest.raises(InvalidRequest):
        validation.parse_limit(text)
