"""The local Teams Workflows and Slack webhook stand-ins (local_dev/chat_standins.py) refuse what the
services refuse, and can be told to fail as they fail."""

import http.client
import json
from urllib.parse import urlsplit

import pytest
import requests

from shared.notify import slack, teams
from tests.test_message import request


def post(chat, kind, name, body=None, data=None, content_type="application/json"):
    with requests.Session() as session:
        return session.post(chat.url(kind, name), json=body, data=data,
                            headers={"Content-Type": content_type} if data is not None else None, timeout=5)


def test_teams_takes_a_valid_card_and_keeps_it(chat):
    body = teams.render(request())
    answer = post(chat, "teams", "ok-card", body)
    assert answer.status_code == 202 and chat.posts("teams", "ok-card") == [body]


@pytest.mark.parametrize("change, says", [
    (lambda b: b.update(type="MessageCard"), '"type": "message"'),
    (lambda b: b.update(attachments=[]), "attachments must be a non-empty list"),
    (lambda b: b["attachments"][0].update(contentType="text/plain"), "contentType"),
    (lambda b: b["attachments"][0]["content"]["body"].append({"type": "TextBlock"}), "card:"),  # no text
    (lambda b: b["attachments"][0]["content"]["actions"].append({"type": "Action.Submit", "oops": 1}), "card:"),
    (lambda b: b["attachments"][0]["content"].update(version="1.5"), "above 1.4"),
])
def test_teams_refuses_what_workflows_would_not_take(chat, change, says):
    body = teams.render(request())
    change(body)
    answer = post(chat, "teams", "bad-card", body)
    assert answer.status_code == 400 and says in answer.json()["error"]["message"]
    assert chat.posts("teams", "bad-card") == []


def test_slack_takes_valid_blocks_and_answers_ok(chat):
    body = slack.render(request())
    answer = post(chat, "slack", "ok-blocks", body)
    assert (answer.status_code, answer.text) == (200, "ok") and chat.posts("slack", "ok-blocks") == [body]


@pytest.mark.parametrize("body, data, error", [
    (None, b"{not json", "invalid_payload"),
    ({"blocks": []}, None, "invalid_blocks"),
    ({"text": ""}, None, "no_text"),
    ({"text": "x", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]}, None,
     "invalid_blocks"),
    ({"text": "x", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]}, None, "invalid_blocks"),
    ({"text": "x", "blocks": [{"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "b" * 76}, "url": "https://x.example"}]}]}, None,
     "invalid_blocks"),
    ({"text": "x", "blocks": [{"type": "video"}]}, None, "invalid_blocks"),
])
def test_slack_answers_its_documented_errors(chat, body, data, error):
    answer = post(chat, "slack", "bad", body, data=data)
    assert (answer.status_code, answer.text) == (400, error)


def test_a_webhook_can_be_told_to_fail_as_slack_does(chat):
    chat.answer("slack", "archived", "channel_is_archived")
    chat.answer("slack", "busy", status=429, retry_after=1)
    assert (post(chat, "slack", "archived", {"text": "x"}).status_code, chat.posts("slack", "archived")) == (410, [])
    throttled = post(chat, "slack", "busy", {"text": "x"})
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    assert post(chat, "slack", "busy", {"text": "x"}).status_code == 200  # only the next post was throttled


def test_a_lost_answer_keeps_the_post_and_drops_the_connection(chat):
    chat.lose("teams", "lossy")
    body = teams.render(request())
    with pytest.raises(requests.ConnectionError):
        post(chat, "teams", "lossy", body)
    assert chat.posts("teams", "lossy") == [body]


def test_nothing_but_a_post_to_a_webhook_is_answered(chat):
    assert requests.get(chat.url("teams", "x"), timeout=5).status_code == 404
    assert requests.post(chat.url("teams", "x").replace("/teams/", "/discord/"), json={}, timeout=5).status_code == 404


def test_one_connection_carries_the_posts_as_the_services_keep_theirs_open(chat):
    """Teams' and Slack's endpoints keep HTTP/1.1 connections open; so does the stand-in, so that the app's pooled
    connections are used as they would be against the services."""
    url = urlsplit(chat.url("slack", "kept"))
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    try:
        body, sockets = json.dumps(slack.render(request())).encode(), []
        for _ in range(2):
            connection.request("POST", url.path, body=body, headers={"Content-Type": "application/json"})
            sockets.append(connection.sock)
            answer = connection.getresponse()
            assert (answer.status, answer.read()) == (200, b"ok") and answer.getheader("Connection") is None
        assert sockets[0] is sockets[1] is connection.sock
    finally:
        connection.close()
