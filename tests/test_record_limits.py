"""The largest record the contract allows stays within Table storage's limits (an entity at most 1 MiB, a
property at most 64 KiB): data 256 KiB, every approver, 5 channels, remind_max 20 with every reminder
failing loudly, an escalation to 10 more approvers, 20 addresses and 5 channels, and reassignments — every
message still recorded."""

import json
from datetime import timedelta

import pytest

from shared import sweep
from tests.support import link, made_at

pytestmark = pytest.mark.integration

APPROVERS = [f"approver{i:02d}.with.a.rather.long.name@contoso-data-platform.example" for i in range(20)]
CHANNELS = [f"channel-{i}" for i in range(5)]
ESCALATED = [f"escalated{i:02d}.with.a.rather.long.name@contoso-data-platform.example" for i in range(10)]
LISTED = [f"listed{i:02d}.with.a.rather.long.name@contoso-data-platform.example" for i in range(20)]
ESCALATION_CHANNELS = [f"escalation-{i}" for i in range(5)]


def entity_bytes(entity) -> tuple[int, int]:
    """(the entity's size, its largest property) as Table storage counts them, roughly: UTF-16 names and
    text, binary as bytes, 8 bytes for other values."""
    def value_size(value):
        if isinstance(value, (bytes, bytearray)):
            return len(value)
        if isinstance(value, str):
            return 2 * len(value)
        return 8
    sizes = [2 * len(name) + value_size(value) for name, value in entity.items()]
    return sum(sizes) + 4, max(sizes)


def test_the_largest_record_stays_within_table_storages_limits(api, configure, table, mail, chat):
    configure(APPROVER_SIGN_IN="easyauth", WEBSITE_AUTH_ENABLED="True", CHANNEL_ALLOWED_HOSTS="127.0.0.1",
              **{f"CHANNEL_{name.upper().replace('-', '_')}": f"slack:{chat.url('slack', name)}"
                 for name in CHANNELS + ESCALATION_CHANNELS})
    created = api.created(data={"blob": "d" * (256 * 1024 - 20)}, approvers=APPROVERS, required_approvals=20,
                          notify={"email": APPROVERS, "channels": CHANNELS}, remind_every=300, remind_max=20,
                          notification={"title": "t" * 200, "message": "m" * 4000}, expires_in=30 * 86400,
                          escalate_after=60, escalate_to={"approvers": ESCALATED, "email": LISTED,
                                                          "channels": ESCALATION_CHANNELS})
    made = made_at(api, created)
    for name in CHANNELS + ESCALATION_CHANNELS:  # every channel refuses every message, with the longest answer
        chat.answer("slack", name, status=400, times=100)
    assert sweep.sweep(made + timedelta(seconds=65)) == {"escalated": 1}
    reminded = 0
    for n in range(1, 21):  # each reminder, and the tries again of what the channels refused before it
        for late in range(3):  # work on the same pause in one run may have to wait for the next (retry)
            outcome = sweep.sweep(made + timedelta(seconds=300 * n + 5 + 61 * late))
            reminded += outcome.get("reminded", 0)
            assert set(outcome) <= {"reminded", "notified", "retry"}, outcome
    assert reminded == 20
    for extra in range(3, 8):  # the last tries again of what was refused last
        sweep.sweep(made + timedelta(seconds=300 * 20 + 5 + 61 * extra))
    holder = APPROVERS[0]
    for i in range(20):  # the first approver's part handed on 20 times, each with the longest comment
        last = [m for m in mail.messages if m["to"] == [holder]][-1]
        token = link(last)
        to = f"p{i}@contoso.com"
        response = api.call("reassign", "POST", f"reassign/{token}",
                            body=json.dumps({"to": to, "comment": "c" * 2000}).encode(),
                            headers={"Content-Type": "application/json", "Authorization": "Bearer x",
                                     "X-MS-CLIENT-PRINCIPAL-NAME": holder}, route_params={"token": token})
        assert response.status_code == 200, response.get_body()
        holder = to
    record = api.record(created["pause_id"])
    assert len(record["reassignments"]) == 20 and record["status"] == "pending"
    notes = record["notifications"]
    # Each reminder to 30 approvers, and to 5 channels that refused it 3 times (tried again twice each).
    assert len([n for n in notes if n["purpose"] == "reminder"]) == 20 * (30 + 5 * 3)
    assert len([n for n in notes if n["purpose"] == "escalation"]) == 10 + 1 + 5 * 3
    assert len([n for n in notes if n["purpose"] == "reassigned"]) == 20 and len(record["approvers"]) == 30
    size, largest = entity_bytes(table.get_entity(created["pause_id"], "pause"))
    assert size < 1024 * 1024 and largest <= 64 * 1024, (size, largest)
