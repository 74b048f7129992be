"""What the published document says is valid, the app accepts: request bodies drawn from the OpenAPI document's own
schemas (by schemathesis's generator, as a client generator or a validator reads them) are refused only for rules
JSON Schema cannot state, each named below with why. Without this, a body a pipeline author checked against
/api/openapi.json could still come back 400: `"remind_max": 3` without `remind_every`, `"expires_in": 3600.0`."""

import re
from collections import Counter

import pytest

from shared import catalog, catalog_requests, validation
from shared.errors import InvalidRequest
from shared.web import openapi

EXAMPLES = {"PauseRequest": 80, "CatalogEntryRequest": 50}  # per body, else 40; derandomized: the same each run

# What only the app can tell: (field, with list indices as [], rule) -> why JSON Schema cannot say it.
CANNOT_SAY = {
    ("start_window.time_zone", "time_zone"): "a name in the time-zone database (tzdata), not a shape",
    ("start_window.to", "differs_from_from"): "not the same time as from: one field compared with another",
    ("required_approvals", "range"): "at most the number of approvers who may decide: a count compared with a count",
    ("checks", "unique"): "each check's name once: distinct by one property of the items",
    ("escalate_after", "range"): "less than expires_in: one field's value compared with another's",
    ("escalate_to.approvers", "already_approver"): "none of the pause's approvers: two lists compared",
    ("escalate_to.approvers", "requested_by"): "not the requester: a list compared with a field",
    ("requesters", "unique"): "each requester once as compared (case-insensitively)",
    ("form[].name", "unique"): "each form field's name once: distinct by one property of the items",
    ("form[].default", "*"): "a value of its own field: of the type, choices, pattern, length and range the same "
                             "item declares",
    ("form[].min", "*"): "a value of its own field's type, not greater than max",
    ("form[].max", "*"): "a value of its own field's type",
    ("form[].pattern", "re2"): "a regular expression RE2 compiles",
}

BODIES = {
    "PauseRequest": validation.parse_pause,
    "ApproveRequest": lambda body: validation.parse_decision(body, validation.APPROVE_BODY),
    "CancelRequest": lambda body: validation.parse_decision(body, validation.CANCEL_BODY),
    "ReassignRequest": validation.parse_reassign,
    "HoldRequest": validation.parse_hold,
    "ReleaseRequest": lambda body: validation.parse_decision(body, validation.RELEASE_BODY),
    "HoldCancelRequest": lambda body: validation.parse_decision(body, validation.HOLD_CANCEL_BODY),
    "CheckpointRequest": validation.parse_checkpoint,
    "CatalogEntryRequest": catalog.parse_entry,
    "RunRequest": lambda body: catalog_requests.parse_body(body, True),
}


def _json_bodies() -> dict:
    """(path, method) of each operation taking a JSON body, by the component schema it names."""
    found = {}
    for path, operations in openapi.document()["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content:
                found[content["schema"]["$ref"].rsplit("/", 1)[-1]] = (path, method)
    return found


def test_every_json_body_of_the_document_is_drawn_here():
    assert set(_json_bodies()) == set(BODIES)


def _refusals(component: str) -> tuple[Counter, dict]:
    """The rules validation refused drawn bodies for, counted (and "drawn", "accepted"), with an example body of
    each."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    path, method = _json_bodies()[component]
    operation = schemathesis.openapi.from_dict(openapi.document())[path][method.upper()]
    refused, examples = Counter(), {}

    @given(case=operation.as_strategy(media_type="application/json"))
    @settings(max_examples=EXAMPLES.get(component, 40), derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    def draw(case):
        if case.media_type != "application/json" or not isinstance(case.body, dict):
            return  # a form's fields, or no body (an optional one)
        refused["drawn"] += 1
        try:
            BODIES[component](case.body)
            refused["accepted"] += 1
        except InvalidRequest as invalid:
            for error in invalid.errors:
                key = (re.sub(r"\[\d+\]", "[]", error["field"]), error["rule"])
                refused[key] += 1
                examples.setdefault(key, (case.body, error["message"]))

    draw()
    return refused, examples


@pytest.mark.parametrize("component", sorted(BODIES))
def test_a_body_the_document_calls_valid_is_refused_only_for_what_json_schema_cannot_say(component):
    refused, examples = _refusals(component)
    # Bodies drawn, and accepted: a schema nothing satisfies (or a generator giving up) would pass vacuously.
    assert refused.pop("drawn") >= 10 and refused.pop("accepted") >= 10
    unsaid = {key: examples[key] for key in refused if key not in CANNOT_SAY and (key[0], "*") not in CANNOT_SAY}
    assert not unsaid, "\n".join(f"{field} ({rule}): {message}\n  e.g. {body!r}"
                                 for (field, rule), (body, message) in unsaid.items())


CB = "https://dpeastus.svc.datafactory.azure.com/cb"
TARGET = {"subscription_id": "00000000-0000-0000-0000-000000000001", "resource_group": "rg", "factory_name": "adf-1",
          "pipeline_name": "Load"}
ENTRY = {"title": "Reload", "target": TARGET, "approvers": ["lead@contoso.com"], "requesters": ["ana@contoso.com"]}


@pytest.mark.parametrize("component, body, refused", [
    ("PauseRequest", {"callBackUri": CB, "expires_in": 3600.0, "remind_every": 600.0, "notify": {"channels": ["a"]}},
     set()),
    ("PauseRequest", {"callBackUri": CB, "checks": [{"name": "c", "http": {"url": "https://x.example/", "body": {}}}]},
     {("checks[0].http.body", "post_only")}),
    # A repeat is named with the body's other problems, not instead of them.
    ("PauseRequest", {"callBackUri": CB, "notify": {"channels": ["a", "a"]}, "remind_max": 2},
     {("notify.channels", "unique"), ("remind_max", "needs_remind_every")}),
    # A JSON expectation: its path and exactly one operator (equals null is one).
    *[("PauseRequest", {"callBackUri": CB, "checks": [{"name": "c", "http": {"url": "https://x.example/"},
                                                       "expect": {"json": {"path": "$.s", **operators}}}]}, refused)
      for operators, refused in (({"equals": None}, set()), ({"exists": False}, set()),
                                 ({}, {("checks[0].expect.json", "one_of")}),
                                 ({"lt": 1, "ge": 0}, {("checks[0].expect.json", "one_of")}))],
    ("PauseRequest", {"callBackUri": CB, "form": "pipeline"}, {("form", "needs_restart_mode")}),
    ("PauseRequest", {"callBackUri": CB, "escalate_after": 600, "escalate_to": {}},
     {("escalate_to", "required")}),
    ("HoldRequest", {"scope": {"pipeline_name": "   "}, "reason": "x"}, {("scope.pipeline_name", "nonblank")}),
    ("HoldRequest", {"scope": {"run_id": ""}, "reason": "x"}, {("scope.run_id", "pattern")}),
    ("HoldRequest", {"scope": {}, "reason": "x"}, {("scope", "required")}),
    ("CatalogEntryRequest", {**ENTRY, "requesters": ["*@contoso.com", "*@a.1-2", "*@x.9a"]}, set()),
    *[("CatalogEntryRequest", {**ENTRY, "requesters": [bad]}, {("requesters[0]", "requester")})
      for bad in ("*@x", "*@a..com", "*@a.123", "*@-a.com", "*@a.com-", "*@")],
])
def test_the_document_and_validation_agree_both_ways_on_bodies_near_the_rules(component, body, refused):
    import jsonschema

    document = openapi.document()
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    assert jsonschema.Draft202012Validator(schema).is_valid(body) is (not refused)
    try:
        BODIES[component](body)
        found = set()
    except InvalidRequest as invalid:
        found = {(error["field"], error["rule"]) for error in invalid.errors}
    assert found == refused
