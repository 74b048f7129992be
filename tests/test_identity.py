"""Any tenant, end to end: the managed identity as a federated credential, through the real azure-identity and MSAL.

Three local stand-ins play Azure's parts: App Service's managed identity endpoint, Microsoft
Entra ID's token endpoint (https, with a CA made for the test run), and ARM (the ADF stand-in,
here over https, checking each bearer token's signature, audience and tenant).
"""

import http.client
import threading
from urllib.parse import urlsplit

import pytest

from local_dev.adf_standin import APP_ROLE, AdfStandin
from local_dev.identity_standin import (EXCHANGE_AUDIENCE, AppRegistration, EntraStandin, ManagedIdentityStandin,
                                        TokenIssuer, claims_of)
from local_dev.tls import make_test_ca
from tests.support import TARGET

pytestmark = pytest.mark.integration

HOME = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"
UNCONSENTED = "33333333-3333-4333-8333-333333333333"
SUB_HOME, SUB_OTHER, SUB_UNCONSENTED = TARGET["subscription_id"], "00000000-0000-0000-0000-0000000000bb", \
    "00000000-0000-0000-0000-0000000000cc"
CROSS_APP = "44444444-4444-4444-8444-444444444444"  # the multi-tenant app registration
MI_OBJECT, MI_APP = "55555555-5555-4555-8555-555555555555", "66666666-6666-4666-8666-666666666666"
UA_CLIENT, UA_OBJECT = "77777777-7777-4777-8777-777777777777", "88888888-8888-4888-8888-888888888888"
# A user-assigned identity the app registration has no federated credential for.
UNTRUSTED_CLIENT, UNTRUSTED_OBJECT = "99999999-9999-4999-8999-999999999999", "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
NO_ROLE_SUB = "00000000-0000-0000-0000-0000000000dd"  # in OTHER, but the app has no role there
# Role assignments: administrators may do anything; the app's principals hold only the README's
# least-privilege custom role, which is what these tests show to be enough.
ROLES = {**{(sub, "az-cli"): "*" for sub in (SUB_HOME, SUB_OTHER, SUB_UNCONSENTED, NO_ROLE_SUB)},
         (SUB_HOME, MI_APP): APP_ROLE, (SUB_HOME, UA_CLIENT): APP_ROLE,
         (SUB_OTHER, CROSS_APP): APP_ROLE, (SUB_UNCONSENTED, CROSS_APP): APP_ROLE}


class TenantOwner:
    """Tokens for an administrator of a tenant (for setting up factories, as `az login` would give)."""

    def __init__(self, issuer, tenant, audience):
        self.issuer, self.tenant, self.audience = issuer, tenant, audience

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        return AccessToken(self.issuer.issue(tenant=self.tenant, audience=self.audience, subject="admin",
                                             app_id="az-cli"), 4102444800)


@pytest.fixture(scope="module")
def azure(tmp_path_factory):
    """The three stand-ins, wired as Azure would be; yields them and the test CA."""
    ca = make_test_ca(tmp_path_factory.mktemp("ca"))
    issuer = TokenIssuer()
    with EntraStandin(issuer, ca.server_context(), tenants={HOME, OTHER, UNCONSENTED}) as entra, \
            ManagedIdentityStandin(issuer, tenant=HOME, object_id=MI_OBJECT, client_id=MI_APP,
                                   user_assigned={UA_CLIENT: UA_OBJECT,
                                                  UNTRUSTED_CLIENT: UNTRUSTED_OBJECT}) as identity, \
            AdfStandin(issuer=issuer, ssl_context=ca.server_context(),
                       tenants={SUB_HOME: HOME, SUB_OTHER: OTHER, SUB_UNCONSENTED: UNCONSENTED, NO_ROLE_SUB: OTHER},
                       roles=ROLES) as arm:
        # The federated credentials an administrator adds to the app registration: one per identity.
        entra.register(AppRegistration(CROSS_APP, federated=[
            (issuer.issuer_for(HOME), MI_OBJECT, EXCHANGE_AUDIENCE),
            (issuer.issuer_for(HOME), UA_OBJECT, EXCHANGE_AUDIENCE)], tenants={OTHER}))
        yield {"entra": entra, "identity": identity, "arm": arm, "ca": ca, "issuer": issuer}


@pytest.fixture
def tenants(azure, configure, monkeypatch):
    """The app pointed at the stand-ins, with a factory and pipeline in each tenant's subscription."""
    from azure.mgmt.datafactory import DataFactoryManagementClient
    from azure.mgmt.datafactory.models import Factory, ParameterSpecification, PipelineResource

    arm, entra, identity = azure["arm"], azure["entra"], azure["identity"]
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(azure["ca"].ca_file))
    arm.reset()
    for record in (entra.exchanges, identity.requests, arm.tokens_seen):
        record.clear()
    for subscription, tenant in ((SUB_HOME, HOME), (SUB_OTHER, OTHER), (SUB_UNCONSENTED, UNCONSENTED),
                                 (NO_ROLE_SUB, OTHER)):
        client = DataFactoryManagementClient(TenantOwner(azure["issuer"], tenant, arm.url), subscription,
                                             base_url=arm.url, credential_scopes=[arm.url + "/.default"])
        client.factories.create_or_update(TARGET["resource_group"], TARGET["factory_name"],
                                          Factory(location="westeurope"))
        client.pipelines.create_or_update(TARGET["resource_group"], TARGET["factory_name"], TARGET["pipeline_name"],
                                          PipelineResource(activities=[], parameters={
                                              "pause_id": ParameterSpecification(type="String")}))
    arm.tokens_seen.clear()
    configure(ARM_ENDPOINT=arm.url, IDENTITY_ENDPOINT=identity.endpoint, IDENTITY_HEADER=identity.secret,
              AZURE_AUTHORITY_HOST=entra.url, AZURE_TENANT_ID=HOME, CROSS_TENANT_CLIENT_ID=CROSS_APP)
    return azure


def pause_in(api, subscription, tenant=None, **fields):
    body = {**TARGET, "subscription_id": subscription, **fields}
    if tenant:
        body["tenant_id"] = tenant
    return api.pause(body)


def test_the_home_tenant_uses_the_managed_identity_directly(api, tenants):
    created = api.json(pause_in(api, SUB_HOME))
    response = api.decide("restart", created["token"])
    assert response.status_code == 200
    [run] = tenants["arm"].runs
    assert run["parameters"]["pause_id"] == created["pause_id"]
    assert set(tenants["arm"].tokens_seen) == {(SUB_HOME, HOME)}
    assert {r["resource"] for r in tenants["identity"].requests} == {tenants["arm"].url}
    assert tenants["entra"].exchanges == []


def test_another_tenant_gets_its_token_with_the_managed_identity_as_the_client_assertion(api, tenants):
    created = api.json(pause_in(api, SUB_OTHER, OTHER))
    assert api.decide("restart", created["token"]).status_code == 200
    assert len(tenants["arm"].runs) == 1
    [exchange] = tenants["entra"].exchanges
    assert exchange["tenant"] == OTHER and exchange["client_id"] == CROSS_APP and exchange["outcome"] == "issued"
    assert exchange["assertion"] == {"iss": tenants["issuer"].issuer_for(HOME), "sub": MI_OBJECT,
                                     "aud": EXCHANGE_AUDIENCE, "tid": HOME}
    assert exchange["scope"] == tenants["arm"].url + "/.default"
    assert {r["resource"] for r in tenants["identity"].requests} == {EXCHANGE_AUDIENCE}
    assert set(tenants["arm"].tokens_seen) == {(SUB_OTHER, OTHER)}


def test_a_wrong_or_unconsented_tenant_is_a_400_at_pause_saying_what_to_fix(api, tenants):
    wrong = pause_in(api, SUB_OTHER)  # no tenant_id: the home tenant's token goes to OTHER's ARM
    assert wrong.status_code == 400
    [error] = api.json(wrong)["errors"]
    assert (error["field"], error["rule"]) == ("tenant_id", "wrong_tenant") and OTHER in error["message"]
    unconsented = pause_in(api, SUB_UNCONSENTED, UNCONSENTED)
    assert unconsented.status_code == 400
    [error] = api.json(unconsented)["errors"]
    assert (error["field"], error["rule"]) == ("tenant_id", "token_refused")
    assert "AADSTS700016" in error["message"] and "az ad sp create" in error["message"]
    assert tenants["arm"].runs == []


def test_an_identity_without_a_federated_credential_is_a_400_at_pause_and_a_502_at_approval(api, tenants,
                                                                                            configure):
    configure(AZURE_CLIENT_ID=UNTRUSTED_CLIENT)
    response = pause_in(api, SUB_OTHER, OTHER)
    assert response.status_code == 400
    [error] = api.json(response)["errors"]
    assert error["rule"] == "token_refused" and "AADSTS70021" in error["message"]
    configure(AZURE_CLIENT_ID=UNTRUSTED_CLIENT, CHECK_PIPELINE_EXISTS="false")
    created = api.json(pause_in(api, SUB_OTHER, OTHER))
    response = api.decide("restart", created["token"])
    assert response.status_code == 502 and "AuthenticationFailed" in api.json(response)["detail"]
    assert "AADSTS70021" in api.record(created["pause_id"])["last_error"] and tenants["arm"].runs == []


def test_a_token_from_the_wrong_tenant_at_approval_is_502_naming_the_cause_and_the_pause_stays_pending(
        api, tenants, configure):
    configure(CHECK_PIPELINE_EXISTS="false")  # as if the pause was made before things changed
    created = api.json(pause_in(api, SUB_OTHER))
    response = api.decide("restart", created["token"])
    assert response.status_code == 502 and "AuthenticationFailed" in api.json(response)["detail"]
    record = api.record(created["pause_id"])
    assert record["status"] == "pending" and "InvalidAuthenticationTokenTenant" in record["last_error"]
    assert tenants["arm"].runs == []


def test_no_role_on_the_factory_does_not_block_the_pause_and_is_502_authorization_failed_at_approval(api, tenants):
    created = pause_in(api, NO_ROLE_SUB, OTHER)
    assert created.status_code == 201  # the check at pause could not read the pipeline: logged, not blocking
    response = api.decide("restart", api.json(created)["token"])
    assert response.status_code == 502 and "AuthorizationFailed" in api.json(response)["detail"]
    assert api.record(api.json(created)["pause_id"])["status"] == "pending" and tenants["arm"].runs == []


def test_a_tenant_without_consent_at_approval_is_502_naming_the_cause(api, tenants, configure):
    configure(CHECK_PIPELINE_EXISTS="false")
    created = api.json(pause_in(api, SUB_UNCONSENTED, UNCONSENTED))
    response = api.decide("restart", created["token"])
    assert response.status_code == 502 and "AuthenticationFailed" in api.json(response)["detail"]
    record = api.record(created["pause_id"])
    assert record["status"] == "pending" and "AADSTS700016" in record["last_error"]
    assert [e["outcome"] for e in tenants["entra"].exchanges][-1] == "AADSTS700016"
    assert tenants["arm"].runs == []


@pytest.mark.parametrize("settings, tenant, status, field", [
    ({"CROSS_TENANT_CLIENT_ID": None}, OTHER, 400, "tenant_id"),
    ({"ALLOWED_TENANTS": HOME}, OTHER, 403, None),
    ({}, "contoso.onmicrosoft.com", 400, "tenant_id"),
])
def test_a_tenant_the_app_cannot_act_in_is_refused_at_pause_time(api, tenants, configure, settings, tenant, status,
                                                                 field):
    configure(**settings)
    response = pause_in(api, SUB_OTHER, tenant)
    assert response.status_code == status
    problem = api.json(response)
    if field:
        assert problem["errors"][0]["field"] == field
    if settings.get("CROSS_TENANT_CLIENT_ID", "") is None:
        assert "CROSS_TENANT_CLIENT_ID" in problem["detail"]
    assert tenants["entra"].exchanges == []


def test_tokens_are_cached_one_exchange_per_tenant_also_when_the_first_approvals_come_together(api, tenants,
                                                                                               configure):
    configure(CHECK_PIPELINE_EXISTS="false")  # so the first token is asked for by the approvals themselves
    created = [api.json(pause_in(api, SUB_OTHER, OTHER)) for _ in range(8)]
    assert tenants["entra"].exchanges == []
    barrier, statuses = threading.Barrier(len(created)), []

    def approve(pause):
        barrier.wait()
        statuses.append(api.decide("restart", pause["token"]).status_code)

    threads = [threading.Thread(target=approve, args=(pause,)) for pause in created]
    [thread.start() for thread in threads]
    [thread.join() for thread in threads]
    assert statuses == [200] * 8 and len(tenants["arm"].runs) == 8
    assert len(tenants["entra"].exchanges) == 1
    assert [r["resource"] for r in tenants["identity"].requests] == [EXCHANGE_AUDIENCE]
    more = api.json(pause_in(api, SUB_OTHER, OTHER))
    assert api.decide("restart", more["token"]).status_code == 200
    assert len(tenants["entra"].exchanges) == 1  # still valid: reused


def test_a_user_assigned_identity_is_used_when_azure_client_id_names_it(api, tenants, configure):
    configure(AZURE_CLIENT_ID=UA_CLIENT)
    for subscription, tenant in ((SUB_HOME, None), (SUB_OTHER, OTHER)):
        created = api.json(pause_in(api, subscription, tenant))
        assert api.decide("restart", created["token"]).status_code == 200
    assert {r["client_id"] for r in tenants["identity"].requests} == {UA_CLIENT}
    [exchange] = tenants["entra"].exchanges
    assert exchange["assertion"]["sub"] == UA_OBJECT and exchange["outcome"] == "issued"


def test_the_entra_stand_in_answers_instance_discovery_as_msal_asks(tenants):
    import msal
    import requests

    entra, identity = tenants["entra"], tenants["identity"]
    session = requests.Session()
    session.verify = str(tenants["ca"].ca_file)
    assertion = requests.get(identity.endpoint, params={"api-version": "2019-08-01", "resource": EXCHANGE_AUDIENCE},
                             headers={"X-IDENTITY-HEADER": identity.secret}, verify=False, timeout=10).json()
    before = entra.discovery_requests
    app = msal.ConfidentialClientApplication(
        CROSS_APP, client_credential={"client_assertion": lambda: assertion["access_token"]},
        authority=f"{entra.url}/{OTHER}", instance_discovery=f"{entra.url}/common/discovery/instance",
        http_client=session)
    result = app.acquire_token_for_client(scopes=["https://management.azure.com/.default"])
    assert "access_token" in result, result
    assert claims_of(result["access_token"])["tid"] == OTHER and entra.discovery_requests == before + 1


# createRun over TLS: "not started" only when no byte of it left, whatever the exception's type.

@pytest.mark.parametrize("behaviour", ["tls_alert", "tls_silent"])  # a handshake refused, or one that times out
def test_a_failed_tls_handshake_with_arm_starts_nothing_and_the_link_works_again(api, tenants, configure, behaviour):
    from local_dev.bad_peers import BadPeer

    created = api.json(pause_in(api, SUB_HOME))
    with BadPeer(behaviour) as peer:
        configure(ARM_ENDPOINT=f"https://127.0.0.1:{peer.port}", ARM_RETRY_TOTAL="0", ARM_READ_TIMEOUT_SECONDS="0.3",
                  ARM_CONNECT_TIMEOUT_SECONDS="0.3")
        response = api.decide("restart", created["token"])
    assert peer.received and all(hello[:1] == b"\x16" for hello in peer.received)  # only ClientHellos arrived
    assert response.status_code == 502 and "Nothing was started" in api.json(response)["detail"]
    assert api.record(created["pause_id"])["status"] == "pending"
    configure(ARM_ENDPOINT=tenants["arm"].url)
    assert api.decide("restart", created["token"]).status_code == 200 and len(tenants["arm"].runs) == 1


def test_a_tls_error_after_create_run_was_sent_keeps_the_claim_until_adf_can_be_asked(api, tenants, configure):
    from local_dev.bad_peers import BadPeer

    created = api.json(pause_in(api, SUB_HOME))
    with BadPeer("tls_garbage_after_request", tls=tenants["ca"].server_context()) as peer:
        configure(ARM_ENDPOINT=f"https://127.0.0.1:{peer.port}", ARM_RETRY_TOTAL="0",
                  RUN_LOOKUP_RETRY_SECONDS="0.1")
        response = api.decide("restart", created["token"])
    assert response.status_code == 502 and api.json(response)["code"] == "outcome_unknown"
    assert b"/createRun?" in peer.received[0]  # it was sent: the pause must not be given back
    assert api.record(created["pause_id"])["status"] == "restarting"


def test_the_identity_endpoint_keeps_a_connection_open_for_the_next_request(azure):
    """As App Service's identity endpoint and Entra do: azure-identity's pooled connection serves every token."""
    url = urlsplit(azure["identity"].url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    try:
        sockets = []
        for _ in range(2):  # (no api-version: refused, and the connection still kept)
            connection.request("GET", "/msi/token")
            sockets.append(connection.sock)
            answer = connection.getresponse()
            answer.read()
            assert 400 <= answer.status < 500 and answer.getheader("Connection") is None
        assert sockets[0] is sockets[1] is connection.sock
    finally:
        connection.close()
