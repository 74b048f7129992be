"""The local mail catcher (local_dev/mail_catcher.py): every message kept as sent, listed by the stand-in."""

import smtplib
from email.message import EmailMessage

import pytest
import requests

from local_dev.adf_standin import AdfStandin
from local_dev.mail_catcher import FIELDS, MailCatcher

pytestmark = pytest.mark.integration


def _send(catcher: MailCatcher, subject: str, to: list) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "app@contoso.com", ", ".join(to), subject
    message.set_content("Approve: https://app.example/api/restart/t1\n")
    message.add_alternative("<p><a href='https://app.example/api/restart/t1'>Approve</a> &amp; more</p>",
                            subtype="html")
    with smtplib.SMTP(catcher.host, catcher.port, timeout=10) as smtp:
        smtp.send_message(message)


def test_a_message_is_kept_with_its_envelope_subject_and_both_bodies_and_listed_as_json():
    with MailCatcher() as catcher, AdfStandin(mail=catcher) as standin:
        _send(catcher, "Approve the load? — 1,200 rows", ["alice@contoso.com", "bob@contoso.com"])
        _send(catcher, "Second", ["carol@contoso.com"])
        first, second = catcher.messages
        assert (first["id"], first["from"], first["to"]) == (1, "app@contoso.com", ["alice@contoso.com",
                                                                                    "bob@contoso.com"])
        assert first["subject"] == "Approve the load? — 1,200 rows"
        assert first["text"].splitlines() == ["Approve: https://app.example/api/restart/t1"]
        assert "&amp; more" in first["html"] and second["subject"] == "Second"
        assert tuple(first) == FIELDS and len(first) == len(FIELDS) and first.get("nothing") is None
        listed = requests.get(f"{standin.url}/_standin/mail.json", timeout=10).json()
        assert listed == [dict(second), dict(first)]  # newest first, every field
        catcher.clear()
        assert catcher.messages == []


def test_a_message_the_email_package_cannot_read_says_so_and_the_list_still_shows():
    raw = (b"From: app@contoso.com\r\nTo: ana@contoso.com\r\nSubject: =?x-bogus?q?Hi?=\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=\"x-bogus\"\r\n\r\nhello\r\n")
    with MailCatcher() as catcher, AdfStandin(mail=catcher) as standin:
        with smtplib.SMTP(catcher.host, catcher.port, timeout=10) as smtp:
            smtp.sendmail("app@contoso.com", ["ana@contoso.com"], raw)
        [message] = catcher.messages
        assert message["to"] == ["ana@contoso.com"] and message["text"].startswith("(unreadable message: ")
        assert requests.get(f"{standin.url}/_standin/mail.json", timeout=10).json()[0]["to"] == ["ana@contoso.com"]
