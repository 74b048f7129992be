"""How a pause body declares a check (shared/check_fields.py): a `name` and exactly one of `http` (a URL, an
optional POST body and a header setting's name, with an optional `expect` on statuses or one JSON value) or
`adf_run` (a run id, with the run statuses that pass); anything else is refused with the field's full path and
rule, an over-large body as a size problem (413) rather than a malformed one, and the declaration renders the
JSON Schema the OpenAPI document publishes."""

import jsonschema
import pytest

from shared.check_fields import JSON_EXPECT, JSON_OPERATORS, CheckField
from shared.schema import INVALID, Problems

URL = "https://dq.contoso.com/api/quality"
RUN_ID = "2f7fdb90-5df1-4b8e-ac2f-064cfa58202b"
FIELD = CheckField("A check.")


def checked(value):
    """(what the check gives, the errors as (field, rule), the fields over their size limit)."""
    problems = Problems()
    result = FIELD.check(value, "checks[0]", problems)
    return result, [(e["field"], e["rule"]) for e in problems.errors], [e["field"] for e in problems.too_large]


def http(**fields):
    return {"name": "dq", "http": {"url": URL, **fields.pop("http", {})}, **fields}


def adf(**fields):
    return {"name": "upstream", "adf_run": {"run_id": RUN_ID, **fields.pop("adf_run", {})},
            "expect": {"status": ["Succeeded"]}, **fields}


def test_a_named_http_check_is_accepted_with_its_url_rebuilt_and_an_empty_expectation():
    result, errors, too_large = checked({"name": "dq", "http": {"url": "https://DQ.Contoso.com/api/quality"}})
    assert (errors, too_large) == ([], [])
    assert result == {"name": "dq", "http": {"url": URL}, "expect": {}}


def test_an_adf_run_check_is_accepted_with_its_passing_statuses():
    result, errors, _ = checked(adf(adf_run={"pipeline_name": "Load_Sales"}))
    assert errors == []
    assert result == {"name": "upstream", "adf_run": {"run_id": RUN_ID, "pipeline_name": "Load_Sales"},
                      "expect": {"status": ["Succeeded"]}}


@pytest.mark.parametrize("value", [
    {"name": "dq"},
    {"name": "dq", "http": {"url": URL}, "adf_run": {"run_id": RUN_ID}},
    {"name": "dq", "http": {"url": URL}, "adf_run": None},  # present, even as null: the kind is ambiguous
])
def test_a_check_has_exactly_one_of_http_or_adf_run(value):
    assert checked(value)[:2] == (INVALID, [("checks[0]", "one_of")])


@pytest.mark.parametrize("value, field, rule", [
    ([], "checks[0]", "type"),
    ({"http": {"url": URL}}, "checks[0].name", "required"),
    (http(name="x" * 65), "checks[0].name", "max_length"),
    (http(name="-dash first"), "checks[0].name", "pattern"),
    (http(surprise=1), "checks[0].surprise", "unknown_field"),
    (http(http={"url": "https://dq.contoso.com\\@evil.example/"}), "checks[0].http.url", "url"),
    (http(http={"method": "PUT"}), "checks[0].http.method", "enum"),
    (http(http={"header_setting": "SMTP_PASSWORD"}), "checks[0].http.header_setting", "pattern"),
    (http(expect={"status": [99]}), "checks[0].expect.status[0]", "range"),
    (http(expect={"json": {"path": "status", "equals": "OK"}}), "checks[0].expect.json.path", "pattern"),
    (http(expect={"json": {"path": "$..status", "equals": "OK"}}), "checks[0].expect.json.path", "pattern"),
    (http(expect={"json": {"path": "$.rows", "ge": "100"}}), "checks[0].expect.json.ge", "type"),
    (adf(adf_run={"run_id": "run-1"}), "checks[0].adf_run.run_id", "pattern"),
    (adf(adf_run={"pipeline_name": "Load.Sales"}), "checks[0].adf_run.pipeline_name", "pattern"),
    (adf(adf_run={"pipeline_name": "P" * 141}), "checks[0].adf_run.pipeline_name", "max_length"),
    (adf(expect={"status": ["Done"]}), "checks[0].expect.status[0]", "enum"),
    (adf(expect={}), "checks[0].expect.status", "required"),
    (adf(expect=None), "checks[0].expect", "required"),  # an ADF run check says which statuses pass
])
def test_a_bad_part_of_a_check_is_named_with_its_path_and_rule(value, field, rule):
    _, errors, _ = checked(value)
    assert (field, rule) in errors
    assert {name for name, _ in errors} == {field}


@pytest.mark.parametrize("operators", [(), ("equals", "in")])
def test_a_json_expectation_has_exactly_one_operator(operators):
    values = {"equals": "OK", "in": ["OK", "DONE"]}
    value = http(expect={"json": {"path": "$.status", **{op: values[op] for op in operators}}})
    assert checked(value)[:2] == (INVALID, [("checks[0].expect.json", "one_of")])


@pytest.mark.parametrize("operator, operand", list(zip(JSON_OPERATORS, ("OK", ["OK", 1, None], 1, 1.5, 0, -2, True))))
def test_each_json_operator_alone_is_accepted_and_kept_as_sent(operator, operand):
    expect = {"json": {"path": "$['state name'].rows[0]", operator: operand}}
    result, errors, _ = checked(http(expect=expect))
    assert errors == [] and result["expect"] == expect


def test_a_body_is_sent_only_with_post_and_is_kept_as_it_came():
    body = {"day": "2026-11-25", "rows": [1, 2]}
    assert checked(http(http={"body": body}))[:2] == (INVALID, [("checks[0].http.body", "post_only")])
    result, errors, _ = checked(http(http={"method": "POST", "body": body}))
    assert errors == [] and result["http"] == {"url": URL, "method": "POST", "body": body}


def test_a_body_over_16_kib_is_a_size_problem_not_a_malformed_field():
    at_limit = "x" * (16 * 1024 - 2)  # two bytes for the JSON quotes
    assert checked(http(http={"method": "POST", "body": at_limit}))[1:] == ([], [])
    assert checked(http(http={"method": "POST", "body": at_limit + "x"}))[1:] == ([], ["checks[0].http.body"])


@pytest.mark.parametrize("value, valid", [
    (http(), True),
    (http(http={"method": "POST", "body": [1]}, expect={"status": [200, 204]}), True),
    (adf(), True),
    (adf(expect=None), False),
    ({"name": "dq"}, False),
    ({"name": "dq", "http": {"url": URL}, "adf_run": {"run_id": RUN_ID}}, False),
    (http(surprise=1), False),
    (http(name="x" * 65), False),
    (http(http={"header_setting": "SMTP_PASSWORD"}), False),
    (adf(adf_run={"run_id": "run-1"}), False),
    (adf(expect={"status": ["Done"]}), False),
])
def test_the_published_schema_agrees_with_the_check(value, valid):
    assert jsonschema.Draft202012Validator(FIELD.schema()).is_valid(value) is valid
    result, errors, _ = checked(value)
    assert (result is not INVALID and not errors) is valid


def test_an_expectation_that_a_value_equals_null_is_accepted():
    expect = {"json": {"path": "$.error", "equals": None}}
    assert jsonschema.Draft202012Validator(FIELD.schema()).is_valid(http(expect=expect))
    result, errors, _ = checked(http(expect=expect))
    assert errors == [] and result["expect"] == expect


def test_a_json_expectation_declares_its_path_and_operators_only():
    """Its schema says "exactly one operator" as exactly two properties: true only while every field but the path is
    an operator. A field of another kind needs that statement changed (back to a oneOf of the operators)."""
    assert set(JSON_EXPECT.fields) == {"path", *JSON_OPERATORS}
    assert JSON_EXPECT.schema()["minProperties"] == JSON_EXPECT.schema()["maxProperties"] == 2
