"""LOCAL STAND-IN for the Azure Data Factory management API. Development and tests only; never deployed.

A small HTTP server answering the Azure Resource Manager (ARM) routes that
`azure.mgmt.datafactory.DataFactoryManagementClient` calls for this app, with ARM's JSON shapes
and error bodies, so the real SDK can be pointed at it:

    client = DataFactoryManagementClient(credential, "<subscription>", base_url=standin.url)
    client.pipelines.create_run("rg", "factory", "pipe", parameters={...}, enforce_https=False)

(`enforce_https=False` goes on every call: azure-core refuses bearer tokens over plain http.)

It is as strict as ADF where the app depends on ADF's behaviour (Data Factory REST API
2018-06-01, `Azure/azure-rest-api-specs` datafactory.json and its examples), so a test cannot
pass here where Azure would fail:

- Factories and pipelines must exist. The pipelines in `adf/pipelines/` exist in the default
  factory (DEFAULT_FACTORY, the README's); others are created through the SDK
  (`factories.create_or_update`, `pipelines.create_or_update`). Anything else is ARM's 404.
- A run starts `Queued`, then is `InProgress`; `parameters` come back as ADF returns them (a
  map of strings). A declared parameter without a default must be given (ADF's answer to a
  missing one is not documented: the stand-in refuses it with 400, the stricter choice).
- A pipeline that does not exist is `404 NotFound` "The document could not be retrieved
  because it does not exist." (recorded from ADF for a GET); a factory that does not exist is
  ARM's `404 ResourceNotFound`.
- `queryPipelineRuns` needs `lastUpdatedAfter` and `lastUpdatedBefore`, filters only on the
  operands documented for pipeline runs (PipelineName, RunStart, RunEnd, Status) with
  Equals/NotEquals/In/NotIn, orders by RunStart/RunEnd/PipelineName/Status, and answers at most
  `page_size` runs a page with an opaque `continuationToken`.
- Every ARM route needs `Authorization: Bearer <token>` and `api-version=2018-06-01`.
- ARM throttles (local_dev/arm_throttle.py, after Microsoft's *Request limits and throttling*): a
  token bucket per subscription, principal (the token's `oid`) and kind, writes (PUT, POST) 200
  at once then 10 a second, reads (GET) 250 then 25 a second, and one 15 times as large shared by
  the subscription's principals. Every ARM answer says what remains
  (`x-ms-ratelimit-remaining-subscription-writes` or `-reads`, and `-global-writes` or
  `-global-reads`); beyond the limit the answer is `429 SubscriptionRequestsThrottled` with
  `Retry-After`, and the request is not processed. `throttle=Throttle(...)` sets other sizes
  (`Throttle().scaled(10)`: ten times ARM's); `make run` reads the factor from the setting
  ADF_STANDIN_THROTTLE_SCALE. reset() fills every bucket again.
- Connections stay open between requests (HTTP/1.1 keep-alive, `local_dev/keep_alive.py`), as ARM's do: a
  client's pooled connection is used again, not opened anew for every call.

Faults are injected per operation (`createRun`, `getPipeline`, `getRun`, `queryPipelineRuns`,
`callback`), first come first served, each for `count` requests (a request ARM throttled meets none):

    before    answer `status` (an ARM error) and record nothing          (429 adds Retry-After)
    after     record (the run, the callback), then answer `status`      (ADF's 5xx after the fact)
    late      record, then answer normally after `seconds`               (an answer that comes too late)
    drop      record, then close the connection without an answer
    hang      record, then say nothing for `seconds` (or until reset) and close
    garbled   record, then answer what no client expects: 200 with an HTML body (ARM routes), or
              bytes that are not HTTP at all (callbacks), as a broken proxy in between would
    truncated record, then answer 200 with JSON cut off halfway (ARM routes)

It also plays the WebHook activity's side of callback mode: a pause made with
`callBackUri = <stand-in>/_standin/callbacks/<any id>` is called back there. The first callback
for an id completes the activity (200); any later one is refused with 409, as by a completed
activity.

Control routes (no token):

    GET    /                          this text
    GET    /_standin/runs             every recorded run, with its subscription, resource group and factory
    DELETE /_standin/runs             forget the recorded runs
    GET    /_standin/pipelines        every known factory and pipeline
    GET    /_standin/throttling       per ARM operation and subscription: requests answered, and throttled (429)
    POST   /_standin/faults           {"operation", "kind", "count", "status", "code", "message", "retryAfter", "seconds"}
    POST   /_standin/reset            forget runs, callbacks, created factories and pipelines, faults; fill the buckets
    POST   /_standin/callbacks/<id>   receive a callback (what the app calls)
    GET    /_standin/callbacks        every callback received, with the answer it got (?skip=<n>: all but the first n)
    GET    /_standin/mail             the emails the local mail catcher received (make run), newest first
    GET    /_standin/mail.json        the same as JSON; /_standin/mail/<n> shows one

Run it on its own with `python -m local_dev.adf_standin --port 7072`, or from Python:

    with AdfStandin() as standin:
        ...  # standin.url, standin.runs, standin.inject(...), standin.callbacks, standin.reset()
"""

import argparse
import base64
import copy
import datetime
import hashlib
import html
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from local_dev.arm_actions import app_actions
from local_dev.arm_throttle import ArmThrottle, Throttle, principal_of
from local_dev.arm_wire import (ArmError, arm_key, arm_parameters, format_time, json_body, json_response,
                                parse_bool, parse_time, pipeline_parameters, run_filter)
from local_dev.keep_alive import KeepAliveHandler
from local_dev.service import ServedInThread

API_VERSION = "2018-06-01"
REPO_PIPELINES = Path(__file__).resolve().parent.parent / "adf" / "pipelines"
# The factory the repository's pipelines live in, and the README's curl walk uses.
DEFAULT_FACTORY = ("00000000-0000-0000-0000-000000000000", "rg-data", "adf-demo")
PAGE_SIZE = 100
QUEUED_SECONDS = 0.5
RUN_STATUSES = ("Queued", "InProgress", "Succeeded", "Failed", "Canceling", "Cancelled")

_log = logging.getLogger(__name__)

_PROVIDER = "/subscriptions/<subscription>/resourceGroups/<resource_group>/providers/Microsoft.DataFactory"
_FACTORY = _PROVIDER + "/factories/<factory>"

# Endpoints starting with "arm_" are ARM routes: they check the bearer token and api-version.
_URL_MAP = Map([
    Rule(_FACTORY, methods=["PUT"], endpoint="arm_put_factory"),
    Rule(_FACTORY, methods=["GET"], endpoint="arm_get_factory"),
    Rule(f"{_FACTORY}/pipelines/<pipeline>", methods=["PUT"], endpoint="arm_put_pipeline"),
    Rule(f"{_FACTORY}/pipelines/<pipeline>", methods=["GET"], endpoint="arm_get_pipeline"),
    Rule(f"{_FACTORY}/pipelines/<pipeline>/createRun", methods=["POST"], endpoint="arm_create_run"),
    Rule(f"{_FACTORY}/pipelineruns/<run_id>", methods=["GET"], endpoint="arm_get_run"),
    Rule(f"{_FACTORY}/pipelineruns/<run_id>/cancel", methods=["POST"], endpoint="arm_cancel_run"),
    Rule(f"{_FACTORY}/queryPipelineRuns", methods=["POST"], endpoint="arm_query_runs"),
    Rule("/_standin/runs", methods=["GET"], endpoint="list_runs"),
    Rule("/_standin/runs", methods=["DELETE"], endpoint="clear_runs"),
    Rule("/_standin/pipelines", methods=["GET"], endpoint="list_pipelines"),
    Rule("/_standin/throttling", methods=["GET"], endpoint="throttling"),
    Rule("/_standin/faults", methods=["POST"], endpoint="add_fault"),
    Rule("/_standin/reset", methods=["POST"], endpoint="reset"),
    Rule("/_standin/callbacks/<callback_id>", methods=["POST"], endpoint="receive_callback"),
    Rule("/_standin/callbacks", methods=["GET"], endpoint="list_callbacks"),
    Rule("/_standin/mail", methods=["GET"], endpoint="list_mail"),
    Rule("/_standin/mail.json", methods=["GET"], endpoint="mail_json"),
    Rule("/_standin/mail/<int:number>", methods=["GET"], endpoint="show_mail"),
    Rule("/", methods=["GET"], endpoint="help"),
])

OPERATIONS = ("createRun", "getPipeline", "getRun", "queryPipelineRuns", "callback")

# The Azure RBAC action each ARM route needs (resource provider operations of Microsoft.DataFactory).
_ACTIONS = {
    "arm_put_factory": "Microsoft.DataFactory/factories/write",
    "arm_get_factory": "Microsoft.DataFactory/factories/read",
    "arm_put_pipeline": "Microsoft.DataFactory/factories/pipelines/write",
    "arm_get_pipeline": "Microsoft.DataFactory/factories/pipelines/read",
    "arm_create_run": "Microsoft.DataFactory/factories/pipelines/createrun/action",
    "arm_get_run": "Microsoft.DataFactory/factories/pipelineruns/read",
    "arm_cancel_run": "Microsoft.DataFactory/factories/pipelineruns/cancel/action",
    "arm_query_runs": "Microsoft.DataFactory/factories/querypipelineruns/action",
}
# The names the stand-in's records and faults use for ARM routes (the rest by their route's name).
_OPERATIONS = {"arm_create_run": "createRun", "arm_get_pipeline": "getPipeline", "arm_get_run": "getRun",
               "arm_query_runs": "queryPipelineRuns"}
# The least the app needs, the role tests give it: the actions of the Data Factory calls in shared/,
# derived from the code and the SDK (local_dev.arm_actions), not kept by hand; infra/ grants the same.
APP_ROLE = app_actions()
KINDS = ("before", "after", "late", "drop", "hang", "garbled", "truncated")

# queryPipelineRuns orders by these run fields.
_ORDER_FIELDS = {"RunStart": "runStart", "RunEnd": "runEnd", "PipelineName": "pipelineName", "Status": "status"}
_CREATE_RUN_OPTIONS = {"referencePipelineRunId": str, "isRecovery": bool, "startActivityName": str,
                       "startFromFailure": bool}
# ADF entity names: up to 140 characters, starting with a letter, digit or underscore, none of . + ? / < > * # % & : \
_PIPELINE_NAME = re.compile(r"[A-Za-z0-9_][^.+?/<>*#%&:\\]{0,139}")
_FACTORY_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{1,61})[A-Za-z0-9]")
_INJECTED = "Injected failure from the ADF stand-in."


class _Drop(Exception):
    """Close the connection without answering (or after writing `raw` bytes)."""

    def __init__(self, raw: bytes = b""):
        super().__init__("dropped")
        self.raw = raw


_GARBLED_PAGE = "<html><body><h1>502 Bad Gateway</h1></body></html>"


@dataclass
class Fault:
    operation: str
    kind: str
    count: int = 1
    status: int = 500
    code: str = "InternalServerError"
    message: str = _INJECTED
    retry_after: float | None = None
    seconds: float = 0.0

    def error(self):
        headers = {"Retry-After": str(int(self.retry_after))} if self.retry_after is not None else None
        return ArmError(self.status, self.code, self.message, headers)


def _page(title, body):
    return Response(f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
                    '<style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem}td,th{padding:.25rem .75rem;'
                    'text-align:left}pre{white-space:pre-wrap}</style></head><body><main>'
                    f'<p><strong>LOCAL STAND-IN</strong> (development only)</p>{body}</main></body></html>',
                    content_type="text/html; charset=utf-8")


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


class _RequestHandler(KeepAliveHandler):
    """One short log line per request through this module's logger (quiet in tests)."""

    def log_request(self, code="-", size="-"):
        _log.info("%s %s -> %s", self.command, self.path, code)

    def log_error(self, format, *args):
        _log.debug(format, *args)


class AdfStandin(ServedInThread):
    """The stand-in server and its in-memory state; all methods are safe to call from any thread."""

    def __init__(self, host="127.0.0.1", port=0, *, page_size=PAGE_SIZE, queued_seconds=QUEUED_SECONDS,
                 latency=None, issuer=None, tenants=None, ssl_context=None, roles=None, mail=None,
                 throttle: Throttle | None = None):
        self.host, self.port = host, port
        # ARM's request throttling (ARM's sizes unless `throttle` says otherwise); reset() refills it.
        self.throttle = ArmThrottle(throttle)
        self.mail = mail  # a local_dev.mail_catcher.MailCatcher whose messages /_standin/mail lists
        # With `tenants` (subscription -> tenant id) and the `issuer` of tokens, it checks bearer tokens
        # as ARM does: signature, expiry, audience (its own URL), and the subscription's tenant.
        self.issuer, self.tenants = issuer, ({k.lower(): v for k, v in tenants.items()} if tenants else None)
        self.ssl_context = ssl_context
        # With `roles` ((subscription, appid) -> the actions granted, or "*"), ARM's authorization
        # too: a principal may only do what a role on the subscription's factories grants it.
        self.roles = {(sub.lower(), app): actions for (sub, app), actions in roles.items()} if roles else None
        self.tokens_seen = []  # (subscription, tid) of every token accepted in that mode
        self.page_size = page_size
        self.queued_seconds = queued_seconds
        # Seconds an operation takes before it is answered (benchmarks: ADF answering in 200 ms).
        self.latency = dict(latency or {})
        self._latency_at_start = dict(self.latency)
        self._server = self._thread = None
        self._lock = threading.Lock()
        self._repo_pipelines = self._load_repo_pipelines()
        self._reset_state()
        # Set by reset() and stop(): wakes late or hanging requests, which then record nothing more.
        self._wake = threading.Event()

    def _reset_state(self):
        self._factories = {arm_key(*DEFAULT_FACTORY): self._factory_resource(*DEFAULT_FACTORY, "westeurope")}
        self._pipelines = {arm_key(*DEFAULT_FACTORY, name): resource for name, resource in self._repo_pipelines.items()}
        self._runs = {}  # run id -> record, oldest first
        self._callbacks = []  # every callback received: {"callbackId", "body", "status", "completed", ...}
        self._completed = set()  # callback ids whose activity is complete
        self._faults = []
        self._arm_calls = Counter()  # (operation, subscription, "answered" | "throttled") -> requests

    # Lifecycle

    def start(self):
        """Serve in a background thread; return the base URL (port 0 picks a free port)."""
        if self._server is not None:
            raise RuntimeError("the ADF stand-in is already running")
        self._wake = threading.Event()
        self.serve_in_thread(make_server(self.host, self.port, self._wsgi_app, threaded=True,
                                         request_handler=_RequestHandler, ssl_context=self.ssl_context),
                             name="adf-standin")
        self.port = self._server.server_port
        return self.url

    def stop(self):
        self._wake.set()  # late or hanging requests record nothing more
        super().stop()


    @property
    def url(self):
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self.port}"

    # Inspection and fault injection

    @property
    def runs(self):
        """Every recorded run, oldest first, as independent copies: ARM's PipelineRun JSON with the
        parameters as received, plus subscription, resourceGroup, factory and createRunOptions."""
        with self._lock:
            for record in self._runs.values():
                self._advance(record)
            return copy.deepcopy(list(self._runs.values()))

    @property
    def callbacks(self):
        """Every WebHook callback received, oldest first: {"callbackId", "body", "status" (the answer, or
        "unanswered"), "completed" (whether this one completed the activity), "receivedAt"}."""
        return copy.deepcopy(self._callbacks_from(0))

    def _callbacks_from(self, first: int) -> list:
        """The callbacks from the `first`-th on, each a copy of its entry as it is now (a body is never changed
        once received). Copied entry by entry, not deeply, under the lock: a bench polling thousands of them must
        not hold up the callbacks and ARM calls arriving meanwhile."""
        with self._lock:
            return [dict(entry) for entry in self._callbacks[first:]]

    @property
    def pipelines(self):
        """Every known pipeline as (subscription, resource group, factory, name), lower case."""
        with self._lock:
            return sorted(self._pipelines)

    def inject(self, operation, kind="before", *, count=1, status=500, code="InternalServerError", message=_INJECTED,
               retry_after=None, seconds=0.0):
        """Make the next `count` requests of `operation` fail as `kind` (see the module's docstring)."""
        if operation not in OPERATIONS or kind not in KINDS:
            raise ValueError(f"operation must be one of {OPERATIONS} and kind one of {KINDS}")
        if count < 1 or not 400 <= status <= 599 or seconds < 0:
            raise ValueError("count must be at least 1, status an HTTP error status, seconds not negative")
        if kind in ("late", "hang") and not seconds:
            seconds = 60.0
        with self._lock:
            self._faults.append(Fault(operation, kind, count, status, code, message, retry_after, float(seconds)))

    def end_queue_time(self):
        """Let every queued run's queue time be over now (tests move the clock instead of waiting)."""
        with self._lock:
            for record in self._runs.values():
                record["_queuedUntil"] = min(record["_queuedUntil"], time.monotonic())

    def finish_run(self, run_id, status="Succeeded", message=""):
        """End a run as ADF would (Succeeded, Failed or Cancelled)."""
        if status not in ("Succeeded", "Failed", "Cancelled"):
            raise ValueError("status must be Succeeded, Failed or Cancelled")
        with self._lock:
            self._end(self._runs[run_id], status, message)

    def reset_faults(self):
        """Forget the injected faults not yet used up."""
        with self._lock:
            self._faults.clear()

    def reset(self):
        """Forget runs, callbacks, created factories and pipelines, injected faults and latency set since;
        fill ARM's throttling buckets again."""
        with self._lock:
            self._reset_state()
            self.throttle.reset()
            self.latency = dict(self._latency_at_start)
            self._wake.set()
            self._wake = threading.Event()

    # HTTP

    @Request.application
    def _wsgi_app(self, request):
        try:
            endpoint, args = _URL_MAP.bind_to_environ(request.environ).match()
            if endpoint.startswith("arm_"):
                return self._arm_call(request, endpoint, args)
            return getattr(self, f"_handle_{endpoint}")(request, **args)
        except ArmError as error:
            return error.response()
        except _Drop as drop:
            _drop_connection(request, drop.raw)
            return Response(status=500)  # never reaches the client: its connection is gone
        except HTTPException as error:  # no route, or a route without this method
            message = f"{request.method} {request.path}: {error.description}"
            return ArmError(error.code, error.name.replace(" ", ""), message).response()

    def _arm_call(self, request, endpoint, args):
        """An ARM route: authenticated and authorized, then throttled, then handled; the answer, error or
        not, says what remains of the caller's bucket. A throttled request is not processed."""
        subscription = args.get("subscription")
        claims = self._check_arm_request(request, subscription, _ACTIONS[endpoint])
        token = request.headers["Authorization"][len("Bearer "):].strip()
        decision = self.throttle.take(subscription, principal_of(token, claims), request.method)
        with self._lock:
            self._arm_calls[(_OPERATIONS.get(endpoint, endpoint), (subscription or "").lower(),
                             "answered" if decision.allowed else "throttled")] += 1
        if not decision.allowed:
            raise ArmError(429, "SubscriptionRequestsThrottled", decision.message, decision.headers)
        try:
            response = getattr(self, f"_handle_{endpoint}")(request, **args)
        except ArmError as error:
            error.headers = {**error.headers, **decision.headers}
            raise
        response.headers.update(decision.headers)
        return response

    def _check_arm_request(self, request, subscription, action):
        """ARM's checks before it routes a request: a bearer token, the api-version, and with `tenants` the
        token itself and the caller's role. Returns the token's checked claims (None without `tenants`)."""
        token = request.headers.get("Authorization", "")
        if not token.startswith("Bearer ") or not token[len("Bearer "):].strip():
            raise ArmError(401, "AuthenticationFailed",
                            "Authentication failed. The 'Authorization' header is missing or is not a bearer token.",
                            # ARM sends a challenge with every 401; the SDK's authentication policy reads it.
                            {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="No bearer token"'})
        api_version = request.args.get("api-version")
        if api_version is None:
            raise ArmError(400, "MissingApiVersionParameter",
                            "The api-version query parameter (?api-version=) is required for all requests.")
        if api_version != API_VERSION:
            raise ArmError(400, "InvalidApiVersionParameter",
                            f"The api-version '{api_version}' is invalid. The supported versions are '{API_VERSION}'.")
        if self.tenants is None:
            return None
        claims = self._check_token(token[len("Bearer "):].strip(), subscription)
        self._check_role(claims, subscription, action, request.path)
        return claims

    def _check_role(self, claims, subscription, action, path):
        if self.roles is None:
            return
        granted = self.roles.get(((subscription or "").lower(), claims.get("appid")), ())
        if granted != "*" and action.lower() not in {name.lower() for name in granted}:  # ARM ignores case
            scope = path.split("/createRun")[0].split("/queryPipelineRuns")[0]
            raise ArmError(403, "AuthorizationFailed",
                            f"The client '{claims.get('oid')}' with object id '{claims.get('oid')}' does not have "
                            f"authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. "
                            "If access was recently granted, please refresh your credentials.")

    def _check_token(self, token, subscription):
        """ARM's checks of a bearer token, in its order: valid at all, then from the subscription's tenant."""
        from local_dev.identity_standin import InvalidToken

        try:
            claims = self.issuer.verify(token, audience=self.url)
        except InvalidToken as bad:
            raise ArmError(401, bad.code, str(bad),
                            {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{bad}"'}) from None
        expected = self.tenants.get((subscription or "").lower())
        if expected is None:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")
        if claims["tid"] != expected:
            raise ArmError(
                401, "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong issuer 'https://sts.windows.net/{claims['tid']}/'. It must match "
                f"the tenant 'https://sts.windows.net/{expected}/' associated with this subscription. Please use the "
                f"authority (URL) 'https://login.windows.net/{expected}' to get the token.",
                {"WWW-Authenticate": f'Bearer authorization_uri="https://login.windows.net/{expected}", '
                                     'error="invalid_token", error_description="The access token is from the wrong '
                                     'issuer."'})
        with self._lock:
            self.tokens_seen.append((subscription, claims["tid"]))
        return claims

    def _take_fault(self, operation):
        with self._lock:
            for fault in self._faults:
                if fault.operation == operation:
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    return fault, self._wake
            return None, self._wake

    def _faulted(self, operation, record, answer):
        """Run `record()` and return `answer()` as the next fault for `operation` says."""
        if self.latency.get(operation):
            time.sleep(self.latency[operation])
        fault, wake = self._take_fault(operation)
        if fault is None:
            record()
            return answer()
        if fault.kind == "before":
            raise fault.error()
        record()
        if fault.kind == "after":
            raise fault.error()
        if fault.kind == "drop":
            raise _Drop()
        if fault.kind == "garbled":
            if operation == "callback":
                raise _Drop(b"HTTP/9.9 ???\r\n\x00\x01garbage\r\n\r\n")
            return Response(_GARBLED_PAGE, status=200, content_type="text/html")
        if fault.kind == "truncated":
            whole = answer().get_data()
            return Response(whole[:max(1, len(whole) // 2)], status=200, content_type="application/json")
        if wake.wait(fault.seconds) or fault.kind == "hang":
            raise _Drop()
        return answer()  # late

    # Factories and pipelines

    @staticmethod
    def _factory_resource(subscription, resource_group, factory, location):
        return {
            "id": f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.DataFactory"
                  f"/factories/{factory}",
            "name": factory, "type": "Microsoft.DataFactory/factories", "location": location,
            "properties": {"provisioningState": "Succeeded", "createTime": format_time(_now()),
                           "version": API_VERSION},
            "eTag": f'"{uuid.uuid4()}"',
        }

    @staticmethod
    def _load_repo_pipelines():
        found = {}
        for path in sorted(REPO_PIPELINES.glob("*.json")):
            definition = json.loads(path.read_text(encoding="utf-8"))
            found[definition["name"].lower()] = definition
        return found

    def _factory(self, subscription, resource_group, factory):
        found = self._factories.get(arm_key(subscription, resource_group, factory))
        if found is None:
            raise ArmError(404, "ResourceNotFound",
                            f"The Resource 'Microsoft.DataFactory/factories/{factory}' under resource group "
                            f"'{resource_group}' was not found. For more details please go to "
                            "https://aka.ms/ARMResourceNotFoundFix")
        return found

    def _pipeline(self, subscription, resource_group, factory, pipeline):
        factory_id = self._factory(subscription, resource_group, factory)["id"]
        found = self._pipelines.get(arm_key(subscription, resource_group, factory, pipeline))
        if found is None:
            # What ADF answered for a pipeline that does not exist (a recorded GET; createRun is assumed alike).
            raise ArmError(404, "NotFound", "The document could not be retrieved because it does not exist.",
                            target=f"{factory_id}/pipelines/{pipeline}", details=True)
        return found

    def _handle_arm_put_factory(self, request, subscription, resource_group, factory):
        body = json_body(request, default=None)
        if not isinstance(body, dict) or not isinstance(body.get("location"), str) or not body["location"]:
            raise ArmError(400, "InvalidRequestContent", "A factory needs a 'location'.")
        if not _FACTORY_NAME.fullmatch(factory):
            raise ArmError(400, "InvalidResourceName", f"Factory name '{factory}' is not valid.")
        with self._lock:
            resource = self._factory_resource(subscription, resource_group, factory, body["location"])
            self._factories[arm_key(subscription, resource_group, factory)] = resource
            return json_response(resource)

    def _handle_arm_get_factory(self, request, subscription, resource_group, factory):
        with self._lock:
            return json_response(self._factory(subscription, resource_group, factory))

    def _handle_arm_put_pipeline(self, request, subscription, resource_group, factory, pipeline):
        body = json_body(request, default=None)
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise ArmError(400, "InvalidRequestContent", "A pipeline needs a 'properties' object.")
        if not _PIPELINE_NAME.fullmatch(pipeline):
            raise ArmError(400, "InvalidResourceName", f"Pipeline name '{pipeline}' is not valid.")
        activities = body["properties"].get("activities", [])
        if not isinstance(activities, list):
            raise ArmError(400, "InvalidRequestContent", "'properties.activities' must be a list.")
        pipeline_parameters(body["properties"])
        with self._lock:
            factory_resource = self._factory(subscription, resource_group, factory)
            resource = {"id": f"{factory_resource['id']}/pipelines/{pipeline}", "name": pipeline,
                        "type": "Microsoft.DataFactory/factories/pipelines", "etag": f'"{uuid.uuid4()}"',
                        "properties": copy.deepcopy(body["properties"])}
            self._pipelines[arm_key(subscription, resource_group, factory, pipeline)] = resource
            return json_response(resource)

    def _handle_arm_get_pipeline(self, request, subscription, resource_group, factory, pipeline):
        def answer():
            with self._lock:
                found = copy.deepcopy(self._pipeline(subscription, resource_group, factory, pipeline))
            found.setdefault("id", f"{self._factory(subscription, resource_group, factory)['id']}/pipelines/"
                                   f"{found['name']}")
            found.setdefault("type", "Microsoft.DataFactory/factories/pipelines")
            found.setdefault("etag", '"repository"')
            return json_response(found)
        return self._faulted("getPipeline", lambda: None, answer)

    # Runs

    def _handle_arm_create_run(self, request, subscription, resource_group, factory, pipeline):
        parameters = json_body(request, default={})
        if not isinstance(parameters, dict):
            raise ArmError(400, "InvalidRequestContent", "The createRun body must be a JSON object of parameters.")
        options = {name: parse_bool(name, request.args[name]) if kind is bool else request.args[name]
                   for name, kind in _CREATE_RUN_OPTIONS.items() if name in request.args}
        with self._lock:
            definition = self._pipeline(subscription, resource_group, factory, pipeline)
        declared = definition["properties"].get("parameters") or {}
        missing = [name for name, spec in declared.items() if "defaultValue" not in spec and name not in parameters]
        if missing:
            raise ArmError(400, "BadRequest", f"Missing value for required parameter(s): {', '.join(missing)}.",
                            target=f"pipeline/{definition['name']}")
        run_id = str(uuid.uuid4())

        def record():
            now = _now()
            with self._lock:
                self._runs[run_id] = {
                    "subscription": subscription, "resourceGroup": resource_group, "factory": factory,
                    "createRunOptions": options, "parametersAsSent": parameters,
                    # The rest is ARM's PipelineRun.
                    "runId": run_id, "runGroupId": run_id, "isLatest": True, "pipelineName": definition["name"],
                    "parameters": parameters, "runDimensions": {},
                    "invokedBy": {"name": "Manual", "id": uuid.uuid4().hex, "invokedByType": "Manual"},
                    "runStart": format_time(now), "runEnd": None, "durationInMs": None, "status": "Queued",
                    "message": "", "lastUpdated": format_time(now),
                    "_queuedUntil": time.monotonic() + self.queued_seconds,
                }

        return self._faulted("createRun", record, lambda: json_response({"runId": run_id}))

    def _handle_arm_get_run(self, request, subscription, resource_group, factory, run_id):
        def answer():
            with self._lock:
                return json_response(self._pipeline_run(self._find_run(subscription, resource_group, factory, run_id)))
        return self._faulted("getRun", lambda: None, answer)

    def _handle_arm_cancel_run(self, request, subscription, resource_group, factory, run_id):
        if "isRecursive" in request.args:  # accepted and validated; there are no child runs to cancel
            parse_bool("isRecursive", request.args["isRecursive"])
        with self._lock:
            record = self._find_run(subscription, resource_group, factory, run_id)
            if record["status"] in ("InProgress", "Queued", "Canceling"):
                self._end(record, "Cancelled", "")
        return Response(status=200)

    def _handle_arm_query_runs(self, request, subscription, resource_group, factory):
        query = json_body(request, default=None)
        if not isinstance(query, dict):
            raise ArmError(400, "InvalidRequestContent", "The body must be a RunFilterParameters object.")
        for name in ("lastUpdatedAfter", "lastUpdatedBefore"):
            if query.get(name) is None:
                raise ArmError(400, "InvalidRequestContent", f"The '{name}' field is required.")
        after = parse_time("lastUpdatedAfter", query["lastUpdatedAfter"])
        before = parse_time("lastUpdatedBefore", query["lastUpdatedBefore"])
        wanted = run_filter(query.get("filters") or [])
        order_by = query.get("orderBy") or []
        if not isinstance(order_by, list):
            raise ArmError(400, "InvalidRequestContent", f"'orderBy' must be a list, got {order_by!r}.")
        for order in order_by:
            if not isinstance(order, dict) or order.get("orderBy") not in _ORDER_FIELDS \
                    or order.get("order") not in ("ASC", "DESC"):
                raise ArmError(400, "InvalidRequestContent",
                                f"Cannot order pipeline runs by {order!r}: orderBy is one of "
                                f"{', '.join(_ORDER_FIELDS)} and order ASC or DESC.")
        # The continuation token names the query it belongs to and where the next page starts.
        fingerprint = hashlib.sha256(json.dumps({k: v for k, v in query.items() if k != "continuationToken"},
                                                sort_keys=True).encode()).hexdigest()[:16]
        offset = self._decode_token(query.get("continuationToken"), fingerprint)
        with self._lock:
            self._factory(subscription, resource_group, factory)
            found = []
            for record in self._runs.values():
                self._advance(record)
                if arm_key(record["subscription"], record["resourceGroup"], record["factory"]) \
                        == arm_key(subscription, resource_group, factory) \
                        and after <= datetime.datetime.fromisoformat(record["lastUpdated"]) <= before \
                        and wanted(record):
                    found.append(self._pipeline_run(record))
        # Stable sorts, applied last key first, sort by the first key then the next. Runs without
        # the field (no runEnd yet) go last in either direction.
        for order in reversed(order_by):
            field = _ORDER_FIELDS[order["orderBy"]]
            present = sorted((run for run in found if run[field] is not None), key=lambda run: run[field],
                             reverse=order["order"] == "DESC")
            found = present + [run for run in found if run[field] is None]
        page = found[offset:offset + self.page_size]
        following = offset + self.page_size
        token = self._encode_token(following, fingerprint) if following < len(found) else None

        def answer():
            return json_response({"value": page, "continuationToken": token})
        return self._faulted("queryPipelineRuns", lambda: None, answer)

    @staticmethod
    def _encode_token(offset, fingerprint):
        return base64.urlsafe_b64encode(json.dumps({"o": offset, "q": fingerprint}).encode()).decode()

    @staticmethod
    def _decode_token(token, fingerprint):
        if token is None:
            return 0
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
            if decoded["q"] == fingerprint and isinstance(decoded["o"], int) and decoded["o"] >= 0:
                return decoded["o"]
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        raise ArmError(400, "InvalidRequestContent", "The continuationToken is not valid for this query.")

    # Callbacks

    def _handle_receive_callback(self, request, callback_id):
        body = json_body(request, default=None)
        entry = {"callbackId": callback_id, "body": body, "receivedAt": format_time(_now()), "status": None,
                 "completed": False}

        def record():
            with self._lock:
                first = callback_id not in self._completed
                self._completed.add(callback_id)
                entry.update(completed=first, status=200 if first else 409)

        def answered(status):
            with self._lock:
                entry["status"] = status

        with self._lock:
            self._callbacks.append(entry)
        try:
            return self._faulted("callback", record, lambda: Response(status=entry["status"]))
        except ArmError as error:
            answered(error.status)
            raise
        except _Drop:
            answered("unanswered")
            raise

    def _handle_list_callbacks(self, request):
        skip = request.args.get("skip", "0")
        if not skip.isascii() or not skip.isdigit():
            raise ArmError(400, "InvalidQueryParameterValue", "skip must be a whole number of callbacks, 0 or more.")
        return json_response(self._callbacks_from(int(skip)))

    def _handle_throttling(self, request):
        """How many requests of each ARM operation per subscription were answered and how many throttled."""
        with self._lock:
            found = {}
            for (operation, subscription, outcome), count in self._arm_calls.items():
                row = found.setdefault((operation, subscription), {"operation": operation,
                                                                   "subscription": subscription,
                                                                   "answered": 0, "throttled": 0})
                row[outcome] = count
        return json_response(sorted(found.values(), key=lambda row: (row["operation"], row["subscription"])))

    # The mail catcher's page

    def _messages(self):
        return list(reversed(self.mail.messages)) if self.mail is not None else []

    def _handle_mail_json(self, request):
        return json_response([dict(message) for message in self._messages()])

    def _handle_list_mail(self, request):
        rows = "".join(f'<tr><td><a href="/_standin/mail/{m["id"]}">{html.escape(m["subject"])}</a></td>'
                       f'<td>{html.escape(", ".join(m["to"]))}</td><td>{html.escape(m["received_at"])}</td></tr>'
                       for m in self._messages())
        note = "" if self.mail is not None else "<p>No mail catcher is running (SMTP_HOST is not a loopback host).</p>"
        return _page("Local mail", f"<h1>Local mail</h1>{note}<p>What the app sent, newest first; nothing left this "
                                   "machine.</p><table><tr><th>Subject</th><th>To</th><th>Received</th></tr>"
                                   f"{rows or '<tr><td colspan=3>Nothing yet.</td></tr>'}</table>")

    def _handle_show_mail(self, request, number):
        found = next((m for m in self._messages() if m["id"] == number), None)
        if found is None:
            raise ArmError(404, "NotFound", f"No email number {number}.")
        # Links in the text are made clickable; everything else is shown as text.
        text = re.sub(r"(https?://[^\s<>\"]+)", r'<a href="\1">\1</a>', html.escape(found["text"]))
        return _page(found["subject"], f'<p><a href="/_standin/mail">All mail</a></p><h1>{html.escape(found["subject"])}'
                                       f'</h1><p>To {html.escape(", ".join(found["to"]))}, from '
                                       f'{html.escape(found["from"])}</p><pre>{text}</pre>')

    # Control routes

    def _handle_list_runs(self, request):
        return json_response(self.runs)

    def _handle_clear_runs(self, request):
        with self._lock:
            self._runs.clear()
        return Response(status=204)

    def _handle_list_pipelines(self, request):
        return json_response([{"subscription": s, "resourceGroup": g, "factory": f, "pipeline": p}
                               for s, g, f, p in self.pipelines])

    def _handle_add_fault(self, request):
        body = json_body(request, default={})
        try:
            self.inject(body["operation"], body.get("kind", "before"), count=body.get("count", 1),
                        status=body.get("status", 500), code=body.get("code", "InternalServerError"),
                        message=body.get("message", _INJECTED), retry_after=body.get("retryAfter"),
                        seconds=body.get("seconds", 0.0))
        except (KeyError, AttributeError, TypeError, ValueError) as error:
            raise ArmError(400, "InvalidRequestContent", f"Bad fault {body!r}: {error}") from None
        return Response(status=204)

    def _handle_reset(self, request):
        self.reset()
        return Response(status=204)

    def _handle_help(self, request):
        return Response(__doc__, content_type="text/plain; charset=utf-8")

    # State helpers; callers hold self._lock

    def _find_run(self, subscription, resource_group, factory, run_id):
        self._factory(subscription, resource_group, factory)
        record = self._runs.get(run_id)
        if record is None or arm_key(record["subscription"], record["resourceGroup"], record["factory"]) \
                != arm_key(subscription, resource_group, factory):
            raise ArmError(404, "PipelineRunNotFound", f"Pipeline run '{run_id}' was not found in factory '{factory}'.")
        self._advance(record)
        return record

    @staticmethod
    def _advance(record):
        """A queued run is in progress once its queue time has passed, as in ADF."""
        if record["status"] == "Queued" and time.monotonic() >= record["_queuedUntil"]:
            record.update(status="InProgress", lastUpdated=format_time(_now()))

    @staticmethod
    def _end(record, status, message):
        ended = _now()
        started = datetime.datetime.fromisoformat(record["runStart"])
        record.update(status=status, message=message, runEnd=format_time(ended), lastUpdated=format_time(ended),
                      durationInMs=int((ended - started).total_seconds() * 1000))

    @staticmethod
    def _pipeline_run(record):
        """The record as ARM's PipelineRun JSON."""
        run = {name: value for name, value in record.items()
               if name not in ("subscription", "resourceGroup", "factory", "createRunOptions", "parametersAsSent",
                               "_queuedUntil")}
        run["parameters"] = arm_parameters(record["parameters"])
        return copy.deepcopy(run)


def _drop_connection(request, raw: bytes = b""):
    """Close the client's connection without an HTTP answer (what a dying server or network does)."""
    connection = request.environ.get("werkzeug.socket")
    if connection is None:
        return
    try:
        if raw:
            connection.sendall(raw)
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description="Serve the local ADF (Azure Resource Manager) stand-in until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7072)
    parser.add_argument("--throttle-scale", type=float, default=1.0,
                        help="ARM's throttling buckets and refill rates times this (default 1: ARM's own)")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s adf-standin %(message)s")
    with AdfStandin(options.host, options.port, throttle=Throttle().scaled(options.throttle_scale)) as standin:
        _log.info("LOCAL ADF stand-in serving at %s (help at %s/)", standin.url, standin.url)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            _log.info("stopping")


if __name__ == "__main__":
    main()
