"""Send the approval email for a pause: plain text plus HTML, over SMTP.

Works with any SMTP submission service; the usual ones, all on port 587 with STARTTLS and login:

- Azure Communication Services Email: host ``smtp.azurecomm.net``, username from an ACS "SMTP
  username" (bound to an Entra app), password the app's client secret; ``SMTP_FROM`` must be a
  MailFrom address of a domain connected to the resource.
- SendGrid: host ``smtp.sendgrid.net``, username literally ``apikey``, password an API key;
  ``SMTP_FROM`` must be a verified sender.
- Office 365: host ``smtp.office365.com``, a licensed mailbox with SMTP AUTH enabled;
  ``SMTP_FROM`` must be that mailbox (or one it may send as).

Port 465 means implicit TLS (``SMTP_SSL``); ``starttls=False`` is meant only for a trusted local
relay. Every failure is raised as `EmailFailed`, whose message is safe to log: it never holds the
password or the links (the links carry the token).
"""

import functools
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

from shared.notify.message import Message, approval_request, asked_for
from shared.people import valid_address

logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
IMPLICIT_TLS_PORT = 465

@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a repr that may be logged
    sender: str = ""          # SMTP_FROM
    starttls: bool = True     # SMTP_STARTTLS
    timeout: float = 10.0
    # Trust for the server's certificate; None means the system's (ssl.create_default_context()).
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)


def config(smtp) -> SmtpConfig:
    """The SmtpConfig of the app's SMTP_* settings (`Settings.smtp`)."""
    return SmtpConfig(host=smtp.host, port=smtp.port, username=smtp.username, password=smtp.password,
                      sender=smtp.sender, starttls=smtp.starttls)


class EmailFailed(Exception):
    """The email could not be sent; the message says why and is safe to log."""


@functools.lru_cache(maxsize=1)
def _environment():
    import jinja2

    # .html templates are autoescaped; .txt ones are plain text and must not be.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                              autoescape=jinja2.select_autoescape(["html"]),
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _one_line(text: str | None) -> str:
    """Collapse every run of whitespace and control characters, CR and LF included, to one space."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in (text or ""))
    return " ".join(cleaned.split())


def build_approval_email(*, sender: str, to: list[str], subject: str | None, title: str | None,
                         message: str | None, pipeline_name: str | None, factory_name: str | None,
                         expires_at: str, restart_url: str, cancel_url: str, quorum: dict | None = None,
                         requested_by: str | None = None, checks: int = 0, approved: int = 0,
                         asks: tuple = ()) -> EmailMessage:
    """The approval email of one pause: the request as every channel tells it (`shared.notify.message`).

    `quorum` ({"required", "approvers", "you"}) says that several approvals are needed and whose
    personal links these are.
    """
    quorum = quorum or {}
    request = approval_request(
        title=title, message=message, pipeline_name=pipeline_name, factory_name=factory_name,
        requested_by=requested_by, approvers=tuple(quorum.get("approvers") or ()), required=quorum.get("required"),
        checks=checks, expires_at=expires_at, restart_url=restart_url, cancel_url=cancel_url, approved=approved,
        you=quorum.get("you"), asks=asks)
    subject = _one_line(subject) or f"Approval needed: {_one_line(title) or pipeline_name or 'pipeline'}"
    return build_email(sender=sender, to=to, subject=subject, message=request)


def build_email(*, sender: str, to: list[str], subject: str | None, message: Message) -> EmailMessage:
    """`message` as an email: text and HTML alternatives of the one message model (the subject defaults
    to its title).

    Raises ValueError for a missing or malformed sender or recipient; callers validate the
    recipients with `valid_address` first, so this is a programming or settings error.
    """
    if "\r" in sender or "\n" in sender:
        raise ValueError("The sender address (SMTP_FROM) must be one line.")
    sender_name, sender_address = parseaddr(sender)
    if not valid_address(sender_address):
        raise ValueError("The sender address (SMTP_FROM) is missing or not a valid email address.")
    recipients = list(dict.fromkeys(to or []))  # keep order, drop exact repeats
    if not recipients:
        raise ValueError("At least one recipient is needed.")
    bad = [index for index, address in enumerate(recipients) if not valid_address(address)]
    if bad:
        raise ValueError(f"Recipient(s) at position {', '.join(map(str, bad))} are not valid email addresses.")

    subject_line = _one_line(subject)[:250] or _one_line(message.title)[:250]
    env = _environment()
    text = env.get_template("email/message.txt").render(m=message, subject=subject_line)
    html = env.get_template("email/message.html").render(m=message, subject=subject_line)

    email = EmailMessage()
    email["Subject"] = subject_line
    email["From"] = Address(display_name=_one_line(sender_name), addr_spec=sender_address)
    email["To"] = [Address(addr_spec=address) for address in recipients]
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = make_msgid(domain=sender_address.rpartition("@")[2])
    email["Auto-Submitted"] = "auto-generated"   # RFC 3834: no vacation replies to a robot
    email["X-Auto-Response-Suppress"] = "All"    # the same, for Exchange / Office 365
    email.set_content(text)
    email.add_alternative(html, subtype="html")
    return email


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {_one_line(text)}".strip()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"its TLS certificate could not be verified ({exc.verify_message})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the server replied {_reply(exc)}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return _one_line(str(exc)) or type(exc).__name__


def _failure(exc: BaseException, step: str, config: SmtpConfig) -> EmailFailed:
    """Describe a failure in terms of what we were doing, without secrets."""
    where = f"SMTP server {config.host}:{config.port}"
    if step == "connect":
        return EmailFailed(f"could not connect to {where}: {_reason(exc)}")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return EmailFailed(f"{where} refused the login for user {config.username!r}: {_reply(exc)}")
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return EmailFailed(f"{where} refused the sender address {exc.sender!r}: {_reply(exc)} "
                           "(check SMTP_FROM is an address this account may send from)")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = sorted({f"{code} {_one_line(text.decode('utf-8', 'replace'))}"
                          for code, text in exc.recipients.values()})
        return EmailFailed(f"{where} refused every recipient: {'; '.join(replies)}")
    if isinstance(exc, smtplib.SMTPNotSupportedError) and step == "STARTTLS":
        return EmailFailed(f"{where} does not offer STARTTLS (use port 465 for implicit TLS, or "
                           "SMTP_STARTTLS=false only for a trusted local relay)")
    if isinstance(exc, smtplib.SMTPNotSupportedError) and step == "login":
        return EmailFailed(f"{where} does not offer login (AUTH) on this connection")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return EmailFailed(f"{where} closed the connection during {step}")
    return EmailFailed(f"{where} failed during {step}: {_reason(exc)}")


@functools.lru_cache(maxsize=1)
def _default_tls() -> ssl.SSLContext:
    """The system's trust, loaded once: reading the CA bundle costs ~40 ms, more than sending an email."""
    return ssl.create_default_context()


def send(config: SmtpConfig, message: EmailMessage) -> None:
    """Send `message` through the SMTP server in `config`; raise EmailFailed if it is not accepted."""
    implicit_tls = config.port == IMPLICIT_TLS_PORT
    context = (config.ssl_context or _default_tls()) if implicit_tls or config.starttls else None
    step = "connect"
    try:
        if implicit_tls:
            smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout, context=context)
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError and TimeoutError are OSErrors
        raise _failure(exc, step, config) from exc

    try:
        if config.starttls and not implicit_tls:
            step = "STARTTLS"
            smtp.ehlo()
            smtp.starttls(context=context)
            smtp.ehlo()
        if config.username:
            step = "login"
            if not (config.starttls or implicit_tls):
                logger.warning("Logging in to SMTP server %s:%s without TLS", config.host, config.port)
            smtp.login(config.username, config.password or "")
        step = "sending"
        refused = smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        smtp.close()
        raise _failure(exc, step, config) from exc

    if refused:
        logger.warning("SMTP server %s:%s refused %d of the recipients", config.host, config.port, len(refused))
    try:  # the message is accepted: a failing QUIT must not turn that into a failure
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def approver_email(entity: dict, *, sender: str, to: str, links: dict, subject: str | None = None) -> EmailMessage:
    """The approval email of a stored pause for one named approver, with their own `links` (a reminder,
    an escalation, or a part handed on to them)."""
    return stored_email(entity, sender=sender, to=[to], links=links, subject=subject, you=to)


def stored_email(entity: dict, *, sender: str, to: list, links: dict, subject: str | None = None,
                 you: str | None = None) -> EmailMessage:
    """The approval email of a stored pause: to one named approver (`you`) with their personal links, or
    to `to` with links that work as the shared ones."""
    from shared.clock import iso
    from shared.storage.records import json_field

    notification = json_field(entity, "notification", {}) or {}
    approvers = json_field(entity, "approvers", []) or []
    quorum = {"required": entity.get("required_approvals"), "approvers": approvers, "you": you} if approvers else None
    return build_approval_email(
        sender=sender, to=list(to), subject=subject, title=notification.get("title"),
        message=notification.get("message"), pipeline_name=entity.get("pipeline_name"),
        factory_name=entity.get("factory_name"), expires_at=iso(entity.get("expires_at")),
        restart_url=links["restart_url"], cancel_url=links["cancel_url"], quorum=quorum,
        requested_by=entity.get("requested_by"), checks=len(json_field(entity, "checks", []) or []),
        approved=len(json_field(entity, "approvals", []) or []), asks=asked_for(json_field(entity, "form", None)))
