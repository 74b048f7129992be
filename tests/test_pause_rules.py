"""The rules only a pause body's fields together can say (shared/pause_rules.py), on parsed values."""

import pytest

from shared import pause_rules
from shared.schema import Problems

ALICE, CAROL = "alice@contoso.com", "carol@contoso.com"


def found(check, values, *args) -> list:
    problems = Problems()
    check(values, *args, problems)
    return [(error["field"], error["rule"]) for error in problems.errors]


@pytest.mark.parametrize("values, expires_in, expected", [
    ({}, 86400, []),
    ({"escalate_after": 600, "escalate_to": {"email": ["lead@contoso.com"]}}, 86400, []),
    ({"escalate_after": 600, "escalate_to": {"email": ["lead@contoso.com"]}}, 600, [("escalate_after", "range")]),
    ({"escalate_after": 600}, 86400, [("escalate_after", "needs_escalate_to")]),
    ({"escalate_to": {"channels": ["ops"]}}, 86400, [("escalate_to", "needs_escalate_after")]),
    ({"escalate_after": 600, "escalate_to": {"email": []}}, 86400, [("escalate_to", "required")]),
    ({"escalate_after": 600, "escalate_to": {"approvers": [CAROL]}}, 86400,
     [("escalate_to.approvers", "needs_approvers")]),
    ({"escalate_after": 600, "approvers": [ALICE], "escalate_to": {"approvers": [ALICE, CAROL]}}, 86400,
     [("escalate_to.approvers", "already_approver")]),
    ({"escalate_after": 600, "approvers": [ALICE], "requested_by": CAROL, "escalate_to": {"approvers": [CAROL]}},
     86400, [("escalate_to.approvers", "requested_by")]),
    ({"escalate_after": 600, "approvers": [ALICE], "requested_by": CAROL, "allow_self_approval": True,
      "escalate_to": {"approvers": [CAROL]}}, 86400, []),
    ({"escalate_after": 600, "escalate_to": {"channels": ["ops", "ops"]}}, 86400, [("escalate_to.channels", "unique")]),
])
def test_an_escalation_must_be_able_to_happen_and_to_add_only_new_deciders(values, expires_in, expected):
    assert found(pause_rules.check_escalation, values, expires_in) == expected


@pytest.mark.parametrize("values, expected", [
    ({"remind_every": 300, "notify": {"channels": ["ops"]}}, []),
    ({"remind_max": 2, "remind_every": 300, "notify": {}}, []),
    ({"remind_max": 2, "notify": {}}, [("remind_max", "needs_remind_every")]),
    ({"remind_every": 300}, [("remind_every", "needs_notify")]),
])
def test_reminders_need_an_interval_and_someone_to_remind(values, expected):
    assert found(pause_rules.check_reminders, values) == expected


@pytest.mark.parametrize("values, expected", [
    ({"approvers": [ALICE], "required_approvals": 1}, []),
    ({"approvers": [ALICE, CAROL], "requested_by": CAROL, "required_approvals": 2},
     [("required_approvals", "range")]),
    ({"required_approvals": 1}, [("required_approvals", "needs_approvers")]),
    ({"notify": {"subject": "x"}}, [("notify.email", "required")]),
    ({"notify": {"channels": ["ops", "ops"]}}, [("notify.channels", "unique")]),
])
def test_a_quorum_must_be_reachable_and_an_email_must_have_recipients(values, expected):
    assert found(pause_rules.check_approvers, values) == expected
