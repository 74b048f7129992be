"""The local ADF stand-in answers the real azure-mgmt-datafactory SDK the way ARM does, and is as strict."""

import datetime
import json
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceResponseError
from azure.mgmt.datafactory import DataFactoryManagementClient
from azure.mgmt.datafactory.models import (Factory, ParameterSpecification, PipelineResource, RunFilterParameters,
                                           RunQueryFilter, RunQueryOrderBy)

from local_dev.adf_standin import API_VERSION, DEFAULT_FACTORY, AdfStandin
from tests.support import DevCredential

SUB = "00000000-0000-0000-0000-0000000000bb"
FACTORY_PATH = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DataFactory/factories/factory"
REPO_PIPELINES = sorted(json.loads(p.read_text())["name"] for p in (Path(__file__).parent.parent / "adf" / "pipelines").glob("*.json"))
NO_RETRY = {"retry_total": 0}
HTTP = {"enforce_https": False}


@pytest.fixture(scope="module")
def standin():
    with AdfStandin(port=0, page_size=2, queued_seconds=0.2) as running:
        yield running


@pytest.fixture
def client(standin):
    """A fresh stand-in with factory `factory` holding pipelines `pipe` and `pipe-b` (created through the SDK)."""
    standin.reset()
    client = DataFactoryManagementClient(DevCredential(), SUB, base_url=standin.url)
    for factory in ("factory", "other-factory"):
        client.factories.create_or_update("rg", factory, Factory(location="westeurope"), **HTTP)
        for name in ("pipe", "pipe-b"):
            client.pipelines.create_or_update("rg", factory, name, PipelineResource(activities=[]), **HTTP)
    return client


def create_run(client, pipeline="pipe", parameters=None, factory="factory", **options):
    return client.pipelines.create_run("rg", factory, pipeline, parameters=parameters, **HTTP, **options)


def window(minutes=1, **query):
    now = datetime.datetime.now(datetime.timezone.utc)
    return RunFilterParameters(last_updated_after=now - datetime.timedelta(minutes=minutes),
                               last_updated_before=now + datetime.timedelta(minutes=minutes), **query)


# Pipelines and factories

def test_the_repository_pipelines_exist_in_the_default_factory(standin):
    standin.reset()
    client = DataFactoryManagementClient(DevCredential(), DEFAULT_FACTORY[0], base_url=standin.url)
    for name in REPO_PIPELINES:
        found = client.pipelines.get(DEFAULT_FACTORY[1], DEFAULT_FACTORY[2], name, **HTTP)
        assert found.name == name and found.activities
    with pytest.raises(ResourceNotFoundError):  # ... and only there
        client.pipelines.get(DEFAULT_FACTORY[1], "adf-other", REPO_PIPELINES[0], **HTTP)


def test_pipelines_created_through_the_sdk_exist_case_insensitively(client):
    assert client.pipelines.get("rg", "factory", "PIPE", **HTTP).name == "pipe"


def test_an_unknown_pipeline_is_404_for_get_and_create_run_and_nothing_is_recorded(standin, client):
    for call in (lambda: client.pipelines.get("rg", "factory", "Load_Sale", **HTTP),
                 lambda: create_run(client, "Load_Sale")):
        with pytest.raises(ResourceNotFoundError) as raised:
            call()
        assert raised.value.status_code == 404 and raised.value.error.code == "NotFound"
    assert standin.runs == []


def test_an_unknown_factory_is_arms_resource_not_found(standin, client):
    with pytest.raises(ResourceNotFoundError) as raised:
        create_run(client, factory="factroy")
    assert raised.value.error.code == "ResourceNotFound" and "factroy" in raised.value.error.message
    with pytest.raises(ResourceNotFoundError):
        client.pipelines.create_or_update("rg", "factroy", "pipe", PipelineResource(activities=[]), **HTTP)
    assert standin.runs == []


def test_a_required_parameter_without_a_value_is_refused(standin, client):
    client.pipelines.create_or_update("rg", "factory", "needs", PipelineResource(activities=[], parameters={
        "day": ParameterSpecification(type="String"),
        "mode": ParameterSpecification(type="String", default_value="full")}), **HTTP)
    with pytest.raises(HttpResponseError) as raised:
        create_run(client, "needs", {"mode": "x"}, **NO_RETRY)
    assert raised.value.status_code == 400 and "day" in raised.value.error.message
    assert standin.runs == []
    create_run(client, "needs", {"day": "2026-11-27"})
    assert len(standin.runs) == 1


def test_a_pipeline_definition_with_a_bad_parameter_type_is_refused(client):
    with pytest.raises(HttpResponseError) as raised:
        client.pipelines.create_or_update("rg", "factory", "bad", {"properties": {"parameters": {"p": {"type": "Text"}}}},
                                          **HTTP)
    assert raised.value.status_code == 400


# Runs

def test_create_run_records_the_parameters_and_returns_them_as_strings(standin, client):
    parameters = {"pause_id": "x", "count": 3, "approved": True, "nested": {"list": [1, None, "two"]}}
    run = create_run(client, parameters=parameters)
    [recorded] = standin.runs
    assert recorded["runId"] == run.run_id and recorded["parametersAsSent"] == parameters
    got = client.pipeline_runs.get("rg", "factory", run.run_id, **HTTP)
    assert got.parameters == {"pause_id": "x", "count": "3", "approved": "true",
                              "nested": '{"list": [1, null, "two"]}'}


def test_a_run_is_queued_then_in_progress(client, standin, monkeypatch):
    monkeypatch.setattr(standin, "queued_seconds", 60)  # queued until the test says, however slow the machine
    run = create_run(client)
    assert client.pipeline_runs.get("rg", "factory", run.run_id, **HTTP).status == "Queued"
    standin.end_queue_time()
    got = client.pipeline_runs.get("rg", "factory", run.run_id, **HTTP)
    assert got.status == "InProgress" and got.last_updated >= got.run_start and got.run_end is None


def test_finish_and_cancel_end_a_run(client, standin):
    finished, cancelled = create_run(client).run_id, create_run(client).run_id
    standin.finish_run(finished, "Failed", "Copy failed")
    client.pipeline_runs.cancel("rg", "factory", cancelled, is_recursive=True, **HTTP)
    got = client.pipeline_runs.get("rg", "factory", finished, **HTTP)
    assert (got.status, got.message) == ("Failed", "Copy failed") and got.run_end >= got.run_start
    assert client.pipeline_runs.get("rg", "factory", cancelled, **HTTP).status == "Cancelled"


def test_create_run_records_the_recovery_query_options(standin, client):
    first = create_run(client)
    create_run(client, reference_pipeline_run_id=first.run_id, is_recovery=True, start_activity_name="Wait")
    assert standin.runs[1]["createRunOptions"] == {
        "referencePipelineRunId": first.run_id, "isRecovery": True, "startActivityName": "Wait"}


def test_runs_are_found_only_in_their_own_factory(client):
    run = create_run(client)
    with pytest.raises(ResourceNotFoundError) as raised:
        client.pipeline_runs.get("rg", "other-factory", run.run_id, **HTTP)
    assert raised.value.error.code == "PipelineRunNotFound"


# queryPipelineRuns

def test_query_needs_both_ends_of_the_window(standin, client):
    url = f"{standin.url}{FACTORY_PATH}/queryPipelineRuns?api-version={API_VERSION}"
    for body in ({}, {"lastUpdatedAfter": "2026-11-27T00:00:00Z"}, {"lastUpdatedBefore": "2026-11-27T00:00:00Z"},
                 {"lastUpdatedAfter": "yesterday", "lastUpdatedBefore": "2026-11-27T00:00:00Z"}):
        response = requests.post(url, json=body, headers={"Authorization": "Bearer t"}, timeout=5)
        assert response.status_code == 400 and response.json()["error"]["code"]


def test_query_filters_by_pipeline_and_time_window_and_status(client, standin, monkeypatch):
    monkeypatch.setattr(standin, "queued_seconds", 60)  # still Queued when the status filter asks, however slow
    wanted = [create_run(client, "pipe").run_id for _ in range(2)]
    create_run(client, "pipe-b")
    create_run(client, "pipe", factory="other-factory")
    by_name = RunQueryFilter(operand="PipelineName", operator="In", values_property=["PIPE"])
    found = client.pipeline_runs.query_by_factory("rg", "factory", window(filters=[by_name]), **HTTP)
    assert sorted(run.run_id for run in found.value) == sorted(wanted)
    later = window(filters=[by_name])
    later.last_updated_after = later.last_updated_before
    assert client.pipeline_runs.query_by_factory("rg", "factory", later, **HTTP).value == []
    queued = RunQueryFilter(operand="Status", operator="Equals", values_property=["Queued"])
    assert len(client.pipeline_runs.query_by_factory("rg", "factory", window(filters=[queued]), **HTTP).value) == 2


@pytest.mark.parametrize("condition", [
    {"operand": "RunGroupId", "operator": "Equals", "values": ["x"]},      # in the enum, not for pipeline runs
    {"operand": "ActivityType", "operator": "Equals", "values": ["Wait"]},
    {"operand": "PipelineName", "operator": "Contains", "values": ["p"]},
    {"operand": "PipelineName", "operator": "Equals", "values": ["a", "b"]},
    {"operand": "RunStart", "operator": "Equals", "values": ["not a time"]},
])
def test_query_refuses_what_adf_does_not_document_for_pipeline_runs(client, condition):
    query = window()
    query["filters"] = [condition]
    with pytest.raises(HttpResponseError) as raised:
        client.pipeline_runs.query_by_factory("rg", "factory", query, **HTTP, **NO_RETRY)
    assert raised.value.status_code == 400


def test_query_pages_with_continuation_tokens_newest_first(client, standin):
    created = [create_run(client).run_id for _ in range(5)]
    query = window(order_by=[RunQueryOrderBy(order_by="RunStart", order="DESC")])
    seen, pages = [], 0
    while True:
        page = client.pipeline_runs.query_by_factory("rg", "factory", query, **HTTP)
        pages += 1
        assert len(page.value) <= standin.page_size
        seen += [run.run_id for run in page.value]
        if not page.continuation_token:
            break
        query.continuation_token = page.continuation_token
    assert pages == 3 and seen == created[::-1]


def test_a_continuation_token_only_continues_its_own_query(client):
    for _ in range(3):
        create_run(client)
    first = client.pipeline_runs.query_by_factory("rg", "factory", window(), **HTTP)
    other = window(minutes=2)
    other.continuation_token = first.continuation_token
    with pytest.raises(HttpResponseError) as raised:
        client.pipeline_runs.query_by_factory("rg", "factory", other, **HTTP, **NO_RETRY)
    assert raised.value.status_code == 400


# Faults

def test_before_records_nothing_and_answers_the_error(standin, client):
    standin.inject("createRun", "before", status=503, code="ServiceUnavailable")
    with pytest.raises(HttpResponseError) as raised:
        create_run(client, **NO_RETRY)
    assert (raised.value.status_code, raised.value.error.code) == (503, "ServiceUnavailable")
    assert standin.runs == []
    create_run(client)
    assert len(standin.runs) == 1


def test_after_records_the_run_and_then_answers_5xx(standin, client):
    standin.inject("createRun", "after", status=504, code="GatewayTimeout")
    with pytest.raises(HttpResponseError) as raised:
        create_run(client, **NO_RETRY)
    assert raised.value.status_code == 504
    assert len(standin.runs) == 1


def test_the_sdks_default_retry_repeats_a_create_run_answered_500_and_starts_two_runs(standin, client):
    # Why the app does not use azure-core's default policy for createRun (azure-sdk-for-python #8290).
    standin.inject("createRun", "after", status=500)
    create_run(client, retry_backoff_factor=0)
    assert len(standin.runs) == 2


def test_drop_records_the_run_and_closes_the_connection_unanswered(standin, client):
    standin.inject("createRun", "drop")
    with pytest.raises(ServiceResponseError):
        create_run(client, **NO_RETRY)
    assert len(standin.runs) == 1


def test_late_records_the_run_and_answers_after_the_client_gave_up(standin, client):
    standin.inject("createRun", "late", seconds=2)
    with pytest.raises(ServiceResponseError):
        create_run(client, read_timeout=0.3, **NO_RETRY)
    assert len(standin.runs) == 1


def test_hang_records_and_never_answers_until_reset(standin, client):
    standin.inject("createRun", "hang", seconds=30)
    with pytest.raises(ServiceResponseError):
        create_run(client, read_timeout=0.3, **NO_RETRY)
    assert len(standin.runs) == 1
    standin.reset()
    assert standin.runs == []


def test_throttling_answers_429_with_retry_after(standin, client):
    standin.inject("createRun", "before", status=429, code="TooManyRequests", retry_after=7)
    with pytest.raises(HttpResponseError) as raised:
        create_run(client, **NO_RETRY)
    assert raised.value.status_code == 429 and raised.value.response.headers["Retry-After"] == "7"
    assert standin.runs == []


def test_faults_apply_to_their_operation_only_and_in_order(standin, client):
    standin.inject("queryPipelineRuns", "before", status=403, code="AuthorizationFailed")
    standin.inject("createRun", "before", count=2, status=400, code="BadRequest")
    with pytest.raises(HttpResponseError):
        client.pipeline_runs.query_by_factory("rg", "factory", window(), **HTTP, **NO_RETRY)
    for _ in range(2):
        with pytest.raises(HttpResponseError):
            create_run(client)
    create_run(client)
    assert client.pipeline_runs.query_by_factory("rg", "factory", window(), **HTTP).value


# Callbacks

def test_a_callback_completes_the_activity_once_and_repeats_get_409(standin):
    standin.reset()
    url = f"{standin.url}/_standin/callbacks/act-1"
    assert requests.post(url, json={"Output": {}, "StatusCode": "200"}, timeout=5).status_code == 200
    assert requests.post(url, json={"Output": {}, "StatusCode": "200"}, timeout=5).status_code == 409
    assert requests.post(f"{standin.url}/_standin/callbacks/act-2", json={}, timeout=5).status_code == 200
    assert [(c["callbackId"], c["status"], c["completed"]) for c in standin.callbacks] == [
        ("act-1", 200, True), ("act-1", 409, False), ("act-2", 200, True)]



def test_the_callbacks_are_listed_all_or_past_the_first_n(standin):
    standin.reset()
    for name in ("a", "b", "c"):
        assert requests.post(f"{standin.url}/_standin/callbacks/{name}", json={"n": name}, timeout=5).ok
    listed = f"{standin.url}/_standin/callbacks"
    assert [c["body"] for c in requests.get(listed, timeout=5).json()] == [{"n": "a"}, {"n": "b"}, {"n": "c"}]
    assert [(c["callbackId"], c["status"]) for c in requests.get(f"{listed}?skip=2", timeout=5).json()] == [("c", 200)]
    assert requests.get(f"{listed}?skip=3", timeout=5).json() == []
    for bad in ("-1", "x", "1.5", "\u0663"):  # (an Arabic-Indic three: a digit to str.isdigit, not a count here)
        refused = requests.get(listed, params={"skip": bad}, timeout=5)
        assert refused.status_code == 400 and "skip" in refused.json()["error"]["message"]
    standin.callbacks[0]["body"]["n"] = "changed"  # copies: what a test changes is not the stand-in's record
    assert standin.callbacks[0]["body"] == {"n": "a"}

@pytest.mark.parametrize("kind, completed", [("before", False), ("after", True), ("drop", True), ("late", True)])
def test_callback_faults_record_or_not_as_their_kind_says(standin, kind, completed):
    standin.reset()
    standin.inject("callback", kind, status=503, seconds=1)
    url = f"{standin.url}/_standin/callbacks/act"
    try:
        answer = requests.post(url, json={"Output": {}}, timeout=0.3).status_code
    except requests.RequestException:
        answer = None
    assert answer == {"before": 503, "after": 503, "drop": None, "late": None}[kind]
    assert standin.callbacks[0]["completed"] is completed
    assert requests.post(url, json={"Output": {}}, timeout=5).status_code == (409 if completed else 200)


# ARM's request checks and the control routes

def test_request_without_bearer_token_is_refused_with_401(standin, client):
    url = f"{standin.url}{FACTORY_PATH}/pipelines/pipe/createRun?api-version={API_VERSION}"
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        response = requests.post(url, json={}, headers=headers, timeout=5)
        assert response.status_code == 401 and response.json()["error"]["code"] == "AuthenticationFailed"
    assert standin.runs == []


def test_request_with_missing_or_wrong_api_version_is_refused_with_400(standin, client):
    url = f"{standin.url}{FACTORY_PATH}/pipelines/pipe/createRun"
    bearer = {"Authorization": "Bearer dev-token"}
    missing = requests.post(url, json={}, headers=bearer, timeout=5)
    wrong = requests.post(f"{url}?api-version=2017-09-01-preview", json={}, headers=bearer, timeout=5)
    assert (missing.status_code, missing.json()["error"]["code"]) == (400, "MissingApiVersionParameter")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "InvalidApiVersionParameter")
    assert standin.runs == []


def test_control_routes_list_clear_and_inject_over_http(standin, client):
    run = create_run(client, parameters={"pause_id": "x"})
    listed = requests.get(f"{standin.url}/_standin/runs", timeout=5).json()
    assert [(r["runId"], r["pipelineName"], r["parameters"]) for r in listed] == [(run.run_id, "pipe", {"pause_id": "x"})]
    assert {"subscription", "resourceGroup", "factory", "runStart", "status"} <= listed[0].keys()
    assert requests.delete(f"{standin.url}/_standin/runs", timeout=5).status_code == 204
    assert requests.get(f"{standin.url}/_standin/runs", timeout=5).json() == []
    pipelines = requests.get(f"{standin.url}/_standin/pipelines", timeout=5).json()
    assert {"subscription": SUB, "resourceGroup": "rg", "factory": "factory", "pipeline": "pipe"} in pipelines
    fault = {"operation": "createRun", "kind": "before", "status": 409, "code": "Conflict", "message": "busy"}
    assert requests.post(f"{standin.url}/_standin/faults", json=fault, timeout=5).status_code == 204
    assert requests.post(f"{standin.url}/_standin/faults", json={"operation": "nope"}, timeout=5).status_code == 400
    with pytest.raises(HttpResponseError) as raised:
        create_run(client)
    assert (raised.value.status_code, raised.value.error.code, raised.value.error.message) == (409, "Conflict", "busy")


def test_help_page_lists_the_control_routes(standin):
    response = requests.get(f"{standin.url}/", timeout=5)
    assert response.status_code == 200 and "LOCAL STAND-IN" in response.text
    assert "/_standin/runs" in response.text and "/_standin/faults" in response.text


def test_unknown_route_answers_404_in_arm_error_shape(standin):
    response = requests.get(f"{standin.url}/subscriptions/sub-1/nothing", timeout=5)
    assert response.status_code == 404 and response.json()["error"]["code"] == "NotFound"
