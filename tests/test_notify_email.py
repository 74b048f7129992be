"""The approval email (`notify`), sent to a real SMTP server run by the test."""

import pytest

pytestmark = pytest.mark.integration


def test_email_arrives_with_working_links(api, smtp):
    created = api.created(notification={"title": "Load Sales?", "message": "1200 rows staged."},
                          notify={"email": ["ana@example.test", "bo@example.test"], "subject": "Please approve"})
    [(recipients, message)] = smtp.messages
    assert sorted(recipients) == ["ana@example.test", "bo@example.test"]
    assert message["Subject"] == "Please approve" and message["From"] == "pauses@example.test"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for url in (created["restart_url"], created["cancel_url"]):
        assert url in text and f'href="{url}"' in html
    assert "Load Sales?" in html and "1200 rows staged." in text
    # The emailed link is the live one: it opens the confirmation page.
    token = created["restart_url"].rsplit("/", 1)[1]
    assert api.page("restart", token).status_code == 200


def test_email_without_smtp_configured_is_400_and_stores_nothing(api, table):
    from azure.core.exceptions import ResourceNotFoundError

    response = api.pause(notify={"email": ["ana@example.test"]})
    assert response.status_code == 400
    assert api.json(response)["errors"][0]["field"] == "notify"
    try:
        assert list(table.list_entities()) == []
    except ResourceNotFoundError:
        pass


@pytest.mark.parametrize("notify, field", [
    ({"email": ["not-an-address"]}, "notify.email[0]"),
    ({"email": []}, "notify.email"),
    ({"email": ["a@example.test"], "cc": ["b@example.test"]}, "notify.cc"),
    ({"email": ["a@example.test"], "subject": "two\nlines"}, "notify.subject"),
    ("a@example.test", "notify"),
])
def test_bad_notify_is_400_naming_the_field(api, smtp, notify, field):
    response = api.pause(notify=notify)
    assert response.status_code == 400
    assert field in [e["field"] for e in api.json(response)["errors"]]
    assert smtp.messages == []


def test_send_failure_is_502_and_cancels_the_pause(api, configure):
    from local_dev.ports import free_port

    configure(SMTP_HOST="127.0.0.1", SMTP_PORT=str(free_port()), SMTP_FROM="pauses@example.test",
              SMTP_STARTTLS="false")
    response = api.pause(notify={"email": ["ana@example.test"]})
    assert response.status_code == 502
    problem = api.json(response)
    assert problem["code"] == "email_failed" and "cancelled" in problem["detail"]
    [item] = api.json(api.list())["items"]
    assert item["status"] == "cancelled" and item["reason"] == "The approval email could not be sent."
