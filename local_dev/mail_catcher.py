"""LOCAL, DEVELOPMENT AND TESTS ONLY: an SMTP server that keeps every message instead of sending it.

`make run` starts one when SMTP_HOST is a loopback address (local.settings.json.example points
the app at 127.0.0.1:1025), and the ADF stand-in lists what arrived at /_standin/mail, like
Mailpit: the approval emails, with their links, without a real mail server.
"""

import email
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from email import policy

from local_dev.service import Service

FIELDS = ("id", "from", "to", "subject", "text", "html", "received_at")


class Received(Mapping):
    """One message, a read-only mapping of FIELDS: what the envelope says at once, the subject and the bodies parsed
    on first read. (Parsed as they arrived, hundreds of messages nobody reads cost a test seconds of CPU: the email
    package's header parsing.)"""

    _PARSED = ("subject", "text", "html")

    def __init__(self, content: bytes, **envelope):
        self._fields, self._content, self._lock = envelope, content, threading.Lock()

    def __getitem__(self, key):
        if key in self._PARSED:
            with self._lock:
                if self._content is not None:
                    self._fields.update(_parsed(self._content))
                    self._content = None
        return self._fields[key]

    def __iter__(self):
        return iter(FIELDS)

    def __len__(self):
        return len(FIELDS)

    def __repr__(self):
        return f"Received({dict(self)!r})"


def _parsed(content: bytes) -> dict:
    """The subject and bodies; for a message the email package cannot read, saying why (a test reading it fails on
    that, and the stand-in's list of every message still shows)."""
    try:
        message = email.message_from_bytes(content, policy=policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        return {"subject": str(message.get("Subject", "")), "text": text.get_content() if text else "",
                "html": html.get_content() if html else ""}
    except Exception as exc:  # e.g. LookupError: a charset Python does not know
        unreadable = f"(unreadable message: {type(exc).__name__}: {exc})"
        return {"subject": unreadable, "text": unreadable, "html": ""}


class MailCatcher(Service):
    """aiosmtpd on `host:port` (0: a free port); `.messages` holds what arrived, oldest first."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self._controller = None
        self._lock = threading.Lock()
        self._messages = []

    @property
    def messages(self) -> list[Received]:
        """A `Received` per message: {"id", "from", "to", "subject", "text", "html", "received_at"}."""
        with self._lock:
            return list(self._messages)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        received_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            self._messages.append(Received(envelope.content, id=len(self._messages) + 1, received_at=received_at,
                                           **{"from": envelope.mail_from, "to": list(envelope.rcpt_tos)}))
        return "250 Message accepted for delivery"

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def start(self) -> "MailCatcher":
        from aiosmtpd.controller import Controller

        from local_dev.ports import free_port

        port = self.port or free_port(self.host)
        self._controller = Controller(self, hostname=self.host, port=port, server_hostname="localhost")
        try:
            self._controller.start()
        except Exception as exc:  # a busy port surfaces as a start-up failure of the controller's thread
            raise OSError(f"cannot start the mail catcher on {self.host}:{port} (is the port in use?)") from exc
        self.port = port
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


