"""One Azurite, one ADF stand-in, the app's settings pointed at them, and the app called as the host calls it."""

import dataclasses
import json
import os
import uuid
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import azure.functions as func

from local_dev.azurite import Azurite
from shared.settings import Limits

from .latency import LatencyProxy
from .standin import StandinProcess

REPO_ROOT = Path(__file__).resolve().parent.parent

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000be"
TARGET = {"subscription_id": SUBSCRIPTION, "resource_group": "rg-data", "factory_name": "adf-bench",
          "pipeline_name": "Load_Sales_Continue"}
BASE = "https://pauses.example.test"
# The ADF stand-in throttles as ARM does, but with buckets and refill rates this many times ARM's
# (200,000 writes at once, then 10,000 a second). The benchmarks time the app's own work against
# floors that make the same calls, hundreds of createRuns a second in one subscription; at ARM's
# pace (10 writes a second) both would mostly wait out Retry-After, and the ratios would measure
# ARM rather than the code. Throttling stays on (every answer carries the remaining-requests
# headers); `make bench ARGS="--arm-throttle-scale 1"` runs against ARM's own limits.
THROTTLE_SCALE = 1000

# What a pipeline's Web activity sends: the README's example, with a few hundred bytes of data.
PAUSE_BODY = {
    **TARGET,
    "parameters": {"day": "2026-11-25", "region": "emea"},
    "data": {"rows_staged": 1200, "files": [f"sales/2026-11-25/part-{i:04d}.parquet" for i in range(8)],
             "checks": {"nulls": 0, "duplicates": 3, "amount_total": 1234567.89}},
    "notification": {"title": "Load 1200 rows into Sales?",
                     "message": "Staged rows are ready for review: 3 duplicates were dropped."},
    "source": {"pipeline": "Load_Sales", "run_id": "8d5c7a52-0f6e-4c7e-9a38-3f8c2b1d9e10"},
}
APPROVE_BODY = {"comment": "Numbers look right"}
DECIDER_HEADERS = {"User-Agent": "Mozilla/5.0 (bench)", "X-Forwarded-For": "203.0.113.7:51234"}

# Every setting the app reads: cleared first, so the caller's environment cannot change the run.
SETTING_NAMES = ("AzureWebJobsStorage", "PAUSES_STORAGE_CONNECTION", "PAUSES_TABLE", "ARM_ENDPOINT",
                 "PUBLIC_BASE_URL", "ALLOWED_FACTORIES", "CALLBACK_ALLOWED_HOSTS", "SMTP_HOST", "SMTP_PORT",
                 "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_FROM", "SMTP_STARTTLS", "PAUSE_SWEEP_SCHEDULE",
                 "CHECK_PIPELINE_EXISTS", "CHECK_ALLOWED_HOSTS", "ALLOWED_TENANTS", "APPROVER_SIGN_IN",
                 "CROSS_TENANT_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_AUTHORITY_HOST", *(item.name.upper() for item in dataclasses.fields(Limits)))
# The subscriptions pauses go to (http_load spreads them over both); each has the bench factory and pipeline.
SUBSCRIPTIONS = (SUBSCRIPTION, "00000000-0000-0000-0000-0000000000bf")


def new_table_name(prefix: str = "bench") -> str:
    return prefix + uuid.uuid4().hex[:12]


def clear_app_caches() -> None:
    """Forget the app's settings and clients, so the next call builds them from the environment."""
    from shared.settings import get_settings
    from shared.storage.tables import reset_clients
    from shared.targets.adf import get_adf

    get_settings.cache_clear()
    get_adf.cache_clear()
    reset_clients()


class _StandinCredential:
    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        return AccessToken("bench", 4102444800)


def create_pipelines(arm_url: str) -> None:
    """Create the bench factory and pipeline in each subscription, through the SDK (the stand-in is strict)."""
    from azure.mgmt.datafactory import DataFactoryManagementClient
    from azure.mgmt.datafactory.models import Factory, ParameterSpecification, PipelineResource

    for subscription in SUBSCRIPTIONS:
        client = DataFactoryManagementClient(_StandinCredential(), subscription, base_url=arm_url)
        client.factories.create_or_update(TARGET["resource_group"], TARGET["factory_name"],
                                          Factory(location="westeurope"), enforce_https=False)
        parameters = {name: ParameterSpecification(type="String", default_value="") for name in ("day", "region")}
        parameters["pause_id"] = ParameterSpecification(type="String")
        client.pipelines.create_or_update(TARGET["resource_group"], TARGET["factory_name"], TARGET["pipeline_name"],
                                          PipelineResource(activities=[], parameters=parameters),
                                          enforce_https=False)
        client.close()


class Stack:
    """Azurite (in memory) and the ADF stand-in (own process), with the app's settings pointing at them.

    With `rtt_ms`, the app and the floors reach both through latency proxies that add that
    round trip time, as if they were a network away (the bulk loader still goes direct).
    """

    def __init__(self, rtt_ms: float = 0, create_run_ms: float = 0, throttle_scale: float = THROTTLE_SCALE):
        self.rtt_ms = rtt_ms
        self.create_run_ms = create_run_ms
        self.throttle_scale = throttle_scale
        self._exit = ExitStack()
        self.azurite = None
        self.adf = None
        self.storage = None  # the connection string the app and the floors use
        self.arm = None  # the ARM endpoint they use
        self.ports = {}  # port -> what listens there, for naming connections

    def __enter__(self) -> "Stack":
        try:
            self.azurite = self._exit.enter_context(Azurite(in_memory=True))
            env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
            self.adf = self._exit.enter_context(StandinProcess(REPO_ROOT, env, self.create_run_ms,
                                                                 self.throttle_scale))
            create_pipelines(self.adf.url)
            adf_port = urlsplit(self.adf.url).port
            self.ports = {self.azurite.port: "Azurite", adf_port: "ADF stand-in"}
            self.storage, self.arm = self.azurite.connection_string, self.adf.url
            if self.rtt_ms:
                storage = self._exit.enter_context(LatencyProxy(self.azurite.port, self.rtt_ms, REPO_ROOT, env))
                arm = self._exit.enter_context(LatencyProxy(adf_port, self.rtt_ms, REPO_ROOT, env))
                self.storage = self.storage.replace(f":{self.azurite.port}/", f":{storage.port}/")
                self.arm = f"http://127.0.0.1:{arm.port}"
                self.ports.update({storage.port: "Azurite (via latency proxy)",
                                   arm.port: "ADF stand-in (via latency proxy)"})
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self._exit.close()

    def app_environment(self, table: str) -> dict:
        """The app settings for `table`, as the host subprocess gets them."""
        return {"AzureWebJobsStorage": self.storage, "PAUSES_TABLE": table, "ARM_ENDPOINT": self.arm}

    def use_table(self, table: str, **settings: str) -> None:
        """Point this process's app at `table`, with any further `settings` (settings and clients
        rebuilt on next use)."""
        for name in SETTING_NAMES:
            os.environ.pop(name, None)
        os.environ.update({**self.app_environment(table), **settings})
        clear_app_caches()


class App:
    """The registered functions, called with azure.functions requests the way the host calls them."""

    def __init__(self):
        import function_app
        from local_dev.functions_host import http_functions

        self._functions = {f.name: f.user_function for f in http_functions(function_app.app)}

    def call(self, name: str, method: str, path: str, body: bytes = b"", headers=None, route_params=None):
        req = func.HttpRequest(method, f"{BASE}/api/{path}", headers=headers or {}, params={},
                               route_params=route_params or {}, body=body)
        return self._functions[name](req)

    def pause(self, body: bytes) -> dict:
        """Create a pause; return the created JSON (token, pause_id, links)."""
        response = self.call("pause", "POST", "pause", body, {"Content-Type": "application/json"})
        if response.status_code not in (201, 202):  # 202: callback mode
            raise RuntimeError(f"pause answered {response.status_code}: {response.get_body()[:300]!r}")
        return json.loads(response.get_body())

    def restart(self, token: str, body: bytes) -> dict:
        """Approve a pause (JSON); return the answer with its run id."""
        headers = {"Content-Type": "application/json", "Accept": "application/json", **DECIDER_HEADERS}
        response = self.call("restart", "POST", f"restart/{token}", body, headers, {"token": token})
        if response.status_code != 200:
            raise RuntimeError(f"restart answered {response.status_code}: {response.get_body()[:300]!r}")
        return json.loads(response.get_body())


def pause_body() -> bytes:
    return json.dumps(PAUSE_BODY).encode()


def approve_body() -> bytes:
    return json.dumps(APPROVE_BODY).encode()


def token_path(url: str) -> str:
    """The path of a restart_url, e.g. /api/restart/<token>."""
    return urlsplit(url).path
