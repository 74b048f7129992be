"""Follow-ups (shared/followups.py): once a pause posted to chat channels is decided, the timer tells each
channel that got the request how it ended, once; throttles and refusals are tried again, a lost answer never."""

from datetime import datetime, timedelta, timezone


from shared import sweep

SIGNED_IN = {"APPROVER_SIGN_IN": "easyauth", "WEBSITE_AUTH_ENABLED": "True"}


def now():
    return datetime.now(timezone.utc) + timedelta(seconds=1)


def followups(chat, kind, name) -> list:
    return chat.posts(kind, name)[1:]  # the first post is the request


def decided_notes(api, pause_id) -> list:
    return [(n["channel"], n["outcome"]) for n in api.record(pause_id)["notifications"] if n["purpose"] == "decided"]


def test_an_approval_is_followed_up_in_each_channel_once_with_who_when_and_the_run(api, adf, chat, channels):
    created = api.created(notify={"channels": [channels["teams"], channels["slack"]]},
                          notification={"title": "Load November"})
    approved = api.json(api.decide("restart", created["token"], json_body={"comment": "ok"}))
    assert approved["status"] == "restarted" and followups(chat, "teams", channels["teams"]) == []  # not in the click
    assert sweep.sweep(now()) == {"notified": 1}
    [card] = followups(chat, "teams", channels["teams"])
    [blocks] = followups(chat, "slack", channels["slack"])
    assert blocks["blocks"][0]["text"]["text"].startswith("Approved at ")  # a shared link names nobody
    for body in (card, blocks):
        assert approved["run_id"] in str(body) and "Load November" in str(body)
        assert created["restart_url"] not in str(body)
    assert decided_notes(api, created["pause_id"]) == [(channels["teams"], "sent"), (channels["slack"], "sent")]
    assert sweep.sweep(now()) == {} and len(chat.posts("teams", channels["teams"])) == 2  # once only


def test_a_signed_in_approver_is_named_in_the_follow_up(api, adf, chat, channels, configure):
    from tests.test_approvers import principal_headers

    configure(**SIGNED_IN)
    created = api.created(notify={"channels": [channels["slack"]]})
    response = api.call("restart", "POST", f"restart/{created['token']}", body=b"{}",
                        headers={"Content-Type": "application/json", "Authorization": "Bearer x",
                                 **principal_headers("carol@contoso.com")}, route_params={"token": created["token"]})
    assert response.status_code == 200, response.get_body()
    sweep.sweep(now())
    [blocks] = followups(chat, "slack", channels["slack"])
    assert blocks["blocks"][0]["text"]["text"].startswith("Approved by carol@contoso.com at ")


def test_a_cancel_and_an_expiry_are_followed_up_too(api, chat, channels):
    cancelled = api.created(notify={"channels": [channels["teams"]]})
    api.decide("cancel", cancelled["token"], json_body={"reason": "wrong day"})
    expiring = api.created(notify={"channels": [channels["slack"]]}, expires_in=60)
    assert sweep.sweep(now() + timedelta(seconds=61)) == {"notified": 1, "expired": 1}  # the expiry's: next run
    assert sweep.sweep(now() + timedelta(seconds=62)) == {"notified": 1}
    [cancel] = followups(chat, "teams", channels["teams"])
    [expiry] = followups(chat, "slack", channels["slack"])
    assert "Cancelled at " in str(cancel) and expiry["blocks"][0]["text"]["text"].startswith("Expired at ")
    assert expiring["pause_id"] and decided_notes(api, expiring["pause_id"]) == [(channels["slack"], "sent")]


def test_a_throttled_follow_up_is_posted_after_its_retry_after(api, chat, channels):
    created = api.created(notify={"channels": [channels["slack"]]})
    api.decide("cancel", created["token"], json_body={})
    chat.answer("slack", channels["slack"], status=429, retry_after=120)
    assert sweep.sweep(now()) == {"retry": 1} and followups(chat, "slack", channels["slack"]) == []
    assert decided_notes(api, created["pause_id"]) == []
    assert sweep.sweep(now() + timedelta(seconds=60)) == {}  # not due before Retry-After
    assert sweep.sweep(now() + timedelta(seconds=121)) == {"notified": 1}
    assert decided_notes(api, created["pause_id"]) == [(channels["slack"], "sent")]


def test_a_refused_follow_up_is_tried_three_times_then_recorded_failed(api, chat, channels):
    created = api.created(notify={"channels": [channels["teams"]]})
    api.decide("cancel", created["token"], json_body={})
    chat.answer("teams", channels["teams"], status=400, times=3)
    assert sweep.sweep(now()) == {"retry": 1}
    assert sweep.sweep(now() + timedelta(seconds=61)) == {"retry": 1}
    assert sweep.sweep(now() + timedelta(seconds=122)) == {"notified": 1}
    assert decided_notes(api, created["pause_id"]) == [(channels["teams"], "failed")]
    assert followups(chat, "teams", channels["teams"]) == []


def test_a_follow_up_whose_answer_was_lost_is_unknown_and_never_posted_again(api, chat, channels):
    created = api.created(notify={"channels": [channels["teams"]]})
    api.decide("cancel", created["token"], json_body={})
    chat.lose("teams", channels["teams"])
    assert sweep.sweep(now()) == {"notified": 1}
    assert decided_notes(api, created["pause_id"]) == [(channels["teams"], "unknown")]
    assert sweep.sweep(now() + timedelta(seconds=3600)) == {} and len(followups(chat, "teams", channels["teams"])) == 1


def test_only_the_channels_that_got_the_request_hear_how_it_ended(api, chat, channels):
    chat.answer("slack", channels["slack"], "channel_is_archived")
    response = api.pause(notify={"channels": [channels["teams"], channels["slack"]]})
    assert response.status_code == 502
    assert sweep.sweep(now()) == {"notified": 1}
    [card] = followups(chat, "teams", channels["teams"])
    assert "Cancelled by the app" in str(card) and followups(chat, "slack", channels["slack"]) == []


def test_two_timer_instances_on_one_row_post_each_follow_up_once(api, adf, chat, channels):
    import threading

    from shared import followups as owed
    from shared.storage.due_index import get_due_index

    created = api.created(notify={"channels": [channels["teams"], channels["slack"]]})
    api.decide("restart", created["token"], json_body={})
    [row] = [due for due in get_due_index().due(now()) if due.kind == owed.KIND]
    outcomes, start = [], threading.Barrier(2)

    def visit():
        start.wait()
        outcomes.append(owed.settle(row, now()))

    workers = [threading.Thread(target=visit) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert "notified" in outcomes and len(followups(chat, "teams", channels["teams"])) == 1
    assert len(followups(chat, "slack", channels["slack"])) == 1
    assert decided_notes(api, created["pause_id"]) == [(channels["teams"], "sent"), (channels["slack"], "sent")]


def test_a_follow_up_cut_off_between_claim_and_answer_stays_unknown_and_is_never_posted(api, chat, channels,
                                                                                        monkeypatch):
    from shared.notify import channels as chat_channels

    created = api.created(notify={"channels": [channels["teams"]]})
    api.decide("cancel", created["token"], json_body={})

    def crash(*_):
        raise RuntimeError("the process died mid-post")

    monkeypatch.setattr(chat_channels, "post", crash)
    sweep.sweep(now())  # counted as a failed visit: the row stays
    monkeypatch.undo()
    assert sweep.sweep(now() + timedelta(seconds=60)) == {"already_settled": 1}
    assert followups(chat, "teams", channels["teams"]) == []
    [note] = [n for n in api.record(created["pause_id"])["notifications"] if n["purpose"] == "decided"]
    assert note["outcome"] == "unknown" and note["detail"].startswith("being posted")


def test_a_decision_still_being_recorded_is_looked_at_again_once_it_must_have_been(api, chat, channels):
    from shared.storage.due_index import FOLLOWUP, get_due_index
    from shared.storage.pauses import get_store

    created = api.created(notify={"channels": [channels["teams"]]})
    stored = get_store().get(created["pause_id"])
    get_store().update(created["pause_id"], {"status": "restarting", "claimed_at": now()}, stored.etag)
    get_due_index().add_work(FOLLOWUP, created["pause_id"], now())
    assert sweep.sweep(now() + timedelta(seconds=1)) == {"rescheduled": 1}
    assert followups(chat, "teams", channels["teams"]) == []


def test_follow_ups_whose_row_was_lost_are_owed_again_when_the_pauses_own_row_comes_due(api, chat, channels):
    from shared.storage.due_index import get_due_index

    created = api.created(notify={"channels": [channels["teams"]]}, expires_in=120)
    api.decide("cancel", created["token"], json_body={})
    for due in get_due_index().due(now()):
        if due.kind == "followup":
            get_due_index().remove(due)  # as if its insert had failed
    assert sweep.sweep(now() + timedelta(seconds=121)) == {"already_settled": 1}  # the pause's own row, at expiry
    assert sweep.sweep(now() + timedelta(seconds=122)) == {"notified": 1}
    [card] = followups(chat, "teams", channels["teams"])
    assert "Cancelled" in str(card)
