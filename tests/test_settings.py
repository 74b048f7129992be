import pytest

from shared.settings import DEFAULT_CALLBACK_HOSTS, SettingsError, _from_environ

BASE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def test_defaults():
    settings = _from_environ(BASE)
    assert settings.pauses_table == "pauses" and settings.expiry_table == "pausesexpiry"
    assert settings.arm_endpoint == "https://management.azure.com" and not settings.arm_is_local_standin
    assert settings.callback_allowed_hosts == DEFAULT_CALLBACK_HOSTS and settings.smtp is None


def test_separate_pause_storage_wins_over_the_functions_storage():
    settings = _from_environ({**BASE, "PAUSES_STORAGE_CONNECTION": "other"})
    assert settings.storage.connection_string == "other" and settings.storage.setting == "PAUSES_STORAGE_CONNECTION"


@pytest.mark.parametrize("env, message", [
    ({}, "AzureWebJobsStorage"),
    ({**BASE, "PAUSES_TABLE": "no-dashes"}, "PAUSES_TABLE"),
    ({**BASE, "PAUSES_TABLE": "p" * 56}, "PAUSES_TABLE"),  # "<table>requests" would be over 63
    ({**BASE, "PAUSES_TABLE": "1pauses"}, "PAUSES_TABLE"),
    ({**BASE, "ARM_ENDPOINT": "http://management.azure.com"}, "ARM_ENDPOINT"),
    ({**BASE, "ARM_ENDPOINT": "https://"}, "ARM_ENDPOINT"),  # no host: every call would fail, later
    ({**BASE, "ARM_ENDPOINT": "https://management.azure.com:port"}, "ARM_ENDPOINT"),
    ({**BASE, "ARM_ENDPOINT": "https://management.azure.com/?api-version=1"}, "ARM_ENDPOINT"),
    ({**BASE, "PUBLIC_BASE_URL": "ftp://x"}, "PUBLIC_BASE_URL"),
    ({**BASE, "PUBLIC_BASE_URL": "http://approvals.contoso.com"}, "PUBLIC_BASE_URL"),  # tokens in the clear
    ({**BASE, "PUBLIC_BASE_URL": "https://"}, "PUBLIC_BASE_URL"),
    ({**BASE, "PUBLIC_BASE_URL": "https://approvals.contoso.com/?a=b"}, "PUBLIC_BASE_URL"),
    ({**BASE, "PUBLIC_BASE_URL": "https://approvals.contoso.com:port"}, "PUBLIC_BASE_URL"),
    ({**BASE, "SMTP_HOST": "smtp.example.com"}, "SMTP_FROM"),
    ({**BASE, "SMTP_HOST": "h", "SMTP_FROM": "a@b.example", "SMTP_PORT": "99999"}, "SMTP_PORT"),
    ({**BASE, "SMTP_HOST": "h", "SMTP_FROM": "a@b.example", "SMTP_STARTTLS": "maybe"}, "SMTP_STARTTLS"),
    ({**BASE, "AZURE_TENANT_ID": "contoso.onmicrosoft.com"}, "AZURE_TENANT_ID"),
    ({**BASE, "CROSS_TENANT_CLIENT_ID": "my-app"}, "CROSS_TENANT_CLIENT_ID"),
    ({**BASE, "ALLOWED_TENANTS": "11111111-1111-4111-8111-111111111111, contoso"}, "ALLOWED_TENANTS"),
    ({**BASE, "AZURE_AUTHORITY_HOST": "http://login.example"}, "AZURE_AUTHORITY_HOST"),
    ({**BASE, "CALLBACK_ALLOWED_HOSTS": "a.example, https://b.example"}, "CALLBACK_ALLOWED_HOSTS"),
    ({**BASE, "STALE_CLAIM_SECONDS": "soon"}, "STALE_CLAIM_SECONDS"),
    ({**BASE, "SWEEP_CONCURRENCY": "0"}, "SWEEP_CONCURRENCY"),
    ({**BASE, "CHECK_PIPELINE_EXISTS": "perhaps"}, "CHECK_PIPELINE_EXISTS"),
    ({**BASE, "DUE_WORK_QUEUE": "Pauses-Due"}, "DUE_WORK_QUEUE"),
    ({**BASE, "DUE_WORK_QUEUE": "pauses--due"}, "DUE_WORK_QUEUE"),
    ({**BASE, "DUE_WORK_QUEUE": "q" * 51}, "DUE_WORK_QUEUE"),  # no room for "-paced-poison"
    ({"AzureWebJobsStorage__tableServiceUri": "https://a.table.core.windows.net", "DUE_WORK_QUEUE": "q-1"},
     "queueServiceUri"),
])
def test_bad_settings_fail_fast_naming_the_setting(env, message):
    with pytest.raises(SettingsError, match=message):
        _from_environ(env)


def test_public_base_url_is_https_or_this_machine():
    for base in ("https://approvals.contoso.com", "https://approvals.contoso.com/pp/", "http://127.0.0.1:7071",
                 "http://localhost:7071", "http://[::1]:7071"):
        assert _from_environ({**BASE, "PUBLIC_BASE_URL": base}).public_base_url == base.rstrip("/")


@pytest.mark.parametrize("name, text, said", [
    ("SWEEP_CONCURRENCY", "20000000", "from 1 to below 10000000"),  # too large is not "at least"
    ("RECORD_ATTEMPTS", "0", "from 1 to below"),  # a count: whole numbers from 1
    ("STALE_CLAIM_SECONDS", "inf", "from 0.001 to below"),
    ("STALE_CLAIM_SECONDS", "nan", "from 0.001 to below"),
    ("STORAGE_RETRY_TOTAL", "-1", "from 0 to below"),  # retries may be off, not negative
    ("RECORD_ATTEMPTS", "2.5", "whole number"),
])
def test_a_limit_out_of_range_says_its_range(name, text, said):
    with pytest.raises(SettingsError, match=f"{name} must be .*{said}"):
        _from_environ({**BASE, name: text})


def test_loopback_http_arm_endpoint_is_the_local_standin():
    assert _from_environ({**BASE, "ARM_ENDPOINT": "http://127.0.0.1:7072/"}).arm_is_local_standin


def test_lists_are_trimmed_and_lowercased():
    settings = _from_environ({**BASE, "CALLBACK_ALLOWED_HOSTS": " A.example , *.B.example ,",
                              "ALLOWED_FACTORIES": " s/rg/f , s2/rg/* "})
    assert settings.callback_allowed_hosts == ("a.example", "*.b.example")
    assert settings.allowed_factories == ("s/rg/f", "s2/rg/*")


def test_a_lone_star_among_factories_allows_any():
    assert _from_environ({**BASE, "ALLOWED_FACTORIES": "s/rg/f, *"}).allowed_factories == ()


def test_identity_settings_are_read_once_and_normalised():
    identity = _from_environ({**BASE, "AZURE_TENANT_ID": "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
                              "CROSS_TENANT_CLIENT_ID": "44444444-4444-4444-8444-444444444444",
                              "ALLOWED_TENANTS": "72f988bf-86f1-41af-91ab-2d7cd011db47"}).identity
    assert identity.home_tenant == "72f988bf-86f1-41af-91ab-2d7cd011db47"
    assert identity.is_home(None) and identity.is_home("72F988BF-86F1-41AF-91AB-2D7CD011DB47")
    assert not identity.is_home("11111111-1111-4111-8111-111111111111")
    assert identity.authority_host == "https://login.microsoftonline.com"


def test_limits_default_to_production_values_and_may_be_shortened():
    limits = _from_environ({**BASE, "STALE_CLAIM_SECONDS": "2", "STORAGE_RETRY_TOTAL": "0"}).limits
    assert limits.stale_claim_seconds == 2 and limits.storage_retry_total == 0
    assert _from_environ(BASE).limits.stale_claim_seconds == 600


def test_the_pacing_margins_are_kept_where_pacing_works():
    """Under one, no call would go before ARM's first count; from a quarter of ARM's bucket up, a process could keep
    a sixteenth of ARM's rate for good (a count ARM sent back taken for a stale one)."""
    for name, top in (("ARM_WRITES_LOW_WATER", 50), ("ARM_READS_LOW_WATER", 62)):
        for wrong in ("0.5", str(top + 1), "150"):
            with pytest.raises(SettingsError, match=name):
                _from_environ({**BASE, name: wrong})
        assert getattr(_from_environ({**BASE, name: str(top)}).limits, name.lower()) == top


@pytest.mark.parametrize("name", ["\u212aate@contoso.com", "\ufb01nance@contoso.com", "stra\u00dfe@contoso.com",
                                  "\uff4bate@contoso.com", "ka\u200bte@contoso.com"])
def test_an_operator_named_by_a_look_alike_spelling_fails_fast(name):
    with pytest.raises(SettingsError, match="OPERATORS"):
        _from_environ({**BASE, "OPERATORS": f"ops@contoso.com, {name}"})
    assert _from_environ({**BASE, "OPERATORS": "Ops@Contoso.com, b@c.example"}).operators == ("ops@contoso.com",
                                                                                              "b@c.example")



def test_due_work_goes_through_a_queue_by_default_where_the_app_knows_one():
    assert _from_environ(BASE).due_work_queue == "pauses-due"
    assert _from_environ({**BASE, "DUE_WORK_QUEUE": ""}).due_work_queue == ""  # the timer settles it itself
    only_tables = {"AzureWebJobsStorage__tableServiceUri": "https://a.table.core.windows.net"}
    assert _from_environ(only_tables).due_work_queue == ""
    longest = _from_environ({**BASE, "DUE_WORK_QUEUE": "q" * 50})
    assert longest.paced_work_queue == "q" * 50 + "-paced"
    # The longest name the app takes still has both poison queues, as the host names them (local_dev's model of it).
    from local_dev.queue_rules import poison_queue_name

    assert all(poison_queue_name(name) for name in (longest.due_work_queue, longest.paced_work_queue))
    assert poison_queue_name("q" * 51 + "-paced") is None
    assert _from_environ({**BASE, "DUE_WORK_QUEUE": ""}).paced_work_queue == ""
