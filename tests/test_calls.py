"""The lifecycle's outside calls (shared/lifecycle/calls.py): `ready` checks, before anything is claimed, all a
call needs (the pipeline's fields and parameters, a factory ALLOWED_FACTORIES still admits, the callBackUri and
the data) and builds the exact bytes a WebHook receives; `call` then makes the one call: createRun with the
pause's parameters and its own pause_id, or the callback POST of those bytes, reading a completed activity's 409
as "already completed". Only Refused or Unknown ever escape a call, and anything unforeseen is Unknown."""

import json
from datetime import datetime, timezone

import pytest

from local_dev.check_endpoint import CheckEndpoint
from shared.errors import DamagedRecord
from shared.lifecycle.calls import ACTIVITY_COMPLETED, CannotCall, call, cannot_call, payload, ready, target_of
from shared.lifecycle.model import Action, Audit, Mode, rule_for
from shared.storage.tables import pack_json
from shared.targets.adf import PipelineTarget
from shared.targets.outside import Refused, Unknown
from shared.validation import Decision
from tests.support import TARGET

PAUSE_ID = "c" * 32
EXPIRES = datetime(2026, 11, 25, 13, 0, tzinfo=timezone.utc)
APPROVE_RESTART, APPROVE_CALLBACK = rule_for(Action.APPROVE, Mode.RESTART), rule_for(Action.APPROVE, Mode.CALLBACK)
FAST = {"ARM_READ_TIMEOUT_SECONDS": "0.5", "CALLBACK_READ_TIMEOUT_SECONDS": "0.5", "ARM_RETRY_TOTAL": "0"}


def pause(mode="restart", callback_uri="https://dpeastus.svc.datafactory.azure.com/workflow/callback/abc", **fields):
    entity = {"PartitionKey": PAUSE_ID, "RowKey": "pause", "status": "pending", "mode": mode,
              "expires_at": EXPIRES, **TARGET, **pack_json("parameters", '{"day":"2026-11-25","pause_id":"spoofed"}'),
              **pack_json("data", '{"rows":5}')}
    if mode == "checkpoint":
        entity.update(status="held", checkpoint="after_staging", **pack_json("hold_ids", '["h1","h2"]'))
    if mode != "restart":
        entity["callback_uri"] = callback_uri
    return {**entity, **fields}


def without(entity, *names):
    return {key: value for key, value in entity.items() if key not in names}


def test_the_target_is_read_from_the_record_and_a_missing_field_is_named(outside_settings):
    assert target_of(pause()) == PipelineTarget(**TARGET)
    assert target_of(pause(tenant_id="72f988bf-86f1-41af-91ab-2d7cd011db47")).tenant_id == \
        "72f988bf-86f1-41af-91ab-2d7cd011db47"
    for damaged in (without(pause(), "factory_name"), pause(factory_name="")):
        with pytest.raises(DamagedRecord, match=f"pause {PAUSE_ID} is damaged: factory_name is missing"):
            target_of(damaged)


@pytest.mark.parametrize("mode, damage, why", [
    ("restart", {"drop": "pipeline_name"}, "DamagedRecord: .* pipeline_name is missing"),
    ("restart", {"drop": "subscription_id"}, "DamagedRecord: .* subscription_id is missing"),
    ("restart", {"set": pack_json("parameters", "{not json")}, "DamagedRecord: .* parameters cannot be read"),
    ("restart", {"allowed": "*/*/another-factory"},
     r"^FactoryNotAllowed: .* in factory adf-test \(ALLOWED_FACTORIES\); no run was started\.$"),
    ("callback", {"drop": "callback_uri"}, "DamagedRecord: .* callback_uri is missing"),
    ("callback", {"set": pack_json("data", "[1,")}, "DamagedRecord: .* data cannot be read"),
], ids=["pipeline_name", "subscription_id", "parameters", "factory_not_allowed", "callback_uri", "data"])
def test_what_a_call_can_never_do_is_refused_before_any_claim_and_only_for_that_call(outside_settings,
                                                                                     mode, damage, why):
    assert cannot_call(pause(mode), Action.APPROVE) is None
    outside_settings(ALLOWED_FACTORIES=damage.get("allowed"))
    entity = {**without(pause(mode), damage.get("drop")), **damage.get("set", {})}
    with pytest.raises(CannotCall, match=why):
        ready(rule_for(Action.APPROVE, Mode(mode)), entity, Decision(), Audit())
    assert cannot_call(entity, Action.APPROVE) is not None
    if mode == "restart":  # a cancel in restart mode calls nothing, so a damaged pipeline may still be cancelled
        assert cannot_call(entity, Action.CANCEL) is None


@pytest.mark.parametrize("action, mode, decision, audit, sent", [
    (Action.APPROVE, Mode.RESTART, Decision(comment="ok"), Audit(), {"day": "2026-11-25", "pause_id": PAUSE_ID}),
    (Action.CANCEL, Mode.RESTART, Decision(comment="no"), Audit(), None),
    (Action.APPROVE, Mode.CALLBACK, Decision(comment="ok", input={"k": 1}), Audit(),
     {"Output": {"pause_id": PAUSE_ID, "status": "restarted", "comment": "ok", "input": {"k": 1}, "data": {"rows": 5}},
      "StatusCode": "200"}),
    (Action.CANCEL, Mode.CALLBACK, Decision(), Audit(),
     {"Error": {"ErrorCode": "PauseCancelled", "Message": "Cancelled by the approver."}, "StatusCode": "400"}),
    (Action.CANCEL, Mode.CALLBACK, Decision(), Audit(decided_by="alice@contoso.com"),
     {"Error": {"ErrorCode": "PauseCancelled", "Message": "Cancelled by alice@contoso.com."}, "StatusCode": "400"}),
    (Action.EXPIRE, Mode.CALLBACK, Decision(), Audit(),
     {"Error": {"ErrorCode": "PauseExpired", "Message": "Nobody decided before 2026-11-25T13:00:00Z."},
      "StatusCode": "400"}),
    (Action.RELEASE, Mode.CHECKPOINT, Decision(comment="done"), Audit(decided_by="ops@contoso.com"),
     {"Output": {"held": True, "checkpoint": "after_staging", "hold_ids": ["h1", "h2"],
                 "released_by": "ops@contoso.com", "comment": "done"}, "StatusCode": "200"}),
    (Action.HOLD_CANCEL, Mode.CHECKPOINT, Decision(), Audit(),
     {"Error": {"ErrorCode": "HoldCancelled", "Message": "Hold cancelled by an operator: an operator cancelled the "
                                                         "hold"}, "StatusCode": "400"}),
])
def test_the_bytes_a_webhook_receives_for_each_decision(outside_settings, action, mode, decision, audit, sent):
    rule = rule_for(action, mode)
    built = payload(rule, pause(mode), decision, audit)
    # A run's parameters (restart mode), or the exact bytes a WebHook receives.
    assert (built if built is None or isinstance(built, dict) else json.loads(built)) == sent
    assert built == ready(rule, pause(mode), decision, audit)  # what ready() hands on, unchanged


def test_a_start_run_starts_the_pipeline_with_its_parameters_and_the_pauses_own_id(outside_settings, adf):
    outcome = call(APPROVE_RESTART, PAUSE_ID, pause(), ready(APPROVE_RESTART, pause(), Decision(), Audit()))
    [run] = adf.runs
    assert outcome == {"run_id": run["runId"]}
    assert run["pipelineName"] == "Load_Sales" and run["factory"] == TARGET["factory_name"]
    # A pause_id among the stored parameters cannot point the run at another pause.
    assert run["parameters"] == {"day": "2026-11-25", "pause_id": PAUSE_ID}


def test_a_callback_posts_exactly_the_prepared_bytes_once(outside_settings):
    outside_settings(CALLBACK_ALLOWED_HOSTS="127.0.0.1", **FAST)
    with CheckEndpoint() as receiver:
        receiver.set("hook", status=200)
        entity = pause("callback", callback_uri=receiver.url("hook"))
        body = ready(APPROVE_CALLBACK, entity, Decision(comment="é ok"), Audit())
        assert call(APPROVE_CALLBACK, PAUSE_ID, entity, body) == {"callback_confirmed": True}
        seen = receiver.seen("hook")
    assert seen.calls == 1 and seen.bodies == [body.decode("utf-8")]
    assert seen.headers[0]["Content-Type"] == "application/json"


def test_a_completed_activity_that_answers_409_fails_the_pause_instead_of_deciding_it(outside_settings, adf):
    outside_settings(CALLBACK_ALLOWED_HOSTS="127.0.0.1", **FAST)
    entity = pause("callback", callback_uri=f"{adf.url}/_standin/callbacks/finished")
    body = ready(APPROVE_CALLBACK, entity, Decision(), Audit())
    assert call(APPROVE_CALLBACK, PAUSE_ID, entity, body) == {"callback_confirmed": True}
    assert call(APPROVE_CALLBACK, PAUSE_ID, entity, body) == {"status": "failed",
                                                             "last_error": f"ActivityCompleted: {ACTIVITY_COMPLETED}"}
    assert [c["status"] for c in adf.callbacks] == [200, 409]


def test_only_refused_or_unknown_escape_and_the_unforeseen_counts_as_maybe_sent(outside_settings, adf):
    outside_settings(CALLBACK_ALLOWED_HOSTS="127.0.0.1", **FAST)
    adf.inject("createRun", "before", status=400, code="BadRequest")
    with pytest.raises(Refused) as refused:  # ADF's refusal passes through as it is
        call(APPROVE_RESTART, PAUSE_ID, pause(), ready(APPROVE_RESTART, pause(), Decision(), Audit()))
    assert (refused.value.code, refused.value.status) == ("BadRequest", 400) and adf.runs == []
    # Never checked by ready() (as if the record changed under it): the failure is not a refusal.
    for rule, entity in [(APPROVE_CALLBACK, without(pause("callback"), "callback_uri"))]:
        with pytest.raises(Unknown) as unknown:
            call(rule, PAUSE_ID, entity, b"{}")
        assert unknown.value.code == "Error" and str(unknown.value).startswith("the call failed unexpectedly (")
    assert adf.runs == [] and adf.callbacks == []

