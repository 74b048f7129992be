"""Start pipeline runs with the azure-mgmt-datafactory SDK, one client per tenant and subscription.

The SDK and azure-identity are imported on first use: together they cost ~0.4 s of import
time, which a cold start should only pay when a pipeline is actually started.
"""

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .settings import Settings, get_settings
from .store import built_once, http_transport

logger = logging.getLogger(__name__)

# The local stand-in accepts any bearer token; this one never leaves the machine.
DEV_TOKEN = "local-adf-standin-token"


class TriggerFailed(Exception):
    """ADF did not accept the run; `code` is ARM's error code when it gave one."""

    def __init__(self, message: str, code: str | None = None, status: int | None = None, ambiguous: bool = False):
        super().__init__(message)
        self.code = code
        self.status = status
        # The request was sent but no answer came back: ADF may have started the run anyway.
        self.ambiguous = ambiguous


@dataclass(frozen=True)
class PipelineTarget:
    subscription_id: str
    resource_group: str
    factory_name: str
    pipeline_name: str
    tenant_id: str | None = None


class _DevCredential:
    """A fixed token for the local ADF stand-in (ARM_ENDPOINT on loopback http)."""

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        return AccessToken(DEV_TOKEN, 4102444800)


class _TenantCredential:
    """Ask the shared credential for tokens of one tenant (multi-tenant apps)."""

    def __init__(self, credential, tenant_id: str):
        self._credential = credential
        self._tenant_id = tenant_id

    def get_token(self, *scopes, **kwargs):
        kwargs["tenant_id"] = self._tenant_id
        return self._credential.get_token(*scopes, **kwargs)


MAX_RETRY_AFTER = 5  # seconds; ARM's Retry-After on throttling may ask for more than a click can wait


def _bounded_retry_policy():
    """azure-core's retry policy, with Retry-After capped and the whole call capped at 30 s."""
    from azure.core.pipeline.policies import RetryPolicy

    class BoundedRetryPolicy(RetryPolicy):
        def get_retry_after(self, response):
            after = super().get_retry_after(response)
            return None if after is None else min(after, MAX_RETRY_AFTER)

    return BoundedRetryPolicy(retry_total=2, retry_backoff_factor=0.5, retry_backoff_max=4, timeout=30)


class AdfTrigger:
    """Starts runs; caches one SDK client per (tenant, subscription) for the process's life."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._clients: dict = {}
        self._lock = threading.Lock()
        self._credential = None

    def start_run(self, target: PipelineTarget, parameters: dict) -> str:
        """Start `target` with `parameters` and return the ADF run id, or raise TriggerFailed."""
        from azure.core.exceptions import (AzureError, ClientAuthenticationError, HttpResponseError,
                                           ServiceResponseError)

        client = self._client(target.tenant_id, target.subscription_id)
        try:
            run = client.pipelines.create_run(target.resource_group, target.factory_name,
                                              target.pipeline_name, parameters=parameters,
                                              **self._call_options())
        except ClientAuthenticationError as exc:
            raise TriggerFailed(f"could not get a token for Azure: {exc.message}", "AuthenticationFailed") from exc
        except HttpResponseError as exc:
            code = exc.error.code if exc.error else None
            raise TriggerFailed(exc.message, code, exc.status_code) from exc
        except ServiceResponseError as exc:
            raise TriggerFailed(f"no answer from Azure Resource Manager: {exc}", "NoResponse", ambiguous=True) from exc
        except AzureError as exc:
            raise TriggerFailed(f"Azure Resource Manager unreachable: {exc}", "Unreachable") from exc
        return run.run_id

    def find_run(self, target: PipelineTarget, pause_id: str, since: datetime) -> str | None:
        """The id of a run of `target` updated since `since` whose `pause_id` parameter is this one.

        Used when a createRun got no answer, before the pause is given back: if ADF did start the
        run, the pause records it instead of letting a second click start another.
        """
        from azure.core.exceptions import AzureError
        from azure.mgmt.datafactory.models import RunFilterParameters, RunQueryFilter

        client = self._client(target.tenant_id, target.subscription_id)
        query = RunFilterParameters(
            last_updated_after=since, last_updated_before=datetime.now(timezone.utc) + timedelta(minutes=5),
            filters=[RunQueryFilter(operand="PipelineName", operator="Equals", values_property=[target.pipeline_name])])
        try:
            for _ in range(10):  # pages; a pause's run is among the pipeline's most recent
                page = client.pipeline_runs.query_by_factory(target.resource_group, target.factory_name, query,
                                                             **self._call_options())
                for run in page.value or []:
                    if (run.parameters or {}).get("pause_id") == pause_id:
                        return run.run_id
                if not page.continuation_token:
                    return None
                query.continuation_token = page.continuation_token
        except AzureError as exc:
            raise TriggerFailed(f"could not check Azure Data Factory for the run: {exc}", "Unreachable") from exc
        return None

    def _call_options(self) -> dict:
        # The bearer-token policy refuses plain http unless told; only the loopback stand-in is http.
        return {"enforce_https": False} if self._settings.arm_is_local_standin else {}

    def _client(self, tenant_id: str | None, subscription_id: str):
        key = (tenant_id, subscription_id)
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    client = self._clients[key] = self._new_client(tenant_id, subscription_id)
        return client

    def _new_client(self, tenant_id, subscription_id):
        from azure.mgmt.datafactory import DataFactoryManagementClient

        credential = self._credential_for(tenant_id)
        # Bounded retries and timeouts: a throttled or down ARM gives a 502 within seconds,
        # while the person who clicked is still looking at the page.
        return DataFactoryManagementClient(
            credential, subscription_id, base_url=self._settings.arm_endpoint,
            credential_scopes=[self._settings.arm_endpoint + "/.default"],
            retry_policy=_bounded_retry_policy(),
            transport=http_transport(connection_timeout=5, read_timeout=10))

    def _credential_for(self, tenant_id):
        if self._settings.arm_is_local_standin:
            return _DevCredential()
        if self._credential is None:
            from azure.identity import DefaultAzureCredential

            # One credential (and token cache) for the process; tenants are chosen per request.
            self._credential = DefaultAzureCredential(additionally_allowed_tenants=["*"])
        return _TenantCredential(self._credential, tenant_id) if tenant_id else self._credential


@built_once
def get_trigger() -> AdfTrigger:
    """The process's one trigger (and so its client cache), built on first use."""
    return AdfTrigger(get_settings())
