"""The operators' console: only signed-in operators, forms only from the console, what it shows,
what operators do there (recorded as them), the CSV export and the index page."""

import csv
import io
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.support import TARGET

pytestmark = pytest.mark.integration

OPS = "ops@contoso.com"
HTML = {"Accept": "text/html"}


@pytest.fixture
def signed_in(configure, adf):
    configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED="True", OPERATORS=f"{OPS}, Lead@Contoso.com",
              CALLBACK_ALLOWED_HOSTS="127.0.0.1", CHECKPOINT_CALLBACK_DELAY_SECONDS="0.05")

    def headers(name=OPS, same_origin=True, **extra):
        """What a browser signed in as `name` sends: the principal App Service writes, its session cookie."""
        found = {**HTML, "X-MS-CLIENT-PRINCIPAL-NAME": name, "Cookie": f"AppServiceAuthSession=session-of-{name}",
                 **extra}
        if same_origin:
            found["Sec-Fetch-Site"] = "same-origin"
        return found
    return headers


def page(api, name, path, headers, route_params=None, params=None):
    response = api.call(name, "GET", path, headers=headers, route_params=route_params, params=params)
    return response.status_code, response.get_body().decode("utf-8"), response


def form_token(api, headers):
    """The anti-forgery token the console page's forms carry for this browser (None if none is shown)."""
    import re

    _, body, _ = page(api, "console_page", "console", headers)
    found = re.search(r'name="antiforgery_token" value="([^"]+)"', body)
    return found.group(1) if found else None


def post(api, name, path, form, headers, route_params=None, token=True):
    """Post a console form as a browser does: with the token from the console page (token=True)."""
    from urllib.parse import urlencode

    if token is True:
        token = form_token(api, headers)
    fields = {**form, **({"antiforgery_token": token} if token else {})}
    response = api.call(name, "POST", path, body=urlencode(fields).encode(),
                        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
                        route_params=route_params)
    return response.status_code, response


def test_only_signed_in_operators_get_in(api, signed_in, configure):
    status, body, _ = page(api, "console_page", "console", HTML)
    assert status == 401 and "Sign in" in body and "/.auth/login/aad" in body
    status, body, _ = page(api, "console_page", "console", signed_in("someone@contoso.com"))
    assert status == 403 and "not an operator" in body
    assert page(api, "console_page", "console", signed_in("lead@contoso.com"))[0] == 200  # OPERATORS, any case
    role = {"X-MS-CLIENT-PRINCIPAL": _principal("carol@contoso.com", ["Pauses.Operator"])}
    assert page(api, "console_page", "console", {**HTML, **role})[0] == 200
    configure(APPROVER_SIGN_IN=None)  # without sign-in nobody is trusted, whatever headers say
    status, body, _ = page(api, "console_page", "console", signed_in())
    assert status == 403 and "APPROVER_SIGN_IN=easyauth" in body


def test_the_console_says_when_a_caller_was_handed_the_approvers_personal_links(api, signed_in):
    handed = api.created(approvers=["a@contoso.com", "b@contoso.com"], return_approver_links=True,
                         notification={"title": "Links handed out"})
    kept = api.created(approvers=["a@contoso.com", "b@contoso.com"], notification={"title": "Links kept"})
    _, body, _ = page(api, "console_page", "console", signed_in())
    items = body.split("<li>")
    assert "personal links returned to the caller" in next(i for i in items if "Links handed out" in i)
    assert "personal links returned" not in next(i for i in items if "Links kept" in i)
    for created, shown in ((handed, True), (kept, False)):
        _, body, _ = page(api, "console_pause", f"console/pauses/{created['pause_id']}", signed_in(),
                          route_params={"pause_id": created["pause_id"]})
        assert ("Returned to the caller" in body) is shown


def _principal(name, roles):
    import base64

    claims = [{"typ": "preferred_username", "val": name}, *({"typ": "roles", "val": r} for r in roles)]
    raw = json.dumps({"auth_typ": "aad", "claims": claims, "name_typ": "preferred_username", "role_typ": "roles"})
    return base64.b64encode(raw.encode()).decode()


def test_the_console_shows_what_waits_escaped(api, signed_in):
    waiting = api.created(notification={"title": "<script>alert(1)</script> Load sales?"},
                          approvers=["a@contoso.com", "b@contoso.com"], required_approvals=2,
                          requested_by="req@contoso.com")
    status, body, response = page(api, "console_page", "console", signed_in())
    assert status == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Load sales?" in body and "<script>" not in body
    assert "0 of 2 approved" in body and "req@contoso.com" in body
    assert f"/api/console/pauses/{waiting['pause_id']}" in body
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_an_operator_cancels_a_pause_recorded_as_them(api, signed_in):
    created = api.created()
    path = f"console/pauses/{created['pause_id']}/cancel"
    params = {"pause_id": created["pause_id"]}
    assert post(api, "console_cancel_pause", path, {"reason": ""}, signed_in(), params)[0] == 400
    status, response = post(api, "console_cancel_pause", path, {"reason": "wrong month"}, signed_in(), params)
    assert status == 303 and response.headers["Location"].startswith(f"/api/console/pauses/{created['pause_id']}")
    record = api.record(created["pause_id"])
    assert record["status"] == "cancelled" and record["decided_by"] == OPS and record["reason"] == "wrong month"
    status, body, _ = page(api, "console_pause", f"console/pauses/{created['pause_id']}", signed_in(),
                           route_params=params)
    assert status == 200 and "cancelled by" in body and OPS in body and "wrong month" in body


def test_forms_from_another_site_are_refused(api, signed_in):
    created = api.created()
    params = {"pause_id": created["pause_id"]}
    for headers in (signed_in(same_origin=False),
                    signed_in(same_origin=False, **{"Sec-Fetch-Site": "cross-site"}),
                    signed_in(same_origin=False, Origin="https://evil.example")):
        status, _ = post(api, "console_cancel_pause", f"console/pauses/{created['pause_id']}/cancel",
                         {"reason": "x"}, headers, params)
        assert status == 403
    assert api.record(created["pause_id"])["status"] == "pending"
    # A browser that sends Origin but not Sec-Fetch-Site, from the console's own origin, is fine.
    status, _ = post(api, "console_cancel_pause", f"console/pauses/{created['pause_id']}/cancel", {"reason": "x"},
                     signed_in(same_origin=False, Origin="https://pauses.example.test"), params)
    assert status == 303


def test_non_operators_cannot_act(api, signed_in):
    """Refused as not an operator, even with a form token that is valid for her own session."""
    from shared.web import antiforgery

    created = api.created()
    mallory = signed_in("mallory@contoso.com")
    token = antiforgery.issue("mallory@contoso.com", mallory)
    status, response = post(api, "console_cancel_pause", f"console/pauses/{created['pause_id']}/cancel",
                            {"reason": "x"}, mallory, {"pause_id": created["pause_id"]}, token=token)
    assert status == 403 and "not an operator" in response.get_body().decode()
    status, response = post(api, "console_place_hold", "console/holds", {"factory_name": "f", "reason": "x"}, mallory,
                            token=token)
    assert status == 403 and "not an operator" in response.get_body().decode()
    assert api.record(created["pause_id"])["status"] == "pending"


def test_an_operators_console_form_without_its_token_is_refused(api, signed_in):
    created = api.created()
    status, response = post(api, "console_cancel_pause", f"console/pauses/{created['pause_id']}/cancel",
                            {"reason": "x"}, signed_in(), {"pause_id": created["pause_id"]}, token=None)
    assert status == 403 and "This page is out of date" in response.get_body().decode()
    assert api.record(created["pause_id"])["status"] == "pending"


def test_holds_from_the_console_hold_and_release_runs_once(api, signed_in, adf):
    status, _ = post(api, "console_place_hold", "console/holds",
                     {"factory_name": TARGET["factory_name"], "reason": "maintenance", "expires_in_hours": "2"},
                     signed_in())
    assert status == 303
    assert post(api, "console_place_hold", "console/holds", {"reason": "no scope"}, signed_in())[0] == 400
    assert post(api, "console_place_hold", "console/holds", {"factory_name": "f", "reason": "x",
                                                             "expires_in_hours": "soon"}, signed_in())[0] == 400
    body = {**TARGET, "run_id": str(uuid.uuid4()), "checkpoint": "after_load",
            "callBackUri": f"{adf.url}/_standin/callbacks/console-run"}
    held = json.loads(api.call("checkpoint", "POST", "checkpoint", body=json.dumps(body).encode(),
                               headers={"Content-Type": "application/json"}).get_body())
    assert held["held"] is True
    _, text, _ = page(api, "console_page", "console", signed_in())
    assert "maintenance" in text and "after_load" in text and f"placed by {OPS}" in text
    [hold_id] = held["hold_ids"]
    status, _ = post(api, "console_release_hold", f"console/holds/{hold_id}/release", {"comment": "done"},
                     signed_in(), {"hold_id": hold_id})
    assert status == 303
    [sent] = [c for c in adf.callbacks if c["callbackId"] == "console-run"]
    assert sent["body"]["Output"]["released_by"] == OPS and sent["body"]["Output"]["comment"] == "done"
    assert post(api, "console_release_hold", f"console/holds/{hold_id}/release", {}, signed_in(),
                {"hold_id": hold_id})[0] == 409


def test_decisions_export_as_csv_for_a_date_range(api, signed_in):
    approved, cancelled, _waiting = api.created(), api.created(), api.created()
    # Sign-in is on: people decide signed in (here as the App Service headers say).
    for action, token, body in (("restart", approved["token"], {"comment": "=HYPERLINK(\"http://evil\")"}),
                                ("cancel", cancelled["token"], {"reason": "not today"})):
        response = api.call(action, "POST", f"{action}/{token}", body=json.dumps(body).encode(),
                            headers={"Content-Type": "application/json", "X-MS-CLIENT-PRINCIPAL-NAME": "dana@contoso.com",
                                     "Authorization": "Bearer token-that-app-service-checked"},
                            route_params={"token": token})
        assert response.status_code == 200, response.get_body()
    today = datetime.now(timezone.utc).date()
    status, text, response = page(api, "console_csv", "console/decisions.csv", signed_in(),
                                  params={"from": today.isoformat(), "to": today.isoformat()})
    assert status == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {row["pause_id"]: row["status"] for row in rows} == {approved["pause_id"]: "restarted",
                                                                 cancelled["pause_id"]: "cancelled"}
    [formula] = [row for row in rows if row["status"] == "restarted"]
    assert formula["words"].startswith("'=")  # a spreadsheet shows it, never runs it
    yesterday = (today - timedelta(days=1)).isoformat()
    _, text, _ = page(api, "console_csv", "console/decisions.csv", signed_in(), params={"from": yesterday,
                                                                                           "to": yesterday})
    assert list(csv.DictReader(io.StringIO(text))) == []
    for params, field in (({"from": "x", "to": yesterday}, "from"), ({"from": today.isoformat(), "to": yesterday},
                                                                      "to")):
        status, text, _ = page(api, "console_csv", "console/decisions.csv", {**signed_in(), "Accept": "*/*"},
                               params=params)
        assert status == 400 and field in text
    assert page(api, "console_csv", "console/decisions.csv", HTML,
                params={"from": yesterday, "to": yesterday})[0] == 401


def test_the_index_links_the_console_and_the_api_description(api):
    status, body, response = page(api, "index", "", HTML)
    assert status == 200 and 'href="/api/console"' in body and 'href="/api/openapi.json"' in body
    assert "/_standin/mail" in body  # locally (ARM is the stand-in), the stand-ins' pages too


def test_odd_console_input_is_a_4xx_naming_the_field(api, signed_in):
    token = form_token(api, signed_in())

    def place_json(body):
        body = {**body, "antiforgery_token": token}
        response = api.call("console_place_hold", "POST", "console/holds", body=json.dumps(body).encode(),
                            headers={**signed_in(), "Content-Type": "application/json", "Accept": "application/json"})
        return response.status_code, json.loads(response.get_body())

    for body, field in (({"factory_name": 5, "reason": "x"}, "factory_name"),
                        ({"factory_name": "f", "reason": "x", "expires_in_hours": 2}, "expires_in_hours"),
                        ({"factory_name": "f", "reason": "x", "expires_in_hours": "0"}, "expires_in_hours")):
        status, problem = place_json(body)
        assert status == 400 and [e["field"] for e in problem["errors"]] == [field], problem
    for day in ("9999-12-31", "1999-01-01"):
        status, text, _ = page(api, "console_csv", "console/decisions.csv", {**signed_in(), "Accept": "*/*"},
                               params={"from": day, "to": day})
        assert status == 400 and "from" in text


def test_cancelling_a_run_that_is_no_longer_held_is_409_not_500(api, signed_in, adf):
    from shared import holds as holds_module

    hold = holds_module.new_hold({"factory_name": TARGET["factory_name"]}, "x", None, OPS)
    body = {**TARGET, "run_id": str(uuid.uuid4()), "checkpoint": "c",
            "callBackUri": f"{adf.url}/_standin/callbacks/console-late"}
    held = json.loads(api.call("checkpoint", "POST", "checkpoint", body=json.dumps(body).encode(),
                               headers={"Content-Type": "application/json"}).get_body())
    from shared import checkpoints

    checkpoints.end(hold.hold_id, holds_module.RELEASED, OPS, None)
    status, response = post(api, "console_cancel_pause", f"console/pauses/{held['pause_id']}/cancel",
                            {"reason": "too late"}, signed_in(), {"pause_id": held["pause_id"]})
    assert status == 409
    assert [c["status"] for c in adf.callbacks if c["callbackId"] == "console-late"] == [200]


def test_the_done_notice_says_only_the_apps_own_words(api, signed_in):
    _, body, _ = page(api, "console_page", "console", signed_in(), params={"done": "your account was deleted"})
    assert "your account was deleted" not in body and "Done:" not in body
    _, body, _ = page(api, "console_page", "console", signed_in(), params={"done": "hold-placed"})
    assert "Done: the hold was placed." in body


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
HOSTILE_WORDS = ["ok;=1+1;", 'x,=HYPERLINK("http://evil")', "a\t@SUM(1)", "b|+1", "c, -2", "d;\t=1", "e\n=1",
                 "f,\t ,@x", "@start", "+1;ok",
                 "j\x85@1", "k\u2028=1", "l\u2029=1"]  # (\v, \f, \x1c-\x1e are refused as input already)


def test_the_csv_export_runs_no_formula_whatever_separator_a_spreadsheet_splits_on(api, signed_in):
    # Spreadsheets in many locales split a CSV line on ";" (or a tab, or "|") rather than ",", so a cell
    # that is safe as one cell can hold a formula after a separator.
    decided = []
    for i, words in enumerate(HOSTILE_WORDS):
        created = api.created()
        action, field = ("restart", "comment") if i % 2 else ("cancel", "reason")
        response = api.call(action, "POST", f"{action}/{created['token']}", body=json.dumps({field: words}).encode(),
                            headers={"Content-Type": "application/json", "X-MS-CLIENT-PRINCIPAL-NAME": "dana@contoso.com",
                                     "Authorization": "Bearer token-that-app-service-checked"},
                            route_params={"token": created["token"]})
        assert response.status_code == 200, response.get_body()
        decided.append(created["pause_id"])
    today = datetime.now(timezone.utc).date().isoformat()
    status, text, _ = page(api, "console_csv", "console/decisions.csv", signed_in(), params={"from": today, "to": today})
    assert status == 200
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == len(HOSTILE_WORDS) + 1
    for row in rows:
        for cell in row:
            for separator in (",", ";", "\t", "|", None):  # None: every line break str.splitlines() knows
                for part in (cell.splitlines() if separator is None else cell.split(separator)):
                    assert not part.lstrip(" ").startswith(FORMULA_STARTS), (cell, separator, part)
    # What is safe stays readable: times, ids, statuses, names are not prefixed.
    records = list(csv.DictReader(io.StringIO(text)))
    assert sorted(row["pause_id"] for row in records) == sorted(decided)
    for row in records:
        assert row["status"] in ("restarted", "cancelled") and row["decided_by"] == "dana@contoso.com"
        assert datetime.fromisoformat(row["decided_at"]) and datetime.fromisoformat(row["created_at"])
        assert row["pipeline_name"] == TARGET["pipeline_name"] and row["subscription_id"] == TARGET["subscription_id"]
    assert {row["words"] for row in records} >= {"ok;'=1+1;", "x,'=HYPERLINK(\"http://evil\")", "a\t'@SUM(1)"}


def test_a_look_alike_of_an_operator_is_not_let_in(api, signed_in, configure):
    from shared.web import antiforgery

    configure(OPERATORS="kate@contoso.com")
    assert page(api, "console_page", "console", signed_in("Kate@Contoso.com"))[0] == 200
    status, body, _ = page(api, "console_page", "console", signed_in("\u212aate@contoso.com"))  # Kelvin sign
    assert status == 403 and "could pass for someone else" in body
    created = api.created()
    look_alike = signed_in("\u212aate@contoso.com")
    token = antiforgery.issue("\u212aate@contoso.com", look_alike)  # valid for the session: not what refuses it
    status, response = post(api, "console_cancel_pause", f"console/pauses/{created['pause_id']}/cancel",
                            {"reason": "x"}, look_alike, {"pause_id": created["pause_id"]}, token=token)
    assert status == 403 and "could pass for someone else" in response.get_body().decode()
    assert api.record(created["pause_id"])["status"] == "pending"


def test_a_pauses_page_lists_every_message_sent_about_it(api, signed_in, configure):
    from local_dev.chat_standins import ChatStandins

    with ChatStandins() as chat:
        configure(CHANNEL_ALLOWED_HOSTS="127.0.0.1", CHANNEL_OPS=f"slack:{chat.url('slack', 'ops')}")
        created = api.created(notify={"channels": ["ops"]}, notification={"title": "<b>Told</b>"})
    _, body, _ = page(api, "console_pause", f"console/pauses/{created['pause_id']}", signed_in(),
                      route_params={"pause_id": created["pause_id"]})
    messages = body.split("<h2>Messages</h2>")[1].split("</ol>")[0]
    assert "request to channel ops: sent" in messages and "<b>" not in body


def test_the_pause_page_shows_the_values_each_approver_gave(api, signed_in):
    created = api.created(form=[{"name": "size", "type": "integer"}, {"name": "regions", "type": "multi_choice",
                                                                    "choices": ["emea", "apac"]}])
    body = json.dumps({"input": {"size": 250, "regions": ["apac"]}}).encode()
    program = {**signed_in(), "Content-Type": "application/json", "Accept": "application/json",
               "Authorization": "Bearer token-that-app-service-checked"}  # App Service checked it
    approved = api.call("restart", "POST", f"restart/{created['token']}", body=body,
                        route_params={"token": created["token"]}, headers=program)
    assert approved.status_code == 200, approved.get_body()
    _, body, _ = page(api, "console_pause", f"console/pauses/{created['pause_id']}", signed_in(),
                      route_params={"pause_id": created["pause_id"]})
    assert 'values: size <span class="id">250</span> · regions <span class="id">[&#34;apac&#34;]</span>' in body \
        or 'values: size <span class="id">250</span> · regions <span class="id">["apac"]</span>' in body


def test_an_operator_edits_the_catalog_recorded_as_them(api, signed_in, smtp):
    entry = {"title": "<b>Backfill</b> sales", "target": TARGET, "approvers": ["a@contoso.com"],
             "requesters": ["*@contoso.com"]}
    status, response = page(api, "console_catalog", "console/catalog", signed_in(), params={"entry": "backfill"})[::2]
    assert status == 303 and response.headers["Location"] == "/api/console/catalog/backfill"
    route = {"entry": "backfill"}
    status, body, _ = page(api, "console_entry", "console/catalog/backfill", signed_in(), route_params=route)
    assert status == 200 and "New catalog entry" in body and "Remove this entry" not in body
    status, refused = post(api, "console_entry", "console/catalog/backfill", {"entry_json": '{"title": '},
                           signed_in(), route)
    body = refused.get_body().decode()
    assert status == 400 and "Not saved" in body and "entry_json" in body and '{&#34;title&#34;: ' in body
    bad = {**entry, "requesters": ["not an address"]}
    status, refused = post(api, "console_entry", "console/catalog/backfill", {"entry_json": json.dumps(bad)},
                           signed_in(), route)
    assert status == 400 and "requesters[0]" in refused.get_body().decode()
    assert api.call("get_catalog_entry", "GET", "catalog/backfill", route_params=route).status_code == 404
    status, saved = post(api, "console_entry", "console/catalog/backfill", {"entry_json": json.dumps(entry)},
                         signed_in(), route)
    assert status == 303 and saved.headers["Location"] == "/api/console/catalog/backfill?done=entry-saved"
    stored = json.loads(api.call("get_catalog_entry", "GET", "catalog/backfill", route_params=route).get_body())
    assert stored["updated_by"] == OPS and stored["title"] == "<b>Backfill</b> sales"
    _, listing, _ = page(api, "console_catalog", "console/catalog", signed_in())
    assert "&lt;b&gt;Backfill&lt;/b&gt; sales" in listing and "<b>Backfill" not in listing
    assert page(api, "console_catalog", "console/catalog", signed_in("someone@contoso.com"))[0] == 403
    status, _ = post(api, "console_delete_entry", "console/catalog/backfill/delete", {}, signed_in(), route)
    assert status == 303
    assert api.call("get_catalog_entry", "GET", "catalog/backfill", route_params=route).status_code == 404


def _due_work(body: str) -> str:
    """The console's due-work section, its tags dropped."""
    import re

    section = body[body.index('id="due-work"'):]
    return " ".join(re.sub(r"<[^>]+>", " ", section[:section.index("</section>")]).split())


def test_the_console_counts_the_due_work_waiting_on_each_queue(api, signed_in, configure, azurite):
    """How much due work waits: on the queue, back for ARM's write limit, and set aside by the host in either poison
    queue (a queue not made yet holds nothing); the poison queues' note shows only when something is there."""
    from azure.storage.queue import QueueServiceClient

    from shared.storage.due_queue import Backlog, backlog

    name = f"due-{uuid.uuid4().hex[:12]}"
    configure(DUE_WORK_QUEUE=name)
    queues = (f"{name}-poison", f"{name}-paced-poison")
    assert backlog() == Backlog(0, 0, 0, queues)
    _, body, _ = page(api, "console_page", "console", signed_in())
    assert f"On the queue {name} 0 Back for Azure Resource Manager's write limit 0 Set aside by the Functions " \
           "host 0" in _due_work(body)
    assert "poison" not in _due_work(body)
    with QueueServiceClient.from_connection_string(azurite.connection_string) as service:
        for queue, count in ((name, 3), (f"{name}-paced", 2), (f"{name}-poison", 1), (f"{name}-paced-poison", 3)):
            client = service.get_queue_client(queue)
            client.create_queue()
            for n in range(count):
                client.send_message(f"message {n}", visibility_timeout=60 if n else None)
    assert backlog() == Backlog(3, 2, 4, queues)  # invisible messages count: they wait too
    _, body, _ = page(api, "console_page", "console", signed_in())
    shown = _due_work(body)
    assert f"On the queue {name} 3 Back for Azure Resource Manager's write limit 2 Set aside by the Functions " \
           "host 4" in shown
    assert f"{name}-poison" in shown and f"{name}-paced-poison" in shown


def test_due_work_storage_cannot_count_is_said_and_the_console_still_shows(api, signed_in, configure, azurite):
    """Queue storage not answering: the counts say so, and the rest of the console is there (no 500)."""
    from local_dev.ports import free_port

    dead = azurite.connection_string.replace(f":{azurite.queue_port}/", f":{free_port('127.0.0.1')}/")
    configure(AzureWebJobsStorage=dead, STORAGE_RETRY_TOTAL="0", DUE_WORK_QUEUE=f"due-{uuid.uuid4().hex[:12]}")
    waiting = api.created()
    status, body, _ = page(api, "console_page", "console", signed_in())
    assert status == 200 and f"/api/console/pauses/{waiting['pause_id']}" in body
    assert _due_work(body).count("unknown (storage did not answer)") == 3


def test_without_a_due_work_queue_the_console_says_the_timer_settles_it(api, signed_in, configure):
    configure(DUE_WORK_QUEUE="")
    _, body, _ = page(api, "console_page", "console", signed_in())
    assert "settled by the timer itself (DUE_WORK_QUEUE is empty)" in _due_work(body)
