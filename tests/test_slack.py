"""A message as a Slack incoming-webhook request (shared/notify/slack.py): Block Kit within its limits,
every text of the pause plain and escaped, link buttons only."""

import pytest

from local_dev.chat_standins import blocks_valid
from shared.notify import slack
from tests.test_message import request

HOSTILE = "<!channel> <@U123> <https://evil.example|click> *bold* _x_ ~s~ `c` &amp;"


def test_the_request_is_valid_block_kit_with_a_plain_fallback():
    body = slack.render(request(approvers=("alice@contoso.com",), required=1))
    assert blocks_valid(body["blocks"]) and body["mrkdwn"] is False
    assert body["text"] == "Approval needed: load_sales (load_sales in adf-prod)"
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context", "actions"]


def test_text_from_the_pause_is_plain_and_escaped_so_nothing_in_it_mentions_links_or_formats():
    body = slack.render(request(title=HOSTILE, message=HOSTILE, requested_by=HOSTILE))
    escaped = HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    objects = [b.get("text") for b in body["blocks"] if isinstance(b.get("text"), dict)] + \
        [f for b in body["blocks"] for f in b.get("fields", [])]
    assert {o["type"] for o in objects} == {"plain_text"}  # never mrkdwn: * _ ~ ` format nothing
    assert body["blocks"][0]["text"]["text"] == escaped and body["blocks"][1]["text"]["text"] == escaped
    assert f"Asked by: {escaped}" in [f["text"] for f in body["blocks"][2]["fields"]]
    assert "<" not in body["text"] and "<" not in str(body["blocks"])


def test_the_only_buttons_open_the_confirmation_pages():
    [actions] = [b for b in slack.render(request())["blocks"] if b["type"] == "actions"]
    assert [(e["type"], e["url"]) for e in actions["elements"]] == [
        ("button", "https://app.example/api/restart/r1"), ("button", "https://app.example/api/cancel/c1")]


@pytest.mark.parametrize("text, limit, shown", [
    ("a" * 10, 5, "aaaa\u2026"), ("<" * 10, 9, "&lt;&lt;\u2026"), ("abc", 3, "abc"), ("&&&&", 6, "&amp;\u2026"),
])
def test_texts_are_cut_to_slacks_limits_counted_after_escaping_never_in_an_entity(text, limit, shown):
    assert slack.shortened(text, limit) == shown


def test_long_texts_are_shortened_to_block_kits_limits_not_refused():
    body = slack.render(request(title="t" * 500, message="<" * 5000, requested_by="r" * 3000))
    assert blocks_valid(body["blocks"])
    assert len(body["blocks"][0]["text"]["text"]) == slack.HEADER and len(body["blocks"][1]["text"]["text"]) <= 3000


def test_a_message_without_buttons_has_no_actions_block():
    from shared.notify.message import decided

    body = slack.render(decided(status="failed", decided_by=None, decided_at=None, run_id="r", title=None,
                                pipeline_name="p", factory_name=None))
    assert blocks_valid(body["blocks"]) and "actions" not in [b["type"] for b in body["blocks"]]
