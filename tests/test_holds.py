"""Holds and checkpoints: runs wait at a checkpoint while an operator's hold matches, and are called
back exactly once when it ends — also when releases race checkpoints and each other."""

import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared import sweep
from tests.support import TARGET

pytestmark = pytest.mark.integration

RUN = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.fixture
def hook(configure, adf):
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1", CHECKPOINT_CALLBACK_DELAY_SECONDS="0.05")
    return lambda name: f"{adf.url}/_standin/callbacks/{name}"


def call(api, name, method, path, body=None, route_params=None, params=None):
    raw = b"" if body is None else json.dumps(body).encode()
    response = api.call(name, method, path, body=raw, headers={"Content-Type": "application/json"},
                        route_params=route_params, params=params)
    return response.status_code, (json.loads(response.get_body()) if response.get_body() else None)


def place(api, scope=None, reason="warehouse maintenance", **extra):
    status, body = call(api, "place_hold", "POST", "holds", {"scope": scope or {"factory_name": TARGET["factory_name"]},
                                                            "reason": reason, **extra})
    assert status == 201, body
    return body


def end(api, hold_id, action="release", **body):
    return call(api, f"{action}_hold", "POST", f"holds/{hold_id}/{action}", body,
                route_params={"hold_id": hold_id})


def reach(api, hook, name, checkpoint="after_staging", **fields):
    body = {**TARGET, "run_id": str(uuid.uuid4()), "checkpoint": checkpoint, "callBackUri": hook(name), **fields}
    return call(api, "checkpoint", "POST", "checkpoint", body)


def callbacks_for(adf, name):
    return [c for c in adf.callbacks if c["callbackId"] == name]


def wait_for(predicate, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_no_hold_answers_202_and_calls_back_right_after_leaving_nothing_stored(api, hook, adf, azurite):
    from azure.data.tables import TableServiceClient

    status, body = reach(api, hook, "cp-free")
    assert status == 202 and body == {"held": False, "checkpoint": "after_staging"}
    assert wait_for(lambda: len(callbacks_for(adf, "cp-free")) == 1)
    [sent] = callbacks_for(adf, "cp-free")
    assert sent["status"] == 200
    assert sent["body"] == {"Output": {"held": False, "checkpoint": "after_staging"}, "StatusCode": "200"}
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    names = {t.name for t in service.list_tables()}
    # The callback's row is gone once delivered; no pause and no status row was written.
    assert wait_for(lambda: not list(service.get_table_client(api.table_name + "expiry").list_entities()))
    for name in (api.table_name, api.table_name + "status"):
        assert name not in names or not list(service.get_table_client(name).list_entities())
    time.sleep(0.3)
    assert len(callbacks_for(adf, "cp-free")) == 1


def test_the_timer_sends_the_callback_when_the_app_died_before_it(api, hook, adf, configure):
    configure(CHECKPOINT_CALLBACK_DELAY_SECONDS="3600")  # the thread never gets to it: as if the process died
    status, _ = reach(api, hook, "cp-orphan")
    assert status == 202
    assert sweep.sweep() == {}  # not due yet: the app's own send comes first
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    assert sweep.sweep(now=later) == {"checkpoint_continued": 1}
    assert [c["status"] for c in callbacks_for(adf, "cp-orphan")] == [200]
    assert sweep.sweep(now=later + timedelta(minutes=5)) == {}
    assert len(callbacks_for(adf, "cp-orphan")) == 1


def test_a_lost_callback_answer_is_followed_only_by_the_identical_bytes(api, hook, adf, configure):
    configure(CALLBACK_READ_TIMEOUT_SECONDS="0.5")
    adf.inject("callback", "after", status=500)  # delivered, but the answer says 500
    reach(api, hook, "cp-lost")
    assert wait_for(lambda: len(callbacks_for(adf, "cp-lost")) == 1)
    time.sleep(0.3)
    assert len(callbacks_for(adf, "cp-lost")) == 1  # not resent by any retry loop
    later = datetime.now(timezone.utc) + timedelta(minutes=5)
    counts = sweep.sweep(now=later)
    assert counts == {"redelivered": 1}
    first, second = callbacks_for(adf, "cp-lost")
    assert first["body"] == second["body"] and second["status"] == 409  # a completed activity refuses repeats
    assert sweep.sweep(now=later + timedelta(hours=1)) == {}


def test_a_matching_hold_holds_the_run_until_released_then_calls_back_once(api, hook, adf):
    hold = place(api, {"factory_name": TARGET["factory_name"], "pipeline_name": "Load_*"})
    assert hold["status"] == "active" and hold["created_by"] == "api (function key)"
    status, held = reach(api, hook, "cp-held")
    assert status == 202 and held["held"] is True and held["hold_ids"] == [hold["hold_id"]]
    time.sleep(0.2)
    assert callbacks_for(adf, "cp-held") == []
    record = api.record(held["pause_id"])
    assert record["status"] == "held" and record["mode"] == "checkpoint" and record["checkpoint"] == "after_staging"
    _, shown = call(api, "show_hold", "GET", f"holds/{hold['hold_id']}", route_params={"hold_id": hold["hold_id"]})
    assert [w["pause_id"] for w in shown["waiting"]] == [held["pause_id"]]
    assert [p["pause_id"] for p in api.json(api.list(status="held"))["items"]] == [held["pause_id"]]

    status, released = end(api, hold["hold_id"], comment="maintenance done")
    assert status == 200 and released["status"] == "released"
    assert released["checkpoints"]["continued"] == [held["pause_id"]]
    [sent] = callbacks_for(adf, "cp-held")
    assert sent["status"] == 200
    assert sent["body"]["Output"] == {"held": True, "checkpoint": "after_staging", "hold_ids": [hold["hold_id"]],
                                      "released_by": "api (function key)", "comment": "maintenance done"}
    assert api.record(held["pause_id"])["status"] == "released"
    assert api.json(api.list(status="held"))["items"] == []
    assert end(api, hold["hold_id"])[0] == 409
    assert sweep.sweep(now=datetime.now(timezone.utc) + timedelta(hours=2)).get("checkpoint_settled") is None
    assert len(callbacks_for(adf, "cp-held")) == 1


def test_a_hold_that_does_not_match_lets_the_run_pass(api, hook, adf):
    place(api, {"pipeline_name": "Other_*"})
    place(api, {"run_id": str(uuid.uuid4())})
    status, body = reach(api, hook, "cp-other")
    assert body["held"] is False
    assert wait_for(lambda: len(callbacks_for(adf, "cp-other")) == 1)


def test_a_run_held_by_two_holds_continues_only_when_both_are_released(api, hook, adf):
    first = place(api, {"factory_name": TARGET["factory_name"]})
    second = place(api, {"pipeline_name": TARGET["pipeline_name"]})
    _, held = reach(api, hook, "cp-two")
    assert sorted(held["hold_ids"]) == sorted([first["hold_id"], second["hold_id"]])
    _, result = end(api, first["hold_id"])
    assert result["checkpoints"]["still_held"] == [held["pause_id"]]
    assert callbacks_for(adf, "cp-two") == []
    _, result = end(api, second["hold_id"])
    assert result["checkpoints"]["continued"] == [held["pause_id"]]
    assert len(callbacks_for(adf, "cp-two")) == 1


def test_cancelling_a_hold_fails_its_runs_with_hold_cancelled(api, hook, adf):
    hold = place(api)
    _, held = reach(api, hook, "cp-cancel")
    assert end(api, hold["hold_id"], "cancel")[0] == 400  # a reason is required
    status, result = end(api, hold["hold_id"], "cancel", reason="source data is broken")
    assert status == 200 and result["status"] == "cancelled" and result["checkpoints"]["failed"] == [held["pause_id"]]
    [sent] = callbacks_for(adf, "cp-cancel")
    assert sent["body"]["Error"]["ErrorCode"] == "HoldCancelled"
    assert "source data is broken" in sent["body"]["Error"]["Message"]
    assert api.record(held["pause_id"])["status"] == "cancelled"


def test_an_expiring_hold_releases_its_runs_through_the_timer(api, hook, adf):
    hold = place(api, expires_in=60)
    _, held = reach(api, hook, "cp-expire")
    assert sweep.sweep() == {}  # still active: its row is due at the hold's expiry
    later = datetime.now(timezone.utc) + timedelta(seconds=61)
    assert sweep.sweep(now=later) == {"checkpoint_settled": 1}
    [sent] = callbacks_for(adf, "cp-expire")
    assert sent["body"]["Output"]["released_by"] == "expiry"
    _, listed = call(api, "list_holds", "GET", "holds", params={"status": "released"})
    assert [h["hold_id"] for h in listed["items"]] == [hold["hold_id"]]
    _, active = call(api, "list_holds", "GET", "holds")
    assert active["items"] == []


def test_release_racing_twenty_checkpoints_calls_each_back_exactly_once(api, hook, adf):
    hold = place(api)
    barrier, results = threading.Barrier(21), {}

    def checkpoint(i):
        barrier.wait()
        results[i] = reach(api, hook, f"cp-race-{i}")

    def release():
        barrier.wait()
        time.sleep(0.01)
        results["release"] = end(api, hold["hold_id"])

    threads = [threading.Thread(target=checkpoint, args=(i,)) for i in range(20)] + [threading.Thread(target=release)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["release"][0] == 200
    assert all(results[i][0] == 202 for i in range(20))
    # Every run continues — none waits forever — without waiting for the timer, and only once.
    assert wait_for(lambda: all(len(callbacks_for(adf, f"cp-race-{i}")) >= 1 for i in range(20)))
    time.sleep(0.3)
    for i in range(20):
        assert [c["status"] for c in callbacks_for(adf, f"cp-race-{i}")] == [200], i
    assert api.json(api.list(status="held"))["items"] == []
    assert "checkpoint_settled" not in sweep.sweep(now=datetime.now(timezone.utc) + timedelta(hours=1))


def test_two_releasers_release_once_and_call_back_once(api, hook, adf):
    hold = place(api)
    held = [reach(api, hook, f"cp-pair-{i}")[1] for i in range(5)]
    barrier, statuses = threading.Barrier(2), []

    def release(who):
        barrier.wait()
        statuses.append(end(api, hold["hold_id"], comment=who)[0])

    threads = [threading.Thread(target=release, args=(w,)) for w in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409]
    for i, checkpoint in enumerate(held):
        assert [c["status"] for c in callbacks_for(adf, f"cp-pair-{i}")] == [200]
        assert api.record(checkpoint["pause_id"])["status"] == "released"


def test_two_holds_released_at_once_continue_their_shared_run_once(api, hook, adf):
    for attempt in range(5):
        first, second = place(api), place(api)
        _, held = reach(api, hook, f"cp-both-{attempt}")
        barrier = threading.Barrier(2)

        def release(hold_id):
            barrier.wait()
            end(api, hold_id)

        threads = [threading.Thread(target=release, args=(h["hold_id"],)) for h in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [c["status"] for c in callbacks_for(adf, f"cp-both-{attempt}")] == [200]
        assert api.record(held["pause_id"])["status"] == "released"


@pytest.mark.parametrize("body, field", [
    ({"run_id": "not-a-guid"}, "run_id"),
    ({"checkpoint": ""}, "checkpoint"),
    ({"checkpoint": "a/b"}, "checkpoint"),
    ({"factory_name": "-bad"}, "factory_name"),
    ({"callBackUri": None}, "callBackUri"),
])
def test_a_bad_checkpoint_is_a_400_naming_the_field(api, hook, body, field):
    status, problem = reach(api, hook, "cp-bad", **body)
    assert status == 400 and field in [e["field"] for e in problem["errors"]]


def test_a_checkpoint_calling_back_elsewhere_is_refused(api, hook):
    status, problem = reach(api, hook, "x", callBackUri="https://attacker.example/cb")
    assert status == 403 and "callBackUri" in problem["detail"]


@pytest.mark.parametrize("body, field", [
    ({"scope": {}, "reason": "x"}, "scope"),
    ({"scope": {"factory_name": "f"}}, "reason"),
    ({"scope": {"factory_name": "f"}, "reason": "  "}, "reason"),
    ({"scope": {"factory_name": "a/b"}, "reason": "x"}, "scope.factory_name"),
    ({"scope": {"factory": "f"}, "reason": "x"}, "scope.factory"),
    ({"scope": {"factory_name": "f"}, "reason": "x", "expires_in": 5}, "expires_in"),
])
def test_a_bad_hold_is_a_400_naming_the_field(api, body, field):
    status, problem = call(api, "place_hold", "POST", "holds", body)
    assert status == 400 and field in [e["field"] for e in problem["errors"]], problem


def test_unknown_holds_are_404(api):
    for hold_id in ("0" * 32, "nope", "../x"):
        status, _ = call(api, "show_hold", "GET", f"holds/{hold_id}", route_params={"hold_id": hold_id})
        assert status == 404
        assert end(api, hold_id)[0] == 404


@pytest.mark.parametrize("pattern, text, matched", [
    ("load_*", "load_sales", True), ("load_*", "load_", True), ("load_*", "reload_sales", False),
    ("*sales", "load_sales", True), ("*_*_*", "a_b_c", True), ("*_*_*", "a_b", False), ("*", "", True),
    ("a*b*c", "axxbyyc", True), ("a*b*c", "axxbyy", False), ("exact", "exact", True), ("exact", "exactly", False),
    ("a.b", "axb", False), ("(x)", "(x)", True),
    ("*a" * 60 + "b", "a" * 139, False),  # the shape that makes a regex of .* backtrack for ever
])
def test_scope_patterns_match_with_star_only(pattern, text, matched):
    from shared.holds import wildcard_match

    assert wildcard_match(pattern, text) is matched


@pytest.fixture
def storage(storage, configure):
    configure(STORAGE_RETRY_TOTAL="0")
    return storage


def test_a_held_checkpoint_whose_callback_row_cannot_be_withdrawn_fails_rather_than_passes(api, hook, adf, storage):
    place(api)
    storage.inject("before", methods={"DELETE"}, path=rf"/{api.table_name}expiry", count=5)
    status, problem = reach(api, hook, "cp-nodrop")
    assert status == 503 and "stops at this checkpoint" in problem["detail"]
    storage.clear()
    # Nothing claims the run is held (no checkpoint was stored), and its WebHook got an error, so the
    # activity failed: the row left behind can only reach an activity that has ended.
    assert api.json(api.list(status="held"))["items"] == []
    assert callbacks_for(adf, "cp-nodrop") == []


def test_a_checkpoint_whose_holds_cannot_be_read_fails_and_leaves_no_callback_behind(api, hook, adf, storage):
    storage.inject("before", methods={"GET"}, path=rf"/{api.table_name}holds", count=5)
    status, _ = reach(api, hook, "cp-noread")
    assert status == 503
    time.sleep(0.3)
    assert sweep.sweep(now=datetime.now(timezone.utc) + timedelta(hours=2)) == {}
    assert callbacks_for(adf, "cp-noread") == []


def test_an_expiry_another_reader_wrote_down_first_is_no_failure_and_one_storage_refused_is_said(api, storage, caplog):
    """Every settle held by an expired hold writes its expiry down (32 at once in one timer run): the ones that lose
    the race log nothing above debug, while storage refusing the write says why."""
    import logging

    from shared import holds

    first, second = place(api, expires_in=60)["hold_id"], place(api, expires_in=60)["hold_id"]
    read_by_each = [holds.get(first) for _ in range(3)]
    with caplog.at_level(logging.INFO, logger="shared.holds"):
        for copy in read_by_each:
            holds.write_down_expiry(copy)
        assert [record.message for record in caplog.records if record.name == "shared.holds"] == []
        storage.inject("before", methods={"POST"}, path=r"\$batch", count=5)
        holds.write_down_expiry(holds.get(second))
    written = holds.get(first)
    assert (written.status, written.ended_by, written.ended_at) == ("released", "expiry", written.expires_at)
    [said] = [record for record in caplog.records if record.name == "shared.holds"]
    assert said.message.startswith(f"expiry of hold_id={second} not written down now: ") and \
        len(said.message) > len(f"expiry of hold_id={second} not written down now: ") + 10
    assert holds.get(second).status == "active"


@pytest.mark.parametrize("edit", ["active row deleted", "ended row already there"])
def test_a_hold_whose_listing_rows_were_edited_by_hand_still_ends_once(api, azurite, edit):
    """The record is the hold's truth; its active and ended rows only list it. One deleted (or made) by hand used to
    fail the ending transaction for good (a 409 'being changed by someone else', then a 500 'try again' that never
    could succeed): released now, listed as released, by the operator or by its expiry alike."""
    from azure.data.tables import TableClient

    from shared import holds
    from shared.storage.status_index import inverted

    hold_id = place(api, expires_in=60)["hold_id"]
    with TableClient.from_connection_string(azurite.connection_string, f"{api.table_name}holds") as rows:
        if edit == "active row deleted":
            rows.delete_entity("holds", f"active|{hold_id}")
            status, body = end(api, hold_id)
            assert status == 200 and body["status"] == "released", body
        else:
            expiry = holds.get(hold_id).expires_at
            rows.create_entity({"PartitionKey": "holds", "RowKey": f"ended|{inverted(expiry)}|{hold_id}"})
            holds.write_down_expiry(holds.get(hold_id))
        listing = [row["RowKey"] for row in rows.list_entities()
                   if row["RowKey"].endswith(hold_id) and not row["RowKey"].startswith("hold|")]
    assert holds.get(hold_id).status == "released"
    assert len(listing) == 1 and listing[0].startswith("ended|")
    _, released = call(api, "list_holds", "GET", "holds", params={"status": "released"})
    assert [hold["hold_id"] for hold in released["items"]] == [hold_id]


def test_a_throttled_no_hold_callback_is_sent_again_until_it_arrives(api, hook, adf):
    adf.inject("callback", "before", status=429)  # refused, surely not delivered
    reach(api, hook, "cp-429")
    assert wait_for(lambda: len(callbacks_for(adf, "cp-429")) == 1)
    time.sleep(0.3)
    counts = sweep.sweep(now=datetime.now(timezone.utc) + timedelta(minutes=5))
    assert counts == {"redelivered": 1}
    assert [c["status"] for c in callbacks_for(adf, "cp-429")] == [429, 200]
    assert sweep.sweep(now=datetime.now(timezone.utc) + timedelta(hours=5)) == {}


def test_a_release_whose_runs_cannot_be_listed_says_so_and_the_timer_settles_them(api, hook, adf, storage):
    hold = place(api)
    _, held = reach(api, hook, "cp-unlisted")
    storage.inject("before", methods={"GET"}, path=rf"/{api.table_name}status", count=5)
    status, result = end(api, hold["hold_id"])
    assert status == 200 and result["status"] == "released" and "settled by the timer" in result["note"]
    storage.clear()
    assert callbacks_for(adf, "cp-unlisted") == []
    assert sweep.sweep(now=datetime.now(timezone.utc) + timedelta(minutes=6)) == {"checkpoint_settled": 1}
    assert [c["status"] for c in callbacks_for(adf, "cp-unlisted")] == [200]
    assert api.record(held["pause_id"])["status"] == "released"


def test_a_held_checkpoint_is_202_even_when_its_holds_cannot_be_read_again(api, hook, adf, storage):
    place(api)
    storage.inject("before", methods={"GET"}, path=rf"/{api.table_name}holds\(PartitionKey", count=5)
    status, held = reach(api, hook, "cp-reread")
    assert status == 202 and held["held"] is True
    assert api.record(held["pause_id"])["status"] == "held"


def test_listing_holds_writes_down_one_that_expired(api):
    from shared import holds
    from shared.storage.holds import get_holds

    hold = place(api, expires_in=60)
    later = datetime.now(timezone.utc) + timedelta(seconds=61)
    assert holds.listed("active", 10, now=later) == []
    stored = holds.get(hold["hold_id"])
    assert stored.status == "released" and stored.ended_by == "expiry"
    assert [h.hold_id for h in get_holds().active()] == []  # checkpoints no longer read it


def test_pauses_stored_before_the_status_index_are_backfilled_by_the_timer(api, table, azurite):
    from azure.data.tables import TableClient

    waiting, decided = api.created(), api.created()
    api.decide("cancel", decided["token"], form={"reason": "old"})
    # As an older version left them: no index_key, no index rows.
    with TableClient.from_connection_string(azurite.connection_string, table_name=api.table_name + "status") as idx:
        for row in list(idx.list_entities()):
            idx.delete_entity(row["PartitionKey"], row["RowKey"])
    for pause_id in (waiting["pause_id"], decided["pause_id"]):
        entity = table.get_entity(pause_id, "pause")
        del entity["index_key"]
        table.update_entity(entity, mode="replace")
    assert api.json(api.list(status="pending"))["items"] == []
    assert sweep.sweep() == {"backfilled": 2}
    assert [p["pause_id"] for p in api.json(api.list(status="pending"))["items"]] == [waiting["pause_id"]]
    assert [p["pause_id"] for p in api.json(api.list(status="cancelled"))["items"]] == [decided["pause_id"]]
    assert sweep.sweep() == {}  # done: nothing more to read
    assert api.decide("restart", waiting["token"]).status_code == 200
    assert api.json(api.list(status="pending"))["items"] == []  # its backfilled row moved on decision


def test_a_held_checkpoints_record_conforms_to_the_openapi_document(api, hook):
    import jsonschema

    from shared.web import openapi

    place(api)
    _, held = reach(api, hook, "cp-schema")
    document = openapi.document()
    schema = {**document["components"]["schemas"]["PausePage"], "components": document["components"]}
    jsonschema.validate(api.json(api.list(status="held")), schema)
    jsonschema.validate(api.record(held["pause_id"]),
                        {**document["components"]["schemas"]["PauseRecord"], "components": document["components"]})


@pytest.mark.parametrize("settings, headers, actor", [
    # Sign-in is set, but App Service Authentication is not in front: the function key still works.
    ({"APPROVER_SIGN_IN": "easyauth"}, {"X-MS-CLIENT-PRINCIPAL-NAME": "ops@contoso.com"}, "api (function key)"),
    # A program signed in with a bearer token: App Service vouches for it.
    ({"APPROVER_SIGN_IN": "easyauth", "WEBSITE_AUTH_ENABLED": "True"},
     {"X-MS-CLIENT-PRINCIPAL-NAME": "ops@contoso.com", "Authorization": "Bearer checked"}, "ops@contoso.com"),
    # A browser's session cookie came along (a form on another page, say): it names nobody.
    ({"APPROVER_SIGN_IN": "easyauth", "WEBSITE_AUTH_ENABLED": "True"},
     {"X-MS-CLIENT-PRINCIPAL-NAME": "ops@contoso.com", "Cookie": "AppServiceAuthSession=s",
      "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, "api (function key)"),
])
def test_the_function_key_api_names_a_person_only_when_a_program_signed_in_as_them(api, configure, settings, headers,
                                                                                  actor):
    configure(**settings)
    body = json.dumps({"scope": {"factory_name": TARGET["factory_name"]}, "reason": "maintenance"}).encode()
    response = api.call("place_hold", "POST", "holds", body=body,
                        headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 201 and api.json(response)["created_by"] == actor
    hold_id = api.json(response)["hold_id"]
    released = api.call("release_hold", "POST", f"holds/{hold_id}/release", body=b"",
                        headers={"Content-Type": "application/json", **headers}, route_params={"hold_id": hold_id})
    assert released.status_code == 200 and api.json(released)["ended_by"] == actor


def test_a_release_whose_transaction_landed_unanswered_is_the_releasers_not_already_released(api, storage, configure):
    configure(STORAGE_RETRY_TOTAL="1")
    hold = place(api)
    storage.inject("after", methods={"POST"}, path=r"/\$batch", count=1)  # lands; the SDK's retry meets a 412
    status, body = end(api, hold["hold_id"], comment="done")
    assert [fault for _, _, fault in storage.log if fault] == ["after"]
    assert status == 200, body
    assert body["status"] == "released" and body["ended_by"] == "api (function key)"
