"""The component schemas of the OpenAPI document (shared/web/schemas.py): the request bodies are the validation
declarations (a pause names either its `callBackUri` or all four pipeline fields; a page's form is its body's
declaration plus the anti-forgery token), the pause record is the one the store builds, and the other answers are
declared here once; every component is a valid JSON Schema whose references resolve, whose required names are
declared, and whose status literals are the lifecycle model's."""

import json
from datetime import datetime, timezone

import jsonschema
import pytest

from shared import validation
from shared.errors import InvalidRequest, NotFound, PauseError
from shared.lifecycle.model import HoldStatus, Status
from shared.schema import Problems
from shared.storage.records import RECORD, to_record
from shared.web.schemas import ANTIFORGERY, components, with_antiforgery

COMPONENTS = components()
PIPELINE = {"subscription_id": "00000000-0000-0000-0000-000000000001", "resource_group": "rg-data",
            "factory_name": "adf-prod-01", "pipeline_name": "Load_Sales"}


def walk(node):
    """Every dict in a schema, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def validator(name: str) -> jsonschema.Draft202012Validator:
    """A validator for one component, its `#/components/schemas/...` references resolved among the others."""
    return jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                            "components": {"schemas": COMPONENTS}})


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_each_component_is_a_json_schema_whose_references_resolve_and_whose_required_names_are_declared(name):
    schema = COMPONENTS[name]
    jsonschema.Draft202012Validator.check_schema(schema)
    for node in walk(schema):
        ref = node.get("$ref")
        assert ref is None or ref.removeprefix("#/components/schemas/") in COMPONENTS, ref
        if isinstance(node.get("properties"), dict) and "required" in node:
            assert set(node["required"]) <= set(node["properties"]), node["required"]
    for alternative in schema.get("anyOf", []):  # required by one alternative: declared by the object itself
        assert set(alternative["required"]) <= set(schema["properties"])


def test_every_status_literal_is_one_of_the_lifecycle_models():
    known = {status.value for status in Status} | {status.value for status in HoldStatus}
    literals = set()
    for node in walk(COMPONENTS):
        status = node.get("properties", {}).get("status") if isinstance(node.get("properties"), dict) else None
        if isinstance(status, dict):
            literals |= set(status.get("enum", [])) | ({status["const"]} if "const" in status else set())
    assert literals and literals <= known
    assert COMPONENTS["PauseRecord"]["properties"]["status"]["enum"] == [status.value for status in Status]
    assert COMPONENTS["Hold"]["properties"]["status"]["enum"] == [status.value for status in HoldStatus]


def test_with_antiforgery_adds_the_token_to_a_form_without_changing_the_form_it_was_given():
    form = {"type": "object", "properties": {"comment": {"type": "string"}}, "additionalProperties": False}
    before = json.dumps(form)
    with_token = with_antiforgery(form)
    assert json.dumps(form) == before
    assert with_token["properties"] == {"comment": {"type": "string"}, "antiforgery_token": ANTIFORGERY}
    check = jsonschema.Draft202012Validator(with_token)
    assert check.is_valid({"comment": "ok", "antiforgery_token": "t0ken"}) and check.is_valid({})
    assert not check.is_valid({"antiforgery_token": 5}) and not check.is_valid({"other": 1})
    assert with_antiforgery({"type": "object"})["properties"] == {"antiforgery_token": ANTIFORGERY}


def test_the_page_forms_are_their_bodies_declarations_with_the_token():
    assert COMPONENTS["ApproveForm"] == with_antiforgery(validation.APPROVE_FORM.schema())
    assert COMPONENTS["CancelForm"] == with_antiforgery(validation.CANCEL_BODY.schema())
    # The page's form carries no `input`: that is JSON only, for programs.
    assert validator("ApproveRequest").is_valid({"comment": "ok", "input": {"rows": 1}})
    assert not validator("ApproveForm").is_valid({"comment": "ok", "input": {"rows": 1}})


@pytest.mark.parametrize("missing", validation.RESTART_TARGET_FIELDS)
def test_a_pause_request_without_a_callback_uri_needs_every_pipeline_field(missing):
    body = {name: value for name, value in PIPELINE.items() if name != missing}
    assert validator("PauseRequest").is_valid(PIPELINE)
    assert not validator("PauseRequest").is_valid(body)
    assert validator("PauseRequest").is_valid({**body, "callBackUri": "https://dpeastus.svc.datafactory.azure.com/cb"})
    with pytest.raises(InvalidRequest) as refused:
        validation.parse_pause(body)
    assert [error["field"] for error in refused.value.errors] == [missing]


def problem_of(error: PauseError) -> dict:
    from shared.web.http import problem_response

    response = problem_response(error)
    assert response.mimetype == "application/problem+json" and response.status_code == error.status
    return json.loads(response.get_body())


def test_the_problems_the_app_answers_match_the_problem_schema():
    problems = Problems()
    validation.PAUSE_BODY.check({"expires_in": True, "data": "x" * (300 * 1024)}, "", problems)
    with pytest.raises(InvalidRequest) as invalid:
        problems.raise_if_any("pause body")
    body = problem_of(invalid.value)
    assert validator("Problem").is_valid(body) and [e["field"] for e in body["errors"]] == ["expires_in"]
    assert validator("Problem").is_valid(problem_of(NotFound("No such pause.")))
    assert not validator("Problem").is_valid({**body, "errors": [{"field": "expires_in"}]})  # rule, message required


def test_the_pause_record_requires_only_what_every_record_carries():
    required = COMPONENTS["PauseRecord"]["required"]
    assert all(RECORD[name].when is None for name in required)  # never left out of a record
    when = datetime(2026, 12, 6, 10, 0, tzinfo=timezone.utc)
    held = to_record({"PartitionKey": "a" * 32, "RowKey": "pause", "status": Status.HELD.value, "mode": "checkpoint",
                      "created_at": when, "checkpoint": "after_staging"})
    assert set(required) <= set(held) and held["expires_at"] is None  # a held checkpoint has no expiry
    assert validator("PauseRecord").is_valid(held)
