"""Fixtures: a real Azurite and the ADF stand-in per test session, a fresh table per test."""

import dataclasses
import json
import uuid
from urllib.parse import urlencode

import azure.functions as func
import pytest

from local_dev.adf_standin import AdfStandin
from local_dev.azurite import Azurite
from shared import outbound
from shared.settings import Limits, get_settings
from shared.storage.tables import reset_clients
from shared.targets.adf import get_adf
from tests.support import TARGET, create_pipeline

BASE = "https://pauses.example.test"
SETTING_NAMES = ("AzureWebJobsStorage", "PAUSES_STORAGE_CONNECTION",
                 *(f"{prefix}__{part}" for prefix in ("AzureWebJobsStorage", "PAUSES_STORAGE_CONNECTION")
                   for part in ("accountName", "tableServiceUri", "queueServiceUri", "credential", "clientId")),
                 "PAUSES_TABLE", "ARM_ENDPOINT",
                 "PUBLIC_BASE_URL", "ALLOWED_FACTORIES", "CALLBACK_ALLOWED_HOSTS", "SMTP_HOST", "SMTP_PORT",
                 "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_FROM", "SMTP_STARTTLS", "PAUSE_SWEEP_SCHEDULE",
                 "CHECK_PIPELINE_EXISTS", "CHECK_ALLOWED_HOSTS", "CHANNEL_ALLOWED_HOSTS", "APPROVER_SIGN_IN",
                 "WEBSITE_AUTH_ENABLED", "OPERATORS", "DUE_WORK_QUEUE",
                 *(item.name.upper() for item in dataclasses.fields(Limits)))


def _import_the_app():
    """Import function_app once, as the host indexes it with local settings (the queue functions registered, as by
    default), whatever the shell running the tests has set: what it registers is decided at import."""
    import importlib
    import os

    saved = {name: os.environ.pop(name) for name in SETTING_NAMES if name in os.environ}
    os.environ["AzureWebJobsStorage"] = "UseDevelopmentStorage=true"
    try:
        importlib.import_module("function_app")
    finally:
        os.environ.pop("AzureWebJobsStorage")
        os.environ.update(saved)


_import_the_app()


def clear_app_caches():
    """Forget settings and clients, so the next call builds them from the current environment. The thread
    pools that write to storage in the background finish first: no write of the last test starts on a
    client being closed."""
    from shared import outbox
    from shared.storage.pauses import index_writer

    for pool in (index_writer, outbox._senders):
        pool.cache_clear()
    for cached in (get_settings, get_adf, outbound.session):
        cached.cache_clear()
    reset_clients()


@pytest.fixture(scope="session", autouse=True)
def socket_origins():
    """A socket found unclosed says where it was made (local_dev/socket_origins.py)."""
    from local_dev import socket_origins

    socket_origins.install()


@pytest.fixture(scope="session")
def azurite():
    """One Azurite per session on free ports: Table (`.port`, `.table_endpoint`), Queue (`.queue_port`,
    `.queue_endpoint`) and Blob, all named in `.connection_string` with the session's random key."""
    with Azurite() as server:
        yield server


@pytest.fixture(scope="session")
def adf():
    with AdfStandin() as standin:
        yield standin


@pytest.fixture
def adf_pipeline(adf):
    """A fresh stand-in that knows the tests' factory and pipeline (Load_Sales)."""
    adf.reset()
    create_pipeline(adf, parameters=("day", "n"))
    return adf


@pytest.fixture
def app_env(azurite, adf_pipeline, monkeypatch):
    """Point the app at Azurite (a fresh table) and the stand-in; yield the table name."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    table = "pauses" + uuid.uuid4().hex[:12]
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("PAUSES_TABLE", table)
    monkeypatch.setenv("ARM_ENDPOINT", adf_pipeline.url)
    clear_app_caches()
    yield table
    clear_app_caches()


def settings_changer(monkeypatch):
    """change(NAME="value", OTHER=None to unset): app settings for one test, read afresh by the app."""
    def change(**settings):
        for name, value in settings.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        clear_app_caches()
    return change


@pytest.fixture
def configure(app_env, monkeypatch):
    """Change app settings for one test: configure(NAME="value", OTHER=None to unset)."""
    return settings_changer(monkeypatch)


@pytest.fixture
def outside_settings(adf_pipeline, monkeypatch):
    """App settings for outside calls only (no storage is touched): ARM is the stand-in; outside_settings(NAME="value")
    changes one for the test, outside_settings(NAME=None) unsets it."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv("ARM_ENDPOINT", adf_pipeline.url)
    change = settings_changer(monkeypatch)
    change()
    yield change
    clear_app_caches()


@pytest.fixture
def storage(configure, azurite):
    """The app's storage through the fault proxy (local_dev.storage_faults), whose log shows every
    request the app makes; `table` still reads Azurite directly. A module may override it to add
    settings: def storage(storage, configure)."""
    from local_dev.storage_faults import StorageFaultProxy

    with StorageFaultProxy(azurite.port) as proxy:
        configure(AzureWebJobsStorage=proxy.connection_string(azurite))
        yield proxy


@pytest.fixture
def refused_port():
    """A loopback port nothing listens on for the whole test: bound here, so no other test's server can
    take it (as it could a port picked and let go), but not listening, so connections are refused."""
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.fixture
def table(app_env, azurite):
    """A TableClient on the test's table, for looking at what the app stored."""
    from azure.data.tables import TableClient

    with TableClient.from_connection_string(azurite.connection_string, table_name=app_env) as client:
        yield client


class Api:
    """Calls the registered functions the way the Functions host does (Microsoft's test pattern)."""

    target = TARGET

    @staticmethod
    def json(response):
        return json.loads(response.get_body())

    def __init__(self, functions, table_name=None):
        self.functions = functions
        self.table_name = table_name

    def call(self, name, method, path, *, body=b"", headers=None, route_params=None, params=None):
        query = f"?{urlencode(params)}" if params else ""
        req = func.HttpRequest(method, f"{BASE}/api/{path}{query}", headers=headers or {}, params=params or {},
                               route_params=route_params or {}, body=body)
        return self.functions[name].get_user_function()(req)

    def pause(self, body=None, **fields):
        raw = body if isinstance(body, bytes) else json.dumps({**TARGET, **fields} if body is None else body).encode()
        return self.call("pause", "POST", "pause", body=raw, headers={"Content-Type": "application/json"})

    def created(self, **fields):
        response = self.pause(**fields)
        assert response.status_code == 201, response.get_body()
        return json.loads(response.get_body())

    def page(self, action, token, html=True):
        headers = {"Accept": "text/html,application/xhtml+xml"} if html else {"Accept": "application/json"}
        return self.call(action, "GET", f"{action}/{token}", headers=headers, route_params={"token": token})

    def decide(self, action, token, *, form=None, json_body=None, html=False):
        headers = {"Accept": "text/html" if html else "application/json", "User-Agent": "pytest"}
        if json_body is not None:
            body, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        else:
            body, headers["Content-Type"] = urlencode(form or {}).encode(), "application/x-www-form-urlencoded"
        return self.call(action, "POST", f"{action}/{token}", body=body, headers=headers,
                         route_params={"token": token})

    def status(self, pause_id):
        return self.call("get_pause", "GET", f"pauses/{pause_id}", route_params={"pause_id": pause_id})

    def record(self, pause_id):
        response = self.status(pause_id)
        assert response.status_code == 200, response.get_body()
        return json.loads(response.get_body())

    def list(self, **params):
        return self.call("list_pauses", "GET", "pauses", params={k: str(v) for k, v in params.items()})


@pytest.fixture(scope="session")
def registered_functions():
    """Name -> registered Function. The app indexes its functions once (a second get_functions() fails): a test
    that listed them before (local_dev.queues.queue_functions) left them indexed, so they are indexed afresh."""
    import function_app

    function_app.app.functions_bindings = None
    return {f.get_function_name(): f for f in function_app.app.get_functions()}


@pytest.fixture
def api(app_env, registered_functions):
    return Api(registered_functions, app_env)


class SmtpRecorder:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        import email
        from email import policy

        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp(configure):
    """A real SMTP server on a free port, with the app's SMTP_* settings pointing at it."""
    from aiosmtpd.controller import Controller

    from local_dev.ports import free_port

    recorder = SmtpRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port(), server_hostname="localhost")
    controller.start()
    configure(SMTP_HOST="127.0.0.1", SMTP_PORT=str(controller.port), SMTP_FROM="pauses@example.test",
              SMTP_STARTTLS="false")
    try:
        yield recorder
    finally:
        controller.stop()


@pytest.fixture
def mail(configure):
    """The local mail catcher `make run` uses (messages as {"to", "subject", "text", …}), with the app's
    SMTP_* settings pointing at it."""
    from local_dev.mail_catcher import MailCatcher

    with MailCatcher() as catcher:
        configure(SMTP_HOST="127.0.0.1", SMTP_PORT=str(catcher.port), SMTP_FROM="pauses@example.test",
                  SMTP_STARTTLS="false")
        yield catcher


@pytest.fixture(scope="module")
def chat():
    """The Teams Workflows and Slack webhook stand-ins, for a test module."""
    from local_dev.chat_standins import ChatStandins

    with ChatStandins() as running:
        yield running


@pytest.fixture
def channels(configure, chat, request):
    """Channels `<test>-t` (Teams) and `<test>-s` (Slack) on the stand-ins, set up as app settings;
    returns their names by kind."""
    stem = request.node.name.split("[")[0][-30:].replace("_", "-").strip("-")
    names = {"teams": f"{stem}-t", "slack": f"{stem}-s"}
    configure(CHANNEL_ALLOWED_HOSTS="127.0.0.1",
              **{f"CHANNEL_{name.upper().replace('-', '_')}": f"{kind}:{chat.url(kind, name)}"
                 for kind, name in names.items()})
    return names


# --- Browser tests (tests/test_browser.py) -------------------------------------------------
# One Chromium per session, driven by Playwright. Without Chromium the browser tests are
# skipped with a banner in the terminal summary; with CI=true a missing Chromium fails them.

import os  # noqa: E402
from pathlib import Path  # noqa: E402

CHROMIUM_ENV = "BROWSER_TESTS_CHROMIUM"  # where Chromium is; tests of the skip logic point it elsewhere
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
_browser_skipped = pytest.StashKey[str]()


def chromium_path() -> Path:
    return Path(os.environ.get(CHROMIUM_ENV) or "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser(request):
    """Debian's Chromium under Playwright, for the whole session."""
    executable = chromium_path()
    if not executable.is_file():
        message = f"Chromium not found at {executable}: install chromium (apt-get install chromium)"
        if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
            pytest.fail(f"{message}. CI=true, so the browser tests must run.", pytrace=False)
        request.config.stash[_browser_skipped] = message
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


# The slowest tests, run first: each starts at once on a worker of its own (pytest-xdist hands out the
# first tests one per worker) instead of being the last one running while the other workers idle.
SLOWEST = ("tests/test_openapi.py::test_schemathesis_finds", "tests/test_random_faults.py", "tests/test_record_limits.py",
           "tests/test_hardening.py::test_hung_storage", "tests/test_infra.py::test_checkov_passes_on_infra",
           "tests/test_bench_smoke.py")


def pytest_collection_modifyitems(session, config, items):
    def rank(item) -> int:
        return next((index for index, prefix in enumerate(SLOWEST) if item.nodeid.startswith(prefix)), len(SLOWEST))

    items.sort(key=rank)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say loudly when the browser tests did not run."""
    message = config.stash.get(_browser_skipped, None)
    if message:
        terminalreporter.write_sep("!", "BROWSER TESTS SKIPPED: install chromium", red=True, bold=True)
        terminalreporter.write_line(message, red=True)
        terminalreporter.write_line(f"(set {CHROMIUM_ENV} to use a Chromium elsewhere; CI=true makes this a failure)",
                                    red=True)
