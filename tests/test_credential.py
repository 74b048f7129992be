"""Storage reached with a managed identity and no account key: the real SDKs (azure-data-tables,
azure-identity) against Azurite over https that takes Microsoft Entra bearer tokens (`--oauth
basic`), with tokens from the local stand-in of App Service's managed identity endpoint."""

import logging
import threading
import uuid

import pytest
import requests

from local_dev.azurite import Azurite
from local_dev.identity_standin import ManagedIdentityStandin, TokenIssuer, claims_of
from local_dev.tls import make_test_ca

pytestmark = pytest.mark.integration

TENANT = "11111111-1111-4111-8111-111111111111"
UA_CLIENT, UA_OBJECT = "22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333"
STORAGE_AUDIENCE = "https://storage.azure.com"


@pytest.fixture(scope="module")
def azure(tmp_path_factory):
    ca = make_test_ca(tmp_path_factory.mktemp("storage-ca"))
    issuer = TokenIssuer()
    with Azurite(tls=ca, oauth=True) as storage, \
            ManagedIdentityStandin(issuer, tenant=TENANT, object_id=str(uuid.uuid4()), client_id=str(uuid.uuid4()),
                                   user_assigned={UA_CLIENT: UA_OBJECT}) as identity:
        yield {"ca": ca, "storage": storage, "identity": identity}


@pytest.fixture
def by_identity(azure, configure, monkeypatch):
    """The app's storage named by endpoint, reached with its user-assigned managed identity only."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(azure["ca"].ca_file))
    azure["identity"].requests.clear()
    configure(AzureWebJobsStorage=None, AzureWebJobsStorage__tableServiceUri=azure["storage"].table_endpoint,
              AzureWebJobsStorage__credential="managedidentity", AzureWebJobsStorage__clientId=UA_CLIENT,
              IDENTITY_ENDPOINT=azure["identity"].endpoint, IDENTITY_HEADER=azure["identity"].secret)
    return azure


def test_pauses_are_stored_and_decided_with_the_managed_identity_and_no_key(api, by_identity, adf_pipeline):
    created = api.created()
    assert api.record(created["pause_id"])["status"] == "pending"
    assert api.decide("restart", created["token"]).status_code == 200
    assert api.record(created["pause_id"])["status"] == "restarted"
    assert len(adf_pipeline.runs) == 1
    # Every storage call carried a token of the user-assigned identity, asked for once for the process.
    asked = by_identity["identity"].requests
    assert asked == [{"resource": STORAGE_AUDIENCE, "client_id": UA_CLIENT}]


def test_the_token_is_the_identitys_and_a_request_without_one_is_refused(by_identity):
    from shared.storage.credential import credential

    token = credential().get_token(STORAGE_AUDIENCE + "/.default").token
    claims = claims_of(token)
    assert (claims["aud"], claims["oid"], claims["tid"]) == (STORAGE_AUDIENCE, UA_OBJECT, TENANT)
    assert claims["iss"] == f"https://sts.windows.net/{TENANT}/"  # what Azure Storage (and Azurite) accept
    url = by_identity["storage"].table_endpoint + "/Tables"
    with requests.Session() as session:
        session.verify = str(by_identity["ca"].ca_file)
        headers = {"Accept": "application/json;odata=nometadata", "x-ms-version": "2019-02-02"}
        anonymous = session.get(url, headers=headers, timeout=10)
        assert anonymous.status_code == 403
        wrong_audience = session.get(url, headers={**headers, "Authorization": "Bearer " + _token_for(
            by_identity, "https://management.azure.com")}, timeout=10)
        assert wrong_audience.status_code == 403 and "AuthenticationFailed" in wrong_audience.text
        granted = session.get(url, headers={**headers, "Authorization": "Bearer " + token}, timeout=10)
        assert granted.status_code == 200


def _token_for(azure, resource):
    identity = azure["identity"]
    answer = requests.get(identity.endpoint, params={"api-version": "2019-08-01", "resource": resource},
                          headers={"X-IDENTITY-HEADER": identity.secret}, timeout=10)
    return answer.json()["access_token"]


def test_an_identity_the_platform_does_not_know_is_a_503_that_stores_nothing_and_says_why(api, by_identity, configure,
                                                                                         caplog):
    configure(AzureWebJobsStorage__clientId="44444444-4444-4444-8444-444444444444")
    with caplog.at_level(logging.ERROR, logger="shared.storage.tables"):
        response = api.pause()
    assert response.status_code == 503
    assert "refused the app's credential" in api.json(response)["detail"]
    assert any("check that the app has the user-assigned identity 44444444-4444-4444-8444-444444444444 "
               "(AzureWebJobsStorage__clientId)" in record.getMessage() for record in caplog.records)
    configure(AzureWebJobsStorage__clientId=UA_CLIENT)
    assert api.list().status_code == 200 and api.json(api.list())["items"] == []


def test_a_token_storage_refuses_is_a_503_not_a_500_naming_the_role(api, by_identity, configure, monkeypatch,
                                                                     caplog):
    # A token for another resource: what a missing role assignment looks like from the app (a 403).
    from local_dev import identity_standin

    original = identity_standin.TokenIssuer.issue
    monkeypatch.setattr(identity_standin.TokenIssuer, "issue",
                        lambda self, **claims: original(self, **{**claims, "audience": "https://vault.azure.net"}))
    configure()
    with caplog.at_level(logging.ERROR, logger="shared.storage.tables"):
        response = api.pause()
    assert response.status_code == 503
    assert "refused the app's credential" in api.json(response)["detail"]
    assert any("Storage Table Data Contributor" in record.getMessage() and UA_CLIENT in record.getMessage()
               for record in caplog.records)


def test_an_identity_endpoint_that_cannot_be_reached_is_storage_unavailable_not_a_refusal(api, by_identity,
                                                                                         configure, refused_port):
    configure(IDENTITY_ENDPOINT=f"http://127.0.0.1:{refused_port}/msi/token")
    response = api.pause()
    assert response.status_code == 503
    assert "Try again shortly" in api.json(response)["detail"]
    assert api.list().status_code == 503  # and nothing half-written appears once it answers again
    configure(IDENTITY_ENDPOINT=by_identity["identity"].endpoint)
    assert api.json(api.list())["items"] == []


def test_concurrent_first_calls_ask_for_one_token(by_identity):
    from shared.storage.tables import service

    failures = []

    def first_use():
        try:
            list(service().list_tables())
        except Exception as exc:  # collected, asserted below
            failures.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(by_identity["identity"].requests) == 1
