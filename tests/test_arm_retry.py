"""shared.targets.arm_retry: the retry policy of every ARM client, driven through the real SDK against the stand-in.
A read is retried on a 5xx and waits a short 429 out for a person; the app's own work
(`hand_back_throttling=True`) gets the 429 back at once, with nothing waited and nothing repeated. (createRun's
side, never repeated once it may have reached ADF, is tested in tests/test_adf.py.)"""

import time

import pytest
from azure.core.exceptions import HttpResponseError

from shared.settings import Limits
from shared.targets.adf import DEV_TOKEN
from shared.targets.arm_retry import retry_policy
from tests.support import TARGET, sdk_client

pytestmark = pytest.mark.integration


def client(adf, **limits):
    return sdk_client(adf, token=DEV_TOKEN,
                      retry_policy=retry_policy(Limits(**{"arm_retry_total": 2, "arm_max_retry_after_seconds": 5,
                                                          **limits})))


def get_run(sdk, run_id, **options):
    return sdk.pipeline_runs.get(TARGET["resource_group"], TARGET["factory_name"], run_id, enforce_https=False,
                                 **options)


def started_run(adf) -> str:
    return sdk_client(adf).pipelines.create_run(TARGET["resource_group"], TARGET["factory_name"],
                                                TARGET["pipeline_name"], parameters={"pause_id": "p"},
                                                enforce_https=False).run_id


def test_a_read_is_retried_after_a_5xx_and_a_short_429(adf_pipeline):
    run_id = started_run(adf_pipeline)
    adf_pipeline.inject("getRun", "before", status=503, code="ServiceUnavailable")
    adf_pipeline.inject("getRun", "before", status=429, code="SubscriptionRequestsThrottled", retry_after=1)
    started = time.monotonic()
    assert get_run(client(adf_pipeline), run_id).run_id == run_id
    assert time.monotonic() - started >= 1  # Retry-After was waited out


def test_the_apps_own_work_gets_a_429_back_at_once_and_nothing_is_sent_again(adf_pipeline):
    run_id = started_run(adf_pipeline)
    adf_pipeline.inject("getRun", "before", count=2, status=429, code="SubscriptionRequestsThrottled", retry_after=3)
    started = time.monotonic()
    for _ in range(2):  # each call meets one fault: sent once, not again
        with pytest.raises(HttpResponseError) as raised:
            get_run(client(adf_pipeline), run_id, hand_back_throttling=True)
        assert raised.value.status_code == 429
    assert time.monotonic() - started < 3  # nothing waited (one Retry-After would be 3 s)
    assert get_run(client(adf_pipeline), run_id, hand_back_throttling=True).run_id == run_id
    adf_pipeline.inject("getRun", "before", status=503, code="ServiceUnavailable")
    assert get_run(client(adf_pipeline), run_id, hand_back_throttling=True).run_id == run_id  # a 5xx: retried


def test_a_429_asking_longer_than_a_person_can_wait_is_handed_back(adf_pipeline):
    run_id = started_run(adf_pipeline)
    adf_pipeline.inject("getRun", "before", status=429, code="SubscriptionRequestsThrottled", retry_after=30)
    started = time.monotonic()
    with pytest.raises(HttpResponseError) as raised:
        get_run(client(adf_pipeline, arm_max_retry_after_seconds=5), run_id)
    assert raised.value.status_code == 429 and time.monotonic() - started < 5  # (waiting it out: 30 s)
