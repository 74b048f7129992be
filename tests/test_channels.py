"""Chat channels (shared/notify/channels.py): a name stands for a webhook in an app setting, on an
allowed host; one post either surely arrived, surely did not ("failed"), or may have ("unknown")."""

import time
from datetime import timedelta

import pytest

from shared.notify import channels
from shared.notify.channels import ChannelUnusable, NotPosted
from shared.settings import Limits, Settings
from tests.support import LOCAL_STORAGE
from tests.test_message import request

SECRET = "sig=s3cret"


def settings(hosts=("127.0.0.1",), **limits) -> Settings:
    return Settings(storage=LOCAL_STORAGE, channel_allowed_hosts=hosts,
                    limits=Limits(**{"channel_connect_timeout_seconds": 0.5, "channel_read_timeout_seconds": 1,
                                     **limits}))


@pytest.fixture
def webhook(chat, monkeypatch):
    """set up channel `name` as `kind` on the stand-in; return (channel, the stand-in's webhook name)."""
    def make(kind, name):
        monkeypatch.setenv(channels.setting_name(name), f"{kind}:{chat.url(kind, name)}?{SECRET}")
        return channels.channel(name, settings())
    return make


def test_a_channel_is_its_app_setting_and_its_url_stays_out_of_sight(webhook):
    found = webhook("teams", "data-approvals")
    assert (found.name, found.kind) == ("data-approvals", "teams") and found.url.host == "127.0.0.1"
    assert SECRET not in repr(found) and channels.setting_name("data-approvals") == "CHANNEL_DATA_APPROVALS"


@pytest.mark.parametrize("name, value, says", [
    ("Approvals", None, "is not a channel name"),
    ("allowed-hosts", "slack:https://hooks.slack.com/x", "CHANNEL_ALLOWED_HOSTS is an app setting of its own"),
    ("read-timeout-seconds", None, "CHANNEL_READ_TIMEOUT_SECONDS is an app setting of its own"),
    ("a" * 41, None, "is not a channel name"),
    ("unset", None, "channel unset is not set up: app setting CHANNEL_UNSET is not set"),
    ("odd", "discord:https://hooks.slack.com/x", "CHANNEL_ODD must be teams:<https URL> or slack:<https URL>"),
    ("plain", "slack:http://hooks.slack.com/x", "must use https"),
    ("elsewhere", f"slack:https://evil.example/x?{SECRET}", "host evil.example is not in CHANNEL_ALLOWED_HOSTS"),
])
def test_a_channel_that_cannot_be_used_says_why_without_its_url(monkeypatch, name, value, says):
    monkeypatch.delenv(channels.setting_name(name), raising=False)
    if value is not None:
        monkeypatch.setenv(channels.setting_name(name), value)
    with pytest.raises(ChannelUnusable) as refused:
        channels.channel(name, settings(hosts=("hooks.slack.com",)))
    assert says in str(refused.value) and SECRET not in str(refused.value)


@pytest.mark.parametrize("kind", ["teams", "slack"])
def test_a_post_the_service_takes_arrives_once(chat, webhook, kind):
    target = webhook(kind, f"takes-{kind}")
    channels.post(target, request(), settings())
    [body] = chat.posts(kind, f"takes-{kind}")
    assert "https://app.example/api/restart/r1" in str(body)


@pytest.mark.parametrize("error, status", [("channel_not_found", 404), ("channel_is_archived", 410)])
def test_a_refused_post_failed_and_says_what_slack_said(chat, webhook, error, status):
    target = webhook("slack", f"refuses-{status}")
    chat.answer("slack", f"refuses-{status}", error)
    with pytest.raises(NotPosted) as failed:
        channels.post(target, request(), settings())
    assert failed.value.outcome == "failed" and f"HTTP {status}: {error}" in str(failed.value)
    assert SECRET not in str(failed.value)


def test_a_throttled_post_is_sent_again_after_retry_after_within_the_limit(chat, webhook):
    target = webhook("slack", "throttles")
    chat.answer("slack", "throttles", status=429, retry_after=1)
    started = time.monotonic()
    channels.post(target, request(), settings(channel_retry_after_max_seconds=2))
    assert time.monotonic() - started >= 1 and len(chat.posts("slack", "throttles")) == 1


def test_a_retry_after_beyond_the_limit_is_a_refusal_not_a_wait(chat, webhook):
    target = webhook("slack", "throttles-long")
    chat.answer("slack", "throttles-long", status=429, retry_after=30)
    started = time.monotonic()
    with pytest.raises(NotPosted) as failed:
        channels.post(target, request(), settings())
    assert failed.value.outcome == "failed" and "HTTP 429" in str(failed.value)
    assert time.monotonic() - started < 2 and chat.posts("slack", "throttles-long") == []


def test_a_retry_after_given_as_an_http_date_is_waited_out_and_one_too_far_off_is_a_refusal(chat, webhook):
    from email.utils import format_datetime

    from shared.clock import utcnow

    target = webhook("slack", "throttles-date")
    chat.answer("slack", "throttles-date", status=429, retry_after=format_datetime(
        utcnow() + timedelta(seconds=2), usegmt=True))
    started = time.monotonic()
    channels.post(target, request(), settings(channel_retry_after_max_seconds=3))
    assert time.monotonic() - started >= 1 and len(chat.posts("slack", "throttles-date")) == 1
    chat.answer("slack", "throttles-date", status=429, retry_after=format_datetime(
        utcnow() + timedelta(seconds=60), usegmt=True))
    with pytest.raises(NotPosted) as failed:
        channels.post(target, request(), settings(channel_retry_after_max_seconds=3))
    assert failed.value.outcome == "failed" and failed.value.retry_after > 50


@pytest.mark.parametrize("value, seconds", [("7", 7.0), ("0", 0.0), ("-1", None), ("nan", None), ("86400", None),
                                            ("soon", None), ("Sat, 01 Jan 2000 00:00:00 -0000", None),
                                            ("Sat, 01 Jan 2000 00:00:00 GMT", 0.0), ("", None),
                                            ("Tue, 01 Dec 99999999999999999999 00:00:00 GMT", None),
                                            ("Tue, 01 Dec 2026 00:00:00 +9999999999999999999999", None)])
def test_retry_after_is_read_as_seconds_or_a_date_and_anything_else_is_not_a_wait(value, seconds):
    assert channels._seconds(value) == seconds


def test_a_lost_answer_is_unknown_and_not_sent_again(chat, webhook):
    target = webhook("teams", "loses")
    chat.lose("teams", "loses")
    with pytest.raises(NotPosted) as lost:
        channels.post(target, request(), settings())
    assert lost.value.outcome == "unknown" and len(chat.posts("teams", "loses")) == 1


def test_a_server_error_may_have_posted_so_it_is_unknown(chat, webhook):
    target = webhook("teams", "breaks")
    chat.answer("teams", "breaks", status=502)
    with pytest.raises(NotPosted) as broke:
        channels.post(target, request(), settings())
    assert broke.value.outcome == "unknown" and "HTTP 502" in str(broke.value)


def test_a_webhook_nobody_answers_on_surely_got_nothing(refused_port, monkeypatch):
    monkeypatch.setenv("CHANNEL_GONE", f"teams:http://127.0.0.1:{refused_port}/teams/gone?{SECRET}")
    with pytest.raises(NotPosted) as failed:
        channels.post(channels.channel("gone", settings()), request(), settings())
    assert failed.value.outcome == "failed" and "nothing was sent" in str(failed.value)
    assert SECRET not in str(failed.value)


def test_an_answer_cut_short_may_have_posted_so_it_is_unknown(monkeypatch):
    from local_dev.bad_peers import BadPeer

    with BadPeer("short_after_request") as peer:
        monkeypatch.setenv("CHANNEL_SHORT", f"slack:http://127.0.0.1:{peer.port}/slack/short?{SECRET}")
        with pytest.raises(NotPosted) as cut:
            channels.post(channels.channel("short", settings()), request(), settings())
    assert cut.value.outcome == "unknown" and len(peer.received) == 1 and SECRET not in str(cut.value)


def test_a_retry_after_of_zero_is_waited_out_a_few_times_never_for_ever(chat, webhook):
    target = webhook("slack", "throttles-zero")
    chat.answer("slack", "throttles-zero", status=429, retry_after=0, times=50)
    with pytest.raises(NotPosted) as failed:
        channels.post(target, request(), settings(channel_retry_after_max_seconds=5))
    assert failed.value.outcome == "failed" and chat.hits("slack", "throttles-zero") == 1 + channels.THROTTLED_TRIES


def test_a_webhooks_path_never_reaches_a_log_line(chat, monkeypatch, caplog):
    """A Slack webhook's secret is its path (/services/T…/B…/token): urllib3's debug lines show no target."""
    import logging

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CHANNEL_LOGGED", f"slack:{chat.url('slack', 'T0SECRET-B0SECRET')}?{SECRET}")
    channels.post(channels.channel("logged", settings()), request(), settings())
    assert chat.posts("slack", "T0SECRET-B0SECRET") and "urllib3" in {r.name.split(".")[0] for r in caplog.records}
    assert "T0SECRET" not in caplog.text and SECRET not in caplog.text and "(target hidden)" in caplog.text
