"""Where the app's storage is and how it proves who it is: a connection string or an identity-based
connection (the Functions convention), read with the other settings."""

import pytest

from shared.connections import guid
from shared.settings import SettingsError, _from_environ


IDENTITY = {"AzureWebJobsStorage__accountName": "stpauses01", "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": "22222222-2222-4222-8222-222222222222"}


def test_storage_named_by_account_is_reached_with_the_managed_identity():
    storage = _from_environ(IDENTITY).storage
    assert storage.uses_identity and storage.managed_identity and storage.connection_string is None
    assert storage.table_endpoint == "https://stpauses01.table.core.windows.net"
    assert storage.queue_endpoint == "https://stpauses01.queue.core.windows.net"
    assert storage.client_id == "22222222-2222-4222-8222-222222222222"


def test_storage_endpoints_win_over_the_account_name_and_a_separate_account_over_the_functions_one():
    gov = "https://x.table.core.usgovcloudapi.net/"
    storage = _from_environ({**IDENTITY, "AzureWebJobsStorage__tableServiceUri": gov,
                             "PAUSES_STORAGE_CONNECTION__accountName": "stother"}).storage
    assert (storage.setting, storage.table_endpoint) == ("PAUSES_STORAGE_CONNECTION",
                                                         "https://stother.table.core.windows.net")
    storage = _from_environ({**IDENTITY, "AzureWebJobsStorage__tableServiceUri": gov,
                             "AzureWebJobsStorage__credential": ""}).storage
    # No public-cloud queue endpoint is made up beside an endpoint of another cloud.
    assert storage.table_endpoint == "https://x.table.core.usgovcloudapi.net" and storage.queue_endpoint is None
    assert not storage.managed_identity  # the developer's own sign-in (DefaultAzureCredential)


def test_an_account_key_in_a_connection_string_is_not_in_the_settings_repr():
    key = "DefaultEndpointsProtocol=https;AccountName=st;AccountKey=c2VjcmV0"
    settings = _from_environ({"AzureWebJobsStorage": key})
    assert "c2VjcmV0" not in repr(settings) and settings.storage.connection_string.endswith("AccountKey=c2VjcmV0")


@pytest.mark.parametrize("env, message", [
    ({**IDENTITY, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}, "keep one of them"),
    ({**IDENTITY, "AzureWebJobsStorage__accountName": "St-Pauses"}, "AzureWebJobsStorage__accountName"),
    ({**IDENTITY, "AzureWebJobsStorage__tableServiceUri": "http://st.table.core.windows.net"},
     "AzureWebJobsStorage__tableServiceUri must be an https"),
    ({**IDENTITY, "AzureWebJobsStorage__tableServiceUri": "https://user:pw@st.table.core.windows.net"},
     "AzureWebJobsStorage__tableServiceUri"),
    ({**IDENTITY, "AzureWebJobsStorage__credential": "clientsecret"}, "AzureWebJobsStorage__credential"),
    ({**IDENTITY, "AzureWebJobsStorage__clientId": "my-identity"}, "AzureWebJobsStorage__clientId"),
    ({"AzureWebJobsStorage__queueServiceUri": "https://st.queue.core.windows.net"}, "where the tables are"),
    ({"PAUSES_STORAGE_CONNECTION__credential": "managedidentity", "PAUSES_STORAGE_CONNECTION__clientId": ""},
     "PAUSES_STORAGE_CONNECTION__credential do not say where the tables are: set "
     "PAUSES_STORAGE_CONNECTION__accountName"),
])
def test_identity_based_storage_settings_are_checked_naming_the_setting(env, message):
    with pytest.raises(SettingsError, match=message):
        _from_environ(env)


def test_a_client_id_is_a_guid_kept_in_lower_case():
    assert guid(" 0C8D7A6B-5E4F-4A3B-8C2D-1E0F9A8B7C6D ", "X") == "0c8d7a6b-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    assert guid("", "X") is None
    with pytest.raises(SettingsError, match="X must be a GUID"):
        guid("0c8d7a6b", "X")
