"""Requesting a run from the catalog (shared.catalog_requests, request_pages): signed-in requesters only,
the entry's form, a request that is an ordinary pause (requested_by from the sign-in), its approval by
someone else, forged posts refused, and at most five open requests per requester and entry, also when
two arrive at once."""

import json
import re
import threading
from urllib.parse import urlencode

import pytest

from local_dev.adf_standin import DEFAULT_FACTORY
from shared import catalog_requests
from tests.support import inbox, link, wait_until

pytestmark = pytest.mark.integration

SUBSCRIPTION, RESOURCE_GROUP, FACTORY = DEFAULT_FACTORY
PUBLISH = {"subscription_id": SUBSCRIPTION, "resource_group": RESOURCE_GROUP, "factory_name": FACTORY,
           "pipeline_name": "PausableLoad_Publish"}
CAROL, ALICE, BOB = "carol@contoso.com", "alice@contoso.com", "bob@contoso.com"
ENTRY = {"title": "Re-publish the sales cube", "description": "Publishes one cut-off day again.", "target": PUBLISH,
         "form": "pipeline", "approvers": [ALICE, BOB], "requesters": [CAROL, "*@fabrikam.com"]}
VALUES = {"form.CutoffDate": "2026-12-01", "form.BatchSize": "250", "form.FullReload": "true",
          "form.Regions": '["emea", "apac"]'}


@pytest.fixture
def signed_in(configure, mail):
    """Sign-in on, an SMTP server (the approvers are emailed), and what a browser signed in as `name` sends."""
    configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED="True", OPERATORS="ops@contoso.com")

    def headers(name=CAROL, same_origin=True, **extra):
        found = {"Accept": "text/html", "X-MS-CLIENT-PRINCIPAL-NAME": name,
                 "Cookie": f"AppServiceAuthSession=session-of-{name}", **extra}
        if same_origin:
            found["Sec-Fetch-Site"] = "same-origin"
        return found
    return headers


class Requests:
    """The catalog's API and the request pages, called the way the host calls them."""

    def __init__(self, api, signed_in):
        self.api, self.signed_in = api, signed_in

    def put(self, entry="publish", **fields):
        body = json.dumps({**ENTRY, **fields}).encode()
        response = self.api.call("put_catalog_entry", "PUT", f"catalog/{entry}", body=body,
                                 headers={"Content-Type": "application/json"}, route_params={"entry": entry})
        assert response.status_code in (200, 201), response.get_body()

    def page(self, who=CAROL, entry="publish"):
        response = self.api.call("request_entry", "GET", f"request/{entry}", headers=self.signed_in(who),
                                 route_params={"entry": entry})
        return response.status_code, response.get_body().decode()

    def token(self, who=CAROL, entry="publish"):
        status, body = self.page(who, entry)
        assert status == 200, body
        return re.search(r'name="antiforgery_token" value="([^"]+)"', body).group(1)

    def post(self, values=None, who=CAROL, entry="publish", token=True, **headers):
        fields = dict(VALUES if values is None else values)
        if token is True:
            token = self.token(who, entry)
        if token:
            fields["antiforgery_token"] = token
        return self.api.call("request_entry", "POST", f"request/{entry}", body=urlencode(fields, doseq=True).encode(),
                             headers={**self.signed_in(who), "Content-Type": "application/x-www-form-urlencoded",
                                      **headers}, route_params={"entry": entry})

    def made(self, values=None, who=CAROL, entry="publish") -> str:
        """Request a run; the pause id the page went on to."""
        response = self.post(values, who, entry)
        assert response.status_code == 303, response.get_body()
        return re.fullmatch(r"/api/requests/([0-9a-f]{32})", response.headers["Location"]).group(1)

    def link_page(self, token, who=ALICE):
        """An approver's link opened in their signed-in browser."""
        response = self.api.call("restart", "GET", f"restart/{token}", headers=self.signed_in(who),
                                 route_params={"token": token})
        return response.get_body().decode()

    def approve(self, token, who=ALICE, action="restart"):
        """A signed-in approver deciding through a link as a program does (a bearer token: no cookie)."""
        headers = {"X-MS-CLIENT-PRINCIPAL-NAME": who, "Authorization": "Bearer checked-by-app-service",
                   "Accept": "application/json", "Content-Type": "application/json"}
        return self.api.call(action, "POST", f"{action}/{token}", body=b"{}", headers=headers,
                             route_params={"token": token})

    def status(self, pause_id, who=CAROL):
        response = self.api.call("request_status", "GET", f"requests/{pause_id}", headers=self.signed_in(who),
                                 route_params={"pause_id": pause_id})
        return response.status_code, response.get_body().decode()


@pytest.fixture
def requests(api, signed_in):
    found = Requests(api, signed_in)
    found.put()
    return found


def test_a_request_is_approved_by_someone_else_and_runs_with_the_requesters_typed_values(api, adf, mail, requests):
    status, body = requests.page()
    assert status == 200 and "Re-publish the sales cube" in body and 'name="form.CutoffDate"' in body
    assert 'name="form.ApiKey"' not in body and 'name="form.pause_id"' not in body  # secure and the app's own
    pause_id = requests.made()
    record = api.record(pause_id)
    assert record["status"] == "pending" and record["requested_by"] == CAROL
    assert record["source"] == {"catalog_entry": "publish", "catalog_title": "Re-publish the sales cube"}
    assert record["requested_from"] == {"entry": "publish", "title": "Re-publish the sales cube"}
    assert record["parameters"] == {"CutoffDate": "2026-12-01", "BatchSize": 250, "FullReload": True,
                                    "Regions": ["emea", "apac"]}
    status, body = requests.status(pause_id)
    assert status == 200 and "waiting for approval" in body and "0 of 1 approved" in body
    assert inbox(mail, CAROL) == []  # the requester is not asked to approve
    wait_until(lambda: inbox(mail, ALICE), what="the approver's email")
    token = link(inbox(mail, ALICE)[0])
    page = requests.link_page(token)
    assert "Requested by" in page and CAROL in page and "BatchSize" in page and "250" in page
    assert 'name="form.' not in page  # the requester's values, read-only to the approver
    assert requests.approve(token).status_code == 200
    [run] = adf.runs
    assert run["parametersAsSent"] == {"CutoffDate": "2026-12-01", "BatchSize": 250, "FullReload": True,
                                       "Regions": ["emea", "apac"], "pause_id": pause_id}
    record = api.record(pause_id)
    assert (record["status"], record["requested_by"], record["decided_by"]) == ("restarted", CAROL, ALICE)
    status, body = requests.status(pause_id)
    assert "the run was started" in body and ALICE in body and record["run_id"] in body


def test_who_may_request_is_the_entrys_requesters_and_nobody_learns_what_else_exists(api, requests, configure):
    requests.put("secret-export", title="Secret export", requesters=["dave@contoso.com"], form=None)
    listed = api.call("request_list", "GET", "request", headers=requests.signed_in("erin@fabrikam.com"))
    body = listed.get_body().decode()
    assert listed.status_code == 200 and "Re-publish the sales cube" in body and "Secret export" not in body
    status, refused = requests.page("mallory@contoso.com")
    status_missing, missing = requests.page("mallory@contoso.com", entry="no-such-entry")
    assert status == status_missing == 403
    assert refused.replace("publish", "") == missing.replace("no-such-entry", "")  # the same answer for both
    assert "Not available to you" in refused and "Traceback" not in refused
    response = requests.post(who="mallory@contoso.com", token=requests.token(CAROL))
    assert response.status_code == 403 and api.json(api.list())["items"] == []
    unsigned = api.call("request_list", "GET", "request", headers={"Accept": "text/html"})
    assert unsigned.status_code == 401 and "/.auth/login/aad" in unsigned.get_body().decode()
    configure(APPROVER_SIGN_IN=None)  # without sign-in nobody can say who asks
    assert api.call("request_list", "GET", "request", headers=requests.signed_in()).status_code == 403


def test_the_requester_cannot_approve_their_own_request_unless_the_entry_allows_it(api, mail, requests, signed_in):
    requests.put("self", approvers=[CAROL, ALICE])
    created = catalog_requests.make_request("self", CAROL, "http://localhost:7071",
                                            posted={k: [v] for k, v in VALUES.items()})
    refused = requests.approve(created["token"], CAROL)
    assert refused.status_code == 403 and api.json(refused)["reason"] == "requester"
    assert api.record(created["pause_id"])["status"] == "pending"
    assert "approver_links" not in created
    wait_until(lambda: inbox(mail, ALICE), what="the other approver's email")
    assert inbox(mail, CAROL) == []  # no personal link for the requester
    requests.put("self", approvers=[CAROL, ALICE], allow_self_approval=True)
    pause_id = requests.made(entry="self")
    wait_until(lambda: inbox(mail, CAROL), what="the requester's own link, allowed")
    assert api.json(requests.approve(link(inbox(mail, CAROL)[0]), CAROL))["status"] == "restarted"
    assert api.record(pause_id)["decided_by"] == CAROL
    requests.put("alone", approvers=[CAROL])  # only the requester could approve: refused before anything is stored
    response = requests.post(entry="alone", token=requests.token())  # its page offers no form
    assert response.status_code == 403 and "could never be approved" in requests.page(entry="alone")[1]


@pytest.mark.parametrize("headers, heading", [
    ({"Sec-Fetch-Site": "cross-site"}, "Not sent from this app"),
    ({"Sec-Fetch-Site": "", "Origin": "https://evil.example"}, "Not sent from this app"),
    ({}, "out of date"),  # the page's token left out
])
def test_a_forged_cross_site_post_is_refused_and_nothing_is_requested(api, requests, headers, heading):
    response = requests.post(token=None if heading == "out of date" else True, **headers)
    assert response.status_code == 403 and heading in response.get_body().decode()
    assert api.json(api.list())["items"] == []


def test_the_requester_comes_from_the_sign_in_never_from_the_form(api, requests):
    response = requests.post({**VALUES, "requested_by": "alice@contoso.com"})
    assert response.status_code == 400 and "requested_by" in response.get_body().decode()
    bearer = {**requests.signed_in(), "Accept": "application/json", "Content-Type": "application/json",
              "Authorization": "Bearer token-checked-by-app-service"}
    bearer.pop("Sec-Fetch-Site")
    body = json.dumps({"input": {"CutoffDate": "2026-12-02"}, "requested_by": ALICE}).encode()
    call = lambda raw: api.call("request_entry", "POST", "request/publish", body=raw, headers=bearer,  # noqa: E731
                                route_params={"entry": "publish"})
    refused = call(body)
    assert refused.status_code == 400 and [e["field"] for e in api.json(refused)["errors"]] == ["requested_by"]
    invalid = call(json.dumps({"input": {"BatchSize": "many"}}).encode())
    assert invalid.status_code == 400
    assert {e["field"] for e in api.json(invalid)["errors"]} == {"input.CutoffDate", "input.BatchSize"}
    made = call(json.dumps({"input": {"CutoffDate": "2026-12-02"}}).encode())
    assert made.status_code == 201, made.get_body()
    answer = api.json(made)
    assert "token" not in answer and answer["request_url"].endswith(f"/api/requests/{answer['pause_id']}")
    assert api.record(answer["pause_id"])["requested_by"] == CAROL


def test_an_invalid_value_shows_the_form_again_with_what_was_typed(api, requests):
    response = requests.post({**VALUES, "form.BatchSize": "lots", "form.CutoffDate": "<b>x</b>"})
    body = response.get_body().decode()
    assert response.status_code == 400 and "nothing was requested" in body
    assert 'value="lots"' in body and "&lt;b&gt;x&lt;/b&gt;" in body and "<b>x</b>" not in body
    assert api.json(api.list())["items"] == []


def test_at_most_five_open_requests_per_requester_and_entry(api, requests):
    from shared import console

    made = [requests.made() for _ in range(5)]
    refused = requests.post()
    body = refused.get_body().decode()
    assert refused.status_code == 429 and "5 open requests" in body and "nothing was requested" in body
    assert len(api.json(api.list())["items"]) == 5
    requests.made(who="erin@fabrikam.com")  # another requester has slots of their own
    console.cancel_pause(made[0], "not needed", "ops@contoso.com", None, None)
    requests.made()  # a request decided gives its slot up
    assert requests.post().status_code == 429


def test_two_requests_at_once_at_the_limit_one_is_refused(api, requests):
    for _ in range(4):
        requests.made()
    token = requests.token()
    barrier, answers = threading.Barrier(2), []

    def ask():
        barrier.wait()
        answers.append(requests.post(token=token).status_code)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [303, 429]
    assert len(api.json(api.list(status="pending"))["items"]) == 5


def test_an_entry_deleted_while_a_request_is_open_the_request_still_completes(api, adf, mail, requests):
    pause_id = requests.made()
    deleted = api.call("delete_catalog_entry", "DELETE", "catalog/publish", route_params={"entry": "publish"})
    assert deleted.status_code == 204
    wait_until(lambda: inbox(mail, ALICE), what="the approver's email")
    assert api.json(requests.approve(link(inbox(mail, ALICE)[0])))["status"] == "restarted"
    assert [run["parametersAsSent"]["pause_id"] for run in adf.runs] == [pause_id]
    status, body = requests.status(pause_id)
    assert status == 200 and "the run was started" in body
    assert requests.page()[0] == 403  # the entry is gone: nobody can request it any more


def test_a_request_page_is_seen_by_its_requester_approvers_and_operators_only(requests):
    pause_id = requests.made()
    assert requests.status(pause_id, CAROL)[0] == 200
    assert requests.status(pause_id, BOB)[0] == 200
    assert requests.status(pause_id, "ops@contoso.com")[0] == 200
    status, body = requests.status(pause_id, "mallory@contoso.com")
    assert status == 403 and "Re-publish" not in body
    assert requests.status("0" * 32, CAROL)[0] == 403


def test_a_request_is_a_pause_its_quorum_and_start_window_apply_unchanged(api, adf, mail, requests):
    from datetime import datetime, timedelta, timezone

    opens = datetime.now(timezone.utc) + timedelta(hours=3)
    window = {"time_zone": "UTC", "from": opens.strftime("%H:00"), "to": (opens + timedelta(hours=1)).strftime("%H:00")}
    requests.put("windowed", required_approvals=2, start_window=window, expires_in=7200)
    pause_id = requests.made(entry="windowed")
    record = api.record(pause_id)
    assert (record["required_approvals"], record["start_window"]) == (2, window)
    wait_until(lambda: inbox(mail, ALICE) and inbox(mail, BOB), what="both approvers' emails")
    assert api.json(requests.approve(link(inbox(mail, ALICE)[0])))["status"] == "pending"
    assert "1 of 2 approved" in requests.status(pause_id)[1]
    assert api.json(requests.approve(link(inbox(mail, BOB)[0]), BOB))["status"] == "scheduled"
    status, body = requests.status(pause_id)
    assert "approved; starts at the window" in body and adf.runs == []


def test_the_requester_sees_the_request_not_where_the_approvers_were(api, mail, requests):
    pause_id = requests.made()
    wait_until(lambda: inbox(mail, ALICE), what="the approver's email")
    approved = requests.api.call("restart", "POST", f"restart/{link(inbox(mail, ALICE)[0])}", body=b"{}",
                                 headers={"X-MS-CLIENT-PRINCIPAL-NAME": ALICE, "Authorization": "Bearer b",
                                          "Content-Type": "application/json", "Client-IP": "203.0.113.7:50000",
                                          "User-Agent": "Alice's browser"},
                                 route_params={"token": link(inbox(mail, ALICE)[0])})
    assert approved.status_code == 200

    def as_json(who):
        headers = {**requests.signed_in(who), "Accept": "application/json"}
        return api.json(api.call("request_status", "GET", f"requests/{pause_id}", headers=headers,
                                 route_params={"pause_id": pause_id}))
    seen = as_json(CAROL)
    assert seen["decided_by"] == ALICE and seen["approvals"][0]["approver"] == ALICE
    assert "203.0.113.7" not in json.dumps(seen) and "Alice's browser" not in json.dumps(seen)
    assert "notifications" not in seen and "client_ip" not in seen
    assert as_json("ops@contoso.com")["approvals"][0]["client_ip"] == "203.0.113.7"  # operators see the record


def test_a_pause_that_only_says_it_came_from_the_catalog_is_not_a_request(api, requests):
    made = api.created(requested_by=CAROL, approvers=[ALICE], return_approver_links=True,
                       source={"catalog_entry": "publish", "catalog_title": "Re-publish the sales cube"})
    assert requests.status(made["pause_id"], CAROL)[0] == 403  # the app marks its requests itself
