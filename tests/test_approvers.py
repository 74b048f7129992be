"""Named approvers: personal links, N-of-M quorum, no self-approval, sign-in through App Service Authentication."""

import base64
import json
import threading

import pytest

pytestmark = pytest.mark.integration

ALICE, BOB, CAROL, DAVE = "alice@contoso.com", "bob@contoso.com", "carol@contoso.com", "dave@contoso.com"


def principal_headers(who, roles=()):
    """What App Service Authentication writes for a signed-in Entra ID user."""
    claims = [{"typ": "preferred_username", "val": who}, {"typ": "name", "val": who.split("@")[0].title()},
              *({"typ": "roles", "val": role} for role in roles)]
    body = {"auth_typ": "aad", "claims": claims, "name_typ": "preferred_username", "role_typ": "roles"}
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(body).encode()).decode(),
            "X-MS-CLIENT-PRINCIPAL-NAME": who, "X-MS-CLIENT-PRINCIPAL-IDP": "aad"}


# A program signed in with a bearer token (App Service checked it, then wrote the principal headers).
BEARER = {"Authorization": "Bearer token-that-app-service-checked"}


def decide(api, action, token, who=None, body=None, html=False):
    """A JSON decision, as a program signed in as `who` (or nobody) sends it."""
    headers = {"Accept": "text/html" if html else "application/json", "Content-Type": "application/json",
               "User-Agent": "pytest", "X-Forwarded-For": "203.0.113.9",
               **({**principal_headers(who), **BEARER} if who else {})}
    return api.call(action, "POST", f"{action}/{token}", body=json.dumps(body or {}).encode(), headers=headers,
                    route_params={"token": token})


def page(api, action, token, who=None):
    headers = {"Accept": "text/html", **(principal_headers(who) if who else {})}
    return api.call(action, "GET", f"{action}/{token}", headers=headers, route_params={"token": token})


def personal(created, who):
    [link] = [link for link in created["approver_links"] if link["approver"] == who]
    return link["restart_url"].rsplit("/", 1)[1]


@pytest.fixture
def quorum(api):
    """A pause that needs 2 of alice, bob and carol; carol asked for it."""
    return api.created(approvers=[ALICE, "Bob@Contoso.com", CAROL], required_approvals=2, requested_by=CAROL,
                       return_approver_links=True)


def test_each_approver_who_may_decide_gets_a_personal_link_and_the_record_names_them(api, quorum, table):
    assert [link["approver"] for link in quorum["approver_links"]] == [ALICE, BOB]  # the requester gets none
    assert all(link["restart_url"] != quorum["restart_url"] for link in quorum["approver_links"])
    record = api.record(quorum["pause_id"])
    assert record["approvers"] == [ALICE, BOB, CAROL] and record["required_approvals"] == 2
    assert record["requested_by"] == CAROL and record["approvals"] == []
    stored = json.dumps({k: str(v) for k, v in table.get_entity(quorum["pause_id"], "pause").items()})
    for link in quorum["approver_links"]:
        assert link["restart_url"].rsplit("/", 1)[1][32:] not in stored  # only hashes are kept


def test_the_quorum_continues_the_pipeline_once_after_the_second_distinct_approval(api, adf, quorum):
    first = decide(api, "restart", personal(quorum, ALICE), body={"comment": "fine"})
    assert first.status_code == 200 and api.json(first)["status"] == "pending"
    assert [a["approver"] for a in api.json(first)["approvals"]] == [ALICE] and adf.runs == []
    again = decide(api, "restart", personal(quorum, ALICE))
    assert again.status_code == 409 and "already approved" in api.json(again)["detail"]
    second = decide(api, "restart", personal(quorum, BOB), body={"comment": "go"})
    assert second.status_code == 200 and api.json(second)["status"] == "restarted"
    [run] = adf.runs
    record = api.record(quorum["pause_id"])
    assert record["run_id"] == run["runId"] and record["decided_by"] == BOB
    assert [(a["approver"], a["via"], a["comment"], a["client_ip"]) for a in record["approvals"]] == [
        (ALICE, "personal_link", "fine", "203.0.113.9"), (BOB, "personal_link", "go", "203.0.113.9")]
    assert decide(api, "restart", personal(quorum, ALICE)).status_code == 409


@pytest.mark.parametrize("approvers, required", [(6, 4), (12, 12)])
def test_approvers_clicking_at_the_same_instant_are_all_counted_and_start_one_run(api, adf, approvers, required):
    everyone = [f"approver{i}@contoso.com" for i in range(approvers)]
    created = api.created(approvers=everyone, required_approvals=required, return_approver_links=True)
    barrier, statuses = threading.Barrier(len(everyone)), []

    def click(who):
        barrier.wait()
        statuses.append(decide(api, "restart", personal(created, who)).status_code)

    threads = [threading.Thread(target=click, args=(who,)) for who in everyone]
    [t.start() for t in threads]
    [t.join() for t in threads]
    # Every click lost races only to other approvals landing: none before the quorum is turned away.
    assert len(adf.runs) == 1
    record = api.record(created["pause_id"])
    assert record["status"] == "restarted" and len(record["approvals"]) == required
    assert len({a["approver"] for a in record["approvals"]}) == required
    assert statuses.count(200) == required and statuses.count(409) == approvers - required


def test_with_sign_in_off_the_shared_link_of_a_pause_with_approvers_is_403_and_says_why(api, quorum, adf):
    response = decide(api, "restart", quorum["token"])
    assert response.status_code == 403 and api.json(response)["reason"] == "personal_link"
    shown = page(api, "restart", quorum["token"])
    assert shown.status_code == 403 and "personal link" in shown.get_body().decode()
    assert adf.runs == [] and api.record(quorum["pause_id"])["approvals"] == []


@pytest.mark.parametrize("damage", [{"approvers__0": b"[not json"}, {"approvers__0": b'{"a": 1}'},
                                    {"approvers__0": None}, {"required_approvals": "two"}])
def test_a_damaged_approver_list_or_count_never_lowers_the_bar(api, quorum, adf, table, damage):
    """Damage to what names the approvers never turns the shared link into a credential, nor one
    approval into a quorum: approvers unreadable is a 409 damaged record, approvers gone leaves the
    shared link refused, the count unreadable reads as every approver."""
    entity = table.get_entity(quorum["pause_id"], "pause")
    entity.update(damage)
    table.update_entity({k: v for k, v in entity.items() if v is not None}, mode="replace")
    shared_link = decide(api, "restart", quorum["token"])
    alice = decide(api, "restart", quorum["approver_links"][0]["restart_url"].rsplit("/", 1)[1])
    if damage.get("approvers__0") is None and "approvers__0" in damage:
        assert shared_link.status_code == 403 and api.json(shared_link)["reason"] == "personal_link"
    elif "approvers__0" in damage:
        assert shared_link.status_code == 409 and api.json(shared_link)["code"] == "damaged_record"
        assert alice.status_code == 409
    else:
        assert shared_link.status_code == 403 and alice.status_code == 200
        bob = decide(api, "restart", quorum["approver_links"][1]["restart_url"].rsplit("/", 1)[1])
        assert bob.status_code == 200 and api.json(bob)["status"] == "pending"  # two of three: short of all
    assert adf.runs == []


def test_with_sign_in_off_principal_headers_are_ignored_and_never_recorded(api):
    created = api.created()
    assert decide(api, "cancel", created["token"], who=ALICE, body={"reason": "no"}).status_code == 200
    assert api.record(created["pause_id"])["decided_by"] is None


def test_cancel_by_an_approver_needs_a_reason_and_cancels_for_everyone(api, quorum, adf):
    decide(api, "restart", personal(quorum, ALICE))
    bob_cancel = personal(quorum, BOB)
    bob_cancel_token = bob_cancel
    missing = decide(api, "cancel", bob_cancel_token)
    assert missing.status_code == 400 and api.json(missing)["errors"][0]["field"] == "reason"
    assert decide(api, "cancel", bob_cancel_token, body={"reason": "wrong month"}).status_code == 200
    record = api.record(quorum["pause_id"])
    assert record["status"] == "cancelled" and record["decided_by"] == BOB and record["reason"] == "wrong month"
    assert decide(api, "restart", personal(quorum, ALICE)).status_code == 409 and adf.runs == []


@pytest.mark.parametrize("body, field", [
    ({"approvers": [ALICE], "required_approvals": 2}, "required_approvals"),
    ({"approvers": [ALICE, CAROL], "required_approvals": 2, "requested_by": CAROL}, "required_approvals"),
    ({"approvers": [ALICE, "ALICE@contoso.com"]}, "approvers"),
    ({"approvers": []}, "approvers"),
    ({"approvers": ["not an address"]}, "approvers[0]"),
    ({"approvers": [f"a{i}@contoso.com" for i in range(21)]}, "approvers"),
    ({"required_approvals": 1}, "required_approvals"),
    ({"approvers": [ALICE], "allow_self_approval": "yes"}, "allow_self_approval"),
])
def test_approver_fields_are_checked_naming_the_field(api, body, field):
    response = api.pause(**body)
    assert response.status_code == 400
    assert field in [error["field"] for error in api.json(response)["errors"]]


def test_self_approval_when_allowed_gives_the_requester_a_personal_link(api, adf):
    created = api.created(approvers=[ALICE, CAROL], requested_by=CAROL, allow_self_approval=True,
                          return_approver_links=True)
    assert {link["approver"] for link in created["approver_links"]} == {ALICE, CAROL}
    assert decide(api, "restart", personal(created, CAROL)).status_code == 200 and len(adf.runs) == 1


# Sign-in: App Service Authentication in front of the links.

@pytest.fixture
def signed_in(configure):
    configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED="True")


@pytest.mark.parametrize("enabled", [None, "False", "1"])
def test_sign_in_without_app_service_authentication_in_front_refuses_rather_than_trusting_headers(
        api, adf, quorum, configure, caplog, enabled):
    configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED=enabled)
    forged = decide(api, "restart", quorum["token"], who=ALICE)
    assert forged.status_code == 503 and api.json(forged)["code"] == "sign_in_unavailable"
    shown = page(api, "restart", quorum["token"], who=ALICE)
    assert shown.status_code == 503 and "App Service Authentication" in shown.get_body().decode()
    console = api.call("console_page", "GET", "console", headers={"Accept": "text/html",
                                                                  **principal_headers(ALICE, ["Pauses.Operator"])})
    assert console.status_code == 503
    assert api.record(quorum["pause_id"])["approvals"] == [] and adf.runs == []
    assert any("WEBSITE_AUTH_ENABLED is not True" in r.getMessage() for r in caplog.records)
    assert not any(quorum["token"] in r.getMessage() for r in caplog.records)


def test_with_sign_in_a_post_needs_a_principal_and_the_page_offers_the_sign_in(api, quorum, signed_in):
    response = decide(api, "restart", quorum["token"])
    assert response.status_code == 401 and api.json(response)["code"] == "sign_in_required"
    shown = page(api, "restart", quorum["token"])
    html = shown.get_body().decode()
    assert shown.status_code == 401 and "/.auth/login/aad?post_login_redirect_uri=%2Fapi%2Frestart%2F" in html


def test_with_sign_in_the_shared_link_works_for_named_approvers_only(api, adf, quorum, signed_in):
    assert decide(api, "restart", quorum["token"], who="Alice@Contoso.com").status_code == 200
    stranger = decide(api, "restart", quorum["token"], who=DAVE)
    assert stranger.status_code == 403 and api.json(stranger)["reason"] == "not_an_approver"
    requester = decide(api, "restart", quorum["token"], who=CAROL)
    assert requester.status_code == 403 and api.json(requester)["reason"] == "requester"
    assert "someone else must approve" in page(api, "restart", quorum["token"], who=CAROL).get_body().decode()
    assert decide(api, "restart", quorum["token"], who=BOB).status_code == 200
    [run] = adf.runs
    record = api.record(quorum["pause_id"])
    assert [(a["approver"], a["via"]) for a in record["approvals"]] == [(ALICE, "sign_in"), (BOB, "sign_in")]


def test_with_sign_in_a_personal_link_decides_only_as_its_approver(api, quorum, signed_in):
    wrong = decide(api, "restart", personal(quorum, ALICE), who=BOB)
    assert wrong.status_code == 403 and api.json(wrong)["reason"] == "someone_else"
    assert f"This link is for {ALICE}; you are signed in as {BOB}" in api.json(wrong)["detail"]
    assert decide(api, "restart", personal(quorum, ALICE), who=ALICE).status_code == 200


def test_with_sign_in_and_no_approvers_any_signed_in_person_but_the_requester_decides(api, signed_in, adf):
    created = api.created(requested_by=CAROL)
    assert decide(api, "restart", created["token"], who=CAROL).status_code == 403
    assert decide(api, "restart", created["token"], who=DAVE).status_code == 200
    assert api.record(created["pause_id"])["decided_by"] == DAVE


def test_a_forged_or_broken_principal_header_is_not_a_sign_in(api, quorum, signed_in):
    headers = {"Accept": "application/json", "Content-Type": "application/json", "X-MS-CLIENT-PRINCIPAL": "%%%"}
    response = api.call("restart", "POST", f"restart/{quorum['token']}", body=b"{}", headers=headers,
                        route_params={"token": quorum["token"]})
    assert response.status_code == 401


def test_each_approver_is_emailed_their_own_links_and_others_the_shared_ones(api, smtp, adf):
    created = api.created(approvers=[ALICE, BOB, CAROL], required_approvals=2, requested_by=CAROL,
                          notify={"email": [ALICE, BOB, "ops@contoso.com"], "subject": "Load?"},
                          return_approver_links=True)
    by_recipient = {tuple(rcpts): message for rcpts, message in smtp.messages}
    assert set(by_recipient) == {(ALICE,), (BOB,), ("ops@contoso.com",)}
    for who in (ALICE, BOB):
        text = by_recipient[(who,)].get_body(preferencelist=("plain",)).get_content()
        assert personal(created, who) in text and created["token"] not in text
        assert f"These links are yours ({who})" in text and "0 of 2 approvals so far" in text
        assert "Approvers:     alice@contoso.com, bob@contoso.com" in text
    assert created["token"] in by_recipient[("ops@contoso.com",)].get_body(preferencelist=("plain",)).get_content()


def test_approvers_are_the_default_recipients_and_their_links_are_not_in_the_answer(api, smtp):
    created = api.created(approvers=[ALICE, BOB], notify={})
    assert sorted(rcpts[0] for rcpts, _ in smtp.messages) == [ALICE, BOB]
    assert "approver_links" not in created
    assert api.record(created["pause_id"])["approver_links_returned"] is False


def test_personal_links_are_returned_only_when_asked_and_the_record_says_so(api, quorum):
    assert len(quorum["approver_links"]) == 2
    assert api.record(quorum["pause_id"])["approver_links_returned"] is True


@pytest.mark.parametrize("fields", [
    {"approvers": [ALICE, BOB]},                                       # nobody would get a personal link
    {"approvers": [ALICE, BOB], "notify": {"email": [ALICE, "ops@contoso.com"]}},  # bob would not
])
def test_without_sign_in_a_pause_some_approver_could_never_decide_is_refused(api, smtp, fields):
    response = api.pause(**fields)
    assert response.status_code == 400
    [error] = api.json(response)["errors"]
    assert error["field"] == "notify" and error["rule"] == "approvers_unreached" and BOB in error["message"]
    assert smtp.messages == []


def test_with_sign_in_approvers_need_no_personal_link_delivered(api, configure):
    configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED="True")
    created = api.created(approvers=[ALICE, BOB])
    assert "approver_links" not in created and created["restart_url"]


def test_return_approver_links_needs_approvers(api):
    response = api.pause(return_approver_links=True)
    assert response.status_code == 400
    assert [(e["field"], e["rule"]) for e in api.json(response)["errors"]] == [("return_approver_links",
                                                                                "needs_approvers")]



# Look-alike identities: Unicode spellings that lower-casing or normalisation would fold onto another name.

LOOK_ALIKES = {  # (look-alike, the ASCII identity it could pass for, what a signed-in look-alike gets)
    "kelvin_sign": ("\u212aate@contoso.com", "kate@contoso.com", "identity_refused"),
    "fi_ligature": ("\ufb01nance@contoso.com", "finance@contoso.com", "identity_refused"),
    "fullwidth": ("\uff4b\uff41\uff54\uff45@contoso.com", "kate@contoso.com", "identity_refused"),
    "sharp_s": ("stra\u00dfe@contoso.com", "strasse@contoso.com", "identity_refused"),
    "dotted_capital_i": ("\u0130tem@contoso.com", "item@contoso.com", "identity_refused"),
    # A dotless i folds onto nothing else: a name of its own, which is no approver's.
    "dotless_i": ("k\u0131ra@contoso.com", "kira@contoso.com", "not_yours"),
}


@pytest.mark.parametrize("case", LOOK_ALIKES)
@pytest.mark.parametrize("field", ["approvers", "requested_by"])
def test_a_look_alike_identity_in_a_pause_is_400_naming_the_field(api, case, field):
    look_alike, _, _ = LOOK_ALIKES[case]
    body = {"approvers": [look_alike]} if field == "approvers" else {"approvers": [ALICE], "requested_by": look_alike}
    response = api.pause(**body)
    assert response.status_code == 400
    assert [e["field"] for e in api.json(response)["errors"]] == [f"{field}[0]" if field == "approvers" else field]


@pytest.fixture
def easyauth(configure):
    configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED="True")


@pytest.mark.parametrize("case", LOOK_ALIKES)
def test_a_signed_in_look_alike_never_decides_as_the_approver_it_resembles(api, adf, easyauth, case):
    look_alike, resembled, code = LOOK_ALIKES[case]
    created = api.created(approvers=[resembled, DAVE], requested_by=CAROL, return_approver_links=True)
    for token in (created["token"], personal(created, resembled)):
        for action, body in (("restart", {}), ("cancel", {"reason": "no"})):
            response = decide(api, action, token, who=look_alike, body=body)
            assert response.status_code == 403 and api.json(response)["code"] == code, response.get_body()
        shown = page(api, "restart", token, who=look_alike)
        assert shown.status_code == 403
        if code == "identity_refused":
            assert "This sign-in name cannot decide here" in shown.get_body().decode()
    record = api.record(created["pause_id"])
    assert record["status"] == "pending" and record["approvals"] == [] and adf.runs == []
    # The approver it resembles, signed in under the plain name (any ASCII case), still decides.
    assert decide(api, "restart", created["token"], who=resembled.upper()).status_code == 200 and len(adf.runs) == 1


def test_a_signed_in_look_alike_of_the_requester_is_refused_not_treated_as_them(api, adf, easyauth):
    created = api.created(requested_by="kate@contoso.com")
    response = decide(api, "restart", created["token"], who="\u212aate@contoso.com")
    assert response.status_code == 403 and api.json(response)["code"] == "identity_refused"
    assert "\\u212aate@contoso.com" in api.json(response)["detail"]  # shown escaped, so the odd letter is visible
    assert adf.runs == [] and api.record(created["pause_id"])["decided_by"] is None
