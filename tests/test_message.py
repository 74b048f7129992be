"""The one message model every channel renders (shared/notify/message.py)."""

from shared.notify.message import approval_request

LINKS = {"restart_url": "https://app.example/api/restart/r1", "cancel_url": "https://app.example/api/cancel/c1"}


def request(**fields):
    values = {"title": None, "message": None, "pipeline_name": "load_sales", "factory_name": "adf-prod",
              "requested_by": None, "approvers": (), "required": None, "checks": 0, "expires_at": "2026-12-07T10:00:00Z",
              **LINKS, **fields}
    return approval_request(**values)


def test_a_request_says_what_runs_where_until_when_with_the_shared_links():
    message = request()
    assert message.title == "Approval needed: load_sales" and message.text is None and message.progress is None
    assert message.facts == (("Pipeline", "load_sales"), ("Factory", "adf-prod"),
                             ("Expires", "Monday 7 December 2026, 10:00 UTC"))
    assert [(b.label, b.url, b.primary) for b in message.buttons] == [
        ("Review and approve", LINKS["restart_url"], True), ("Review and cancel", LINKS["cancel_url"], False)]
    assert message.summary == "Approval needed: load_sales (load_sales in adf-prod)"


def test_who_asked_who_decides_progress_and_checks_are_facts_when_there_are_any():
    message = request(title="  Publish\nQ4  ", message="  Numbers are in.  ", requested_by="dave@contoso.com",
                      approvers=("alice@contoso.com", "bob@contoso.com"), required=2, checks=1)
    assert message.title == "Publish Q4" and message.text == "Numbers are in."
    assert ("Asked by", "dave@contoso.com") in message.facts
    assert ("Approvers", "alice@contoso.com, bob@contoso.com") in message.facts
    assert ("Checks", "1 automated check must pass as well") in message.facts
    assert message.progress == "0 of 2 approvals so far"


def test_a_follow_up_says_what_became_of_the_pause_who_decided_when_and_the_run():
    from shared.lifecycle.model import APP, FINAL, TIMER
    from shared.notify.message import decided

    common = {"decided_at": "2026-12-06T14:02:09Z", "title": " Load\nNovember ", "pipeline_name": "load_sales",
              "factory_name": "adf-prod"}
    message = decided(status="restarted", decided_by="alice@contoso.com", run_id="8c1f", **common)
    assert message.title == "Approved by alice@contoso.com at 14:02 UTC" and message.buttons == ()
    assert ("Request", "Load November") in message.facts and ("Run", "8c1f") in message.facts
    assert decided(status="expired", decided_by=TIMER, run_id=None, **common).title == "Expired at 14:02 UTC"
    assert decided(status="cancelled", decided_by=APP, run_id=None, **common).title == \
        "Cancelled by the app at 14:02 UTC"
    assert decided(status="restarted", decided_by=TIMER, run_id="r", **common).title == \
        "Continued on timeout at 14:02 UTC"
    assert decided(status="restarted", decided_by="checks", run_id="r", **common).title.startswith(
        "Continued: the checks passed")
    assert decided(status="failed", decided_by="alice@contoso.com", run_id=None, **common).title == \
        "Failed at 14:02 UTC"
    assert {decided(status=s.value, decided_by=None, run_id=None, **common).title.split()[0] for s in FINAL} == {
        "Approved", "Released", "Cancelled", "Expired", "Failed"}


def test_every_renderer_shows_every_part_of_the_one_message():
    import json

    from shared.notify import slack, teams
    from shared.notify.email import build_email

    message = request(title="Publish Q4", message="Numbers are in.", requested_by="dave@contoso.com",
                      approvers=("alice@contoso.com", "bob@contoso.com"), required=2, checks=1, approved=1,
                      you="alice@contoso.com")
    parts = [message.title, message.text, message.progress, message.note,
             *(value for _, value in message.facts), *(label for label, _ in message.facts),
             *(button.url for button in message.buttons), *(button.label for button in message.buttons)]
    email = build_email(sender="pauses@example.test", to=["alice@contoso.com"], subject=None, message=message)
    shown = {"email text": email.get_body(("plain",)).get_content(),
             "email html": email.get_body(("html",)).get_content(),
             "slack": json.dumps(slack.render(message), ensure_ascii=False),
             "teams": json.dumps(teams.render(message), ensure_ascii=False)}
    missing = {where: [part for part in parts if part not in text and part.upper() not in text]
               for where, text in shown.items()}
    assert missing == {where: [] for where in shown}
    assert message.progress == "1 of 2 approvals so far" and "alice@contoso.com" in message.note
