"""The OpenAPI document: complete, served, consistent with validation, and fuzzed with schemathesis."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from local_dev.functions_host import build_wsgi_app, http_functions, serve
from shared import validation
from shared.web import openapi

ROOT = Path(__file__).resolve().parent.parent


def test_every_registered_http_route_is_described_and_nothing_more(registered_functions):
    import function_app

    # A parameter that must be empty ({ignored:maxlength(0)?}) serves the prefix itself: /api.
    registered = {(method.lower(), "/" + re.sub(r"/?\{[^}]*maxlength\(0\)\?\}", "", fn.route))
                  for fn in http_functions(function_app.app) for method in fn.methods}
    described = {(method, path) for path, operations in openapi.document()["paths"].items()
                 for method in operations}
    assert registered == described


def test_request_bodies_are_the_validation_declarations():
    schemas = openapi.document()["components"]["schemas"]
    assert schemas["PauseRequest"]["properties"] == validation.PAUSE_BODY.schema()["properties"]
    assert schemas["ApproveRequest"] == validation.APPROVE_BODY.schema()
    assert schemas["CancelRequest"] == validation.CANCEL_BODY.schema()


def test_forms_windows_and_the_scheduled_status_are_described():
    document = openapi.document()
    schemas = document["components"]["schemas"]
    pause = schemas["PauseRequest"]["properties"]
    assert {"form", "start_window", "allow_start_at"} <= set(pause)
    assert any(option.get("const") == "pipeline" for option in pause["form"]["oneOf"])
    assert set(pause["start_window"]["properties"]) == {"time_zone", "days", "from", "to"}
    assert "start_at" in schemas["ApproveRequest"]["properties"]
    text = json.dumps(document)
    assert '"scheduled"' in text and '"start_at"' in text  # the status, and when a scheduled pause starts
    statuses = re.findall(r'"enum": \[("pending"[^\]]*)\]', text)
    assert statuses and all('"scheduled"' in found for found in statuses)


@pytest.mark.parametrize("body, valid", [
    ({"subscription_id": "00000000-0000-0000-0000-000000000001", "resource_group": "rg",
      "factory_name": "adf-1", "pipeline_name": "P"}, True),
    ({"callBackUri": "https://dpeastus.svc.datafactory.azure.com/cb"}, True),
    ({"subscription_id": "00000000-0000-0000-0000-000000000001"}, False),
    ({"callBackUri": "https://x.example/cb", "expires_in": True}, False),
    ({"callBackUri": "https://x.example/cb", "on_timeout": "never"}, False),
    ({"callBackUri": "https://x.example/cb", "parameters": {"pause_id": "x"}}, False),
    ({"callBackUri": "https://x.example/cb", "notification": {"title": "a\u0007b"}}, False),
    ({"callBackUri": "https://x.example/cb", "surprise": 1}, False),
])
def test_document_and_validation_agree_on_what_is_valid(body, valid):
    import jsonschema

    from shared.errors import InvalidRequest

    schema = {**openapi.document()["components"]["schemas"]["PauseRequest"]}
    assert jsonschema.Draft202012Validator(schema).is_valid(body) is valid
    try:
        validation.parse_pause(body)
        accepted = True
    except InvalidRequest:
        accepted = False
    assert accepted is valid


@pytest.fixture
def local_host(app_env, registered_functions):
    import function_app

    with serve(build_wsgi_app(function_app.app, ROOT / "host.json")) as server:
        yield server


@pytest.mark.integration
def test_document_is_served_at_api_openapi_json(local_host):
    response = requests.get(f"{local_host.url}/api/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(openapi.document()))
    assert response.json()["openapi"] == "3.1.0"


SIGNED_IN_ROUTES = "^/(console|requests?)(/|$)"  # the operators' console and the catalog's request pages


def _schemathesis(url: str, tmp_path, *options) -> str:
    """Run schemathesis against the served document with the checks every answer must pass; its report."""
    checks = ("not_a_server_error,status_code_conformance,content_type_conformance,"
              "response_schema_conformance,response_headers_conformance")
    # One worker: hypothesis parses lambdas with ast in each thread, and CPython 3.11's ast is not safe
    # to use from two threads at once ("AST constructor recursion depth mismatch").
    command = [str(Path(sys.executable).parent / "st"), "run", f"{url}/api/openapi.json",
               "--checks", checks, "--max-examples", "20", "--workers", "1", "--seed", "20261125",
               "--request-timeout", "20", "--no-color", *options]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    summary = result.stdout.split("SUMMARY")[-1]
    assert " passed" in summary and not re.search(r"\b\d+ failed\b", summary)
    return result.stdout


@pytest.mark.integration
def test_schemathesis_finds_no_server_error_and_every_response_conforms(local_host, tmp_path):
    # The console's and the requests' routes need a sign-in: the next test fuzzes them signed in (here every case
    # would only meet their door).
    report = _schemathesis(local_host.url, tmp_path, "--exclude-path-regex", SIGNED_IN_ROUTES)
    assert re.search(r"Operations:\s+19 selected", report), report[-4000:]


@pytest.mark.integration
def test_schemathesis_signed_in_as_an_operator_reaches_the_console_and_the_requests(local_host, configure, tmp_path):
    """The operations behind sign-in, fuzzed by an operator (the principal header App Service Authentication
    writes) with a bearer token, so that no anti-forgery token is asked for: past the door, into each route."""
    configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED="True", OPERATORS="ops@contoso.com")
    report = _schemathesis(local_host.url, tmp_path, "--include-path-regex", SIGNED_IN_ROUTES,
                           "--phases", "examples,coverage,fuzzing", "--max-examples", "10",
                           "-H", "X-MS-CLIENT-PRINCIPAL-NAME: ops@contoso.com", "-H", "Authorization: Bearer signed-in")
    assert re.search(r"Operations:\s+15 selected", report), report[:2000]
    # Most operations answer past sign-in now (a few still refuse a requester who is not one of the entry's).
    refused = re.search(r"Authentication failed: (\d+) operations? returned only 401/403", report)
    assert refused is None or int(refused.group(1)) <= 2, report[-4000:]
