"""shared.targets.adf promises to check, start and find pipeline runs through the real azure-mgmt-datafactory SDK:
createRun is sent once and never repeated by the SDK's retry policy once it may have reached ADF (only a 429,
which ARM answers before processing anything, is tried again), a failure is `Refused` only when surely nothing
started and `Unknown` otherwise, a run whose answer was lost is found again by its `pause_id` parameter among
the target pipeline's runs, and a pause's target is checked to exist and to declare `pause_id`. Each test drives
an `Adf` gateway built from a plain `Settings` object against the strict ADF stand-in over HTTP.
"""

import logging
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared.settings import Limits, Settings
from tests.support import LOCAL_STORAGE
from shared.targets.adf import Adf, PipelineTarget, TargetProblem
from shared.targets.outside import Refused, Throttled, Unknown
from tests.support import SUBSCRIPTION, TARGET, create_pipeline, sdk_client

pytestmark = pytest.mark.integration


def gateway(url, **limits):
    """An Adf gateway for an ARM endpoint, with production limits unless shortened here."""
    return Adf(Settings(storage=LOCAL_STORAGE, arm_endpoint=url,
                        limits=Limits(**{"arm_read_timeout_seconds": 2, **limits})))


@pytest.fixture
def target():
    return PipelineTarget(**TARGET)


def pause_id():
    return uuid.uuid4().hex


def test_start_run_sends_one_create_run_with_the_parameters_to_the_targets_factory(adf_pipeline, target):
    parameters = {"pause_id": pause_id(), "day": "2026-11-25"}
    run_id = gateway(adf_pipeline.url).start_run(target, parameters)
    [run] = adf_pipeline.runs
    assert run["runId"] == run_id
    assert (run["subscription"], run["resourceGroup"], run["factory"], run["pipelineName"]) == \
        (SUBSCRIPTION, "rg-data", "adf-test", "Load_Sales")
    assert run["parametersAsSent"] == parameters
    assert run["createRunOptions"] == {}  # a fresh run: no rerun or recovery options


@pytest.mark.parametrize("kind, status, retry_after, code", [
    ("before", 500, None, "InternalServerError"),
    ("before", 503, None, "ServiceUnavailable"),
    ("before", 504, None, "GatewayTimeout"),
    ("before", 503, 0, "ServiceUnavailable"),  # azure-core repeats anything with Retry-After but a 429
    ("after", 500, None, "InternalServerError"),
    ("drop", 500, None, "NoResponse"),
    ("late", 500, None, "NoResponse"),
    ("truncated", 500, None, "UnreadableAnswer"),
])
def test_a_create_run_that_may_have_reached_adf_is_unknown_and_never_sent_twice(adf_pipeline, target, kind, status,
                                                                               retry_after, code):
    # The retry budget is left at production's: were createRun repeated, the one-off fault would be
    # followed by a second request that starts a run ("before") or a second run (the others).
    adf_pipeline.inject("createRun", kind, status=status, code=code, retry_after=retry_after, seconds=2)
    adf = gateway(adf_pipeline.url, arm_read_timeout_seconds=0.5)
    with pytest.raises(Unknown) as unknown:
        adf.start_run(target, {"pause_id": pause_id()})
    assert len(adf_pipeline.runs) == (0 if kind == "before" else 1)
    assert unknown.value.code == code


def test_a_create_run_answered_with_an_html_page_is_an_unreadable_answer(adf_pipeline, target):
    adf_pipeline.inject("createRun", "garbled")
    with pytest.raises(Unknown) as unknown:
        gateway(adf_pipeline.url).start_run(target, {"pause_id": pause_id()})
    assert len(adf_pipeline.runs) == 1  # Unknown, and not repeated: this much holds today
    assert unknown.value.code == "UnreadableAnswer"


def test_throttling_is_the_one_refusal_repeated_and_only_while_a_person_can_wait(adf_pipeline, target):
    adf = gateway(adf_pipeline.url, arm_retry_total=2, arm_max_retry_after_seconds=1)
    adf_pipeline.inject("createRun", "before", count=2, status=429, code="TooManyRequests", retry_after=0)
    run_id = adf.start_run(target, {"pause_id": pause_id()})  # ARM did not process it: sent again
    assert [run["runId"] for run in adf_pipeline.runs] == [run_id]
    adf_pipeline.inject("createRun", "before", count=3, status=429, code="TooManyRequests", retry_after=0)
    with pytest.raises(Throttled) as throttled:  # throttled past the retry budget: refused, nothing more started
        adf.start_run(target, {"pause_id": pause_id()})
    assert (throttled.value.code, throttled.value.status) == ("TooManyRequests", 429)
    adf_pipeline.inject("createRun", "before", count=1, status=429, code="TooManyRequests", retry_after=3600)
    started = time.monotonic()
    with pytest.raises(Throttled) as throttled:  # ARM asks for an hour: no early retry, told at once
        adf.start_run(target, {"pause_id": pause_id()})
    assert time.monotonic() - started < 1 and throttled.value.retry_after == 300  # capped at five minutes
    assert len(adf_pipeline.runs) == 1


def test_a_create_run_that_surely_started_nothing_is_refused(refused_port, adf_pipeline, target):
    with pytest.raises(Refused) as refused:
        gateway(adf_pipeline.url).start_run(target, {"day": "2026-11-25"})  # pause_id is declared without default
    assert (refused.value.code, refused.value.status) == ("BadRequest", 400)
    assert "pause_id" in str(refused.value) and not refused.value.transient
    assert adf_pipeline.runs == []
    with pytest.raises(Refused) as unreachable:  # nothing listens: not a byte of createRun left
        gateway(f"http://127.0.0.1:{refused_port}", arm_retry_total=0).start_run(target, {"pause_id": pause_id()})
    assert unreachable.value.code == "Unreachable" and unreachable.value.transient


@pytest.mark.parametrize("change, field", [({"pipeline_name": "Load_Nothing"}, "pipeline_name"),
                                           ({"factory_name": "adf-elsewhere"}, "factory_name")])
def test_check_target_names_the_field_that_does_not_exist(adf_pipeline, change, field):
    problem = gateway(adf_pipeline.url).check_target(PipelineTarget(**{**TARGET, **change}))
    assert isinstance(problem, TargetProblem)
    assert (problem.field, problem.rule) == (field, "not_found") and "does not exist" in problem.message


def test_check_target_refuses_a_pipeline_without_a_pause_id_parameter(adf_pipeline):
    from azure.mgmt.datafactory.models import ParameterSpecification, PipelineResource

    sdk_client(adf_pipeline).pipelines.create_or_update(
        TARGET["resource_group"], TARGET["factory_name"], "Load_Plain",
        PipelineResource(activities=[], parameters={"day": ParameterSpecification(type="String")}), enforce_https=False)
    problem = gateway(adf_pipeline.url).check_target(PipelineTarget(**{**TARGET, "pipeline_name": "Load_Plain"}))
    assert (problem.field, problem.rule) == ("pipeline_name", "pause_id_parameter")


def test_check_target_that_cannot_ask_adf_lets_the_pause_through_and_logs_why(refused_port, target, caplog):
    caplog.set_level(logging.WARNING, logger="shared.targets.adf")
    assert gateway(f"http://127.0.0.1:{refused_port}", arm_retry_total=0).check_target(target) is None
    assert any("could not check pipeline adf-test/Load_Sales" in r.getMessage() for r in caplog.records)


def test_a_pipeline_seen_to_exist_is_remembered_for_the_ttl_and_a_missing_one_is_not(adf_pipeline, target):
    remembering, forgetting = gateway(adf_pipeline.url), gateway(adf_pipeline.url, pipeline_check_ttl_seconds=0.05)
    assert remembering.check_target(target) is None and forgetting.check_target(target) is None
    adf_pipeline.reset()  # the pipeline is gone
    time.sleep(0.1)  # past the shortened TTL
    assert remembering.check_target(target) is None  # remembered: no request sent
    assert forgetting.check_target(target).rule == "not_found"
    create_pipeline(adf_pipeline)
    assert forgetting.check_target(target) is None  # "not found" was not remembered


def test_get_run_reads_status_and_message_and_run_missing_tells_an_unknown_run(adf_pipeline, target):
    adf = gateway(adf_pipeline.url)
    run_id = adf.start_run(target, {"pause_id": pause_id()})
    assert adf.get_run(target, run_id) == {"pipeline_name": "Load_Sales", "status": "Queued", "message": ""}
    adf_pipeline.finish_run(run_id, "Failed", "Copy failed")
    assert adf.get_run(target, run_id) == {"pipeline_name": "Load_Sales", "status": "Failed", "message": "Copy failed"}
    assert adf.run_missing(target, run_id) is False
    assert adf.run_missing(target, str(uuid.uuid4())) is True


def test_a_run_adf_cannot_be_asked_about_is_unknown_never_missing(adf_pipeline, target):
    adf = gateway(adf_pipeline.url)
    run_id = adf.start_run(target, {"pause_id": pause_id()})
    adf_pipeline.inject("getRun", "before", count=2, status=403, code="AuthorizationFailed")
    with pytest.raises(Unknown) as unknown:
        adf.get_run(target, run_id)
    assert unknown.value.code == "AuthorizationFailed"
    assert adf.run_missing(target, str(uuid.uuid4())) is False  # cannot tell: not "missing"


def test_find_run_finds_this_pauses_run_of_this_pipeline_only(adf_pipeline, target):
    create_pipeline(adf_pipeline, name="Load_Other")
    adf, since = gateway(adf_pipeline.url), datetime.now(timezone.utc) - timedelta(seconds=1)
    mine, theirs, elsewhere = pause_id(), pause_id(), pause_id()
    run_id = adf.start_run(target, {"pause_id": mine})
    adf.start_run(target, {"pause_id": theirs})
    adf.start_run(PipelineTarget(**{**TARGET, "pipeline_name": "Load_Other"}), {"pause_id": elsewhere})
    assert adf.find_run(target, mine, since) == run_id
    assert adf.find_run(target, elsewhere, since) is None  # the same factory, another pipeline


def test_find_run_repeats_its_read_but_says_unknown_when_adf_cannot_be_asked(adf_pipeline, target):
    adf, since = gateway(adf_pipeline.url), datetime.now(timezone.utc) - timedelta(seconds=1)
    mine = pause_id()
    run_id = adf.start_run(target, {"pause_id": mine})
    adf_pipeline.inject("queryPipelineRuns", "before", status=503, code="ServiceUnavailable")
    assert adf.find_run(target, mine, since) == run_id  # a POST that only reads is retried like a GET
    adf_pipeline.inject("queryPipelineRuns", "before", status=403, code="AuthorizationFailed")
    with pytest.raises(Unknown) as failed:
        adf.find_run(target, mine, since)
    assert failed.value.code == "RunLookupFailed" and "AuthorizationFailed" in str(failed.value)
    with pytest.raises(Unknown) as incomplete:
        adf.find_run(target, mine, since, deadline=time.monotonic() - 1)
    assert incomplete.value.code == "RunLookupIncomplete"


@pytest.mark.parametrize("patterns, allowed", [
    ((), True),
    ((f"{SUBSCRIPTION}/rg-data/adf-test",), True),
    ((f"{SUBSCRIPTION.upper()}/RG-DATA/ADF-Test",), True),  # ARM names are case-insensitive
    (("*/rg-data/*",), True),
    (("other/rg-data/adf-test", f"{SUBSCRIPTION}/*/adf-test"), True),
    ((f"{SUBSCRIPTION}/rg-data/adf-prod",), False),
    (("*/rg-data",), False),  # not subscription/resourceGroup/factory: admits nothing
    (("*/*/adf",), False),  # a part is matched whole, not as a prefix
])
def test_allowed_factories_patterns_admit_by_whole_parts_case_insensitively(target, patterns, allowed):
    assert target.allowed_by(patterns) is allowed


def test_declared_parameters_are_read_through_the_sdk_in_the_pipelines_order(adf):
    from local_dev.adf_standin import DEFAULT_FACTORY

    subscription, resource_group, factory = DEFAULT_FACTORY
    publish = PipelineTarget(subscription, resource_group, factory, "PausableLoad_Publish")
    declared = gateway(adf.url).declared_parameters(publish)
    assert list(declared) == ["pause_id", "CutoffDate", "BatchSize", "FullReload", "Regions", "ApiKey"]
    assert declared["CutoffDate"] == {"type": "String"}  # no default: the key is absent
    assert all(type(spec["type"]) is str for spec in declared.values())  # not the SDK's enum
    assert declared["BatchSize"] == {"type": "Int", "default_value": 5000}
    assert declared["FullReload"] == {"type": "Bool", "default_value": False}  # a false default is a default
    assert declared["Regions"] == {"type": "Array", "default_value": ["emea", "amer"]}
    missing = gateway(adf.url).declared_parameters(PipelineTarget(subscription, resource_group, factory, "Nope"))
    assert isinstance(missing, TargetProblem) and (missing.field, missing.rule) == ("pipeline_name", "not_found")


def test_declared_parameters_that_cannot_be_read_are_unknown(refused_port, target):
    with pytest.raises(Unknown):
        gateway(f"http://127.0.0.1:{refused_port}", arm_retry_total=0).declared_parameters(target)
