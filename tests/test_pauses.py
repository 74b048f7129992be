"""Restart mode end to end: real Azurite, the ADF stand-in through the real SDK."""

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest

from tests.support import create_pipeline

pytestmark = pytest.mark.integration

# Storage on a closed port (discard): every storage call fails to connect.
CLOSED_STORAGE = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=AAAA;"
                  "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;")


def test_pause_returns_201_with_token_and_links_built_from_the_request(api):
    response = api.pause(notification={"title": "Load sales?"})
    assert response.status_code == 201
    assert response.mimetype == "application/json"
    created = api.json(response)
    token, pause_id = created["token"], created["pause_id"]
    assert created["status"] == "pending"
    assert created["restart_url"] == f"https://pauses.example.test/api/restart/{token}"
    assert created["cancel_url"] == f"https://pauses.example.test/api/cancel/{token}"
    assert created["status_url"] == f"https://pauses.example.test/api/pauses/{pause_id}"
    assert response.headers["Location"] == created["status_url"]
    expires = datetime.fromisoformat(created["expires_at"].replace("Z", "+00:00"))
    assert timedelta(hours=23, minutes=59) < expires - datetime.now(timezone.utc) <= timedelta(hours=24)


def test_links_use_public_base_url_when_set(api, configure):
    configure(PUBLIC_BASE_URL="https://approve.contoso.example/")
    created = api.created()
    assert created["restart_url"].startswith("https://approve.contoso.example/api/restart/")


def test_status_shows_the_record_without_any_secret(api):
    created = api.created(parameters={"day": "2026-11-25", "n": 3}, source={"run_id": "abc"},
                          notification={"title": "t", "message": "m"}, expires_in=3600, on_timeout="restart")
    record = api.record(created["pause_id"])
    assert record["status"] == "pending" and record["mode"] == "restart"
    assert record["parameters"] == {"day": "2026-11-25", "n": 3}
    assert record["source"] == {"run_id": "abc"}
    assert record["on_timeout"] == "restart"
    assert record["expires_at"] == created["expires_at"]
    assert created["token"] not in json.dumps(record) and "secret_hash" not in record


def test_256_kib_of_data_round_trips_byte_for_byte(api):
    # Mixed content: multi-byte characters, escapes, numbers that must keep their form.
    item = {"name": "Zürich ✓ 日本", "quote": "\"\\\n\t", "n": 12345678901234567890, "f": 0.1, "neg": -1e-7}
    data = {"rows": [item] * 1, "blob": ""}
    sent = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    data["blob"] = "x" * (256 * 1024 - len(sent.encode()))
    sent = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    assert len(sent.encode()) == 256 * 1024
    created = api.created(data=data)
    record = api.record(created["pause_id"])
    assert json.dumps(record["data"], ensure_ascii=False, separators=(",", ":")) == sent


def test_data_over_256_kib_is_413_and_nothing_is_stored(api, table):
    response = api.pause(data="x" * (256 * 1024))
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert api.json(response)["errors"][0]["field"] == "data"
    assert list(table.list_entities()) == [] if _table_exists(table) else True


def _table_exists(table):
    from azure.core.exceptions import ResourceNotFoundError

    try:
        list(table.list_entities())
        return True
    except ResourceNotFoundError:
        return False


def test_get_on_links_shows_pages_and_never_changes_anything(api, adf):
    created = api.created(notification={"title": "Load sales for November?"})
    for _ in range(3):
        for action in ("restart", "cancel"):
            page = api.page(action, created["token"])
            assert page.status_code == 200
            assert page.mimetype == "text/html"
            assert "Load sales for November?" in page.get_body().decode()
    assert api.record(created["pause_id"])["status"] == "pending"
    assert adf.runs == []


def test_approve_starts_exactly_one_run_with_parameters_and_pause_id(api, adf):
    created = api.created(parameters={"day": "2026-11-25"})
    response = api.decide("restart", created["token"], json_body={"comment": "ok", "input": {"rows": 10}})
    assert response.status_code == 200
    result = api.json(response)
    assert result["status"] == "restarted"
    [run] = adf.runs
    assert result["run_id"] == run["runId"]
    assert run["pipelineName"] == "Load_Sales" and run["factory"] == "adf-test"
    assert run["parameters"] == {"day": "2026-11-25", "pause_id": created["pause_id"]}
    record = api.record(created["pause_id"])
    assert record["status"] == "restarted" and record["run_id"] == run["runId"]
    assert record["comment"] == "ok" and record["input"] == {"rows": 10} and record["decided_at"]


def test_approve_from_the_page_form_answers_with_the_success_page(api, adf):
    created = api.created(notification={"success_message": "Loading now."})
    response = api.decide("restart", created["token"], form={"comment": "fine by me"}, html=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "Loading now." in response.get_body().decode()
    assert api.record(created["pause_id"])["comment"] == "fine by me"
    assert len(adf.runs) == 1


def test_restart_returns_409_saying_what_and_when_once_restarted(api, adf):
    created = api.created()
    first = api.json(api.decide("restart", created["token"]))
    again = api.decide("restart", created["token"])
    assert again.status_code == 409
    problem = api.json(again)
    assert again.mimetype == "application/problem+json"
    assert problem["current_status"] == "restarted" and problem["run_id"] == first["run_id"]
    assert problem["decided_at"] and "approved" in problem["detail"]
    page = api.page("restart", created["token"])
    assert page.status_code == 409 and "Already decided" in page.get_body().decode()
    assert len(adf.runs) == 1


def test_many_simultaneous_approvals_start_one_run(api, adf):
    created = api.created()
    barrier = threading.Barrier(16)
    statuses = []

    def click():
        barrier.wait()
        statuses.append(api.decide("restart", created["token"]).status_code)

    threads = [threading.Thread(target=click) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [409] * 15
    assert len(adf.runs) == 1
    assert api.record(created["pause_id"])["run_id"] == adf.runs[0]["runId"]


def test_adf_failure_answers_502_and_leaves_the_link_usable(api, adf, configure):
    configure(RUN_LOOKUP_RETRY_SECONDS="0.1")  # the second look for a run (none here) comes sooner
    created = api.created()
    adf.inject("createRun", "before", status=500)  # no run recorded: the lookup finds none
    failed = api.decide("restart", created["token"])
    assert failed.status_code == 502
    assert "link still works" in api.json(failed)["detail"]
    record = api.record(created["pause_id"])
    assert record["status"] == "pending" and "InternalServerError" in record["last_error"]
    assert adf.runs == []
    retried = api.decide("restart", created["token"])
    assert retried.status_code == 200
    assert len(adf.runs) == 1


def test_adf_rejecting_the_request_is_also_502_with_a_usable_link(api, adf):
    created = api.created()
    adf.inject("createRun", "before", status=404, code="NotFound", message="The document could not be retrieved because it does not exist.")
    response = api.decide("restart", created["token"], html=True)
    assert response.status_code == 502
    assert "Nothing was started" in response.get_body().decode()
    assert api.record(created["pause_id"])["status"] == "pending"


def test_cancel_with_reason_then_restart_is_409(api, adf):
    created = api.created()
    cancelled = api.decide("cancel", created["token"], json_body={"reason": "numbers look off"})
    assert cancelled.status_code == 200 and api.json(cancelled)["status"] == "cancelled"
    record = api.record(created["pause_id"])
    assert record["status"] == "cancelled" and record["reason"] == "numbers look off"
    assert api.decide("restart", created["token"]).status_code == 409
    assert api.decide("cancel", created["token"]).status_code == 409
    assert adf.runs == []


@pytest.mark.parametrize("forwarded, ip", [("203.0.113.7:51234", "203.0.113.7"),
                                            ("[2001:db8::1]:443", "2001:db8::1"),
                                            # The client's own X-Forwarded-For comes first; the front end appends.
                                            ("198.51.100.66, 203.0.113.7", "203.0.113.7"),
                                            ("not-an-ip", None)])
def test_decisions_record_when_and_from_where_but_no_identity_the_client_chose(api, forwarded, ip):
    created = api.created()
    api.call("cancel", "POST", f"cancel/{created['token']}", body=b"reason=later",
             headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "Mail client",
                      "X-MS-CLIENT-PRINCIPAL-NAME": "ana@contoso.example", "X-Forwarded-For": forwarded},
             route_params={"token": created["token"]})
    record = api.record(created["pause_id"])
    assert record["decided_by"] is None  # sign-in is off: principal headers are ignored, never recorded
    assert record["client_ip"] == ip and record["user_agent"] == "Mail client"
    assert record["reason"] == "later" and record["decided_at"]


def test_restart_makes_only_point_reads_and_writes_no_table_scan(api, adf, caplog):
    import logging

    for _ in range(5):
        api.created()
    created = api.created()
    caplog.set_level(logging.INFO, logger="azure.core.pipeline.policies.http_logging_policy")
    for action in ("restart", "cancel"):
        api.page(action, created["token"])
    assert api.decide("restart", created["token"]).status_code == 200
    lines = [r.getMessage() for r in caplog.records if "Request URL" in r.getMessage()]
    storage = [line for line in lines if "/devstoreaccount1/" in line]
    assert storage, "no storage requests were seen"
    key = f"(PartitionKey='{created['pause_id']}',RowKey='pause')"
    # Every storage request names the one entity (or is the status index's one batch); none is a query.
    assert len(storage) >= 6  # 2 page reads, then read, claim, record, the index's batch
    assert all((key in line or "/$batch'" in line) and "$filter" not in line for line in storage), storage
    assert sum("/$batch'" in line for line in storage) == 1


def _expire(table, pause_id):
    entity = table.get_entity(pause_id, "pause")
    entity["expires_at"] = datetime.now(timezone.utc) - timedelta(seconds=1)
    table.update_entity(entity)


def test_expired_link_is_410_on_get_and_post_before_any_timer(api, adf, table):
    created = api.created(expires_in=60)
    _expire(table, created["pause_id"])
    assert api.page("restart", created["token"]).status_code == 410
    response = api.decide("restart", created["token"])
    assert response.status_code == 410 and api.json(response)["code"] == "expired"
    assert api.decide("cancel", created["token"]).status_code == 410
    assert api.record(created["pause_id"])["status"] == "pending"
    assert adf.runs == []


def test_unknown_and_forged_tokens_are_404(api, adf):
    created = api.created()
    pause_id, secret = created["token"][:32], created["token"][32:]
    forged = pause_id + ("A" if secret[0] != "A" else "B") + secret[1:]
    unknown = "f" * 32 + secret
    for token in (forged, unknown):
        assert api.decide("restart", token).status_code == 404
        assert api.page("restart", token).status_code == 404
    assert api.record(pause_id)["status"] == "pending" and adf.runs == []


@pytest.mark.parametrize("token", ["", "short", "x" * 500, "<script>alert(1)</script>", "..%2F..%2Fetc"])
def test_malformed_tokens_are_404_without_touching_storage(api, configure, token):
    # Storage on a closed port: a storage call would answer 503, not 404.
    configure(AzureWebJobsStorage=CLOSED_STORAGE)
    page = api.page("restart", token)
    assert page.status_code == 404
    assert "<script>alert" not in page.get_body().decode()
    assert api.decide("cancel", token).status_code == 404


def test_storage_down_is_503_and_says_nothing_was_changed(api, configure):
    configure(AzureWebJobsStorage=CLOSED_STORAGE)
    response = api.pause()
    assert response.status_code == 503
    assert api.json(response)["code"] == "storage_unavailable"


def test_the_table_holds_nothing_that_lets_anyone_act(api, table, adf):
    created = [api.created() for _ in range(3)]
    for entity in table.list_entities():
        for value in entity.values():
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            for pause in created:
                assert pause["token"][32:] not in text
            # Whatever is stored, used as a token (or as the secret part of one), opens nothing.
            for candidate in (text, entity["PartitionKey"] + text):
                assert api.decide("restart", candidate).status_code == 404
    assert adf.runs == []


def test_user_supplied_text_is_escaped_on_every_page(api):
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    created = api.created(notification={"title": hostile, "message": hostile, "success_message": hostile})
    for response in (api.page("restart", created["token"]), api.page("cancel", created["token"]),
                     api.decide("restart", created["token"], form={"comment": hostile}, html=True),
                     api.page("restart", created["token"])):
        html = response.get_body().decode()
        assert "<script>alert" not in html and "<img" not in html
        assert "&lt;script&gt;" in html


def test_pages_and_json_carry_security_headers(api):
    created = api.created()
    page = api.page("restart", created["token"])
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    for response, referrer in ((page, "same-origin"), (api.status(created["pause_id"]), "no-referrer")):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Referrer-Policy"] == referrer
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_list_filters_by_status_and_pages_with_a_cursor(api):
    created = [api.created() for _ in range(5)]
    for pause in created[:2]:
        assert api.decide("cancel", pause["token"]).status_code == 200
    seen, params = [], {"status": "pending", "limit": 2}
    while True:
        page = api.json(api.list(**params))
        assert len(page["items"]) <= 2
        seen += [item["pause_id"] for item in page["items"]]
        assert all(item["status"] == "pending" for item in page["items"])
        if not page["cursor"]:
            break
        assert "cursor=" in page["next_url"]
        params["cursor"] = page["cursor"]
    assert sorted(seen) == sorted(p["pause_id"] for p in created[2:])


@pytest.mark.parametrize("params, field", [({"status": "bogus"}, "status"), ({"limit": "0"}, "limit"),
                                           ({"cursor": "!!!"}, "cursor")])
def test_list_rejects_bad_query_parameters_naming_them(api, params, field):
    response = api.list(**params)
    assert response.status_code == 400
    assert api.json(response)["errors"][0]["field"] == field


def test_status_of_unknown_or_malformed_pause_id_is_404(api):
    assert api.status("0" * 32).status_code == 404
    assert api.status("not-an-id").status_code == 404


@pytest.mark.parametrize("body, headers, status, field", [
    (b"{", {"Content-Type": "application/json"}, 400, "(body)"),
    (b"[]", {"Content-Type": "application/json"}, 400, "(body)"),
    (b"{}", {"Content-Type": "text/plain"}, 400, "Content-Type"),
    (b"x" * (600 * 1024), {"Content-Type": "application/json"}, 413, "(body)"),
])
def test_malformed_pause_bodies_are_4xx_problems_naming_the_field(api, body, headers, status, field):
    response = api.call("pause", "POST", "pause", body=body, headers=headers)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert api.json(response)["errors"][0]["field"] == field


def test_factories_outside_allowed_factories_are_403(api, configure, adf):
    create_pipeline(adf, resource_group="rg-other")
    configure(ALLOWED_FACTORIES=f"{api.target['subscription_id']}/rg-data/adf-prod-*, */rg-other/*")
    assert api.pause().status_code == 403
    assert api.pause(factory_name="adf-prod-*").status_code == 400
    assert api.pause(resource_group="rg-other").status_code == 201


@pytest.mark.parametrize("typo, field, code", [({"pipeline_name": "Load_Sale"}, "pipeline_name", "NotFound"),
                                               ({"factory_name": "adf-tset"}, "factory_name", "ResourceNotFound")])
def test_a_typo_in_the_target_is_400_at_pause_naming_the_field(api, adf, table, typo, field, code):
    response = api.pause(**typo)
    assert response.status_code == 400
    [error] = api.json(response)["errors"]
    assert error["field"] == field and error["rule"] == "not_found" and code in error["message"]
    assert _table_exists(table) is False or list(table.list_entities()) == []


def test_a_pipeline_that_does_not_declare_pause_id_is_400_at_pause(api, adf):
    from azure.mgmt.datafactory.models import PipelineResource

    from tests.support import sdk_client

    sdk_client(adf).pipelines.create_or_update(api.target["resource_group"], api.target["factory_name"], "No_Id",
                                               PipelineResource(activities=[]), enforce_https=False)
    response = api.pause(pipeline_name="No_Id")
    assert response.status_code == 400
    [error] = api.json(response)["errors"]
    assert (error["field"], error["rule"]) == ("pipeline_name", "pause_id_parameter")


def test_a_crafted_cursor_is_400_not_500(api):
    import base64

    for token in ({"NextPartitionKey": "x'y", "NextRowKey": "\u0000"}, {"NextPartitionKey": "", "NextRowKey": ""}):
        cursor = base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")
        assert api.list(cursor=cursor).status_code in (200, 400)


def test_the_existence_check_can_be_turned_off(api, configure):
    configure(CHECK_PIPELINE_EXISTS="false")
    assert api.pause(pipeline_name="Not_There_Yet").status_code == 201


def test_an_existence_check_that_cannot_be_made_does_not_block_the_pause(api, adf):
    adf.inject("getPipeline", "before", status=403, code="AuthorizationFailed")
    assert api.pause().status_code == 201


def test_a_pipeline_seen_to_exist_is_remembered_not_read_again(api, adf):
    api.created()
    adf.inject("getPipeline", "before", count=5, status=404, code="NotFound")
    assert api.pause().status_code == 201  # from memory: no second pipelines.get


def test_create_run_that_started_but_never_answered_is_recorded_not_repeated(api, adf, configure):
    configure(ARM_READ_TIMEOUT_SECONDS="0.5")
    created = api.created()
    # The run is made, but the answer comes after the app's read timeout.
    adf.inject("createRun", "late", seconds=3)
    response = api.decide("restart", created["token"])
    assert response.status_code == 200
    [run] = adf.runs
    assert api.json(response)["run_id"] == run["runId"]
    assert api.decide("restart", created["token"]).status_code == 409
    assert len(adf.runs) == 1


def test_a_failed_index_row_is_answered_only_once_the_other_index_write_has_ended(api, monkeypatch):
    """add_pause wrote the pause and its two index rows at once; when the due row failed first it answered
    while the status row was still being written, on a client the next request (or a test's reset) might
    close: the write then opened a connection nobody closed (a leaked socket, found by the tests' socket
    recorder in the index-writer thread)."""
    import threading
    import time

    from shared.errors import Unavailable
    from shared.storage.due_index import DueIndex
    from shared.storage.status_index import StatusIndex

    ended = threading.Event()
    adding = StatusIndex.add

    def slow_add(self, row):
        time.sleep(0.3)
        try:
            return adding(self, row)
        finally:
            ended.set()

    def failing_add(self, pause_id, due_at):
        raise Unavailable("the due index is down")

    monkeypatch.setattr(StatusIndex, "add", slow_add)
    monkeypatch.setattr(DueIndex, "add", failing_add)
    response = api.pause()
    assert response.status_code == 503 and ended.is_set()
