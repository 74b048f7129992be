"""The local ADF stand-in throttles the real azure-mgmt-datafactory SDK as Azure Resource Manager does.

Buckets are scaled down (3 writes, 2 a second; 4 reads, 2 a second) and refill by a clock the
tests move, so nothing here waits. Every client is built with `retry_total=0`: the SDK's default
retry policy would wait out `Retry-After` and repeat a 429, hiding it from the test.
"""

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.datafactory import DataFactoryManagementClient
from azure.mgmt.datafactory.models import Factory, PipelineResource

from local_dev.adf_standin import DEFAULT_FACTORY, AdfStandin
from local_dev.arm_throttle import Throttle
from tests.support import ManualClock, create_pipeline, unsigned_jwt

SUB = "00000000-0000-0000-0000-0000000000dd"
OTHER_SUB = "00000000-0000-0000-0000-0000000000ee"
RG, FACTORY, PIPELINE = "rg", "factory", "pipe"
HTTP = {"enforce_https": False}
WRITES, READS = "x-ms-ratelimit-remaining-subscription-writes", "x-ms-ratelimit-remaining-subscription-reads"
GLOBAL_WRITES = "x-ms-ratelimit-remaining-subscription-global-writes"
# A repository pipeline whose parameters all have defaults: runs start without any setup.
NO_SETUP = "PausableLoad_Pause_KeyVault"


class Token:
    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, 4102444800)


def client(standin, token="dev-token", subscription=SUB):
    """The real SDK as `token`'s holder, with no retries so a 429 reaches the test."""
    return DataFactoryManagementClient(Token(token), subscription, base_url=standin.url, retry_total=0)


def headers(response, deserialized, _):
    """`cls=headers` makes an SDK call return its answer's headers."""
    return response.http_response.headers


def start(sdk, pipeline=PIPELINE, factory=(RG, FACTORY)):
    return sdk.pipelines.create_run(*factory, pipeline, parameters={"pause_id": "p"}, cls=headers, **HTTP)


def throttled(call):
    with pytest.raises(HttpResponseError) as raised:
        call()
    assert raised.value.status_code == 429
    return raised.value


@pytest.fixture(scope="module")
def clock():
    return ManualClock()


@pytest.fixture(scope="module")
def standin(clock):
    limits = Throttle(writes=3, writes_per_second=2, reads=4, reads_per_second=2, clock=clock)
    with AdfStandin(throttle=limits) as running:
        yield running


@pytest.fixture
def adf(standin, clock):
    """The stand-in with pipeline `pipe` in both subscriptions, and every bucket full again."""
    standin.reset()
    for subscription in (SUB, OTHER_SUB):
        create_pipeline(standin, PIPELINE, subscription=subscription, resource_group=RG, factory=FACTORY)
    clock.advance(3600)
    return standin


def test_the_write_past_the_bucket_is_429_with_retry_after_and_starts_no_run(adf):
    sdk = client(adf)
    assert [start(sdk)[WRITES] for _ in range(3)] == ["2", "1", "0"]
    refused = throttled(lambda: start(sdk))
    assert refused.response.headers["Retry-After"] == "1" and refused.response.headers[WRITES] == "0"
    assert refused.error.code == "SubscriptionRequestsThrottled"
    assert f"'write' requests for subscription '{SUB}'" in refused.error.message
    assert len(adf.runs) == 3  # the throttled request was not processed


def test_a_throttled_request_changes_nothing_and_meets_no_fault(adf, clock):
    sdk = client(adf)
    adf.inject("createRun", "before", status=500)
    for _ in range(3):
        sdk.factories.create_or_update(RG, FACTORY, Factory(location="westeurope"), **HTTP)
    throttled(lambda: sdk.pipelines.create_or_update(RG, FACTORY, "new-pipe", PipelineResource(activities=[]), **HTTP))
    throttled(lambda: start(sdk))
    assert (SUB, RG, FACTORY, "new-pipe") not in adf.pipelines and (SUB, RG, FACTORY, PIPELINE) in adf.pipelines
    clock.advance(0.5)
    with pytest.raises(HttpResponseError) as faulted:  # the fault waited for a request that got through
        start(sdk)
    assert faulted.value.status_code == 500 and adf.runs == []


def test_every_answer_counts_down_its_own_kind_errors_too(adf):
    sdk = client(adf)
    counts = [sdk.pipelines.get(RG, FACTORY, PIPELINE, cls=headers, **HTTP)[READS] for _ in range(3)]
    with pytest.raises(ResourceNotFoundError) as missing:
        sdk.pipelines.get(RG, FACTORY, "no-such-pipe", **HTTP)
    assert counts == ["3", "2", "1"] and missing.value.response.headers[READS] == "0"
    assert WRITES not in missing.value.response.headers
    refused = throttled(lambda: sdk.pipelines.get(RG, FACTORY, PIPELINE, **HTTP))
    assert "'read' requests" in refused.error.message
    answer = start(sdk)  # reads spent, writes untouched
    assert answer[WRITES] == "2" and READS not in answer


def test_the_buckets_refill_at_their_rate_up_to_their_size(adf, clock):
    sdk = client(adf)
    for _ in range(3):
        start(sdk)
    clock.advance(0.4)  # 0.8 of a token
    assert throttled(lambda: start(sdk)).response.headers["Retry-After"] == "1"
    clock.advance(0.1)
    assert start(sdk)[WRITES] == "0"
    throttled(lambda: start(sdk))
    clock.advance(60)
    assert start(sdk)[WRITES] == "2"


def test_subscriptions_never_share_a_bucket(adf):
    for _ in range(3):
        start(client(adf))
    throttled(lambda: start(client(adf)))
    assert start(client(adf, subscription=OTHER_SUB))[WRITES] == "2"


def test_identities_never_share_a_bucket_and_a_jwt_counts_against_its_object_id(adf):
    alice_1, alice_2 = unsigned_jwt(oid="alice", iat=1), unsigned_jwt(oid="alice", iat=2)
    start(client(adf, alice_1))
    start(client(adf, alice_2))
    assert start(client(adf, alice_1))[WRITES] == "0"  # one principal, whichever of its tokens
    refused = throttled(lambda: start(client(adf, alice_2)))
    assert "actor 'alice'" in refused.error.message
    assert start(client(adf, unsigned_jwt(oid="bob")))[WRITES] == "2"
    assert start(client(adf, "dev-token"))[WRITES] == "2"
    assert start(client(adf, "other-dev-token"))[WRITES] == "2"


def test_the_principals_of_a_subscription_share_its_global_bucket():
    clock = ManualClock()
    with AdfStandin(throttle=Throttle(writes=2, global_factor=1.5, clock=clock)) as adf:  # 3 writes in all
        repo = (DEFAULT_FACTORY[1], DEFAULT_FACTORY[2])
        alice, bob = client(adf, "alice", DEFAULT_FACTORY[0]), client(adf, "bob", DEFAULT_FACTORY[0])
        assert [start(alice, NO_SETUP, repo)[GLOBAL_WRITES] for _ in range(2)] == ["2", "1"]
        assert start(bob, NO_SETUP, repo)[GLOBAL_WRITES] == "0"
        refused = throttled(lambda: start(bob, NO_SETUP, repo))
        assert refused.response.headers[WRITES] == "1" and len(adf.runs) == 3


def test_reset_fills_the_buckets(standin):
    standin.reset()
    sdk = client(standin, subscription=DEFAULT_FACTORY[0])
    for _ in range(4):
        sdk.pipelines.get(DEFAULT_FACTORY[1], DEFAULT_FACTORY[2], NO_SETUP, **HTTP)
    throttled(lambda: sdk.pipelines.get(DEFAULT_FACTORY[1], DEFAULT_FACTORY[2], NO_SETUP, **HTTP))
    standin.reset()
    assert sdk.pipelines.get(DEFAULT_FACTORY[1], DEFAULT_FACTORY[2], NO_SETUP, cls=headers, **HTTP)[READS] == "3"


def test_arms_own_sizes_by_default():
    with AdfStandin() as adf:
        sdk = client(adf, subscription=DEFAULT_FACTORY[0])
        repo = (DEFAULT_FACTORY[1], DEFAULT_FACTORY[2])
        written = sdk.pipelines.create_run(*repo, NO_SETUP, cls=headers, **HTTP)
        read = sdk.pipelines.get(*repo, NO_SETUP, cls=headers, **HTTP)
    assert (written[WRITES], written[GLOBAL_WRITES]) == ("199", "2999")
    assert (read[READS], read["x-ms-ratelimit-remaining-subscription-global-reads"]) == ("249", "3749")


def test_the_stand_in_counts_what_it_answered_and_throttled_per_operation_and_subscription():
    import requests

    from local_dev.adf_standin import AdfStandin
    from local_dev.arm_throttle import Throttle
    from tests.support import SUBSCRIPTION, create_pipeline, sdk_client

    with AdfStandin(throttle=Throttle(writes=4, writes_per_second=0.001)) as standin:
        create_pipeline(standin)  # two writes: the factory and the pipeline
        client = sdk_client(standin)
        outcomes = []
        for _ in range(3):
            try:
                client.pipelines.create_run("rg-data", "adf-test", "Load_Sales", parameters={"pause_id": "p"},
                                            enforce_https=False, retry_total=0)
                outcomes.append("run")
            except Exception as exc:
                outcomes.append(getattr(exc, "status_code", None))
        client.close()
        assert outcomes == ["run", "run", 429]
        with requests.get(f"{standin.url}/_standin/throttling", timeout=5) as answer:
            rows = answer.json()
        assert {"operation": "createRun", "subscription": SUBSCRIPTION, "answered": 2, "throttled": 1} in rows
