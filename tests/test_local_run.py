"""What `make run` adds around the app: its settings file, `make help`, the development sign-in's cookie."""

import json
import subprocess
from pathlib import Path

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Response

from local_dev.dev_sign_in import COOKIE, DevSignIn
from local_dev.run import SettingsFileError, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_a_malformed_settings_file_is_reported_with_its_name_and_line(tmp_path, monkeypatch):
    (tmp_path / "local.settings.json").write_text('{\n  "Values": {\n    "A": "1",\n  }\n}\n', encoding="utf-8")
    with pytest.raises(SettingsFileError, match=r"local\.settings\.json, line 4"):
        load_settings(tmp_path)
    (tmp_path / "local.settings.json").write_text('{"Values": ["A"]}', encoding="utf-8")
    with pytest.raises(SettingsFileError, match='"Values" must be an object'):
        load_settings(tmp_path)


def test_the_settings_file_fills_what_the_environment_does_not_set(tmp_path, monkeypatch):
    monkeypatch.setenv("PAUSES_TABLE", "fromenv")
    monkeypatch.delenv("SMTP_PORT", raising=False)
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": {"PAUSES_TABLE": "fromfile",
                                                                         "SMTP_PORT": 1025}}))
    assert load_settings(tmp_path).name == "local.settings.json"
    import os
    assert os.environ["PAUSES_TABLE"] == "fromenv" and os.environ["SMTP_PORT"] == "1025"


def test_make_help_lists_the_targets():
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout
    for target in ("run", "test", "test-fast", "bench", "clean"):
        assert f"make {target} " in out


def test_the_development_sign_in_injects_only_what_its_own_cookie_vouches_for():
    seen = []

    def app(environ, start_response):
        seen.append({k: v for k, v in environ.items() if k.startswith("HTTP_X_MS_")})
        return Response("ok")(environ, start_response)

    client = Client(DevSignIn(app))
    client.get("/api/x", headers={"X-MS-CLIENT-PRINCIPAL-NAME": "mallory@contoso.com"})
    assert seen[-1] == {}  # a client's own principal header never reaches the app
    response = client.post("/.auth/login/aad", data={"identity": "Alice@Contoso.com", "roles": "Pauses.Operator",
                                                     "post_login_redirect_uri": "/api/x"})
    assert response.status_code == 302 and response.headers["Location"] == "/api/x"
    assert "HttpOnly" in response.headers["Set-Cookie"]
    client.get("/api/x")
    assert seen[-1]["HTTP_X_MS_CLIENT_PRINCIPAL_NAME"] == "alice@contoso.com"
    cookie = client.get_cookie(COOKIE)
    client.set_cookie(COOKIE, cookie.value.replace(".", ".0", 1))  # tampered
    client.get("/api/x")
    assert seen[-1] == {}
    assert client.get("/.auth/me").json == []


def test_the_local_root_leads_to_the_index_page():
    from werkzeug.test import Client
    from werkzeug.wrappers import Response

    from local_dev.run import root_to_index

    client = Client(root_to_index(Response("app", status=200)))
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/api"
    assert client.get("/api").get_data() == b"app" and client.post("/").get_data() == b"app"


def test_the_chat_stand_ins_start_where_a_channel_setting_points_on_this_machine():
    from local_dev.run import chat_address

    assert chat_address({"CHANNEL_APPROVALS": "teams:http://127.0.0.1:7073/teams/approvals",
                         "CHANNEL_OTHER": "slack:https://hooks.slack.com/services/x"}) == ("127.0.0.1", 7073)
    assert chat_address({"CHANNEL_OTHER": "slack:https://hooks.slack.com/services/x",
                         "NOT_A_CHANNEL": "teams:http://127.0.0.1:1/x"}) is None


def test_make_run_serves_the_chat_stand_ins_and_says_where_to_read_them(monkeypatch):
    import contextlib

    import requests

    from local_dev.ports import free_port
    from local_dev.run import banner, start_chat

    port = free_port()
    monkeypatch.setenv("CHANNEL_APPROVALS", f"teams:http://127.0.0.1:{port}/teams/approvals")
    with contextlib.ExitStack() as stack:
        chat = start_chat(stack)
        assert chat.base_url == f"http://127.0.0.1:{port}"
        assert f"Local Teams and Slack (what the app posted): {chat.base_url}/" in banner([], [], "", None, chat)
        with requests.Session() as session:
            assert session.get(chat.base_url + "/posts.json", timeout=5).json() == []


def test_make_run_scales_the_stand_ins_throttling_by_its_setting(monkeypatch):
    import contextlib

    import requests

    from local_dev.adf_standin import DEFAULT_FACTORY
    from local_dev.ports import free_port
    from local_dev.run import start_standin

    subscription, resource_group, factory = DEFAULT_FACTORY
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("ADF_STANDIN_THROTTLE_SCALE", "2")
    with contextlib.ExitStack() as stack:
        standin = start_standin(stack, url)
        assert (standin.throttle.limits.writes, standin.throttle.limits.writes_per_second) == (400, 20)
        with requests.Session() as session:
            answer = session.get(f"{url}/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/"
                                 f"Microsoft.DataFactory/factories/{factory}?api-version=2018-06-01",
                                 headers={"Authorization": "Bearer dev-token"}, timeout=5)
        assert answer.headers["x-ms-ratelimit-remaining-subscription-reads"] == "499"


def test_make_run_refuses_a_throttling_scale_that_is_not_a_positive_number(monkeypatch):
    import contextlib

    from local_dev.run import start_standin
    from shared.errors import SettingsError

    monkeypatch.setenv("ADF_STANDIN_THROTTLE_SCALE", "fast")
    with contextlib.ExitStack() as stack, pytest.raises(SettingsError, match="ADF_STANDIN_THROTTLE_SCALE"):
        start_standin(stack, "http://127.0.0.1:1")


def test_make_run_lists_the_queue_triggers_and_how_many_processes_share_their_queues():
    from local_dev.queues import QueueFunction
    from local_dev.run import banner, parse_args

    settle = QueueFunction("settle_due_work", "pauses-due", "AzureWebJobsStorage", "message", print)
    text = banner([], [], "", None, None, [settle], 2)
    assert "settle_due_work: queueTrigger (pauses-due, connection AzureWebJobsStorage)" in text
    assert "The queue triggers run in 2 local host processes sharing the queues." in text
    assert "processes" not in banner([], [], "", None, None, [settle], 1)
    assert parse_args(["--workers", "3"]).workers == 3 and parse_args([]).workers == 1
    with pytest.raises(SystemExit):
        parse_args(["--workers", "0"])


def test_workers_are_not_started_for_an_app_without_queue_triggers(caplog):
    import contextlib

    import azure.functions as func

    from local_dev.run import start_queues

    with contextlib.ExitStack() as stack:
        assert start_queues(stack, func.FunctionApp(), 2) == []
    assert "no queue triggers" in caplog.text
