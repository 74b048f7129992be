"""A message as a Teams Workflows request (shared/notify/teams.py): an Adaptive Card 1.4 that validates
against Microsoft's schema, with every text of the pause shown as text, and link buttons only."""

import json

import jsonschema
import pytest

from local_dev.chat_standins import SCHEMA
from shared.notify import teams
from tests.test_message import request

HOSTILE = "[click](https://evil.example) **bold** <at>everyone</at> <!channel> _x_ &amp;"


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA.read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def texts(card) -> list:
    return [run["text"] for block in card["body"] for run in block["inlines"]]


def test_the_request_is_a_message_envelope_with_one_valid_version_1_4_card(validator):
    body = teams.render(request(approvers=("alice@contoso.com",), required=1, checks=2))
    assert body["type"] == "message" and len(body["attachments"]) == 1
    attachment = body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive" and attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert list(validator.iter_errors(card)) == []
    assert "Approval needed: load_sales" in texts(card) and "0 of 1 approvals so far" in texts(card)


def test_text_from_the_pause_is_never_markdown_a_mention_or_a_link(validator):
    card = teams.card(request(title=HOSTILE, message=HOSTILE, requested_by=HOSTILE))
    assert list(validator.iter_errors(card)) == []
    # Only TextRuns carry text: Adaptive Cards read no markdown there, and no mention entity is declared.
    assert {block["type"] for block in card["body"]} == {"RichTextBlock"}
    assert {run["type"] for block in card["body"] for run in block["inlines"]} == {"TextRun"}
    assert texts(card).count(HOSTILE) == 3 and "msteams" not in card


def test_the_only_actions_open_the_confirmation_pages():
    card = teams.card(request())
    assert [(a["type"], a["url"]) for a in card["actions"]] == [
        ("Action.OpenUrl", "https://app.example/api/restart/r1"), ("Action.OpenUrl", "https://app.example/api/cancel/c1")]


def test_long_texts_are_shortened_not_refused(validator):
    card = teams.card(request(message="x" * 10_000))
    assert max(len(text) for text in texts(card)) == teams.MAX_TEXT and list(validator.iter_errors(card)) == []


def test_a_message_without_buttons_is_a_card_without_actions(validator):
    from shared.notify.message import decided

    card = teams.card(decided(status="cancelled", decided_by=None, decided_at=None, run_id=None, title=None,
                              pipeline_name="p", factory_name=None))
    assert "actions" not in card and list(validator.iter_errors(card)) == []


def test_microsofts_renderer_draws_the_card_with_no_warnings_and_hostile_text_as_text(browser, tmp_path):
    from local_dev.card_render import render

    drawn = render(browser, teams.card(request(title=HOSTILE, message=HOSTILE, approvers=("alice@contoso.com",),
                                               required=1)), tmp_path / "card.png")
    assert drawn["events"] == [] and (tmp_path / "card.png").stat().st_size > 0
    assert drawn["text"].count(HOSTILE) == 2 and drawn["links"] == 0  # no markdown link, no mention was made
    # The same text in a TextBlock, which Teams reads as markdown, does become a link: what the TextRuns prevent.
    control = {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": HOSTILE}]}
    assert render(browser, control)["links"] == 1
    assert drawn["actions"] == ["Review and approve", "Review and cancel"]
