"""The approval email, sent to a real local SMTP server (aiosmtpd) run by each test."""

import datetime
import email
import email.policy
import ipaddress
import socket
import ssl
import time
from html.parser import HTMLParser

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from shared.notify.email import EmailFailed, SmtpConfig, build_approval_email, send

RESTART = "https://pauses.example.test/api/restart/Ab3_-xYz0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP_-Qq"
CANCEL = "https://pauses.example.test/api/cancel/Ab3_-xYz0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP_-Qq"
SENDER = "Pausable Pipelines <pipelines@example.com>"
USER, PASSWORD = "apikey", "s3cret-Pa55word!"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Recorder:
    """aiosmtpd handler that keeps every envelope it accepts."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self):
        return [email.message_from_bytes(env.content, policy=email.policy.default) for env in self.envelopes]


class Authenticator:
    """Accept exactly USER / PASSWORD and record every attempt."""

    def __init__(self):
        self.attempts = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.attempts.append((mechanism, login, password))
        return AuthResult(success=(login, password) == (USER, PASSWORD), handled=False)


def start_server(handler, port=None, **smtp_options):
    controller = Controller(handler, hostname="127.0.0.1", port=port or free_port(),
                            server_hostname="localhost", **smtp_options)
    controller.start()
    return controller


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def smtp_server(recorder):
    """A plain SMTP server without TLS or AUTH; yield its SmtpConfig."""
    controller = start_server(recorder)
    try:
        yield SmtpConfig(host="127.0.0.1", port=controller.port, sender=SENDER, starttls=False, timeout=5)
    finally:
        controller.stop()


@pytest.fixture
def authenticator():
    return Authenticator()


@pytest.fixture
def auth_server(recorder, authenticator):
    """An SMTP server that requires AUTH but not TLS, so login can be tested on its own."""
    controller = start_server(recorder, authenticator=authenticator, auth_required=False,
                              auth_require_tls=False)
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A throwaway CA and a server certificate for localhost / 127.0.0.1, made with `cryptography`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject, issuer, public_key, signing_key, *, ca, extensions):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
                                  critical=False))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-mailer CA")])
    ca_cert = certificate(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True, extensions=[
        (x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                       encipher_only=False, decipher_only=False), True)])
    server_cert = certificate(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), ca_name, server_key.public_key(),
        ca_key, ca=False, extensions=[
            (x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                          x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False, crl_sign=False,
                           content_commitment=False, data_encipherment=False, key_agreement=False,
                           encipher_only=False, decipher_only=False), True)])

    folder = tmp_path_factory.mktemp("tls")
    paths = {name: folder / f"{name}.pem" for name in ("ca", "cert", "key")}
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(server_key.private_bytes(serialization.Encoding.PEM,
                                                      serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    return paths


def server_tls_context(tls_files) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files["cert"], tls_files["key"])
    return context


def approval(**overrides):
    fields = dict(sender=SENDER, to=["alice@example.com"], subject=None, title="Load the November sales",
                  message="Numbers look odd.\nPlease check the dashboard first.", pipeline_name="Load_Sales",
                  factory_name="adf-prod", expires_at="2026-11-26T10:00:00Z", restart_url=RESTART,
                  cancel_url=CANCEL)
    fields.update(overrides)
    return build_approval_email(**fields)


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href"))


def parts(message):
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def test_sent_email_arrives_with_text_and_html_parts(smtp_server, recorder):
    send(smtp_server, approval())

    (received,) = recorder.messages()
    assert received.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in received.iter_parts()] == ["text/plain", "text/html"]
    assert received["From"].addresses[0].addr_spec == "pipelines@example.com"
    assert received["Auto-Submitted"] == "auto-generated"
    assert recorder.envelopes[0].mail_from == "pipelines@example.com"


def test_text_part_has_both_links_verbatim_and_what_is_being_approved(smtp_server, recorder):
    send(smtp_server, approval(title="Sales <load> & check", message="Check <this> & that"))

    text, _ = parts(recorder.messages()[0])
    assert RESTART in text.split() and CANCEL in text.split()
    assert "Sales <load> & check" in text and "Check <this> & that" in text  # not HTML-escaped
    assert "Load_Sales" in text and "adf-prod" in text
    assert "Thursday 26 November 2026, 10:00 UTC" in text
    assert "only once" in text and "changes nothing" in text


def test_html_part_links_both_urls_and_escapes_hostile_text(smtp_server, recorder):
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    send(smtp_server, approval(title=hostile, message=hostile, pipeline_name=hostile, factory_name=hostile))

    _, html = parts(recorder.messages()[0])
    links = Links()
    links.feed(html)
    assert RESTART in links.hrefs and CANCEL in links.hrefs
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    assert ">Review and approve</a>" in html and ">Review and cancel</a>" in html  # the one message model
    assert "10:00 UTC" in html and "only once" in html and "changes nothing" in html
    assert "src=" not in html.replace("&lt;img src=x", "")  # no external images or assets
    assert "<link" not in html


def test_subject_defaults_to_title_then_pipeline(smtp_server, recorder):
    send(smtp_server, approval())
    send(smtp_server, approval(title=None))
    send(smtp_server, approval(title=None, pipeline_name=None))

    assert [m["Subject"] for m in recorder.messages()] == [
        "Approval needed: Load the November sales", "Approval needed: Load_Sales", "Approval needed: pipeline"]


def test_custom_subject_is_used(smtp_server, recorder):
    send(smtp_server, approval(subject="Sign off the Q4 load"))

    assert recorder.messages()[0]["Subject"] == "Sign off the Q4 load"


@pytest.mark.parametrize("field", ["subject", "title"])
def test_line_breaks_in_subject_cannot_inject_headers(smtp_server, recorder, field):
    send(smtp_server, approval(**{field: "Hi\r\nBcc: evil@attacker.example\r\n\r\nbody"}))

    (received,) = recorder.messages()
    assert received["Bcc"] is None
    assert received["Subject"].startswith(("Hi Bcc: evil@attacker.example body",
                                           "Approval needed: Hi Bcc: evil@attacker.example body"))
    assert recorder.envelopes[0].rcpt_tos == ["alice@example.com"]


def test_every_recipient_receives_the_email(smtp_server, recorder):
    to = ["alice@example.com", "bob@example.org", "carol.ops+adf@data.example.net"]
    send(smtp_server, approval(to=to))

    (envelope,) = recorder.envelopes
    assert envelope.rcpt_tos == to
    assert [a.addr_spec for a in recorder.messages()[0]["To"].addresses] == to


def test_build_rejects_invalid_recipients_and_sender():
    with pytest.raises(ValueError):
        approval(to=["alice@example.com", "a@b.c\nBcc: x@y.z"])
    with pytest.raises(ValueError):
        approval(to=[])
    with pytest.raises(ValueError):
        approval(sender="")


def test_login_without_tls_sends_credentials(auth_server, authenticator, recorder):
    config = SmtpConfig(host="127.0.0.1", port=auth_server.port, username=USER, password=PASSWORD,
                        sender=SENDER, starttls=False, timeout=5)
    send(config, approval())

    assert (USER, PASSWORD) in [(login, password) for _, login, password in authenticator.attempts]
    assert len(recorder.envelopes) == 1


def test_wrong_password_raises_email_failed_without_the_password(auth_server, recorder):
    config = SmtpConfig(host="127.0.0.1", port=auth_server.port, username=USER, password="wrong-Pa55!",
                        sender=SENDER, starttls=False, timeout=5)
    with pytest.raises(EmailFailed, match="refused the login") as failure:
        send(config, approval())

    assert "wrong-Pa55!" not in str(failure.value) and RESTART not in str(failure.value)
    assert recorder.envelopes == []


def test_starttls_then_login_with_a_trusted_certificate(tls_files, recorder, authenticator):
    # auth_require_tls stays on: the server only offers AUTH once STARTTLS has succeeded.
    controller = start_server(recorder, tls_context=server_tls_context(tls_files), require_starttls=True,
                              authenticator=authenticator)
    try:
        config = SmtpConfig(host="127.0.0.1", port=controller.port, username=USER, password=PASSWORD,
                            sender=SENDER, timeout=5,
                            ssl_context=ssl.create_default_context(cafile=str(tls_files["ca"])))
        send(config, approval())
    finally:
        controller.stop()

    assert [(login, password) for _, login, password in authenticator.attempts] == [(USER, PASSWORD)]
    assert RESTART in parts(recorder.messages()[0])[0]


def test_starttls_with_an_untrusted_certificate_fails(tls_files, recorder):
    controller = start_server(recorder, tls_context=server_tls_context(tls_files), require_starttls=True)
    try:
        config = SmtpConfig(host="127.0.0.1", port=controller.port, sender=SENDER, timeout=5)  # system trust
        with pytest.raises(EmailFailed, match="certificate could not be verified"):
            send(config, approval())
    finally:
        controller.stop()
    assert recorder.envelopes == []


def test_starttls_required_but_not_offered_fails(smtp_server, recorder):
    config = SmtpConfig(host=smtp_server.host, port=smtp_server.port, sender=SENDER, starttls=True, timeout=5)
    with pytest.raises(EmailFailed, match="does not offer STARTTLS"):
        send(config, approval())
    assert recorder.envelopes == []


def test_port_465_uses_implicit_tls(tls_files, recorder):
    try:
        controller = start_server(recorder, port=465, ssl_context=server_tls_context(tls_files))
    except OSError as error:  # not root, or something already listens there
        pytest.skip(f"cannot listen on 127.0.0.1:465: {error}")
    try:
        config = SmtpConfig(host="127.0.0.1", port=465, sender=SENDER, timeout=5,
                            ssl_context=ssl.create_default_context(cafile=str(tls_files["ca"])))
        send(config, approval())
    finally:
        controller.stop()
    assert len(recorder.envelopes) == 1


def test_refused_connection_fails_fast_without_the_password():
    config = SmtpConfig(host="127.0.0.1", port=free_port(), username=USER, password=PASSWORD, sender=SENDER)
    started = time.monotonic()
    with pytest.raises(EmailFailed, match="could not connect to SMTP server 127.0.0.1") as failure:
        send(config, approval())

    assert time.monotonic() - started < 3
    assert PASSWORD not in str(failure.value)
    assert PASSWORD not in repr(config)
