"""The local Functions host serves a FunctionApp's HTTP functions like the real host."""

import http.client
import json
import logging
import socket
from pathlib import Path

import azure.functions as func
import pytest
import requests

from local_dev.functions_host import UnsupportedRoute, build_wsgi_app, route_rules, serve


def make_app() -> func.FunctionApp:
    """A small app whose blueprint covers the routing and response cases under test."""
    bp = func.Blueprint()

    @bp.route(route="hello/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    def hello(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(
            json.dumps({"name": req.route_params["name"], "greeting": req.params.get("greeting")}),
            mimetype="application/json",
            headers={"X-Greeter": "local"},
        )

    @bp.route(route="items/{id?}", methods=["GET"])
    def items(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(json.dumps(dict(req.route_params)), mimetype="application/json")

    @bp.route(route="echo", methods=["POST"], trigger_arg_name="request")
    def echo(request: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(
            request.get_body(),
            status_code=201,
            mimetype="text/html",
            charset="latin-1",
            headers={"X-Method": request.method, "X-Content-Type": request.headers.get("content-type", "")},
        )

    @bp.route(route="orders/{order}", methods=["GET"])
    def order_by_name(req: func.HttpRequest) -> func.HttpResponse:
        return f"name {req.route_params['order']}"

    @bp.route(route="{ignored:maxlength(0)?}", methods=["GET"])
    def index(req: func.HttpRequest) -> func.HttpResponse:
        return "index"

    @bp.route(route="slow", auth_level=func.AuthLevel.ADMIN)
    async def slow(req: func.HttpRequest) -> func.HttpResponse:
        response = func.HttpResponse("async", headers={"Content-Type": "text/x-custom"})
        response.headers.add("Set-Cookie", "a=1")
        response.headers.add("Set-Cookie", "b=2")
        return response

    @bp.route(route="boom")
    def boom(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("secret detail")

    @bp.function_name("renamed")
    @bp.route()
    def unnamed_route(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(status_code=204)

    @bp.timer_trigger(schedule="0 */5 * * * *", arg_name="timer")
    def tick(timer: func.TimerRequest) -> None:
        pass

    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(bp)
    return app


def write_host_json(directory, route_prefix=None):
    """Write a host.json, with extensions.http.routePrefix when given, and return its path."""
    host = {"version": "2.0"}
    if route_prefix is not None:
        host["extensions"] = {"http": {"routePrefix": route_prefix}}
    path = directory / "host.json"
    path.write_text(json.dumps(host))
    return path


@pytest.fixture
def wsgi_app(tmp_path):
    return build_wsgi_app(make_app(), write_host_json(tmp_path))


@pytest.fixture
def base_url(wsgi_app):
    with serve(wsgi_app) as server:
        yield server.url


def test_route_and_query_params_arrive(base_url):
    response = requests.get(f"{base_url}/api/hello/ada", params={"greeting": "hi"})

    assert response.status_code == 200
    assert response.json() == {"name": "ada", "greeting": "hi"}
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Greeter"] == "local"


def test_optional_route_param_may_be_left_out(base_url):
    assert requests.get(f"{base_url}/api/items/7").json() == {"id": "7"}
    assert requests.get(f"{base_url}/api/items").json() == {}


def test_body_status_method_and_charset_come_through(base_url):
    response = requests.post(f"{base_url}/api/echo", data=b"<p>caf\xe9</p>", headers={"Content-Type": "text/html"})

    assert response.status_code == 201
    assert response.content == b"<p>caf\xe9</p>"
    assert response.headers["Content-Type"] == "text/html; charset=latin-1"
    assert response.headers["X-Method"] == "POST"
    assert response.headers["X-Content-Type"] == "text/html"


def test_undeclared_method_is_not_found(base_url):
    assert requests.get(f"{base_url}/api/echo").status_code == 404
    assert requests.delete(f"{base_url}/api/hello/ada").status_code == 404
    assert requests.head(f"{base_url}/api/hello/ada").status_code == 404


def test_function_without_methods_accepts_any(base_url):
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
        assert requests.request(method, f"{base_url}/api/slow").status_code == 200


def test_unknown_route_and_missing_prefix_are_not_found(base_url):
    assert requests.get(f"{base_url}/api/nothing-here").status_code == 404
    assert requests.get(f"{base_url}/hello/ada").status_code == 404
    assert requests.get(f"{base_url}/api/hello").status_code == 404


def test_an_optional_parameter_that_must_be_empty_serves_only_the_bare_prefix(base_url):
    assert requests.get(f"{base_url}/api").text == "index"
    assert requests.get(f"{base_url}/api/").text == "index"
    assert requests.get(f"{base_url}/api/x").status_code == 404


def test_async_function_with_own_content_type_and_repeated_headers(base_url):
    response = requests.get(f"{base_url}/api/slow")

    assert response.text == "async"
    assert response.headers["Content-Type"] == "text/x-custom"
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]


def test_plain_str_return_is_text(base_url):
    response = requests.get(f"{base_url}/api/orders/1")
    assert response.text == "name 1"

    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_route_defaults_to_function_name(base_url):
    assert requests.get(f"{base_url}/api/renamed").status_code == 204


def test_exception_is_500_without_details(base_url, caplog):
    with caplog.at_level(logging.ERROR, logger="local_dev.functions_host"):
        response = requests.get(f"{base_url}/api/boom")

    assert response.status_code == 500
    assert response.content == b""
    assert "secret detail" in caplog.text


def test_each_request_is_logged_by_route_template_not_path(base_url, caplog):
    with caplog.at_level(logging.INFO, logger="local_dev.functions_host"):
        requests.get(f"{base_url}/api/hello/ada")
        requests.get(f"{base_url}/api/no/such/route/secret-value")

    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("GET /api/hello/{name} 200 ") for m in messages)
    assert any(m.startswith("GET (no matching route) 404 ") for m in messages)
    assert not any("ada" in m or "secret-value" in m for m in messages)


def test_routes_list_methods_paths_and_auth_levels(wsgi_app):
    routes = {name: (methods, path, auth) for methods, path, auth, name in wsgi_app.routes}

    assert routes["hello"] == (("GET",), "/api/hello/{name}", "anonymous")
    assert routes["items"] == (("GET",), "/api/items/{id?}", "function")
    assert routes["echo"] == (("POST",), "/api/echo", "function")
    assert routes["slow"][1:] == ("/api/slow", "admin")
    assert set(routes["slow"][0]) >= {"GET", "POST", "PUT", "DELETE", "PATCH"}
    assert routes["renamed"][1] == "/api/renamed"
    assert "tick" not in routes


@pytest.mark.parametrize("prefix, path", [("v1/internal", "/v1/internal/hello/ada"), ("", "/hello/ada")])
def test_route_prefix_comes_from_host_json(tmp_path, prefix, path):
    wsgi_app = build_wsgi_app(make_app(), write_host_json(tmp_path, prefix))

    with serve(wsgi_app) as server:
        assert requests.get(server.url + path).status_code == 200
        assert requests.get(f"{server.url}/api/hello/ada").status_code == 404


def test_same_app_can_be_served_twice(tmp_path):
    app = make_app()
    host_json = write_host_json(tmp_path)

    assert build_wsgi_app(app, host_json).routes == build_wsgi_app(app, host_json).routes


@pytest.mark.parametrize(
    "template, expected",
    [
        ("restart/{token}", ["/api/restart/<token>"]),
        ("console/pauses/{pause_id}/cancel", ["/api/console/pauses/<pause_id>/cancel"]),
        ("pauses/{pause_id?}", ["/api/pauses/<pause_id>", "/api/pauses"]),
        ("{ignored:maxlength(0)?}", ["/api"]),
        ("openapi.json", ["/api/openapi.json"]),
    ],
)
def test_route_templates_become_werkzeug_rules(template, expected):
    assert route_rules("api", template) == expected


@pytest.mark.parametrize("template", [
    "items/{id:int}", "page/{n=1}", "files/{*rest}", "c/{v:regex(^a+$)}", "a/{x?}/b", "a/{x:maxlength(0)}",
    "a/pre{x}", "a/{x:maxlength(3)?}",
])
def test_route_syntax_the_app_does_not_use_is_refused_when_the_host_starts(tmp_path, template):
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route=template)
    def unsupported(req: func.HttpRequest) -> str:
        return "never served"

    with pytest.raises(UnsupportedRoute, match="route"):
        build_wsgi_app(app, write_host_json(tmp_path))


def test_every_route_the_app_registers_is_served(registered_functions):
    import function_app

    routes = build_wsgi_app(function_app.app, Path(__file__).parent.parent / "host.json").routes
    assert {name for *_, name in routes} == {name for name, f in registered_functions.items()
                                              if f.get_trigger().type == "httpTrigger"}


def test_server_stops_and_frees_its_port(wsgi_app):
    server = serve(wsgi_app)
    url = server.url
    server.stop()

    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/api/hello/ada", timeout=2)


def test_literal_segments_match_in_any_case_and_the_log_still_names_only_the_template(base_url, caplog):
    # ASP.NET Core routing, which the Functions host uses, matches literal segments case-insensitively;
    # route values keep the case they were sent in.
    with caplog.at_level(logging.INFO, logger="local_dev.functions_host"):
        response = requests.get(f"{base_url}/API/Hello/Secret-Value")
        other = requests.get(f"{base_url}/Api/ITEMS/Other-Secret")

    assert response.status_code == 200 and response.json()["name"] == "Secret-Value"
    assert other.json() == {"id": "Other-Secret"}
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("GET /api/hello/{name} 200 ") for m in messages)
    assert any(m.startswith("GET /api/items/{id?} 200 ") for m in messages)
    assert not any("secret" in m.lower() for m in messages)


def test_a_connection_carries_many_requests_as_the_functions_hosts_do(wsgi_app):
    """Kestrel keeps HTTP/1.1 connections open; a local host closing each one would cost every client (Chromium,
    the bench's threads, a pipeline's Web activity) a new connection per request that Azure does not."""
    with serve(wsgi_app) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            answers = []
            for method, path, body in [("POST", "/api/echo", b"abc"), ("GET", "/api/hello/ada", None),
                                       ("GET", "/api/boom", None)]:
                connection.request(method, path, body=body)
                response = connection.getresponse()
                answers.append((response.status, response.read(), response.getheader("Connection")))
                if not answers[1:]:
                    first = connection.sock
            assert [(status, close) for status, _, close in answers] == [(201, None), (200, None), (500, None)]
            assert answers[0][1] == b"abc" and connection.sock is first  # the function's own 500 keeps it open
        finally:
            connection.close()


def test_a_request_over_the_hosts_100_mb_limit_is_413_and_no_function_runs(wsgi_app, caplog):
    with serve(wsgi_app) as server, caplog.at_level(logging.INFO, logger="local_dev.functions_host"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
            raw.sendall(f"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: {100 * 1024 * 1024 + 1}\r\n\r\n"
                        .encode() + b"x" * 1024)  # the head and a start: the answer comes without the rest
            answer = b""
            while chunk := raw.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ") and b"connection: close" in answer.lower()
    assert not [r for r in caplog.records if "/api/echo" in r.getMessage()]  # the function was never called


@pytest.mark.parametrize("size, status", [(1024, 201), (1025, 413)])
def test_a_chunked_body_is_held_to_the_same_limit_and_reaches_the_function_whole(wsgi_app, monkeypatch, caplog,
                                                                                 size, status):
    """No Content-Length, so nothing can refuse it before it is read: it is read to one byte over the limit, never
    cut short silently (as werkzeug's own reading would be)."""
    monkeypatch.setattr("local_dev.functions_host.MAX_REQUEST_BYTES", 1024)
    chunks = (b"x" * 300 for _ in range(size // 300)), (b"y" * (size % 300),)
    with serve(wsgi_app) as server, caplog.at_level(logging.INFO, logger="local_dev.functions_host"):
        with requests.Session() as session:
            answer = session.post(f"{server.url}/api/echo", data=(c for part in chunks for c in part), timeout=10)
    assert answer.status_code == status
    if status == 201:
        assert answer.content == b"x" * 900 + b"y" * 124
    assert any(r.getMessage().startswith(f"POST /api/echo {status} ") for r in caplog.records)
