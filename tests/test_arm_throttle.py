"""ARM's token buckets as the local stand-in keeps them (the stand-in's answers: test_adf_throttling.py)."""

import pytest

from local_dev.arm_throttle import ArmThrottle, Throttle, kind_of, principal_of, throttle_from_setting
from tests.support import ManualClock, unsigned_jwt

SUB = "00000000-0000-0000-0000-0000000000cc"


@pytest.fixture
def clock():
    return ManualClock()


def test_the_defaults_are_arms_sizes_and_rates():
    limits = Throttle()
    assert (limits.reads, limits.reads_per_second) == (250, 25)
    assert (limits.writes, limits.writes_per_second) == (200, 10)
    assert (limits.deletes, limits.deletes_per_second) == (200, 10)
    assert limits.global_factor == 15


def test_scaling_multiplies_every_bucket_and_rate():
    limits = Throttle().scaled(0.01)
    assert (limits.reads, limits.reads_per_second, limits.writes, limits.writes_per_second) == (2, 0.25, 2, 0.1)
    assert Throttle().scaled(0.001).writes == 1  # never an empty bucket
    assert Throttle().scaled(1000).writes == 200_000


@pytest.mark.parametrize("text", ["0", "-1", "ten", "nan"])
def test_the_scale_setting_must_be_a_positive_number(text):
    with pytest.raises(ValueError, match="ADF_STANDIN_THROTTLE_SCALE"):
        throttle_from_setting(text)


def test_the_scale_setting_unset_or_empty_means_arms_own_limits():
    assert throttle_from_setting(None) == Throttle() == throttle_from_setting(" ")
    assert throttle_from_setting("2.5").writes == 500


def test_bad_limits_are_refused():
    with pytest.raises(ValueError):
        Throttle(writes=0)
    with pytest.raises(ValueError):
        Throttle(reads_per_second=0)
    with pytest.raises(ValueError):
        Throttle(global_factor=0.5)


@pytest.mark.parametrize("method, kind", [("GET", "reads"), ("HEAD", "reads"), ("PUT", "writes"), ("PATCH", "writes"),
                                          ("POST", "writes"), ("DELETE", "deletes")])
def test_each_method_counts_against_its_kind(method, kind):
    assert kind_of(method) == kind


def test_a_jwts_principal_is_its_object_id_else_its_app_id_else_its_subject():
    assert principal_of(unsigned_jwt(oid="o", appid="a", sub="s")) == "o"
    assert principal_of(unsigned_jwt(appid="a", sub="s")) == "a"
    assert principal_of(unsigned_jwt(sub="s")) == "s"
    assert principal_of("anything", claims={"oid": "checked"}) == "checked"  # the claims the stand-in verified


def test_a_plain_token_is_its_own_principal_and_never_shown():
    first, second = principal_of("dev-token"), principal_of("other-token")
    assert first != second and first == principal_of("dev-token")
    assert "dev-token" not in first
    assert principal_of("not.a.jwt") == principal_of("not.a.jwt") != principal_of("not.a.jwt2")


def test_a_bucket_counts_down_then_refuses_with_the_seconds_until_a_token(clock):
    throttle = ArmThrottle(Throttle(writes=2, writes_per_second=0.25, clock=clock))
    remaining = [throttle.take(SUB, "p", "POST").headers["x-ms-ratelimit-remaining-subscription-writes"]
                 for _ in range(2)]
    refused = throttle.take(SUB, "p", "POST")
    assert remaining == ["1", "0"] and not refused.allowed
    assert refused.retry_after == 4 and refused.headers["Retry-After"] == "4"
    assert refused.message == (f"Number of 'write' requests for subscription '{SUB}' actor 'p' exceeded. Please try "
                               "again after '4' seconds after additional tokens are available. Refer to "
                               "https://aka.ms/arm-throttling for additional information.")
    clock.advance(3)
    assert throttle.take(SUB, "p", "POST").retry_after == 1  # 0.75 of a token: a whole second at least


def test_a_refused_request_takes_no_token(clock):
    throttle = ArmThrottle(Throttle(writes=1, writes_per_second=1, clock=clock))
    throttle.take(SUB, "p", "PUT")
    for _ in range(5):
        assert not throttle.take(SUB, "p", "PUT").allowed
    clock.advance(1)
    assert throttle.take(SUB, "p", "PUT").allowed


def test_buckets_refill_at_their_rate_and_never_beyond_their_size(clock):
    throttle = ArmThrottle(Throttle(reads=5, reads_per_second=2, clock=clock))
    for _ in range(5):
        throttle.take(SUB, "p", "GET")
    clock.advance(1)
    assert throttle.take(SUB, "p", "GET").headers["x-ms-ratelimit-remaining-subscription-reads"] == "1"
    clock.advance(3600)
    assert throttle.take(SUB, "p", "GET").headers["x-ms-ratelimit-remaining-subscription-reads"] == "4"


def test_kinds_principals_and_subscriptions_each_have_their_own_bucket(clock):
    throttle = ArmThrottle(Throttle(reads=1, writes=1, deletes=1, clock=clock))
    throttle.take(SUB, "p", "POST")
    assert not throttle.take(SUB, "p", "POST").allowed
    assert throttle.take(SUB, "p", "GET").allowed and throttle.take(SUB, "p", "DELETE").allowed
    assert throttle.take(SUB, "q", "POST").allowed
    assert throttle.take(SUB.replace("cc", "dd"), "p", "POST").allowed
    assert not throttle.take(SUB.upper(), "p", "POST").allowed  # subscription ids are case-insensitive


def test_the_principals_of_a_subscription_share_its_global_bucket(clock):
    throttle = ArmThrottle(Throttle(writes=2, global_factor=1.5, clock=clock))  # 3 writes for all principals
    assert throttle.take(SUB, "p", "POST").headers["x-ms-ratelimit-remaining-subscription-global-writes"] == "2"
    throttle.take(SUB, "p", "POST")
    assert throttle.take(SUB, "q", "POST").allowed
    refused = throttle.take(SUB, "q", "POST")
    assert not refused.allowed
    assert refused.headers["x-ms-ratelimit-remaining-subscription-writes"] == "1"
    assert refused.headers["x-ms-ratelimit-remaining-subscription-global-writes"] == "0"


def test_the_first_answers_with_arms_sizes_say_what_arm_says():
    throttle = ArmThrottle()
    assert throttle.take(SUB, "p", "POST").headers == {"x-ms-ratelimit-remaining-subscription-writes": "199",
                                                       "x-ms-ratelimit-remaining-subscription-global-writes": "2999"}
    assert throttle.take(SUB, "p", "GET").headers == {"x-ms-ratelimit-remaining-subscription-reads": "249",
                                                      "x-ms-ratelimit-remaining-subscription-global-reads": "3749"}


def test_reset_fills_every_bucket(clock):
    throttle = ArmThrottle(Throttle(writes=1, clock=clock))
    throttle.take(SUB, "p", "POST")
    throttle.reset()
    assert throttle.take(SUB, "p", "POST").allowed
