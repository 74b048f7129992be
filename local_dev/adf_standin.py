"""LOCAL STAND-IN for the Azure Data Factory management API. Development and tests only; never deployed.

It is a small HTTP server that answers the few Azure Resource Manager (ARM) routes that
`azure.mgmt.datafactory.DataFactoryManagementClient` calls when this app starts and inspects
pipeline runs, with the JSON shapes and error bodies ARM uses, so the real SDK can be pointed at it:

    client = DataFactoryManagementClient(credential, "sub-1", base_url=standin.url)
    client.pipelines.create_run("rg", "factory", "pipe", parameters={...}, enforce_https=False)

(`enforce_https=False` has to go on every call: azure-core refuses bearer tokens over plain http,
and the same keyword given to the client's constructor is ignored.)

ARM routes (all need `Authorization: Bearer <anything>` and `?api-version=2018-06-01`):

    POST .../factories/{factory}/pipelines/{pipeline}/createRun
    GET  .../factories/{factory}/pipelineruns/{runId}
    POST .../factories/{factory}/pipelineruns/{runId}/cancel
    POST .../factories/{factory}/queryPipelineRuns

where `...` is `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.DataFactory`.
Nothing is executed: runs are only recorded in memory, stay "InProgress" until cancelled, and
keep their parameters exactly as received (ARM's PipelineRun JSON carries parameter values as
strings, so non-string values are answered as JSON text). createRun's recovery options (referencePipelineRunId,
isRecovery, startActivityName, startFromFailure) are recorded but have no effect.

Control routes for tests and for developers running `make run` (no token needed):

    GET    /_standin/runs    every recorded run, with its subscription, resource group and factory
    DELETE /_standin/runs    forget the recorded runs
    POST   /_standin/fail    {"count", "status", "code", "message", "retryAfter"}: fail the next createRuns
    POST   /_standin/delay   {"seconds": 2.5}: make every createRun wait first (0 turns it off)
    POST   /_standin/reset   forget runs, callbacks, injected failures and the delay

It also plays the WebHook activity's side of callback mode: a pause made with
`callBackUri = <stand-in>/_standin/callbacks/<any id>` is called back there, as ADF's callBackUri
would be. The first callback for an id completes it (200); a repeat is refused (409), as a
finished activity cannot be completed twice.

    POST   /_standin/callbacks/<id>   receive a callback (what the app calls)
    GET    /_standin/callbacks        every callback received, with the answer it got

Run it on its own with `python -m local_dev.adf_standin --port 7072`, or from Python:

    with AdfStandin() as standin:
        ...  # standin.url, standin.runs, standin.fail_next(), standin.delay(), standin.reset()
"""

import argparse
import copy
import datetime
import json
import logging
import threading
import uuid

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

API_VERSION = "2018-06-01"

_log = logging.getLogger(__name__)

_FACTORY = (
    "/subscriptions/<subscription>/resourceGroups/<resource_group>"
    "/providers/Microsoft.DataFactory/factories/<factory>"
)

# Endpoints starting with "arm_" are ARM routes: they check the bearer token and api-version.
_URL_MAP = Map(
    [
        Rule(f"{_FACTORY}/pipelines/<pipeline>/createRun", methods=["POST"], endpoint="arm_create_run"),
        Rule(f"{_FACTORY}/pipelineruns/<run_id>", methods=["GET"], endpoint="arm_get_run"),
        Rule(f"{_FACTORY}/pipelineruns/<run_id>/cancel", methods=["POST"], endpoint="arm_cancel_run"),
        Rule(f"{_FACTORY}/queryPipelineRuns", methods=["POST"], endpoint="arm_query_runs"),
        Rule("/_standin/runs", methods=["GET"], endpoint="list_runs"),
        Rule("/_standin/runs", methods=["DELETE"], endpoint="clear_runs"),
        Rule("/_standin/fail", methods=["POST"], endpoint="fail"),
        Rule("/_standin/delay", methods=["POST"], endpoint="set_delay"),
        Rule("/_standin/reset", methods=["POST"], endpoint="reset"),
        Rule("/_standin/callbacks/<callback_id>", methods=["POST"], endpoint="receive_callback"),
        Rule("/_standin/callbacks", methods=["GET"], endpoint="list_callbacks"),
        Rule("/", methods=["GET"], endpoint="help"),
    ]
)

_HELP = __doc__

# queryPipelineRuns filter operands the stand-in understands, and the run field each one reads.
_FILTER_FIELDS = {"PipelineName": "pipelineName", "Status": "status", "RunGroupId": "runGroupId"}
_ORDER_FIELDS = {"RunStart": "runStart", "RunEnd": "runEnd", "PipelineName": "pipelineName", "Status": "status"}

_INJECTED_MESSAGE = "Injected failure from the ADF stand-in."

_CREATE_RUN_OPTIONS = {
    "referencePipelineRunId": str,
    "isRecovery": bool,
    "startActivityName": str,
    "startFromFailure": bool,
}


class _ArmError(Exception):
    """An error answered with ARM's body: {"error": {"code": ..., "message": ...}}."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self):
        return _json_response({"error": {"code": self.code, "message": self.message}}, self.status, self.headers)


def _json_response(body, status=200, headers=None):
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json; charset=utf-8")


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _format_time(moment):
    # ADF writes seven fractional digits ("...:05.1234567Z"); doing the same keeps clients honest
    # about parsing it (Python's fromisoformat only accepts that from 3.11 on).
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _parse_time(name, text):
    try:
        moment = datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise _ArmError(400, "InvalidRequestContent", f"'{name}' must be an ISO 8601 time, got {text!r}.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _parse_bool(name, text):
    if text.lower() not in ("true", "false"):
        raise _ArmError(400, "InvalidQueryParameterValue", f"'{name}' must be true or false, got {text!r}.")
    return text.lower() == "true"


def _json_body(request, default):
    """The request's JSON body (whatever its Content-Type says: the SDK omits it for `{}`)."""
    data = request.get_data(as_text=True)
    if not data.strip():
        return default
    try:
        return json.loads(data)
    except ValueError as error:
        raise _ArmError(400, "InvalidRequestContent", f"The request content is not valid JSON: {error}.") from None


def _in_factory(record, subscription, resource_group, factory):
    # ARM treats subscription, resource group and factory names case-insensitively.
    recorded = (record["subscription"], record["resourceGroup"], record["factory"])
    return [name.lower() for name in recorded] == [subscription.lower(), resource_group.lower(), factory.lower()]


def _arm_parameters(parameters):
    # PipelineRun.parameters is a string-to-string map in ARM; non-string values come back as JSON text.
    return {name: value if isinstance(value, str) else json.dumps(value) for name, value in parameters.items()}


def _run_filter(filters):
    """A predicate on run records for queryPipelineRuns' `filters`, checked before any run is looked at."""
    if not isinstance(filters, list):
        raise _ArmError(400, "InvalidRequestContent", f"'filters' must be a list, got {filters!r}.")
    checks = []  # (run field, values, whether the field must be among the values)
    for condition in filters:
        if not isinstance(condition, dict):
            raise _ArmError(400, "InvalidRequestContent", f"Each filter must be an object, got {condition!r}.")
        operand, operator, values = condition.get("operand"), condition.get("operator"), condition.get("values")
        if operand not in _FILTER_FIELDS:
            raise _ArmError(
                400, "InvalidRequestContent",
                f"The stand-in filters on operands {sorted(_FILTER_FIELDS)} only, not {operand!r}.",
            )
        if operator not in ("Equals", "NotEquals", "In", "NotIn"):
            raise _ArmError(400, "InvalidRequestContent", f"Unknown filter operator {operator!r}.")
        if not isinstance(values, list) or not values:
            raise _ArmError(400, "InvalidRequestContent", "Each filter needs a non-empty 'values' list.")
        if operator in ("Equals", "NotEquals") and len(values) != 1:
            raise _ArmError(400, "InvalidRequestContent", f"Operator {operator} takes exactly one value.")
        checks.append((_FILTER_FIELDS[operand], values, operator in ("Equals", "In")))
    return lambda run: all((run[field] in values) == wanted for field, values, wanted in checks)


class _RequestHandler(WSGIRequestHandler):
    """Logs one short line per request through this module's logger instead of werkzeug's own,
    so embedding the stand-in in tests stays quiet unless logging is configured."""

    def log_request(self, code="-", size="-"):
        _log.info("%s %s -> %s", self.command, self.path, code)


class AdfStandin:
    """The stand-in server and its in-memory state; all methods are safe to call from any thread."""

    def __init__(self, host="127.0.0.1", port=0):
        self.host = host
        self.port = port
        self._server = None
        self._thread = None
        self._lock = threading.Lock()
        self._runs = {}  # run id -> record, oldest first
        self._callbacks = []  # every callback received, oldest first
        self._callback_failures = []  # statuses owed to the next callbacks
        self._failures = []  # responses owed to the next createRun requests, first one first
        self._delay_seconds = 0.0
        self._delay_after_recording = False
        # Set by reset() and stop(): wakes delayed createRuns and tells them to record nothing,
        # so a request the client already gave up on cannot leak a run into the next test.
        self._discard_delayed = threading.Event()

    # Lifecycle

    def start(self):
        """Start serving in a background thread and return the base URL; port 0 picks a free port."""
        if self._server is not None:
            raise RuntimeError("the ADF stand-in is already running")
        self._discard_delayed = threading.Event()
        self._server = make_server(self.host, self.port, self._wsgi_app, threaded=True, request_handler=_RequestHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="adf-standin", daemon=True)
        self._thread.start()
        return self.url

    def stop(self):
        if self._server is None:
            return
        with self._lock:
            self._discard_delayed.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    # Inspection and failure injection

    @property
    def runs(self):
        """Every recorded run, oldest first, as independent copies.

        Each is ARM's PipelineRun JSON (runId, pipelineName, status, runStart, ...) with parameters as
        received, plus subscription, resourceGroup, factory and createRunOptions (the recovery options).
        """
        with self._lock:
            return copy.deepcopy(list(self._runs.values()))

    def fail_next(self, count=1, status=500, code="InternalServerError", message=_INJECTED_MESSAGE, retry_after=None):
        """Answer the next `count` createRun requests with this ARM error instead of starting a run.

        Every HTTP attempt counts, including the SDK's own retries (it retries 500, 503 and 504 on POST,
        and any status that carries a Retry-After header). `retry_after` (seconds) adds that header,
        as ARM does on 429 - without it the SDK does not retry a 429 on POST at all.
        """
        if count < 1 or not 400 <= status <= 599:
            raise ValueError("count must be at least 1 and status an HTTP error status (400-599)")
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        with self._lock:
            self._failures.extend(_ArmError(status, code, message, headers) for _ in range(count))

    @property
    def callbacks(self):
        """Every WebHook callback received, oldest first: {"callbackId", "body", "status", "receivedAt"}."""
        with self._lock:
            return copy.deepcopy(self._callbacks)

    def fail_callbacks(self, count=1, status=500):
        """Answer the next `count` callbacks with `status` instead of completing the activity."""
        if count < 1 or not 400 <= status <= 599:
            raise ValueError("count must be at least 1 and status an HTTP error status (400-599)")
        with self._lock:
            self._callback_failures.extend([status] * count)

    def delay(self, seconds, after_recording=False):
        """Make every following createRun wait `seconds` before answering (0 turns it off).

        The run is still recorded after the wait, as ARM would, even if the client timed out meanwhile -
        unless reset() or stop() comes first: then the delayed request answers 503 and records nothing.
        With `after_recording` the run is recorded first and only the answer is late: a started run
        whose response the client never sees.
        """
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        with self._lock:
            self._delay_seconds = float(seconds)
            self._delay_after_recording = bool(after_recording)

    def reset(self):
        """Forget all runs, pending injected failures and the delay."""
        with self._lock:
            self._runs.clear()
            self._failures.clear()
            self._callbacks.clear()
            self._callback_failures.clear()
            self._delay_seconds = 0.0
            self._delay_after_recording = False
            self._discard_delayed.set()
            self._discard_delayed = threading.Event()

    # HTTP

    @Request.application
    def _wsgi_app(self, request):
        try:
            endpoint, args = _URL_MAP.bind_to_environ(request.environ).match()
            if endpoint.startswith("arm_"):
                self._check_arm_request(request)
            return getattr(self, f"_handle_{endpoint}")(request, **args)
        except _ArmError as error:
            return error.response()
        except HTTPException as error:  # no route, or a route without this method
            message = f"{request.method} {request.path}: {error.description}"
            return _ArmError(error.code, error.name.replace(" ", ""), message).response()

    @staticmethod
    def _check_arm_request(request):
        token = request.headers.get("Authorization", "")
        if not token.startswith("Bearer ") or not token[len("Bearer "):].strip():
            raise _ArmError(
                401, "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing or is not a bearer token.",
                # ARM sends a challenge with every 401; the SDK's authentication policy reads it.
                {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="No bearer token"'},
            )
        api_version = request.args.get("api-version")
        if api_version is None:
            raise _ArmError(
                400, "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if api_version != API_VERSION:
            raise _ArmError(
                400, "InvalidApiVersionParameter",
                f"The api-version '{api_version}' is invalid. The supported versions are '{API_VERSION}'.",
            )

    def _handle_arm_create_run(self, request, subscription, resource_group, factory, pipeline):
        with self._lock:
            seconds, discard = self._delay_seconds, self._discard_delayed
            late_answer_only = self._delay_after_recording
        if seconds and not late_answer_only and discard.wait(seconds):
            raise _ArmError(503, "ServiceUnavailable", "The stand-in was reset or stopped while this createRun waited.")
        with self._lock:
            if self._failures:
                raise self._failures.pop(0)
        parameters = _json_body(request, default={})
        if not isinstance(parameters, dict):
            raise _ArmError(400, "InvalidRequestContent", "The createRun body must be a JSON object of parameters.")
        options = {
            name: _parse_bool(name, request.args[name]) if kind is bool else request.args[name]
            for name, kind in _CREATE_RUN_OPTIONS.items()
            if name in request.args
        }
        run_id = str(uuid.uuid4())
        now = _format_time(_now())
        record = {
            "subscription": subscription,
            "resourceGroup": resource_group,
            "factory": factory,
            "createRunOptions": options,
            # The remaining keys are ARM's PipelineRun, except that parameters keep their JSON types.
            "runId": run_id,
            "runGroupId": run_id,
            "isLatest": True,
            "pipelineName": pipeline,
            "parameters": parameters,
            "runDimensions": {},
            "invokedBy": {"name": "Manual", "id": uuid.uuid4().hex, "invokedByType": "Manual"},
            "runStart": now,
            "runEnd": None,
            "durationInMs": None,
            "status": "InProgress",
            "message": "",
            "lastUpdated": now,
        }
        with self._lock:
            self._runs[run_id] = record
        if seconds and late_answer_only:
            discard.wait(seconds)
        return _json_response({"runId": run_id})

    def _handle_arm_get_run(self, request, subscription, resource_group, factory, run_id):
        with self._lock:
            return _json_response(self._pipeline_run(self._find_run(subscription, resource_group, factory, run_id)))

    def _handle_arm_cancel_run(self, request, subscription, resource_group, factory, run_id):
        if "isRecursive" in request.args:  # accepted and validated; there are no child runs to cancel
            _parse_bool("isRecursive", request.args["isRecursive"])
        with self._lock:
            record = self._find_run(subscription, resource_group, factory, run_id)
            if record["status"] in ("InProgress", "Queued", "Canceling"):
                ended = _now()
                started = datetime.datetime.fromisoformat(record["runStart"])
                record.update(
                    status="Cancelled",
                    runEnd=_format_time(ended),
                    durationInMs=int((ended - started).total_seconds() * 1000),
                    lastUpdated=_format_time(ended),
                )
        return Response(status=200)

    def _handle_arm_query_runs(self, request, subscription, resource_group, factory):
        query = _json_body(request, default=None)
        if not isinstance(query, dict) or "lastUpdatedAfter" not in query or "lastUpdatedBefore" not in query:
            raise _ArmError(400, "InvalidRequestContent", "The body needs 'lastUpdatedAfter' and 'lastUpdatedBefore'.")
        if query.get("continuationToken"):
            raise _ArmError(400, "InvalidRequestContent", "Unknown continuationToken: the stand-in answers in 1 page.")
        after = _parse_time("lastUpdatedAfter", query["lastUpdatedAfter"])
        before = _parse_time("lastUpdatedBefore", query["lastUpdatedBefore"])
        wanted = _run_filter(query.get("filters") or [])
        with self._lock:
            found = [
                self._pipeline_run(record)
                for record in self._runs.values()
                if _in_factory(record, subscription, resource_group, factory)
                and after <= datetime.datetime.fromisoformat(record["lastUpdated"]) <= before
                and wanted(record)
            ]
        order_by = query.get("orderBy") or []
        if not isinstance(order_by, list):
            raise _ArmError(400, "InvalidRequestContent", f"'orderBy' must be a list, got {order_by!r}.")
        # Sorting is stable, so applying the keys last to first sorts by the first key, then the next...
        for order in reversed(order_by):
            field = _ORDER_FIELDS.get(order.get("orderBy")) if isinstance(order, dict) else None
            if field is None or order.get("order") not in ("ASC", "DESC"):
                raise _ArmError(400, "InvalidRequestContent", f"The stand-in cannot order by {order!r}.")
            # Times are fixed-width ISO text, so they sort as strings; runs without the field
            # (no runEnd yet) go last in either direction.
            present = [run for run in found if run[field] is not None]
            present.sort(key=lambda run: run[field], reverse=order["order"] == "DESC")
            found = present + [run for run in found if run[field] is None]
        return _json_response({"value": found, "continuationToken": None})

    def _handle_list_runs(self, request):
        return _json_response(self.runs)

    def _handle_clear_runs(self, request):
        with self._lock:
            self._runs.clear()
        return Response(status=204)

    def _handle_fail(self, request):
        body = _json_body(request, default={})
        try:
            self.fail_next(
                count=body.get("count", 1),
                status=body.get("status", 500),
                code=body.get("code", "InternalServerError"),
                message=body.get("message", _INJECTED_MESSAGE),
                retry_after=body.get("retryAfter"),
            )
        except (AttributeError, TypeError, ValueError) as error:
            raise _ArmError(400, "InvalidRequestContent", f"Bad failure injection {body!r}: {error}") from None
        return Response(status=204)

    def _handle_set_delay(self, request):
        body = _json_body(request, default={})
        try:
            self.delay(body["seconds"])
        except (KeyError, TypeError, ValueError) as error:
            message = f'Expected {{"seconds": <number>}}, got {body!r}: {error}'
            raise _ArmError(400, "InvalidRequestContent", message) from None
        return Response(status=204)

    def _handle_reset(self, request):
        self.reset()
        return Response(status=204)

    def _handle_receive_callback(self, request, callback_id):
        body = _json_body(request, default=None)
        with self._lock:
            if self._callback_failures:
                status = self._callback_failures.pop(0)
            elif any(c["callbackId"] == callback_id and c["status"] == 200 for c in self._callbacks):
                status = 409
            else:
                status = 200
            self._callbacks.append({"callbackId": callback_id, "body": body, "status": status,
                                    "receivedAt": _format_time(_now())})
        return Response(status=status)

    def _handle_list_callbacks(self, request):
        return _json_response(self.callbacks)

    def _handle_help(self, request):
        return Response(_HELP, content_type="text/plain; charset=utf-8")

    # State helpers; callers hold self._lock

    def _find_run(self, subscription, resource_group, factory, run_id):
        record = self._runs.get(run_id)
        if record is None or not _in_factory(record, subscription, resource_group, factory):
            message = f"Pipeline run '{run_id}' was not found in factory '{factory}'."
            raise _ArmError(404, "PipelineRunNotFound", message)
        return record

    @staticmethod
    def _pipeline_run(record):
        """The record as ARM's PipelineRun JSON."""
        run = {name: value for name, value in record.items()
               if name not in ("subscription", "resourceGroup", "factory", "createRunOptions")}
        run["parameters"] = _arm_parameters(record["parameters"])
        return copy.deepcopy(run)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Serve the local ADF (Azure Resource Manager) stand-in until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7072)
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s adf-standin %(message)s")
    with AdfStandin(options.host, options.port) as standin:
        _log.info("LOCAL ADF stand-in serving at %s (help at %s/)", standin.url, standin.url)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            _log.info("stopping")


if __name__ == "__main__":
    main()
