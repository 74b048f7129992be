"""Start windows and chosen starts: a decision to continue made outside the window is recorded, the pause is
`scheduled` for the window's next opening in its time zone, the timer continues it then exactly once, and it
can be cancelled until then. Against Azurite, the strict ADF stand-in and the timer, with the clock moved."""

from datetime import datetime, time, timedelta, timezone

import pytest

from shared import pauses, sweep
from shared.clock import iso
from shared.errors import InvalidRequest
from shared.targets.adf import PipelineTarget, get_adf, pacing_key
from shared.validation import Decision
from shared.web.http import Caller
from shared.windows import DAYS, zone
from tests.support import TARGET

pytestmark = pytest.mark.integration

NIGHT = {"time_zone": "Europe/Amsterdam", "from": "02:00", "to": "05:00"}
NOBODY = Caller(None, None, None)
AMSTERDAM = zone("Europe/Amsterdam")
# Tomorrow evening and the night after it, in Amsterdam (whatever the date the tests run on): pauses made
# now are still pending then.
TOMORROW = datetime.now(timezone.utc).astimezone(AMSTERDAM).date() + timedelta(days=1)
EVENING = datetime.combine(TOMORROW, time(23, 30), AMSTERDAM).astimezone(timezone.utc)
OPENING = datetime.combine(TOMORROW + timedelta(days=1), time(2, 0), AMSTERDAM).astimezone(timezone.utc)
NEXT_DAY = DAYS[OPENING.astimezone(AMSTERDAM).weekday()]  # the day the night window next opens
NOON = datetime.combine(TOMORROW, time(12, 0), AMSTERDAM).astimezone(timezone.utc)  # outside the window


def later(moment, **delta):
    return moment + timedelta(**delta)


def approve_at(created, now, **decision):
    return pauses.approve(created["token"], Decision(**decision), NOBODY, now=now)


def test_an_approval_at_2330_for_a_night_window_starts_once_at_0200_amsterdam_time(api, adf):
    created = api.created(start_window=NIGHT, expires_in=7 * 86400, parameters={"day": "2026-12-06"})
    record = approve_at(created, EVENING, comment="Load it tonight")  # 23:30 in Amsterdam
    assert record["status"] == "scheduled" and record["start_at"] == iso(OPENING)  # 02:00 in Amsterdam
    assert record["decided_by"] is None and record["comment"] == "Load it tonight" and adf.runs == []
    assert api.record(created["pause_id"])["status"] == "scheduled"
    listed = api.json(api.list(status="scheduled"))["items"]
    assert [item["pause_id"] for item in listed] == [created["pause_id"]]
    assert sweep.sweep(later(OPENING, seconds=-1)) == {}  # not yet: nothing is due
    assert sweep.sweep(later(OPENING, seconds=30)) == {"started": 1}
    [run] = adf.runs
    assert run["parametersAsSent"] == {"day": "2026-12-06", "pause_id": created["pause_id"]}
    after = api.record(created["pause_id"])
    assert after["status"] == "restarted" and after["run_id"] == run["runId"]
    assert after["comment"] == "Load it tonight" and after["decided_at"] == iso(EVENING)  # as decided
    assert sweep.sweep(later(OPENING, days=8)) == {"already_settled": 1}  # its expiry row finds it settled
    assert len(adf.runs) == 1


def test_inside_the_window_it_starts_at_once(api, adf):
    created = api.created(start_window=NIGHT, expires_in=7 * 86400)
    record = approve_at(created, later(OPENING, hours=1))  # 03:00 in Amsterdam
    assert record["status"] == "restarted" and len(adf.runs) == 1 and record.get("start_at") is None


def test_a_scheduled_pause_can_be_cancelled_before_it_starts_and_then_never_starts(api, adf):
    created = api.created(start_window={**NIGHT, "days": [NEXT_DAY]}, expires_in=3 * 86400)
    approve_at(created, NOON)
    assert api.record(created["pause_id"])["start_at"] == iso(OPENING)
    assert api.page("restart", created["token"]).status_code == 409  # approved already: it says when it starts
    page = api.page("cancel", created["token"])  # the cancel link in the email still works until it starts
    assert page.status_code == 200 and "Cancelling now stops that" in page.get_body().decode()
    cancelled = api.decide("cancel", created["token"], json_body={"reason": "Month-end close moved"})
    assert cancelled.status_code == 200 and api.json(cancelled)["status"] == "cancelled"
    assert sweep.sweep(later(OPENING, minutes=1)) == {"already_settled": 1}
    assert adf.runs == []


def test_a_timeout_outside_the_window_is_scheduled_even_while_arms_write_bucket_is_low(api, adf):
    """Scheduling writes to storage only: ARM's write pacing does not hold it back (nor spend a write on it);
    the start it schedules is paced when it is made."""
    created = api.created(start_window={**NIGHT, "days": [NEXT_DAY]}, expires_in=60, on_timeout="restart")
    key = pacing_key(PipelineTarget(*(TARGET[name] for name in ("subscription_id", "resource_group",
                                                                 "factory_name", "pipeline_name"))))
    get_adf().pacer.observed(key, 2, NOON.timestamp())  # under ARM_WRITES_LOW_WATER
    assert sweep.sweep(NOON) == {"scheduled": 1}
    record = api.record(created["pause_id"])
    assert (record["status"], record["start_at"]) == ("scheduled", iso(OPENING)) and adf.runs == []
    get_adf().pacer.observed(key, 2, OPENING.timestamp() + 5)
    assert sweep.sweep(later(OPENING, seconds=5)) == {"deferred": 1}  # the start itself waits for its slot
    get_adf().pacer.observed(key, 150, OPENING.timestamp() + 60)
    assert sweep.sweep(later(OPENING, seconds=60)) == {"started": 1} and len(adf.runs) == 1


def test_a_scheduled_pause_outlives_its_expiry_and_still_starts(api, adf):
    created = api.created(start_window={**NIGHT, "days": [NEXT_DAY]}, expires_in=3600)
    approve_at(created, datetime.now(timezone.utc))
    # Its expiry row comes first: it is scheduled, not expired, and waits for its start.
    assert sweep.sweep(datetime.now(timezone.utc) + timedelta(hours=2)) == {"rescheduled": 1}
    assert api.record(created["pause_id"])["status"] == "scheduled"
    assert sweep.sweep(later(OPENING, seconds=5)) == {"started": 1}
    assert len(adf.runs) == 1


def test_callback_mode_continues_the_waiting_run_at_the_start_with_the_approvers_words_and_values(api, adf,
                                                                                                configure):
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1")
    created = api.json(api.pause({"callBackUri": f"{adf.url}/_standin/callbacks/night", "start_window": NIGHT,
                                  "expires_in": 3 * 86400, "form": [{"name": "batch", "type": "integer"}]}))
    record = approve_at(created, EVENING, comment="tonight", input={"batch": 3})
    assert record["status"] == "scheduled" and adf.callbacks == []
    assert sweep.sweep(later(OPENING, seconds=1)) == {"started": 1}
    [call] = adf.callbacks
    assert call["body"]["Output"]["comment"] == "tonight" and call["body"]["Output"]["input"] == {"batch": 3}


def test_on_timeout_restart_outside_the_window_is_scheduled_too(api, adf):
    created = api.created(start_window={**NIGHT, "days": [NEXT_DAY]}, expires_in=60, on_timeout="restart")
    expired = datetime.now(timezone.utc) + timedelta(seconds=61)
    assert sweep.sweep(expired) == {"scheduled": 1}
    record = api.record(created["pause_id"])
    assert record["status"] == "scheduled" and adf.runs == []
    assert record["start_at"] == iso(OPENING)
    assert sweep.sweep(later(OPENING, seconds=1)) == {"started": 1}
    assert len(adf.runs) == 1


def test_an_approver_may_choose_a_later_start_inside_the_window(api, adf):
    created = api.created(start_window=NIGHT, allow_start_at=True, expires_in=3 * 86400)
    day = OPENING.astimezone(AMSTERDAM).date() + timedelta(days=1)  # the night after
    with pytest.raises(InvalidRequest) as outside:
        approve_at(created, NOON, start_at_text=f"{day}T12:00")
    assert outside.value.errors[0]["field"] == "start_at" and outside.value.errors[0]["rule"] == "window"
    record = approve_at(created, NOON, start_at_text=f"{day}T03:30")  # local time, in the window's zone
    chosen = datetime.combine(day, time(3, 30), AMSTERDAM).astimezone(timezone.utc)
    assert record["status"] == "scheduled" and record["start_at"] == iso(chosen)
    assert sweep.sweep(later(chosen, seconds=1)) == {"started": 1}


def test_a_chosen_start_is_refused_where_the_pause_does_not_allow_one(api):
    created = api.created(expires_in=86400)
    response = api.decide("restart", created["token"], json_body={"start_at": "2026-12-31T10:00:00Z"})
    assert response.status_code == 400 and api.json(response)["errors"][0]["field"] == "start_at"
    assert api.record(created["pause_id"])["status"] == "pending"


def test_the_page_says_when_it_starts(api):
    other_day = DAYS[(datetime.now(timezone.utc).astimezone(AMSTERDAM).weekday() + 3) % 7]  # not today's night
    created = api.created(start_window={**NIGHT, "days": [other_day]}, expires_in=86400,
                          notification={"title": "Load Sales tonight?"})
    page = api.page("restart", created["token"]).get_body().decode()
    weekday = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday",
               "sat": "Saturday", "sun": "Sunday"}[other_day]
    assert f"only within 02:00-05:00 Europe/Amsterdam, opening {weekday}" in page
    response = api.decide("restart", created["token"], html=True)
    html = response.get_body().decode()
    assert response.status_code == 200 and f"Approved — the pipeline starts on {weekday}" in html
    start = datetime.fromisoformat(api.record(created["pause_id"])["start_at"].replace("Z", "+00:00"))
    # 02:00 local, unless the clocks skip it that night (then the first instant after the gap).
    assert f"at {start.astimezone(AMSTERDAM):%H:%M} (Europe/Amsterdam, {start:%H:%M} UTC)" in html


@pytest.mark.parametrize("window, field", [
    ({**NIGHT, "time_zone": "Mars/Olympus_Mons"}, "start_window.time_zone"),
    ({**NIGHT, "to": "02:00"}, "start_window.to"),
    ({**NIGHT, "days": ["mon", "mon"]}, "start_window.days"),
])
def test_a_window_that_cannot_work_is_refused_naming_the_field(api, window, field):
    response = api.pause(start_window=window)
    assert response.status_code == 400
    assert field in [error["field"] for error in api.json(response)["errors"]]


def test_the_console_lists_a_scheduled_pause_with_its_start_and_an_operator_may_cancel_it(api, adf):
    from shared import console

    created = api.created(start_window={**NIGHT, "days": [NEXT_DAY]}, expires_in=3 * 86400,
                          notification={"title": "Night load"})
    approve_at(created, NOON)
    pending = console.overview(datetime.now(timezone.utc))["pending"]
    [shown] = [p for p in pending if p["pause_id"] == created["pause_id"]]
    assert shown["status"] == "scheduled" and shown["start_at"] == iso(OPENING)
    record = console.cancel_pause(created["pause_id"], "Not tonight", "ops@contoso.com", None, None)
    assert record["status"] == "cancelled" and record["reason"] == "Not tonight"
    assert sweep.sweep(later(OPENING, minutes=1)) == {"already_settled": 1} and adf.runs == []


def test_checks_that_pass_outside_the_window_schedule_the_pause(api, adf):
    from tests.support import TARGET, sdk_client

    run_id = sdk_client(adf).pipelines.create_run(TARGET["resource_group"], TARGET["factory_name"],
                                                  TARGET["pipeline_name"], parameters={"pause_id": "upstream"},
                                                  enforce_https=False).run_id
    adf.finish_run(run_id, "Succeeded")
    created = api.created(start_window={**NIGHT, "days": [NEXT_DAY]}, expires_in=3 * 86400,
                          checks=[{"name": "upstream", "adf_run": {"run_id": run_id},
                                   "expect": {"status": ["Succeeded"]}}])
    assert sweep.sweep(datetime.now(timezone.utc) + timedelta(seconds=1)) == {"scheduled": 1}
    record = api.record(created["pause_id"])
    assert record["status"] == "scheduled" and record["decided_by"] == "checks" and adf.runs[1:] == []
    assert record["start_at"] == iso(OPENING)
    assert sweep.sweep(later(OPENING, seconds=1)) == {"started": 1}
    assert len(adf.runs) == 2  # the upstream run, and this pause's, once


def test_a_scheduled_pause_is_decided_so_nobody_is_reminded_or_escalated_to(api, mail, adf):
    created = api.created(start_window={**NIGHT, "days": [NEXT_DAY]}, expires_in=3 * 86400,
                          notify={"email": ["ops@contoso.com"]}, remind_every=300,
                          escalate_after=600, escalate_to={"email": ["lead@contoso.com"]})
    approve_at(created, datetime.now(timezone.utc))
    assert api.record(created["pause_id"])["status"] == "scheduled"
    outcome = sweep.sweep(datetime.now(timezone.utc) + timedelta(seconds=601))
    assert outcome == {"already_settled": 2}  # the reminder's row and the escalation's, dropped
    assert [m["to"] for m in mail.messages] == [["ops@contoso.com"]]  # the request alone


def test_an_unclear_create_run_at_the_start_with_no_run_goes_back_to_scheduled_and_starts_once_later(api, adf,
                                                                                                     configure):
    configure(RUN_LOOKUP_RETRY_SECONDS="0.1")  # the second look for the run, sooner than in production
    created = api.created(start_window=NIGHT, expires_in=3 * 86400)
    approve_at(created, EVENING)
    adf.inject("createRun", "before", status=500, code="InternalServerError", message="try later")
    assert sweep.sweep(later(OPENING, seconds=1)) == {"retry": 1}
    record = api.record(created["pause_id"])
    assert record["status"] == "scheduled" and adf.runs == []  # not pending: it was approved, and is not expired
    assert sweep.sweep(later(OPENING, minutes=1)) == {"started": 1}
    assert len(adf.runs) == 1 and api.record(created["pause_id"])["status"] == "restarted"


def test_a_start_whose_claim_is_reconciled_meanwhile_records_its_run_once_and_keeps_the_decision(api, adf,
                                                                                               configure, monkeypatch):
    from shared.lifecycle import recovery
    from shared.storage.pauses import get_store
    from shared.targets.adf import Adf

    configure(STALE_CLAIM_SECONDS="0.001")  # the start's own claim looks stale to the reconciliation at once
    created = api.created(start_window=NIGHT, expires_in=3 * 86400)
    approve_at(created, EVENING, comment="tonight")
    real_start = Adf.start_run

    def start_after_a_reconciliation(self, target, parameters):
        # Another timer instance takes the claim for dead and finds no run: back to scheduled.
        recovery.reconcile(created["pause_id"], get_store().get(created["pause_id"]), later(OPENING, seconds=2))
        return real_start(self, target, parameters)

    monkeypatch.setattr(Adf, "start_run", start_after_a_reconciliation)
    sweep.sweep(later(OPENING, seconds=1))
    monkeypatch.setattr(Adf, "start_run", real_start)
    record = api.record(created["pause_id"])
    [run] = adf.runs
    assert record["status"] == "restarted" and record["run_id"] == run["runId"]
    assert record["decided_at"] == iso(EVENING) and record["comment"] == "tonight"
    sweep.sweep(later(OPENING, days=4))  # every row left comes due: nothing starts it again
    assert len(adf.runs) == 1


def test_no_pause_is_scheduled_without_the_timers_visit_at_its_start(api, adf, monkeypatch):
    from shared.storage.due_index import DueIndex

    created = api.created(start_window=NIGHT, expires_in=3 * 86400)
    real_add = DueIndex.add

    def refused(self, pause_id, due_at):
        raise RuntimeError("storage refused the row")

    monkeypatch.setattr(DueIndex, "add", refused)
    with pytest.raises(Exception):
        approve_at(created, EVENING)
    monkeypatch.setattr(DueIndex, "add", real_add)
    assert api.record(created["pause_id"])["status"] == "pending"  # nothing was decided
    assert approve_at(created, EVENING)["status"] == "scheduled"


def test_a_reconciled_start_that_finds_its_run_keeps_the_approvers_decision(api, adf, configure, monkeypatch):
    from shared.lifecycle import recovery
    from shared.storage.pauses import get_store
    from shared.targets.adf import Adf

    configure(STALE_CLAIM_SECONDS="0.001")
    # Times near the real clock: Data Factory (the stand-in) files the run under the real time it started.
    approved_at = datetime.now(timezone.utc).replace(microsecond=0)
    start = approved_at + timedelta(seconds=30)
    created = api.created(allow_start_at=True, expires_in=86400)
    approve_at(created, approved_at, comment="in half a minute", start_at_text=iso(start))
    real_start = Adf.start_run

    def start_then_reconciled(self, target, parameters):
        run_id = real_start(self, target, parameters)
        # The process "dies" here as far as another timer instance can tell: it finds the run and records it.
        recovery.reconcile(created["pause_id"], get_store().get(created["pause_id"]), start + timedelta(seconds=2))
        return run_id

    monkeypatch.setattr(Adf, "start_run", start_then_reconciled)
    sweep.sweep(start + timedelta(seconds=1))
    record = api.record(created["pause_id"])
    [run] = adf.runs
    assert record["status"] == "restarted" and record["run_id"] == run["runId"]
    assert "found in Data Factory" in record["last_error"]  # recorded by the reconciliation
    assert record["decided_at"] == iso(approved_at) and record["decided_by"] is None  # the approval's, not the timer's


def test_a_chosen_start_the_window_refuses_shows_the_page_again_with_the_message_by_it(api, adf):
    from urllib.parse import urlencode

    created = api.created(start_window=NIGHT, allow_start_at=True, expires_in=3 * 86400,
                          form=[{"name": "size", "type": "integer"}, {"name": "go", "type": "boolean",
                                                                      "default": True}])
    day = OPENING.astimezone(AMSTERDAM).date() + timedelta(days=1)
    body = urlencode({"form.size": "7", "start_at": f"{day}T12:00", "comment": "at noon?"}).encode()
    response = api.call("restart", "POST", f"restart/{created['token']}", body=body,
                        route_params={"token": created["token"]},
                        headers={"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    html = response.get_body().decode()
    assert '<p class="error" id="start-error" role="alert">must be inside the start window' in html
    assert f'value="{day}T12:00"' in html and 'aria-invalid="true"' in html and "at noon?" in html
    assert 'name="form.size" value="7"' in html or 'value="7"' in html
    assert 'name="form.go" value="true" checked' not in html  # unticked as sent
    assert api.record(created["pause_id"])["status"] == "pending" and adf.runs == []
