"""Hostile input, outages and secrets: never a 5xx for bad input, bounded failures, no token in logs."""

import json
import logging
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from local_dev.functions_host import build_wsgi_app, serve
from tests.support import SUBSCRIPTION, TARGET

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
SUB = SUBSCRIPTION


@pytest.fixture
def host(app_env, registered_functions):
    import function_app

    with serve(build_wsgi_app(function_app.app, ROOT / "host.json")) as server:
        yield server.url


HOSTILE_BODIES = [
    (b"", 400), (b"null", 400), (b"42", 400), (b"\"x\"", 400), (b"[]", 400), (b"{", 400),
    (b"\xff\xfe\x00", 400), (b'{"a": NaN}', 400), (b'{"expires_in": 1e999}', 400),
    (b"[" * 50000, 400), (b'{"d": ' + b"[" * 200 + b"]" * 200 + b"}", 400),
    (json.dumps({**TARGET, "pipeline_name": "<script>alert(1)</script>"}).encode(), 400),
    (json.dumps({**TARGET, "resource_group": "x" * 100000}).encode(), 400),
    (json.dumps({**TARGET, "factory_name": "a\u0000b"}).encode(), 400),
    (json.dumps({**TARGET, "pipeline_name": "   "}).encode(), 400),
    (json.dumps({**TARGET, "pipeline_name": ["Load"]}).encode(), 400),
    (json.dumps({**TARGET, "expires_in": False}).encode(), 400),
    (json.dumps({**TARGET, "expires_in": 10 ** 30}).encode(), 400),
    (json.dumps({**TARGET, "expires_in": -1}).encode(), 400),
    (json.dumps({**TARGET, "on_timeout": None, "parameters": "a=b"}).encode(), 400),
    (json.dumps({**TARGET, "notification": ["title"]}).encode(), 400),
    (json.dumps({**TARGET, "notification": {"title": "x" * 5000}}).encode(), 400),
    (json.dumps({**TARGET, "notify": {"email": ["a@b.example\r\nBcc: c@d.example"]}}).encode(), 400),
    (json.dumps({**TARGET, "source": {"k": "v" * 20000}}).encode(), 413),
    (json.dumps({**TARGET, "data": "x" * 300000}).encode(), 413),
    (json.dumps({**TARGET, "callBackUri": "javascript:alert(1)"}).encode(), 400),
    (json.dumps({"callBackUri": "https://169.254.169.254/metadata"}).encode(), 403),
    (json.dumps({"callBackUri": "https://localhost/cb"}).encode(), 403),
    (b" " * (600 * 1024), 413),
]


@pytest.mark.parametrize("body, status", HOSTILE_BODIES, ids=[str(i) for i in range(len(HOSTILE_BODIES))])
def test_hostile_pause_bodies_get_a_clean_4xx_problem(host, body, status):
    response = requests.post(f"{host}/api/pause", data=body, headers={"Content-Type": "application/json"},
                             timeout=30)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status and problem["detail"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize("token", [
    "", "a", "0" * 117, "0" * 119, "0" * 10000, "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "..%2F..%2F..%2Fetc%2Fpasswd",
    "0" * 32 + "=" * 86, "0" * 32 + "%00" * 86, "%E2%80%AE" * 40, "0" * 31 + "G" + "a" * 86,
])
@pytest.mark.parametrize("action", ["restart", "cancel"])
def test_malformed_tokens_get_4xx_pages_that_echo_nothing(host, token, action):
    for method in ("GET", "POST"):
        response = requests.request(method, f"{host}/api/{action}/{token}", headers={"Accept": "text/html"},
                                    timeout=30)
        assert 400 <= response.status_code < 500
        assert "<script>" not in response.text and "alert(1)" not in response.text


def test_every_html_response_carries_the_security_headers(host, api):
    created = api.created()
    token = created["token"]
    html = {"Accept": "text/html"}
    responses = [
        requests.get(f"{host}/api/restart/{token}", headers=html, timeout=30),
        requests.get(f"{host}/api/cancel/{token}", headers=html, timeout=30),
        requests.get(f"{host}/api/restart/{'0' * 118}", headers=html, timeout=30),
        requests.post(f"{host}/api/restart/{token}", data={"comment": "x" * 3000}, headers=html, timeout=30),
        requests.post(f"{host}/api/restart/{token}", data={"comment": "ok"}, headers=html, timeout=30),
        requests.post(f"{host}/api/restart/{token}", data={"comment": "ok"}, headers=html, timeout=30),
    ]
    assert [r.status_code for r in responses] == [200, 200, 404, 400, 200, 409]
    for response in responses:
        assert response.headers["Content-Type"].startswith("text/html")
        csp = response.headers["Content-Security-Policy"]
        for directive in ("default-src 'none'", "form-action 'self'", "frame-ancestors 'none'"):
            assert directive in csp
        assert response.headers["Referrer-Policy"] == "same-origin"  # never to another site
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "http://" not in response.text and "https://" not in response.text  # no external assets


def test_logs_of_a_full_cycle_hold_no_token(host, adf, configure, caplog):
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1", RUN_LOOKUP_RETRY_SECONDS="0.1")
    caplog.set_level(logging.DEBUG)
    tokens = []
    for body in (TARGET, {"callBackUri": f"{adf.url}/_standin/callbacks/logs"}):
        created = requests.post(f"{host}/api/pause", json=body, timeout=30).json()
        tokens.append(created["token"])
        token = created["token"]
        for action in ("restart", "cancel"):
            requests.get(f"{host}/api/{action}/{token}", headers={"Accept": "text/html"}, timeout=30)
        requests.post(f"{host}/api/restart/{token}", json={"comment": "go"}, timeout=30)
        requests.post(f"{host}/api/restart/{token}", json={}, timeout=30)  # 409
        requests.get(f"{host}/api/pauses/{created['pause_id']}", timeout=30)
    cancelled = requests.post(f"{host}/api/pause", json=TARGET, timeout=30).json()
    tokens.append(cancelled["token"])
    requests.post(f"{host}/api/cancel/{cancelled['token']}", data={"reason": "no"}, timeout=30)
    adf.inject("createRun", "before", status=500)
    failing = requests.post(f"{host}/api/pause", json=TARGET, timeout=30).json()
    tokens.append(failing["token"])
    assert requests.post(f"{host}/api/restart/{failing['token']}", timeout=60).status_code == 502

    # The test's own HTTP client logs the URLs it requests; everything else is the app's.
    client = host.replace("http://", "")
    app_records = [r for r in caplog.records if not (r.name.startswith("urllib3") and client in r.getMessage())]
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in app_records)
    assert "pause decided" in logged and "pause created" in logged  # the logs were captured
    for token in tokens:
        assert token not in logged and token[32:] not in logged and token[32:60] not in logged


class BlackHole:
    """A TCP server that accepts connections and never answers: a hung dependency."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def black_hole():
    hole = BlackHole()
    yield hole
    hole.close()


def test_hung_storage_gives_503_within_seconds_and_writes_nothing(api, configure, black_hole, azurite):
    configure(AzureWebJobsStorage=f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                                  f"AccountKey={azurite.account_key};"
                                  f"TableEndpoint=http://127.0.0.1:{black_hole.port}/devstoreaccount1;",
              STORAGE_READ_TIMEOUT_SECONDS="1")  # production's 4 s, shortened: the bound is what is tested
    started = time.monotonic()
    response = api.pause()
    elapsed = time.monotonic() - started
    assert response.status_code == 503 and api.json(response)["code"] == "storage_unavailable"
    # Bounded by the read timeout, twice (shared.storage.tables.insert sends a timed-out insert once more), not
    # by the OS's minutes.
    assert 1.5 <= elapsed < 6, elapsed  # two reads of 1 s each


def test_storage_outage_after_the_claim_keeps_nothing_half_written(api, adf, configure, azurite):
    created = api.created()
    configure(AzureWebJobsStorage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                                  "AccountKey=AAAA;TableEndpoint=http://127.0.0.1:9/devstoreaccount1;")
    response = api.decide("restart", created["token"])
    assert response.status_code == 503
    configure(AzureWebJobsStorage=azurite.connection_string)
    assert api.record(created["pause_id"])["status"] == "pending" and adf.runs == []
    assert api.decide("restart", created["token"]).status_code == 200


def test_adf_throttling_is_retried_within_bounds(api, adf):
    created = api.created()
    # ARM throttles before it processes a request: the one POST that may be repeated.
    adf.inject("createRun", "before", count=2, status=429, code="TooManyRequests", retry_after=1)
    response = api.decide("restart", created["token"])
    assert response.status_code == 200 and len(adf.runs) == 1


def test_adf_throttling_that_persists_is_502_with_the_link_usable(api, adf, configure):
    configure(ARM_RETRY_TOTAL="2")
    created = api.created()
    adf.inject("createRun", "before", status=429, code="TooManyRequests", retry_after=3600)
    started = time.monotonic()
    response = api.decide("restart", created["token"])
    assert response.status_code == 502 and api.json(response)["code"] == "upstream_throttled"
    assert time.monotonic() - started < 5  # an hour's Retry-After is not waited out, nor retried early
    assert api.record(created["pause_id"])["status"] == "pending" and adf.runs == []
    assert api.decide("restart", created["token"]).status_code == 200
    assert len(adf.runs) == 1


def test_hung_adf_is_502_and_the_pause_waits_to_be_reconciled_not_repeated(api, configure, black_hole, adf):
    created = api.created()
    # createRun was sent and never answered, and ADF cannot be asked: it may have started.
    limits = {"ARM_READ_TIMEOUT_SECONDS": "0.5", "ARM_RETRY_TOTAL": "0", "STALE_CLAIM_SECONDS": "3"}
    configure(ARM_ENDPOINT=f"http://127.0.0.1:{black_hole.port}", **limits)
    started = time.monotonic()
    response = api.decide("restart", created["token"])
    assert response.status_code == 502 and api.json(response)["code"] == "outcome_unknown"
    assert time.monotonic() - started < 20
    record = api.record(created["pause_id"])
    assert record["status"] == "restarting" and "RunLookupFailed" in record["last_error"]
    configure(ARM_ENDPOINT=adf.url, **limits)
    assert api.decide("restart", created["token"]).status_code == 409  # still within the claim's time
    time.sleep(max(0.0, started + 3.2 - time.monotonic()))
    # Stale now: the click asks ADF, finds no run, releases the claim and approves.
    assert api.decide("restart", created["token"]).status_code == 200
    assert len(adf.runs) == 1


@pytest.mark.parametrize("route, body, field", [
    ("pause", {"notification": {"title": "\udc00"}}, "notification.title"),
    ("pause", {"parameters": {"\ud800day": "x"}}, "parameters.\\ud800day"),
    ("pause", {"data": {"rows": ["ok", "\udfff"]}}, "data.rows[1]"),
    ("restart", {"comment": "fine \udc00"}, "comment"),
    ("restart", {"input": {"k": "\ud83d"}}, "input.k"),
    ("cancel", {"reason": "\udc00"}, "reason"),
])
def test_text_that_cannot_be_stored_is_400_naming_the_field_in_every_body(host, api, route, body, field):
    created = api.created()
    url = f"{host}/api/pause" if route == "pause" else f"{host}/api/{route}/{created['token']}"
    sent = {**TARGET, **body} if route == "pause" else body
    # json.dumps writes a lone surrogate as the escape "\udc00": valid JSON, text that cannot be UTF-8.
    response = requests.post(url, data=json.dumps(sent).encode(), headers={"Content-Type": "application/json"},
                             timeout=30)
    assert response.status_code == 400
    assert {"field": field, "rule": "encoding"}.items() <= response.json()["errors"][0].items()
    assert api.record(created["pause_id"])["status"] == "pending"
    assert requests.get(f"{host}/api/pauses?limit=100", timeout=30).status_code == 200


def test_a_record_holding_text_that_cannot_be_encoded_is_still_served(host, api, table):
    # As if stored before input was checked: status and list must not answer 500 for it, ever.
    created = api.created()
    entity = table.get_entity(created["pause_id"], "pause")
    entity["comment"] = "stored \udc00 earlier"
    table.update_entity(entity)
    for url in (f"{host}/api/pauses/{created['pause_id']}", f"{host}/api/pauses?limit=100"):
        response = requests.get(url, timeout=30)
        assert response.status_code == 200 and "\\udc00" in response.text
    page = requests.get(f"{host}/api/restart/{created['token']}", headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 200


def test_a_damaged_record_answers_a_clear_409_on_its_links_never_500(host, api, table, adf):
    from azure.data.tables import UpdateMode

    created = api.created()
    entity = table.get_entity(created["pause_id"], "pause")
    del entity["expires_at"]
    table.update_entity(entity, mode=UpdateMode.REPLACE)
    link = f"{host}/api/restart/{created['token']}"
    for response in (requests.get(link, headers={"Accept": "text/html"}, timeout=30),
                     requests.post(link, json={}, timeout=30),
                     requests.post(link.replace("/restart/", "/cancel/"), json={}, timeout=30)):
        assert response.status_code == 409
        assert "damaged" in response.text and "expires_at" in response.text
    assert requests.get(f"{host}/api/pauses/{created['pause_id']}", timeout=30).status_code == 200
    entity = table.get_entity(created["pause_id"], "pause")
    entity["secret_hash"] = 12345  # not even text: the link matches nothing
    table.update_entity(entity)
    assert requests.post(link, json={}, timeout=30).status_code == 404
    assert adf.runs == []


def test_no_spelling_of_a_link_puts_its_token_in_the_logs(api, configure, caplog):
    """The Functions host routes /API/Restart/… and /api//restart/… too: whatever the spelling, no token is logged."""
    from urllib.parse import quote

    import azure.functions as func

    created = api.created()
    token = created["token"]
    configure(AzureWebJobsStorage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                                  "AccountKey=AAAA;TableEndpoint=http://127.0.0.1:9/devstoreaccount1;")
    caplog.set_level(logging.DEBUG)
    encoded = "".join(f"%{ord(c):02X}" for c in token)
    for action in ("restart", "cancel"):
        for path in (f"/API/{action.title()}/{token}", f"/api//{action}/{token}", f"/Api/{action.upper()}/{encoded}",
                     f"/api/{quote(action)}/{token}?x={token}", f"/api/{action}/{token}"):
            for method, headers in (("GET", {"Accept": "text/html"}), ("POST", {"Accept": "application/json"})):
                req = func.HttpRequest(method, f"https://pauses.example.test{path}", headers=headers, params={},
                                       route_params={"token": token}, body=b"")
                response = api.functions[action].get_user_function()(req)
                assert response.status_code == 503, (path, response.get_body())
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "restart" in logged and "cancel" in logged and "503" in logged  # the failures were logged
    for secret in (token, token[32:], token[32:60], encoded[96:180], quote(token)):
        assert secret not in logged
