"""The local ADF stand-in answers the real azure-mgmt-datafactory SDK the way ARM does."""

import datetime

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceResponseTimeoutError
from azure.mgmt.datafactory import DataFactoryManagementClient
from azure.mgmt.datafactory.models import RunFilterParameters, RunQueryFilter

from local_dev.adf_standin import API_VERSION, AdfStandin

FACTORY_PATH = "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.DataFactory/factories/factory"


class DevCredential:
    """What the app uses locally: a fixed development token."""

    def get_token(self, *scopes, **kwargs):
        return AccessToken("dev-token", 4102444800)


@pytest.fixture(scope="module")
def standin():
    with AdfStandin(port=0) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_standin(standin):
    standin.reset()


@pytest.fixture
def client(standin):
    return DataFactoryManagementClient(DevCredential(), "sub-1", base_url=standin.url)


def create_run(client, pipeline="pipe", parameters=None, factory="factory"):
    return client.pipelines.create_run("rg", factory, pipeline, parameters=parameters, enforce_https=False)


def test_create_run_records_the_parameters_exactly_as_sent(standin, client):
    parameters = {"pause_id": "x", "count": 3, "approved": True, "nested": {"list": [1, None, "two"]}}

    run = create_run(client, parameters=parameters)

    [recorded] = standin.runs
    assert recorded["runId"] == run.run_id
    assert recorded["parameters"] == parameters
    assert (recorded["subscription"], recorded["resourceGroup"], recorded["factory"], recorded["pipelineName"]) == (
        "sub-1", "rg", "factory", "pipe",
    )
    assert recorded["status"] == "InProgress"


def test_create_run_without_parameters_records_an_empty_object(standin, client):
    create_run(client, parameters=None)
    create_run(client, parameters={})

    assert [run["parameters"] for run in standin.runs] == [{}, {}]


def test_create_run_records_the_recovery_query_options(standin, client):
    first = create_run(client)

    client.pipelines.create_run(
        "rg", "factory", "pipe", reference_pipeline_run_id=first.run_id, is_recovery=True,
        start_activity_name="Wait", enforce_https=False,
    )

    assert standin.runs[1]["createRunOptions"] == {
        "referencePipelineRunId": first.run_id, "isRecovery": True, "startActivityName": "Wait",
    }


def test_get_returns_the_run_in_progress_with_arm_fields(client):
    before = datetime.datetime.now(datetime.timezone.utc)
    run = create_run(client, parameters={"pause_id": "x", "count": 3})

    got = client.pipeline_runs.get("rg", "factory", run.run_id, enforce_https=False)

    assert got.run_id == run.run_id
    assert got.pipeline_name == "pipe"
    assert got.status == "InProgress"
    # ARM's PipelineRun carries parameters as strings; non-strings come back as JSON text.
    assert got.parameters == {"pause_id": "x", "count": "3"}
    assert got.invoked_by.invoked_by_type == "Manual"
    assert before - datetime.timedelta(seconds=1) <= got.run_start <= got.last_updated
    assert got.run_end is None


def test_cancel_marks_the_run_cancelled(client):
    run = create_run(client)

    client.pipeline_runs.cancel("rg", "factory", run.run_id, is_recursive=True, enforce_https=False)

    got = client.pipeline_runs.get("rg", "factory", run.run_id, enforce_https=False)
    assert got.status == "Cancelled"
    assert got.run_end >= got.run_start
    assert got.duration_in_ms >= 0


def test_query_by_factory_returns_only_that_pipelines_runs_in_the_time_window(client):
    now = datetime.datetime.now(datetime.timezone.utc)
    wanted = [create_run(client, pipeline="pipe-a").run_id for _ in range(2)]
    create_run(client, pipeline="pipe-b")
    create_run(client, pipeline="pipe-a", factory="other-factory")

    def query(after, before, pipelines):
        filters = [RunQueryFilter(operand="PipelineName", operator="In", values_property=pipelines)]
        found = client.pipeline_runs.query_by_factory(
            "rg", "factory",
            RunFilterParameters(last_updated_after=after, last_updated_before=before, filters=filters),
            enforce_https=False,
        )
        assert found.continuation_token is None
        return [run.run_id for run in found.value]

    minute = datetime.timedelta(minutes=1)
    assert query(now - minute, now + minute, ["pipe-a"]) == wanted
    assert query(now + minute, now + 2 * minute, ["pipe-a"]) == []
    assert query(now - minute, now + minute, ["pipe-c"]) == []


def test_query_by_factory_filters_by_status(client):
    now = datetime.datetime.now(datetime.timezone.utc)
    cancelled = create_run(client).run_id
    create_run(client)
    client.pipeline_runs.cancel("rg", "factory", cancelled, enforce_https=False)

    found = client.pipeline_runs.query_by_factory(
        "rg", "factory",
        {
            "lastUpdatedAfter": now - datetime.timedelta(minutes=1),
            "lastUpdatedBefore": now + datetime.timedelta(minutes=1),
            "filters": [{"operand": "Status", "operator": "Equals", "values": ["Cancelled"]}],
        },
        enforce_https=False,
    )

    assert [run.run_id for run in found.value] == [cancelled]


def test_query_by_factory_orders_by_run_start_descending(client):
    now = datetime.datetime.now(datetime.timezone.utc)
    created = [create_run(client).run_id for _ in range(3)]

    found = client.pipeline_runs.query_by_factory(
        "rg", "factory",
        {
            "lastUpdatedAfter": now - datetime.timedelta(minutes=1),
            "lastUpdatedBefore": now + datetime.timedelta(minutes=1),
            "orderBy": [{"orderBy": "RunStart", "order": "DESC"}],
        },
        enforce_https=False,
    )

    assert [run.run_id for run in found.value] == created[::-1]


def test_query_by_factory_with_an_unsupported_filter_is_refused_with_400(client):
    now = datetime.datetime.now(datetime.timezone.utc)

    with pytest.raises(HttpResponseError) as raised:
        client.pipeline_runs.query_by_factory(
            "rg", "factory",
            {
                "lastUpdatedAfter": now, "lastUpdatedBefore": now,
                "filters": [{"operand": "ActivityType", "operator": "Equals", "values": ["Wait"]}],
            },
            enforce_https=False,
        )

    assert raised.value.status_code == 400
    assert raised.value.error.code == "InvalidRequestContent"


def test_get_of_an_unknown_run_raises_resource_not_found(client):
    with pytest.raises(ResourceNotFoundError) as raised:
        client.pipeline_runs.get("rg", "factory", "no-such-run", enforce_https=False)

    assert raised.value.status_code == 404
    assert raised.value.error.code == "PipelineRunNotFound"


def test_get_of_a_run_from_another_factory_raises_resource_not_found(client):
    run = create_run(client, factory="factory")

    with pytest.raises(ResourceNotFoundError):
        client.pipeline_runs.get("rg", "other-factory", run.run_id, enforce_https=False)


def test_request_without_bearer_token_is_refused_with_401(standin):
    url = f"{standin.url}{FACTORY_PATH}/pipelines/pipe/createRun?api-version={API_VERSION}"

    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        response = requests.post(url, json={}, headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "AuthenticationFailed"

    assert standin.runs == []


def test_request_with_missing_or_wrong_api_version_is_refused_with_400(standin):
    url = f"{standin.url}{FACTORY_PATH}/pipelines/pipe/createRun"
    bearer = {"Authorization": "Bearer dev-token"}

    missing = requests.post(url, json={}, headers=bearer, timeout=5)
    wrong = requests.post(f"{url}?api-version=2017-09-01-preview", json={}, headers=bearer, timeout=5)

    assert (missing.status_code, missing.json()["error"]["code"]) == (400, "MissingApiVersionParameter")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "InvalidApiVersionParameter")
    assert standin.runs == []


def test_injected_500_without_retries_raises_and_records_nothing_then_the_next_call_succeeds(standin):
    client = DataFactoryManagementClient(DevCredential(), "sub-1", base_url=standin.url, retry_total=0)
    standin.fail_next(1, 500)

    with pytest.raises(HttpResponseError) as raised:
        create_run(client)
    assert raised.value.status_code == 500
    assert raised.value.error.code == "InternalServerError"
    assert standin.runs == []

    run = create_run(client)
    assert [recorded["runId"] for recorded in standin.runs] == [run.run_id]


def test_two_injected_500s_are_absorbed_by_default_sdk_retries_and_one_run_is_recorded(standin, client):
    standin.fail_next(2)

    run = create_run(client)  # three attempts; the SDK waits 0 s, then 1.6 s, between them

    assert [recorded["runId"] for recorded in standin.runs] == [run.run_id]


def test_injected_429_without_retry_after_is_not_retried_by_the_sdk_on_post(standin, client):
    standin.fail_next(1, 429, "TooManyRequests")

    with pytest.raises(HttpResponseError) as raised:
        create_run(client)

    assert raised.value.status_code == 429
    assert standin.runs == []


def test_delayed_create_run_times_out_in_the_client_and_reset_discards_it(standin, client):
    standin.delay(5)

    with pytest.raises(ServiceResponseTimeoutError):
        client.pipelines.create_run("rg", "factory", "pipe", enforce_https=False, read_timeout=0.3)

    standin.reset()  # wakes the delayed request, which then records nothing
    assert standin.runs == []
    create_run(client)  # and the delay is gone
    assert len(standin.runs) == 1


def test_standin_routes_list_clear_and_inject_failures_over_http(standin, client):
    run = create_run(client, parameters={"pause_id": "x"})

    listed = requests.get(f"{standin.url}/_standin/runs", timeout=5).json()
    assert [(r["runId"], r["pipelineName"], r["parameters"], r["status"]) for r in listed] == [
        (run.run_id, "pipe", {"pause_id": "x"}, "InProgress")
    ]
    assert {"subscription", "resourceGroup", "factory", "runStart"} <= listed[0].keys()

    assert requests.delete(f"{standin.url}/_standin/runs", timeout=5).status_code == 204
    assert requests.get(f"{standin.url}/_standin/runs", timeout=5).json() == []

    injected = {"count": 1, "status": 409, "code": "Conflict", "message": "busy"}
    assert requests.post(f"{standin.url}/_standin/fail", json=injected, timeout=5).status_code == 204
    with pytest.raises(HttpResponseError) as raised:
        create_run(client)
    assert (raised.value.status_code, raised.value.error.code, raised.value.error.message) == (409, "Conflict", "busy")


def test_help_page_lists_the_control_routes(standin):
    response = requests.get(f"{standin.url}/", timeout=5)

    assert response.status_code == 200
    assert "LOCAL STAND-IN" in response.text
    assert "/_standin/runs" in response.text and "/_standin/fail" in response.text


def test_unknown_route_answers_404_in_arm_error_shape(standin):
    response = requests.get(f"{standin.url}/subscriptions/sub-1/nothing", timeout=5)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NotFound"
