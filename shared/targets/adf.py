"""Azure Data Factory through the azure-mgmt-datafactory SDK: check, start and find pipeline runs.

createRun is the one call whose repetition does harm (a second run), so it is never repeated
once it may have reached ADF: the SDK's retry policy here retries a POST only when ARM
throttled it (429: refused before it was processed); a 5xx, a timeout or a dropped connection
is reported as `Unknown` and the run is then *looked up* (`find_run`), not re-requested.

The SDK and azure-identity are imported on first use: together they cost ~0.4 s of import
time, which a cold start should only pay when a pipeline is actually touched.
"""

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from shared import outbound
from shared.clients import built_once
from shared.clock import retry_after_seconds
from shared.settings import Settings, get_settings
from shared.targets.identity import Credentials
from shared.targets import pacing
from shared.targets.arm_retry import retry_policy
from shared.targets.outside import Refused, Throttled, Unknown

logger = logging.getLogger(__name__)

# The local stand-in accepts this fixed token; it never leaves the machine.
DEV_TOKEN = "local-adf-standin-token"

# Which request field an ARM "not found" error code points at. ADF itself answers a missing
# pipeline with "NotFound"; ARM answers for the factory, group or subscription above it.
_MISSING = {"SubscriptionNotFound": "subscription_id", "InvalidSubscriptionId": "subscription_id",
            "ResourceGroupNotFound": "resource_group", "ResourceNotFound": "factory_name"}


@dataclass(frozen=True)
class PipelineTarget:
    subscription_id: str
    resource_group: str
    factory_name: str
    pipeline_name: str
    tenant_id: str | None = None

    @property
    def key(self) -> tuple:
        # ARM names are case-insensitive.
        return (self.tenant_id, self.subscription_id.lower(), self.resource_group.lower(),
                self.factory_name.lower(), self.pipeline_name.lower())

    def allowed_by(self, patterns) -> bool:
        """Whether ALLOWED_FACTORIES (`subscription/resourceGroup/factory`, `*` per part) admits this
        factory; no patterns admit any."""
        if not patterns:
            return True
        wanted = (self.subscription_id.lower(), self.resource_group.lower(), self.factory_name.lower())
        for pattern in patterns:
            parts = [p.strip().lower() for p in pattern.split("/")]
            if len(parts) == 3 and all(p in ("*", w) for p, w in zip(parts, wanted)):
                return True
        return False


@dataclass(frozen=True)
class TargetProblem:
    """Why a pause for this target could only fail later: `field` and `rule` for the 400."""

    field: str
    rule: str
    message: str


class _DevCredential:
    """A fixed token for the local ADF stand-in (ARM_ENDPOINT on loopback http)."""

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        return AccessToken(DEV_TOKEN, 4102444800)


# What Entra ID's refusal of the app in a tenant means, and what to do about it.
_ENTRA_ADVICE = {
    "AADSTS700016": "the app registration (CROSS_TENANT_CLIENT_ID) has no service principal in this tenant: an "
                    "administrator of the tenant must create it (az ad sp create --id <CROSS_TENANT_CLIENT_ID>)",
    "AADSTS70021": "the app registration has no federated credential for this app's managed identity (issuer "
                   "https://login.microsoftonline.com/<AZURE_TENANT_ID>/v2.0, subject its object id, audience "
                   "api://AzureADTokenExchange)",
    "AADSTS90002": "Entra ID knows no such tenant",
}


def _identity_problem(exc, target: PipelineTarget, settings: Settings) -> TargetProblem | None:
    """A configuration problem behind a refused token, as a 400 naming tenant_id; None if it may pass."""
    import re

    if exc.response is not None and _error_code(exc) == "InvalidAuthenticationTokenTenant":
        return TargetProblem("tenant_id", "wrong_tenant",
                             f"is not the tenant of subscription {target.subscription_id}: {exc.message}")
    found = re.search(r"AADSTS\d+", str(exc))
    if found is None or target.tenant_id is None or settings.identity.is_home(target.tenant_id):
        return None  # a token the app's own identity could not get: transient or deployment, not this pause
    advice = _ENTRA_ADVICE.get(found.group(), "see Entra ID's message")
    return TargetProblem("tenant_id", "token_refused",
                         f"refused the app's credential ({found.group()}): {advice}")


def _error_code(exc) -> str | None:
    error = getattr(exc, "error", None)
    return getattr(error, "code", None) or None


class Adf:
    """Checks, starts and finds runs; one SDK client per (tenant, subscription) for the process's life."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._clients: dict = {}
        self._lock = threading.Lock()
        self._credentials = None if settings.arm_is_local_standin else Credentials(settings)
        self._known: dict = {}  # PipelineTarget.key -> monotonic time until which it is known to exist
        # What this process knows of ARM's write buckets, for the app's own work to keep under them.
        limits = settings.limits
        self.pacer = pacing.Pacer(limits.arm_writes_per_second, limits.arm_writes_low_water, pacing.WRITES)  # createRun
        self.read_pacer = pacing.Pacer(limits.arm_reads_per_second, limits.arm_reads_low_water, pacing.READS)  # checks

    def check_target(self, target: PipelineTarget) -> TargetProblem | None:
        """A problem when ADF says the pipeline (or its factory, group, subscription) does not exist,
        or the pipeline declares no `pause_id` parameter (the app passes it, and finds a run by it).

        None when all is well or when ADF could not tell (unreachable, no read permission): that is
        logged and must not block a pause. A pipeline seen to be fine is remembered for a while.
        """
        now = time.monotonic()
        if self._known.get(target.key, 0) > now:
            return None
        try:
            declared = self.declared_parameters(target)
        except Unknown as exc:  # ARM unreachable, refused, or an answer that cannot be read: not a reason to refuse
            logger.warning("could not check pipeline %s/%s: %s", target.factory_name, target.pipeline_name, exc)
            return None
        if isinstance(declared, TargetProblem):
            return declared
        if "pause_id" not in declared:
            return TargetProblem("pipeline_name", "pause_id_parameter",
                                 "must declare a String parameter named pause_id: the app passes the pause's id in it")
        self._known[target.key] = now + self._settings.limits.pipeline_check_ttl_seconds
        return None

    def declared_parameters(self, target: PipelineTarget) -> "dict | TargetProblem":
        """The pipeline's declared parameters, `{name: {"type": "Int", "default_value": 5}}` (no default: no
        key), in the pipeline's order; a TargetProblem when ADF says it (or its factory) does not exist or
        the tenant refused the app; Unknown when ADF could not be asked."""
        from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError

        try:
            pipeline = self._client(target).pipelines.get(target.resource_group, target.factory_name,
                                                          target.pipeline_name, **self._call_options())
        except ResourceNotFoundError as exc:
            code = _error_code(exc) or "NotFound"
            return TargetProblem(_MISSING.get(code, "pipeline_name"), "not_found",
                                 f"does not exist in Azure Data Factory ({code})")
        except ClientAuthenticationError as exc:
            problem = _identity_problem(exc, target, self._settings)
            if problem is not None:
                return problem
            raise Unknown("AuthenticationFailed", f"could not get a token to read the pipeline: {exc}") from exc
        except Exception as exc:
            code = _error_code(exc) or type(exc).__name__
            raise Unknown(code, f"could not read pipeline {target.pipeline_name}: "
                                f"{getattr(exc, 'message', None) or exc}") from exc
        # The SDK gives the type as its ParameterType enum (a str subclass whose str() is not the name).
        return {name: {"type": str(getattr(spec.type, "value", spec.type)),
                       **({} if spec.default_value is None else {"default_value": spec.default_value})}
                for name, spec in (pipeline.parameters or {}).items()}

    def run_missing(self, target: PipelineTarget, run_id: str) -> bool:
        """True when ADF says the factory has no such run; False when it has, or cannot tell (logged)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self._client(target).pipeline_runs.get(target.resource_group, target.factory_name, run_id,
                                                   **self._call_options())
        except ResourceNotFoundError:
            return True
        except Exception as exc:
            logger.warning("could not check run %s in %s: %s", run_id, target.factory_name, exc)
        return False

    def get_run(self, target: PipelineTarget, run_id: str) -> dict:
        """A run's pipeline, status and message (a read). Raise Throttled when ARM throttles the app's own work
        (the item is deferred, not waited for here), Unknown when ADF cannot be asked."""
        key = pacing_key(target)
        try:
            run = self._client(target).pipeline_runs.get(
                target.resource_group, target.factory_name, run_id, **_in_own_work(hand_back_throttling=True),
                **self._call_options(),
                raw_response_hook=pacing.hook(self.read_pacer, key))
        except Exception as exc:
            self._throttled(exc, key, self.read_pacer)
            code = _error_code(exc) or type(exc).__name__
            raise Unknown(code, f"could not read run {run_id}: {getattr(exc, 'message', None) or exc}") from exc
        return {"pipeline_name": run.pipeline_name, "status": run.status, "message": run.message}

    def start_run(self, target: PipelineTarget, parameters: dict) -> str:
        """Start `target` once and return the run id; raise Refused (surely not started) or Unknown."""
        from azure.core.exceptions import ClientAuthenticationError, DecodeError, HttpResponseError

        try:
            client = self._client(target)
        except Exception as exc:  # building a client sends nothing
            raise Refused("ClientError", f"could not set up the Data Factory client: {exc}") from exc
        call = outbound.Call()  # what the transport's sockets did: the one sure sign of "not sent"
        key = pacing_key(target)
        try:
            with outbound.tracking(call):
                run = client.pipelines.create_run(target.resource_group, target.factory_name, target.pipeline_name,
                                                  parameters=parameters, raw_response_hook=pacing.hook(self.pacer, key),
                                                  **_in_own_work(retry_total=0), **self._call_options())
        except ClientAuthenticationError as exc:
            # No token, or ARM answered 401: the request was not processed.
            arm_code = _error_code(exc) if exc.response is not None else None
            cause = f" ({arm_code})" if arm_code else ""
            raise Refused("AuthenticationFailed", f"Azure did not accept the app's credential{cause}: "
                                                  f"{exc.message}") from exc
        except DecodeError as exc:
            # An answer (even a 200) that cannot be read: the run may well exist.
            raise Unknown("UnreadableAnswer", f"createRun's answer could not be read: {exc.message}") from exc
        except ValueError as exc:  # the SDK's JSON parser on an answer (a proxy's HTML page), or bad input unsent
            if call.never_sent:
                raise Refused("ClientError", f"createRun could not be sent: {exc}") from exc
            raise Unknown("UnreadableAnswer", f"createRun's answer could not be read: {exc}") from exc
        except HttpResponseError as exc:
            code = _error_code(exc) or f"HTTP{exc.status_code}"
            if exc.status_code == 429:  # ARM did not process it: the same call works after Retry-After
                retry_after = _retry_after(exc.response)
                self.pacer.throttled(key, retry_after)
                raise Throttled(code, exc.message or str(exc), retry_after) from exc
            if exc.status_code is not None and 400 <= exc.status_code < 500:
                raise Refused(code, exc.message or str(exc), status=exc.status_code) from exc
            raise Unknown(code, f"Azure answered {exc.status_code}, which can follow a run that was started: "
                                f"{exc.message}") from exc
        except Exception as exc:
            # Whatever azure-core calls it (its "response" errors also cover a TLS handshake that timed
            # out, its "request" errors a TLS error after the request left), only what the sockets
            # did tells whether createRun may have left.
            if call.never_sent:
                raise Refused("Unreachable", f"could not reach Azure Resource Manager: {outbound.why(exc)}",
                              transient=True) from exc
            raise Unknown("NoResponse", f"createRun may have been sent; no answer came back: {outbound.why(exc)}") \
                from exc
        if not getattr(run, "run_id", None):
            raise Unknown("NoRunId", "createRun answered without a run id")
        return run.run_id

    def find_run(self, target: PipelineTarget, pause_id: str, since: datetime, now: datetime | None = None,
                 deadline: float | None = None) -> str | None:
        """The id of the run of `target` whose `pause_id` parameter is this pause, or None if ADF has none.

        Used before a claim is given back after an Unknown createRun: queryPipelineRuns for the
        pipeline, updated since `since` (the claim minus a minute), newest start first, page by
        page. The search ends at the last page or at runs that started before `since`. ADF cannot
        filter on parameter values, so they are compared here. Raise Unknown when ADF cannot be
        asked or the bounded search (RUN_LOOKUP_MAX_PAGES pages, `deadline` on the monotonic clock)
        ends without an answer.
        """
        from azure.mgmt.datafactory.models import RunFilterParameters, RunQueryFilter, RunQueryOrderBy

        now = now or datetime.now(timezone.utc)
        query = RunFilterParameters(
            last_updated_after=since, last_updated_before=now + timedelta(minutes=5),
            filters=[RunQueryFilter(operand="PipelineName", operator="Equals", values_property=[target.pipeline_name])],
            order_by=[RunQueryOrderBy(order_by="RunStart", order="DESC")])
        pages = self._settings.limits.run_lookup_max_pages
        # queryPipelineRuns is a POST, so ARM counts it a write: in the app's own work a 429 is handed back at once.
        background = _in_own_work(hand_back_throttling=True)
        try:
            client = self._client(target)
            for _ in range(pages):
                if deadline is not None and time.monotonic() > deadline:
                    break
                page = client.pipeline_runs.query_by_factory(target.resource_group, target.factory_name, query,
                                                             repeatable=True, **background, **self._call_options())
                runs = page.value or []
                for run in runs:
                    if (run.parameters or {}).get("pause_id") == pause_id:
                        return run.run_id
                older = [run for run in runs if run.run_start is not None and run.run_start < since]
                if not page.continuation_token or older:
                    return None
                query.continuation_token = page.continuation_token
        except Exception as exc:
            code = _error_code(exc) or type(exc).__name__
            self._throttled(exc, pacing_key(target), self.pacer)
            raise Unknown("RunLookupFailed", f"could not ask Data Factory whether the run started ({code}): "
                                             f"{getattr(exc, 'message', None) or exc}") from exc
        raise Unknown("RunLookupIncomplete", f"{pages} pages of runs were read without finding this pause's run "
                                             "or the end of the list")

    @staticmethod
    def _throttled(exc: Exception, key: tuple, pacer: pacing.Pacer) -> None:
        """If `exc` is ARM's 429 (not processed), hold `pacer` back and raise Throttled; else return."""
        from azure.core.exceptions import HttpResponseError

        if isinstance(exc, HttpResponseError) and exc.status_code == 429:
            retry_after = _retry_after(exc.response)
            pacer.throttled(key, retry_after)
            raise Throttled(_error_code(exc) or "HTTP429", exc.message or str(exc), retry_after) from exc

    def _call_options(self) -> dict:
        # The bearer-token policy refuses plain http unless told; only the loopback stand-in is http.
        return {"enforce_https": False} if self._settings.arm_is_local_standin else {}

    def _client(self, target: PipelineTarget):
        key = (target.tenant_id, target.subscription_id.lower())
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    client = self._clients[key] = self._new_client(target.tenant_id, target.subscription_id)
        return client

    def _new_client(self, tenant_id, subscription_id):
        from azure.mgmt.datafactory import DataFactoryManagementClient

        limits = self._settings.limits
        return DataFactoryManagementClient(
            self._credential_for(tenant_id), subscription_id, base_url=self._settings.arm_endpoint,
            credential_scopes=[self._settings.arm_endpoint + "/.default"],
            retry_policy=retry_policy(self._settings.limits),
            transport=outbound.http_transport(connection_timeout=limits.arm_connect_timeout_seconds,
                                     read_timeout=limits.arm_read_timeout_seconds))

    def _credential_for(self, tenant_id):
        if self._credentials is None:  # the local stand-in on loopback http
            return _DevCredential()
        return self._credentials.for_tenant(tenant_id)


def pacing_key(target: PipelineTarget) -> tuple:
    """Whose write bucket a call to `target` spends: ARM's is per subscription and principal (the app's
    identity in that tenant)."""
    return (target.tenant_id, target.subscription_id.lower())


def _in_own_work(**options) -> dict:
    """SDK call options that apply only in the app's own work (the timer, the queue): there ARM's 429 is not
    waited out in the SDK but handed back, and the item deferred (shared.sweep); a person's click keeps them."""
    return options if pacing.in_background() else {}


def _retry_after(response) -> float:
    """ARM's Retry-After in seconds, given as seconds (ARM's form) or as an HTTP date (RFC 9110, which a proxy
    may send; `shared.clock.retry_after_seconds`); 10, ARM's usual, when it is missing or neither."""
    import math

    seconds = retry_after_seconds(response.headers.get("Retry-After") if response is not None else None)
    return min(max(seconds, 1.0), 300.0) if seconds is not None and math.isfinite(seconds) else 10.0


@built_once
def get_adf() -> Adf:
    """The process's one ADF gateway (and so its client cache), built on first use."""
    return Adf(get_settings())
