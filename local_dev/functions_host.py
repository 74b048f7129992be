"""Serve a FunctionApp's HTTP functions over real HTTP, the way the Functions host does.

Everything is read from the `azure.functions.FunctionApp` object (its trigger bindings) and
from `host.json`, so the local server cannot drift from what Azure would index. Routing is
done by werkzeug; request and response objects are the real `azure.functions` ones.
"""

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import azure.functions as func
from azure.functions.decorators.http import HttpMethod
from werkzeug.datastructures import Headers
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from local_dev.keep_alive import QuietKeepAliveHandler
from local_dev.service import ServedInThread
from local_dev.worker_threads import PROCESS, WorkerThreads

logger = logging.getLogger(__name__)
# The Functions host's limit on a request (a larger one is answered 413 before any function runs):
# https://learn.microsoft.com/azure/azure-functions/functions-bindings-http-webhook-trigger#limits
MAX_REQUEST_BYTES = 100 * 1024 * 1024

HTTP_TRIGGER = "httpTrigger"
DEFAULT_ROUTE_PREFIX = "api"
ALL_METHODS = tuple(method.value for method in HttpMethod)

# The route syntax this app registers: literal segments, {name}, and a last parameter that may be
# left out ({name?}), with at most the constraint maxlength(0) (`{ignored:maxlength(0)?}` serves
# the bare prefix: the API's index). Anything else of ASP.NET Core's route language is refused
# when the host starts, so no route can be served differently here than in Azure.
_PARAMETER = re.compile(r"\{(?P<name>\w+)(?P<empty>:maxlength\(0\))?(?P<optional>\?)?\}")


class UnsupportedRoute(ValueError):
    """A route template uses syntax the local host does not serve (the app registers none of it)."""


@dataclass(frozen=True)
class HttpFunction:
    """One HTTP-triggered function as the host indexes it."""

    name: str
    route: str
    methods: Optional[tuple]
    auth_level: str
    parameter: str
    user_function: Callable


def http_functions(function_app: func.FunctionApp) -> list:
    """Return the HTTP-triggered functions registered on `function_app` (blueprints included)."""
    # get_functions() remembers the names it has seen and rejects them as duplicates on a
    # second call; forget them so the app can be indexed again (tests, other tools).
    function_app.functions_bindings = None
    found = []
    for function in function_app.get_functions():
        trigger = function.get_trigger()
        name = function.get_function_name()
        if trigger.type != HTTP_TRIGGER:
            logger.debug("%s has a %s: not served over HTTP", name, trigger.type)
            continue
        found.append(
            HttpFunction(
                name=name,
                route=(trigger.route or name).strip("/"),
                methods=tuple(_enum_value(m).upper() for m in trigger.methods) if trigger.methods else None,
                auth_level=_enum_value(trigger.auth_level or func.AuthLevel.FUNCTION),
                parameter=trigger.name,
                user_function=function.get_user_function(),
            )
        )
    return found


def _enum_value(value) -> str:
    """The plain string behind an azure.functions enum member (or a string)."""
    return str(getattr(value, "value", value))


def read_route_prefix(host_json_path) -> str:
    """Return `extensions.http.routePrefix` from host.json ("api" when unset; "" means none)."""
    path = Path(host_json_path)
    if not path.exists():
        logger.warning("%s not found: using the default route prefix '%s'", path, DEFAULT_ROUTE_PREFIX)
        return DEFAULT_ROUTE_PREFIX
    host = json.loads(path.read_text(encoding="utf-8"))
    prefix = host.get("extensions", {}).get("http", {}).get("routePrefix", DEFAULT_ROUTE_PREFIX)
    return prefix.strip("/")


def public_path(prefix: str, route: str) -> str:
    """The URL path of a route template as clients see it, e.g. /api/restart/{token}."""
    return "/" + "/".join(part for part in (prefix, route) if part)


def route_rules(prefix: str, template: str) -> list:
    """Convert a Functions route template into werkzeug rule strings: a last optional parameter
    ({id?}) becomes one extra, shorter rule, since werkzeug has no optional parts; one that may
    only be empty ({x:maxlength(0)?}) becomes only the shorter rule."""
    segments = [segment for segment in template.split("/") if segment]
    for index, segment in enumerate(segments):
        whole = _PARAMETER.fullmatch(segment)
        if whole is None and ("{" in segment or "}" in segment):
            raise UnsupportedRoute(f"route {template!r}: only literal segments and {{name}} parameters are served "
                                   "locally")
        if whole is not None and (whole.group("optional") or whole.group("empty")) and index != len(segments) - 1:
            raise UnsupportedRoute(f"route {template!r}: only the last parameter may be left out")
        if whole is not None and whole.group("empty") and not whole.group("optional"):
            raise UnsupportedRoute(f"route {template!r}: maxlength(0) only on an optional parameter")
    last = _PARAMETER.fullmatch(segments[-1]) if segments else None
    placeholders = [_PARAMETER.sub(r"<\g<name>>", segment) for segment in segments]
    if last is None or not last.group("optional"):
        return [public_path(prefix, "/".join(placeholders))]
    shorter = public_path(prefix, "/".join(placeholders[:-1]))
    return [shorter] if last.group("empty") else [public_path(prefix, "/".join(placeholders)), shorter]


class LiteralConverter(BaseConverter):
    """Matches one literal segment of a route in any case, as ASP.NET Core routing (the host's) does."""

    # A literal wins over a parameter in the same place, as in ASP.NET Core.
    weight = 10

    def __init__(self, map, literal: str) -> None:
        super().__init__(map)
        self.regex = f"(?i:{re.escape(literal)})"


_LITERAL_ARG = "literal__"  # route values of the literal segments: matched, never passed on


def _any_case(path: str) -> str:
    """The werkzeug rule `path` with each plain literal segment matched in any case."""
    segments = re.split(r"/(?![^<]*>)", path)  # the slashes outside <converter(...)> placeholders
    return "/".join(
        f'<literal("{segment}"):{_LITERAL_ARG}{i}>' if segment and not set(segment) & set('<>"\\') else segment
        for i, segment in enumerate(segments))


class FunctionsWsgiApp:
    """WSGI app dispatching requests to HTTP functions; `.routes` lists what it serves."""

    def __init__(self, functions: list, route_prefix: str, threads: WorkerThreads = PROCESS) -> None:
        self._functions = {function.name: function for function in functions}
        self._threads = threads
        self._map = Map(
            converters={"literal": LiteralConverter},
            # The Functions host neither redirects nor cares about a trailing slash.
            strict_slashes=False,
            merge_slashes=False,
            redirect_defaults=False,
        )
        for function in functions:
            for path in route_rules(route_prefix, function.route):
                rule = Rule(_any_case(path), endpoint=function.name, methods=function.methods)
                if function.methods is not None:
                    # werkzeug adds HEAD to GET routes; the Functions host does not.
                    rule.methods = set(function.methods)
                self._map.add(rule)
        self.routes = [
            (function.methods or ALL_METHODS, public_path(route_prefix, function.route), function.auth_level, function.name)
            for function in functions
        ]
        self._templates = {name: path for _, path, _, name in self.routes}

    def __call__(self, environ, start_response):
        request = Request(environ)
        started = time.perf_counter()
        response, route = self._respond(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        # Log the route template, not the path: paths can carry secrets (this app's tokens).
        logger.info("%s %s %s %.0f ms", request.method, route, response.status_code, elapsed_ms)
        return response(environ, start_response)

    def _respond(self, request: Request) -> tuple[Response, str]:
        """Run the function routed to by `request`; return its HTTP response and the route matched."""
        try:
            rule, route_params = self._map.bind_to_environ(request.environ).match(return_rule=True)
        except (NotFound, MethodNotAllowed):
            return Response(status=404), "(no matching route)"
        name = rule.endpoint
        route_params = {key: value for key, value in route_params.items() if not key.startswith(_LITERAL_ARG)}
        return self._call(name, request, route_params), self._templates[name]

    def _call(self, name: str, request: Request, route_params: dict) -> Response:
        function = self._functions[name]
        body = _body(request)
        if body is None:
            return Response(status=413)  # as the host: the function never runs
        try:
            result = self._threads.invoke(function.user_function,
                                          {function.parameter: _function_request(request, route_params, body)})
            return _werkzeug_response(result)
        except Exception:
            logger.exception("Executed 'Functions.%s' (Failed)", name)
            return Response(status=500)


def _body(request: Request) -> bytes | None:
    """The request's body; None when it is over the host's limit. A chunked one (no Content-Length: the request
    handler could not refuse it beforehand) is read only that far, where werkzeug would cut it there silently."""
    if request.content_length is None and request.environ.get("wsgi.input_terminated"):
        data = request.environ["wsgi.input"].read(MAX_REQUEST_BYTES + 1)
        return None if len(data) > MAX_REQUEST_BYTES else data
    return request.get_data()


def _function_request(request: Request, route_params: dict, body: bytes) -> func.HttpRequest:
    """The azure.functions request a function receives for this werkzeug request."""
    headers = {name: value for name, value in request.headers.items() if name.lower() != "client-ip"}
    # As App Service's front end does: Client-IP is the connection's address (a client's own value
    # is overwritten), and that address is appended to X-Forwarded-For.
    peer = request.environ.get("REMOTE_ADDR")
    if peer:
        port = request.environ.get("REMOTE_PORT")
        address = f"[{peer}]" if ":" in peer else peer
        headers["Client-IP"] = f"{address}:{port}" if port else address
        forwarded = next((v for k, v in headers.items() if k.lower() == "x-forwarded-for"), None)
        headers = {k: v for k, v in headers.items() if k.lower() != "x-forwarded-for"}
        headers["X-Forwarded-For"] = f"{forwarded}, {peer}" if forwarded else peer
    return func.HttpRequest(
        method=request.method,
        url=request.url,
        headers=headers,
        params=request.args.to_dict(),
        route_params=route_params,
        body=body,
    )


def _werkzeug_response(result) -> Response:
    """Convert what a function returned (HttpResponse or str) to a werkzeug response."""
    if isinstance(result, str):
        result = func.HttpResponse(result)
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f"an HTTP function must return func.HttpResponse or str, not {type(result).__name__}")
    headers = Headers(result.headers.items())
    if "Content-Type" not in headers:
        headers["Content-Type"] = _content_type(result)
    return Response(result.get_body(), status=result.status_code, headers=headers)


def _content_type(response: func.HttpResponse) -> str:
    """Content-Type from mimetype and charset, as the Python worker builds it."""
    # The worker adds the charset to text/* types only (azure.functions.http.HttpResponseConverter).
    if response.mimetype.startswith("text/"):
        return f"{response.mimetype}; charset={response.charset}"
    return response.mimetype


def build_wsgi_app(function_app: func.FunctionApp, host_json_path="host.json",
                   threads: WorkerThreads = PROCESS) -> FunctionsWsgiApp:
    """Build the WSGI app serving every HTTP function of `function_app` under host.json's prefix."""
    return FunctionsWsgiApp(http_functions(function_app), read_route_prefix(host_json_path), threads)


class _QuietRequestHandler(QuietKeepAliveHandler):
    """Keeps connections open, as the Functions host does, and logs nothing itself: the app logs requests with
    durations."""

    max_body = MAX_REQUEST_BYTES


class RunningServer(ServedInThread):
    """A WSGI server running in a daemon thread; stop() shuts it down."""

    def __init__(self, server) -> None:
        self.serve_in_thread(server)

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self.port}"



def serve(wsgi_app, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve `wsgi_app` on host:port (0 picks a free port) in a background thread."""
    try:
        server = make_server(host, port, wsgi_app, threaded=True, request_handler=_QuietRequestHandler)
    except SystemExit as exc:  # werkzeug prints the reason and exits when it cannot bind
        raise OSError(f"cannot listen on {host}:{port} (is it already in use?)") from exc
    return RunningServer(server)
