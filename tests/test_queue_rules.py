"""The Functions host's queue-trigger rules the local host follows: host.json's queues settings, the polling
back-off, poison queue names, message encoding and connection settings."""

import json
from pathlib import Path

import pytest

from local_dev.queue_rules import (PollingBackoff, QueuesOptions, QueuesSettingError, check_queue_name, decode_body,
                                   parse_timespan, poison_queue_name, queue_service, read_queues_options)

ROOT = Path(__file__).resolve().parent.parent


def test_the_apps_host_json_sets_the_contracts_batches_and_dequeue_count():
    options = read_queues_options(ROOT / "host.json")
    assert (options.batch_size, options.max_dequeue_count, options.message_encoding) == (16, 5, "base64")
    assert options.concurrency == options.batch_size + options.threshold


def test_host_json_durations_are_timespans_and_left_out_settings_take_the_hosts_defaults(tmp_path):
    host = tmp_path / "host.json"
    host.write_text(json.dumps({"extensions": {"queues": {"batchSize": 4, "newBatchThreshold": 1,
                                                          "maxPollingInterval": "00:00:02.5",
                                                          "visibilityTimeout": "00:01:00"}}}))
    options = read_queues_options(host, lease_seconds=3)
    assert (options.batch_size, options.threshold, options.concurrency) == (4, 1, 5)
    assert (options.max_polling_interval, options.visibility_timeout, options.lease_seconds) == (2.5, 60.0, 3)
    assert options.max_dequeue_count == 5 and options.message_encoding == "base64"
    defaults = read_queues_options(tmp_path / "absent.json")
    assert (defaults.batch_size, defaults.max_polling_interval, defaults.visibility_timeout) == (16, 60.0, 0.0)
    assert defaults.lease_seconds == 600


@pytest.mark.parametrize("text, seconds", [("00:00:30", 30), ("00:01", 60), ("1.02:00:00", 93600), ("0:0:0.1", 0.1)])
def test_timespans_read_as_the_host_reads_them(text, seconds):
    assert parse_timespan(text, "visibilityTimeout") == pytest.approx(seconds)


def test_a_bare_number_is_refused_since_the_host_would_read_it_as_days():
    with pytest.raises(QueuesSettingError, match="hh:mm:ss"):
        parse_timespan(2000, "maxPollingInterval")


@pytest.mark.parametrize("settings", [{"batch_size": 33}, {"batch_size": 0}, {"max_polling_interval": 0.05},
                                      {"max_dequeue_count": 0}, {"message_encoding": "utf8"},
                                      {"new_batch_threshold": -1}])
def test_settings_the_host_refuses_are_refused(settings):
    with pytest.raises(QueuesSettingError):
        QueuesOptions(**settings)


def test_the_default_new_batch_threshold_is_half_a_batch_per_processor(monkeypatch):
    monkeypatch.setenv("WEBSITE_SKU", "Dynamic")
    assert QueuesOptions().threshold == 8
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    monkeypatch.delenv("WEBSITE_SKU")
    assert QueuesOptions().threshold == 32


def test_polling_backs_off_from_100_ms_to_the_maximum_and_starts_over_when_messages_come():
    backoff = PollingBackoff(maximum=1.0, uniform=lambda low, high: 1.0)
    assert [round(backoff.next_delay(False), 3) for _ in range(7)] == [0.1, 0.2, 0.3, 0.5, 0.9, 1.0, 1.0]
    assert backoff.next_delay(True) == 0.1
    assert round(backoff.next_delay(False), 3) == 0.2


def test_the_back_off_is_randomized_within_a_fifth():
    delays = [PollingBackoff(maximum=60.0) for _ in range(20)]
    for backoff in delays:
        backoff.next_delay(False)
        assert 0.18 <= backoff.next_delay(False) <= 0.22
    assert len({round(backoff.next_delay(False), 6) for backoff in delays}) > 1


def test_poison_queues_are_named_as_the_host_names_them():
    assert poison_queue_name("pauses-due") == "pauses-due-poison"
    assert poison_queue_name("pauses-due-poison") is None  # a poison queue has none of its own
    assert poison_queue_name("q" * 57) is None  # "-poison" would make it longer than 63


@pytest.mark.parametrize("name", ["ab", "Pauses", "pauses--due", "-pauses", "pauses-", "p" * 64, "pauses_due"])
def test_a_queue_name_storage_refuses_is_refused_when_the_host_starts(name):
    with pytest.raises(QueuesSettingError, match="settle"):
        check_queue_name(name, "settle")


def test_bodies_are_base64_unless_the_host_is_told_otherwise():
    assert decode_body("aGVsbG8=", "base64") == b"hello"
    assert decode_body("not base64!", "base64") is None
    assert decode_body("not base64!", "none") == b"not base64!"


def test_a_connection_is_a_connection_string_or_an_endpoint_reached_with_an_identity():
    env = {"Plain": "UseDevelopmentStorage=true",
           "ById__queueServiceUri": "https://acct.queue.core.windows.net", "ById__credential": "managedidentity",
           "ById__clientId": "22222222-2222-4222-8222-222222222222",
           "ByName__accountName": "acct", "ByName__credential": "managedidentity"}
    client, credential = queue_service("Plain", env, pool_size=4)
    with client:
        assert client.url.startswith("http://127.0.0.1:10001/devstoreaccount1") and credential is None
    client, credential = queue_service("ById", env, pool_size=4)
    with client, credential:
        assert client.url.startswith("https://acct.queue.core.windows.net")
        assert type(credential).__name__ == "ManagedIdentityCredential"
    client, credential = queue_service("ByName", env, pool_size=4)
    with client, credential:
        assert client.url.startswith("https://acct.queue.core.windows.net")  # Azure's public cloud, as the host
    with pytest.raises(QueuesSettingError, match="Missing__queueServiceUri"):
        queue_service("Missing", env, pool_size=4)
