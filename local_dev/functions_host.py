"""Serve a FunctionApp's HTTP functions over real HTTP, the way the Functions host does.

Everything is read from the `azure.functions.FunctionApp` object (its trigger bindings) and
from `host.json`, so the local server cannot drift from what Azure would index. Routing is
done by werkzeug; request and response objects are the real `azure.functions` ones.
"""

import asyncio
import datetime
import inspect
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import azure.functions as func
from azure.functions.decorators.http import HttpMethod
from werkzeug.datastructures import Headers
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import BaseConverter, Map, Rule, ValidationError
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from local_dev.service import Service

logger = logging.getLogger(__name__)

HTTP_TRIGGER = "httpTrigger"
DEFAULT_ROUTE_PREFIX = "api"
ALL_METHODS = tuple(method.value for method in HttpMethod)

# A route template parameter: {name}, {name?}, {name=default}, {name:int:min(1)}, {*rest}.
_PARAMETER = re.compile(
    r"\{(?P<catch_all>\*{1,2})?(?P<name>\w+)(?P<constraints>(?::[^:?=}]+)*)"
    r"(?:(?P<optional>\?)|=(?P<default>[^}]*))?\}"
)
_CONSTRAINT = re.compile(r"(?P<name>\w+)(?:\((?P<args>.*)\))?")


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
    """Convert a Functions route template into werkzeug rule strings with their defaults.

    Optional trailing parameters ({id?}, {id=1}, {*rest}) become one extra, shorter rule
    each, because werkzeug has no optional parts.
    """
    segments = [_segment_rule(segment) for segment in template.split("/") if segment]
    rules = [(public_path(prefix, "/".join(rule for rule, _ in segments)), {})]
    defaults = {}
    while segments and segments[-1][1] is not None:
        _, parameter = segments.pop()
        if parameter.group("default") is not None:
            defaults[parameter.group("name")] = parameter.group("default")
        rules.append((public_path(prefix, "/".join(rule for rule, _ in segments)), dict(defaults)))
    return rules


def _segment_rule(segment: str):
    """Translate one template segment; also return its parameter match if it may be left out."""
    whole = _PARAMETER.fullmatch(segment)
    omittable = whole is not None and bool(
        whole.group("optional") or whole.group("default") is not None or whole.group("catch_all")
    )
    return _PARAMETER.sub(_parameter_rule, segment), whole if omittable else None


def _parameter_rule(parameter: re.Match) -> str:
    """The werkzeug placeholder for one route template parameter."""
    name = parameter.group("name")
    if parameter.group("catch_all"):
        return f"<path:{name}>"
    constraints = parameter.group("constraints").lstrip(":")
    if constraints:
        return f'<constraint("{constraints}"):{name}>'
    return f"<{name}>"


class RouteConstraintConverter(BaseConverter):
    """Matches one path segment against ASP.NET Core route constraints, keeping it a string.

    The shape a constraint demands (int, long, float, double, decimal, bool, guid, alpha,
    minlength, maxlength, length; min, max and range demand an integer) decides which route
    matches, as in ASP.NET Core. Value checks (min, max, range, datetime, regex) run after
    matching: werkzeug tries no other route then, so a failed one answers 404. Unknown
    constraints are ignored with a warning.
    """

    # Constrained parameters win over plain ones on the same path, as in ASP.NET Core.
    weight = 50

    def __init__(self, map, spec: str) -> None:
        super().__init__(map)
        constraints = [_constraint(part) for part in _split_constraints(spec)]
        self.regex = _all_of([regex for regex, _ in constraints if regex])
        self.checks = [check for _, check in constraints if check]

    def to_python(self, value: str) -> str:
        if not all(check(value) for check in self.checks):
            raise ValidationError()
        return value


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


def _split_constraints(spec: str) -> list:
    """Split "int:range(1,5)" at the colons that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for char in spec:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == ":" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current]


_INTEGER = r"-?\d+"
_SHAPES = {
    "int": _INTEGER,
    "long": _INTEGER,
    "float": r"-?\d+(?:\.\d+)?",
    "double": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
    "bool": r"(?i:true|false)",
    "alpha": r"[A-Za-z]+",
    "guid": r"\{?[0-9A-Fa-f]{8}-?(?:[0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}\}?",
}


def _constraint(constraint: str):
    """The (segment regex, value check) for one constraint such as "int" or "min(3)"; either may be None."""
    match = _CONSTRAINT.fullmatch(constraint)
    name, args = match.group("name").lower(), match.group("args") or ""
    if name == "regex":
        return None, lambda value: re.search(args, value, re.IGNORECASE) is not None
    numbers = [int(arg) for arg in args.split(",") if arg.strip()]
    if name in _SHAPES:
        return _SHAPES[name], None
    if name == "minlength":
        return rf"[^/]{{{numbers[0]},}}", None
    if name == "maxlength":
        # maxlength(0) on an optional parameter ({ignored:maxlength(0)?}) serves only the path without it.
        return (rf"[^/]{{1,{numbers[0]}}}" if numbers[0] > 0 else r"(?!)[^/]"), None
    if name == "length":
        return rf"[^/]{{{numbers[0]},{numbers[-1]}}}", None
    if name == "min":
        return _INTEGER, lambda value: int(value) >= numbers[0]
    if name == "max":
        return _INTEGER, lambda value: int(value) <= numbers[0]
    if name == "range":
        return _INTEGER, lambda value: numbers[0] <= int(value) <= numbers[-1]
    if name == "datetime":
        return None, lambda value: _parses(datetime.datetime.fromisoformat, value)
    logger.warning("route constraint '%s' is not supported locally; ignoring it", constraint)
    return None, None


def _all_of(regexes: list) -> str:
    """One segment regex matching what all `regexes` match (lookaheads for all but the last)."""
    if not regexes:
        return BaseConverter.regex
    # \Z anchors at the end of the segment: werkzeug matches each segment on its own.
    lookaheads = "".join(rf"(?=(?:{regex})\Z)" for regex in regexes[:-1])
    return f"{lookaheads}(?:{regexes[-1]})"


def _parses(parse: Callable, value: str) -> bool:
    """Whether `parse(value)` succeeds."""
    try:
        parse(value)
    except ValueError:
        return False
    return True


class FunctionsWsgiApp:
    """WSGI app dispatching requests to HTTP functions; `.routes` lists what it serves."""

    def __init__(self, functions: list, route_prefix: str) -> None:
        self._functions = {function.name: function for function in functions}
        self._map = Map(
            converters={"constraint": RouteConstraintConverter, "literal": LiteralConverter},
            # The Functions host neither redirects nor cares about a trailing slash.
            strict_slashes=False,
            merge_slashes=False,
            redirect_defaults=False,
        )
        for function in functions:
            for path, defaults in route_rules(route_prefix, function.route):
                rule = Rule(_any_case(path), endpoint=function.name, methods=function.methods,
                            defaults=defaults or None)
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
        try:
            result = function.user_function(**{function.parameter: _function_request(request, route_params)})
            if inspect.iscoroutine(result):
                result = asyncio.run(result)
            return _werkzeug_response(result)
        except Exception:
            logger.exception("Executed 'Functions.%s' (Failed)", name)
            return Response(status=500)


def _function_request(request: Request, route_params: dict, extra_headers: dict | None = None) -> func.HttpRequest:
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
    headers.update(extra_headers or {})
    return func.HttpRequest(
        method=request.method,
        url=request.url,
        headers=headers,
        params=request.args.to_dict(),
        route_params=route_params,
        body=request.get_data(),
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


def build_wsgi_app(function_app: func.FunctionApp, host_json_path="host.json") -> FunctionsWsgiApp:
    """Build the WSGI app serving every HTTP function of `function_app` under host.json's prefix."""
    return FunctionsWsgiApp(http_functions(function_app), read_route_prefix(host_json_path))


class _QuietRequestHandler(WSGIRequestHandler):
    """Request handler without werkzeug's access log: the app logs requests with durations."""

    def log_request(self, code="-", size="-") -> None:
        pass


class RunningServer(Service):
    """A WSGI server running in a daemon thread; stop() shuts it down."""

    def __init__(self, server) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self.port}"

    def stop(self) -> None:
        """Stop accepting requests and close the listening socket."""
        self._server.shutdown()
        self._thread.join()


def serve(wsgi_app, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Serve `wsgi_app` on host:port (0 picks a free port) in a background thread."""
    try:
        server = make_server(host, port, wsgi_app, threaded=True, request_handler=_QuietRequestHandler)
    except SystemExit as exc:  # werkzeug prints the reason and exits when it cannot bind
        raise OSError(f"cannot listen on {host}:{port} (is it already in use?)") from exc
    return RunningServer(server)
