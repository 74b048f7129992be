"""Credentials towards Azure Resource Manager, for the app's own tenant and for any other one.

A managed identity gets tokens only in its own tenant: azure-identity ignores a `tenant_id`
asked of it. For a factory in another tenant the app uses the secretless flow Microsoft
documents (workload identity federation): a multi-tenant app registration
(CROSS_TENANT_CLIENT_ID) trusts the managed identity through a federated identity credential;
the app asks its managed identity for a token with audience `api://AzureADTokenExchange` and
presents it as that app's client assertion in the other tenant (`ClientAssertionCredential`).

One credential per tenant for the life of the process, so MSAL's token cache is reused: a tenant
costs one token exchange per token lifetime, also when its first approvals arrive together.
azure-identity is imported on first use only.
"""

import logging
import threading

from shared.clients import OneAtATime
from shared.errors import Forbidden, InvalidRequest
from shared.settings import Settings

logger = logging.getLogger(__name__)

EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"


def check_tenant(tenant_id: str | None, settings: Settings) -> None:
    """Refuse at pause time a tenant the app could not act in (403 or 400 saying what to configure)."""
    identity = settings.identity
    if tenant_id is None:
        return
    tenant = tenant_id.lower()
    if identity.allowed_tenants and tenant not in identity.allowed_tenants:
        raise Forbidden(f"This app may not act in tenant {tenant} (see ALLOWED_TENANTS).")
    if identity.is_home(tenant) or settings.arm_is_local_standin:
        return
    if identity.cross_tenant_client_id is None:
        home = f"its own tenant {identity.home_tenant}" if identity.home_tenant else "its own tenant (AZURE_TENANT_ID)"
        raise InvalidRequest(
            f"Tenant {tenant} is not this app's home tenant, and this app has no app registration to act in other "
            f"tenants. Set CROSS_TENANT_CLIENT_ID (and AZURE_TENANT_ID), or pause for a factory in {home}.",
            [{"field": "tenant_id", "rule": "cross_tenant_not_configured",
              "message": "acting in another tenant needs CROSS_TENANT_CLIENT_ID (see the README, 'Factories in "
                         "other tenants')"}])


class Credentials:
    """The process's credentials towards ARM, one per tenant, built on first use."""

    def __init__(self, settings: Settings):
        self._identity = settings.identity
        self._by_tenant: dict = {}
        self._managed_identity = None
        self._lock = threading.Lock()

    def for_tenant(self, tenant_id: str | None):
        key = None if self._identity.is_home(tenant_id) else tenant_id.lower()
        credential = self._by_tenant.get(key)
        if credential is None:
            with self._lock:
                credential = self._by_tenant.get(key)
                if credential is None:
                    credential = self._by_tenant[key] = OneAtATime(
                        self._home() if key is None else self._other(key))
        return credential

    def _options(self) -> dict:
        # MSAL validates an authority it does not know by asking login.microsoftonline.com
        # ("instance discovery"). Turning that off is harmless against real Entra ID: MSAL skips
        # it anyway for the authority hosts it knows (login.microsoftonline.com and the sovereign
        # clouds' hosts), and the authority here comes from the app's own settings, never from a
        # request. It lets the tests' local Entra stand-in serve as AZURE_AUTHORITY_HOST.
        return {"authority": self._identity.authority_host, "disable_instance_discovery": True}

    def _home(self):
        from azure.identity import DefaultAzureCredential

        # The managed identity in Azure (user-assigned when AZURE_CLIENT_ID is set); environment
        # variables or `az login` on a developer's machine.
        return DefaultAzureCredential(managed_identity_client_id=self._identity.client_id,
                                      authority=self._identity.authority_host)

    def _assertion(self) -> str:
        """A managed-identity token for the token exchange: the federated credential's proof."""
        from azure.identity import ManagedIdentityCredential

        with self._lock:
            if self._managed_identity is None:
                self._managed_identity = OneAtATime(ManagedIdentityCredential(client_id=self._identity.client_id))
        return self._managed_identity.get_token(EXCHANGE_SCOPE).token

    def _other(self, tenant_id: str):
        from azure.identity import ClientAssertionCredential

        logger.info("credential for tenant %s through app registration %s", tenant_id,
                    self._identity.cross_tenant_client_id)
        return ClientAssertionCredential(tenant_id, self._identity.cross_tenant_client_id, self._assertion,
                                         **self._options())
