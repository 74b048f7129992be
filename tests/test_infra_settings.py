"""The app settings infra/ sets, held against the settings the app reads (shared/settings.py).

The template's values are worked out from its parse tree (local_dev/bicep_values.py), through the
modules as `azd up` deploys them, for a deployment with only what is required and for one with every
choice made. What only Azure knows at deployment (a host name, an identity's client id) is a sample
below. The names the app reads are recorded while it reads them, so neither side is a list kept by hand.
"""

from pathlib import Path

import pytest

from local_dev.bicep_values import Template, Unknown
from shared.bindings import due_work_trigger, sweep_schedule
from shared.notify.channels import setting_name
from shared.settings import _from_environ

INFRA = Path(__file__).resolve().parent.parent / "infra"
IDENTITY_CLIENT_ID = "0c8d7a6b-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
# What Azure knows only when it deploys, by the name of the property (or function) that gives it.
AZURE = {
    "unique_string": "k3x9q2m7p4w1z",
    "tenant": {"tenantId": TENANT},
    "subscription": {"id": "/subscriptions/5f1c8d2e-0000-4000-8000-000000000001",
                     "subscriptionId": "5f1c8d2e-0000-4000-8000-000000000001"},
    "clientId": IDENTITY_CLIENT_ID,
    "principalId": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f0a0b0c0d",
    "id": "/subscriptions/5f1c8d2e-0000-4000-8000-000000000001/resourceGroups/rg-pauses/providers/x/y",
    "defaultHostName": "func-k3x9q2m7p4w1z.azurewebsites.net",
    "blob": "https://stk3x9q2m7p4w1z.blob.core.windows.net/",
    "queue": "https://stk3x9q2m7p4w1z.queue.core.windows.net/",
    "table": "https://stk3x9q2m7p4w1z.table.core.windows.net/",
    "ConnectionString": "InstrumentationKey=00000000-0000-4000-8000-000000000000;"
                        "IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/",
    "vaultUri": "https://kv-k3x9q2m7p4w1z.vault.azure.net/",
}
FACTORY = {"subscriptionId": "5f1c8d2e-0000-4000-8000-000000000002", "resourceGroup": "rg-data", "name": "adf-sales"}
NOTHING_CHOSEN = {"environmentName": "pauses", "location": "westeurope", "principalId": ""}
REQUIRED = {**NOTHING_CHOSEN, "factories": [FACTORY]}
OTHER_TENANT_FACTORY = "8e7d6c5b-0000-4000-8000-000000000007/rg-partner/adf-partner"
EVERY_CHOICE = {
    **REQUIRED, "principalId": "1b2c3d4e-0000-4000-8000-000000000003",
    "authClientId": "6a5b4c3d-0000-4000-8000-000000000004", "operators": "ops@contoso.com,lead@contoso.com",
    "crossTenantClientId": "7f6e5d4c-0000-4000-8000-000000000005",
    "allowedTenants": f"{TENANT},8e7d6c5b-0000-4000-8000-000000000006",
    "smtpHost": "smtp.azurecomm.net", "smtpPort": "587", "smtpUsername": "pauses-acs", "smtpFrom": "pauses@contoso.com",
    "smtpStartTls": True, "smtpPassword": "an SMTP password",
    "channelWebhooks": {"data-ops": "teams:https://prod-01.westeurope.logic.azure.com/workflows/1",
                        "oncall": "slack:https://hooks.slack.com/services/T0/B0/x"},
    "channelAllowedHosts": "hooks.slack.com,*.logic.azure.com", "otherFactories": OTHER_TENANT_FACTORY,
    "sweepSchedule": "0 */5 * * * *",
}
SCENARIOS = pytest.mark.parametrize("params", [NOTHING_CHOSEN, REQUIRED, EVERY_CHOICE],
                                    ids=["no-factory", "one-factory", "every-choice"])
# Read by the Functions host and the platform, not by the app. (FUNCTIONS_WORKER_RUNTIME and
# FUNCTIONS_EXTENSION_VERSION are not here: Flex Consumption refuses them as app settings.)
PLATFORM = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "where the host sends telemetry",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "the identity it sends telemetry with (local auth is off)",
    "AzureWebJobsStorage__blobServiceUri": "the host's own blobs (timer schedule, leases); the app keeps tables",
}


class Reads(dict):
    """App settings that remember which names were asked for."""

    def __init__(self, values):
        super().__init__(values)
        self.names = set()

    def get(self, name, default=None):
        self.names.add(name)
        return super().get(name, default)


def app_settings(params: dict) -> dict:
    """The app settings `azd up` would give the Function App with these parameters of main.bicep."""
    def find(template):
        for resource in (template.tree.get("resources") or {}).values():
            config = resource.get("config") or {}
            named = template.value(config.get("name"))
            if resource.get("type") == "Microsoft.Web/sites/config" and named == "appsettings":
                return template.value(config["properties"])
        return next((found for module in template.modules() if (found := find(module)) is not None), None)

    settings = find(Template(INFRA / "main.bicep", params, AZURE))
    assert settings is not None, "no Microsoft.Web/sites/config 'appsettings' in infra/"
    unknown = {name: str(value) for name, value in settings.items() if not isinstance(value, str)}
    assert not unknown, f"app settings whose value could not be worked out: {unknown}"
    return settings


def as_the_app_sees_them(settings: dict) -> dict:
    """App Service resolves a Key Vault reference before the app reads the setting."""
    def resolve(name, value):
        if not value.startswith("@Microsoft.KeyVault("):
            return value
        secret = value.removeprefix("@Microsoft.KeyVault(SecretUri=").removesuffix(")").rsplit("/", 1)[-1]
        for channel, url in EVERY_CHOICE["channelWebhooks"].items():
            if secret == f"channel-{channel}":
                return url
        return "a secret"
    return {name: resolve(name, value) for name, value in settings.items()}


@SCENARIOS
def test_every_app_setting_the_template_sets_is_one_the_app_or_the_host_reads(params):
    settings = app_settings(params)
    env = Reads(as_the_app_sees_them(settings))
    _from_environ(env)
    sweep_schedule(env)
    read = env.names | {setting_name(channel) for channel in params.get("channelWebhooks", {})}
    assert set(settings) - read - set(PLATFORM) == set()


@SCENARIOS
def test_nothing_the_app_needs_in_azure_is_left_unset(params):
    settings = app_settings(params)
    app = _from_environ(as_the_app_sees_them(settings))
    # Storage: by the user-assigned identity, with no key anywhere.
    assert app.storage.uses_identity and app.storage.managed_identity
    assert app.storage.client_id == IDENTITY_CLIENT_ID
    assert app.storage.table_endpoint == AZURE["table"].rstrip("/")
    assert not any("AccountKey=" in value or "SharedAccessSignature" in value for value in settings.values())
    # ARM: the same identity (DefaultAzureCredential cannot guess a user-assigned one), in its tenant.
    assert (app.identity.client_id, app.identity.home_tenant) == (IDENTITY_CLIENT_ID, TENANT)
    assert app.arm_endpoint == "https://management.azure.com" and not app.arm_is_local_standin
    # Links point at the app itself, and it starts pipelines only in the factories it has a role on.
    assert app.public_base_url == "https://" + AZURE["defaultHostName"]
    # (With none listed, not limited: the identity has a Data Factory role only where someone gave it one.)
    listed = ["{subscriptionId}/{resourceGroup}/{name}".format(**f).lower() for f in params.get("factories", [])]
    assert app.allowed_factories == tuple(listed + ([OTHER_TENANT_FACTORY] if "otherFactories" in params else []))
    assert app.approver_sign_in == ("easyauth" if params.get("authClientId") else "none")
    # The default schedule is declared with the trigger; a chosen one is named by it (%PAUSE_SWEEP_SCHEDULE%).
    assert settings.get("PAUSE_SWEEP_SCHEDULE") == params.get("sweepSchedule")
    assert sweep_schedule(settings) == ("%PAUSE_SWEEP_SCHEDULE%" if "sweepSchedule" in params else "0 */1 * * * *")
    # Due work goes through the queue, and the queue functions are registered on the connection the app writes with.
    assert app.due_work_queue == "pauses-due"
    assert due_work_trigger(as_the_app_sees_them(settings)) == ("pauses-due", app.storage.setting)
    # Secrets only as Key Vault references, followed to their latest version.
    secrets = {name: value for name, value in settings.items() if name == "SMTP_PASSWORD" or name.startswith("CHANNEL_")
               and name != "CHANNEL_ALLOWED_HOSTS"}
    assert all(value.startswith("@Microsoft.KeyVault(SecretUri=" + AZURE["vaultUri"] + "secrets/")
               for value in secrets.values())
    if params is EVERY_CHOICE:
        assert set(secrets) == {"SMTP_PASSWORD", "CHANNEL_DATA_OPS", "CHANNEL_ONCALL"}
        assert app.smtp is not None and app.smtp.password == "a secret" and app.smtp.username == "pauses-acs"
        assert app.identity.cross_tenant_client_id == EVERY_CHOICE["crossTenantClientId"]
    else:
        assert secrets == {} and app.smtp is None


def test_the_evaluator_refuses_what_it_cannot_work_out(tmp_path):
    # What it does not know is never taken for a value (so the checks above cannot pass by accident):
    # a function it does not evaluate, a parameter nobody gives, a misspelt name or property, a value
    # only Azure knows used where its text matters, a parameter the module does not declare.
    (tmp_path / "t.bicep").write_text(
        "param p string\nparam q string = 'a'\nresource site 'Microsoft.Web/sites@2024-04-01' existing = {\n"
        "  name: 'x'\n}\nvar a = {\n  X: padLeft(q, 3, '0')\n  Y: p\n  Z: qq\n"
        "  H: 'https://${site.properties.hostNmae}'\n"
        "  E: site.properties.hostNmae == 'x' ? 'yes' : 'no'\n  Q: q\n  T: 'q'\n}\n")
    values = Template(tmp_path / "t.bicep", {}, {"defaultHostName": "h"}).value("a")
    assert all(isinstance(values[key], Unknown) for key in "XYZHE"), values
    assert (values["Q"], values["T"]) == ("a", "q")  # a parameter's value, and quoted text that names it
    with pytest.raises(ValueError, match="declares no parameter r"):
        Template(tmp_path / "t.bicep", {"r": "x"}, {})
