"""The README's curl walk, run as written against the local host over real HTTP."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from local_dev.demo import create_demo_pipeline
from local_dev.functions_host import build_wsgi_app, serve

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def readme_walk(name: str = "curl-walk") -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(rf"<!-- {name}:start -->\s*```bash\n(.*?)```\s*<!-- {name}:end -->", text, re.S)
    assert block, f"README.md has no {name} block"
    return block.group(1)


@pytest.fixture
def local_host(app_env, registered_functions):
    import function_app

    with serve(build_wsgi_app(function_app.app, ROOT / "host.json")) as server:
        yield server


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_curl_walk_works_as_written(local_host, adf, tmp_path):
    create_demo_pipeline(adf.url)  # as make run does
    script = readme_walk()
    # The README speaks of make run's fixed ports; the test's servers run on free ones.
    script = script.replace("http://127.0.0.1:7071", local_host.url).replace("http://127.0.0.1:7072", adf.url)
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "<h1>Load 1200 rows into Sales?</h1>" in out
    assert '"status": "restarted"' in out
    assert "\n409\n" in out
    [run] = adf.runs
    assert run["parameters"]["day"] == "2026-11-25" and len(run["parameters"]["pause_id"]) == 32
    record_line = next(line for line in out.splitlines() if line.startswith('{"pause_id"') and '"data"' in line)
    record = json.loads(record_line)
    assert record["data"] == {"rows_staged": 1200} and record["run_id"] == run["runId"]
    assert record["comment"] == "Numbers look right"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_named_approvers_walk_works_as_written(local_host, adf, configure, tmp_path):
    from local_dev.mail_catcher import MailCatcher

    create_demo_pipeline(adf.url)
    with MailCatcher() as mail:
        configure(SMTP_HOST="127.0.0.1", SMTP_PORT=str(mail.port), SMTP_FROM="pausable-pipelines@example.test",
                  SMTP_STARTTLS="false", PUBLIC_BASE_URL=local_host.url)
        script = readme_walk("approvers-walk").replace("http://127.0.0.1:7071", local_host.url)
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0 and '"restart_url"' in result.stdout, result.stderr
        assert '"approver_links"' not in result.stdout  # personal links go to their approvers only
        messages = {m["to"][0]: m["text"] for m in mail.messages}
    assert sorted(messages) == ["alice@contoso.com", "bob@contoso.com"]
    import requests

    for who, expected in (("alice@contoso.com", "pending"), ("bob@contoso.com", "restarted")):
        approve = re.search(r"(http://\S+/api/restart/\S+)", messages[who]).group(1)
        answer = requests.post(approve, json={}, timeout=30).json()
        assert answer["status"] == expected
    [run] = adf.runs
    assert run["pipelineName"] == "Load_Sales"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_holds_walk_works_as_written(local_host, adf, configure, tmp_path):
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1")  # as local.settings.json.example has it
    example = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))["Values"]
    assert example["CALLBACK_ALLOWED_HOSTS"] == "127.0.0.1"
    script = readme_walk("holds-walk").replace("http://127.0.0.1:7071", local_host.url) \
        .replace("http://127.0.0.1:7072", adf.url)
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith(("{", "["))]
    hold, reached, held, released, callbacks = lines
    assert hold["status"] == "active" and reached["held"] is True
    assert [item["pause_id"] for item in held["items"]] == [reached["pause_id"]]
    assert released["status"] == "released" and released["checkpoints"]["continued"] == [reached["pause_id"]]
    [sent] = callbacks
    assert sent["callbackId"] == "walk-run" and sent["status"] == 200
    assert sent["body"]["Output"]["held"] is True and sent["body"]["Output"]["comment"] == "Maintenance done"


def test_readme_custom_role_is_what_the_strict_standin_demands_of_the_app():
    """The README's role JSON (for factories in other tenants, where the Bicep does not reach) grants exactly
    the actions the app's code calls, which is the role the stand-in's RBAC gives the app in the tests."""
    from local_dev.adf_standin import APP_ROLE

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"cat > pausable-pipelines-role.json <<'JSON'\n(.*?)\n *JSON\n", text, re.S)
    assert block, "README.md has no custom role block"
    role = json.loads(block.group(1))
    assert set(role["Actions"]) == APP_ROLE


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_channels_walk_works_as_written(local_host, adf, configure, tmp_path):
    from datetime import datetime, timedelta, timezone

    from local_dev.chat_standins import ChatStandins
    from shared import sweep

    create_demo_pipeline(adf.url)
    example = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))["Values"]
    with ChatStandins() as chat:
        # The example's channel settings, pointed at this test's stand-ins instead of make run's port 7073.
        configure(**{name: value.replace("http://127.0.0.1:7073", chat.base_url) for name, value in example.items()
                     if name.startswith("CHANNEL_")})
        script = readme_walk("channels-walk").replace("http://127.0.0.1:7071", local_host.url) \
            .replace("http://127.0.0.1:7073", chat.base_url)
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        created, posted, approved = re.split(r"^--- .*$", result.stdout, flags=re.M)
        created, approved = json.loads(created), json.loads(approved)
        [card] = chat.posts("teams", "approvals")
        [blocks] = chat.posts("slack", "data-team")
        assert sweep.sweep(datetime.now(timezone.utc) + timedelta(seconds=1)) == {"notified": 1}  # the timer
        followed = chat.posts("slack", "data-team")[-1]
    assert created["status"] == "pending" and approved["status"] == "restarted" and len(adf.runs) == 1
    for body in (card, blocks):
        assert created["restart_url"] in json.dumps(body) and "Load November into Sales?" in json.dumps(body)
    assert sorted(item["kind"] for item in json.loads(posted)) == ["slack", "teams"]
    assert followed["blocks"][0]["text"]["text"].startswith("Approved at ") and approved["run_id"] in str(followed)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_reach_walk_works_as_written(local_host, adf, configure, mail, tmp_path):
    """Reminders, an escalation and a reassignment, as the README tells them; the timer's runs are made
    here at the moments the README names (the pause's own time plus 61 and 301 seconds)."""
    from datetime import datetime, timedelta

    import requests

    from shared import sweep

    create_demo_pipeline(adf.url)
    adf.mail = mail  # as make run wires them: the stand-in lists what the catcher took
    try:
        configure(PUBLIC_BASE_URL=local_host.url)
        script = readme_walk("reach-walk").replace("http://127.0.0.1:7071", local_host.url) \
            .replace("http://127.0.0.1:7072", adf.url)
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        created, handed = re.split(r"^--- .*$", result.stdout, flags=re.M)
        created, handed = json.loads(created), json.loads(handed)
        record = requests.get(created["status_url"], timeout=30).json()
        made = datetime.fromisoformat(record["created_at"].replace("Z", "+00:00"))
        assert sweep.sweep(made + timedelta(seconds=61)) == {"escalated": 1}
        assert sweep.sweep(made + timedelta(seconds=301)) == {"reminded": 1}
        subjects = {}
        for message in mail.messages:
            subjects.setdefault(message["to"][0], []).append(message["subject"])
        alice = re.search(r"(http://\S+/api/restart/\S+)", mail.messages[0]["text"]).group(1)
        retired = requests.post(alice, json={}, timeout=30)
        dave = [m for m in mail.messages if m["to"] == ["dave@contoso.com"]][-1]
        approve = re.search(r"(http://\S+/api/restart/\S+)", dave["text"]).group(1)
        answer = requests.post(approve, json={}, timeout=30).json()
        record = requests.get(created["status_url"], timeout=30).json()
    finally:
        adf.mail = None  # the stand-in is the session's: the catcher is this test's
    assert handed["status"] == "pending" and answer["status"] == "restarted" and len(adf.runs) == 1
    assert retired.status_code == 409 and "dave@contoso.com" in retired.text
    assert subjects == {
        "alice@contoso.com": ["Approval needed: Load December into Sales?"],
        "bob@contoso.com": ["Approval needed: Load December into Sales?", "Reminder: Load December into Sales?"],
        "dave@contoso.com": ["Approval needed: Load December into Sales?", "Reminder: Load December into Sales?"],
        "carol@contoso.com": ["Escalated: Load December into Sales?", "Reminder: Load December into Sales?"]}
    assert record["reassignments"][0]["to"] == "dave@contoso.com" and record["escalated_at"]
    assert sorted(record["approvers"]) == ["bob@contoso.com", "carol@contoso.com", "dave@contoso.com"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_signin_walk_works_as_written(adf, configure, registered_functions, mail, chat, tmp_path):
    """Named approvers asked in a Teams channel under sign-in: the card's link, the development sign-in,
    the escalation and the reminders at the moments the README names, and the follow-up after approval.
    The person's part is played over HTTP as a browser sends it (the sign-in cookie, the page's token)."""
    from datetime import datetime, timedelta

    import requests

    import function_app
    from local_dev.dev_sign_in import DevSignIn
    from shared import sweep

    create_demo_pipeline(adf.url)
    example = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))["Values"]
    with serve(DevSignIn(build_wsgi_app(function_app.app, ROOT / "host.json"))) as site:
        configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED="True", PUBLIC_BASE_URL=site.url,
                  **{name: value.replace("http://127.0.0.1:7073", chat.base_url) for name, value in example.items()
                     if name.startswith("CHANNEL_")})
        script = readme_walk("signin-walk").replace("http://127.0.0.1:7071", site.url)
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        created = json.loads(result.stdout)
        [card] = chat.posts("teams", "approvals")
        link = next(a["url"] for a in card["attachments"][0]["content"]["actions"] if a["title"] == "Review and approve")
        made = datetime.fromisoformat(requests.get(created["status_url"], timeout=30).json()["created_at"]
                                      .replace("Z", "+00:00"))
        assert sweep.sweep(made + timedelta(seconds=61)) == {"escalated": 1}
        assert sweep.sweep(made + timedelta(seconds=301)) == {"reminded": 1}
        with requests.Session() as alice:
            page = alice.get(link, headers={"Accept": "text/html"}, timeout=30)
            assert "Sign in" in page.text  # the page asks for it first
            alice.post(f"{site.url}/.auth/login/aad", data={"identity": "alice@contoso.com"}, timeout=30)
            page = alice.get(link, headers={"Accept": "text/html"}, timeout=30)
            token = re.search(r'name="antiforgery_token" value="([^"]+)"', page.text).group(1)
            approved = alice.post(link, data={"antiforgery_token": token, "comment": "Numbers look right"},
                                  headers={"Origin": site.url, "Accept": "application/json"}, timeout=30).json()
        assert sweep.sweep(datetime.now(made.tzinfo) + timedelta(seconds=1)) == {"notified": 1}
        posts = chat.posts("teams", "approvals")
        carol = [m for m in mail.messages if m["to"] == ["carol@contoso.com"]]
    assert approved["status"] == "restarted" and approved["approvals"][0]["approver"] == "alice@contoso.com"
    assert [m["subject"] for m in carol] == ["Escalated: Publish the Q4 numbers?", "Reminder: Publish the Q4 numbers?"]
    assert "Reminder: Publish the Q4 numbers?" in json.dumps(posts[1])
    assert "Approved by alice@contoso.com" in json.dumps(posts[-1]) and len(adf.runs) == 1
