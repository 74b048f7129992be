"""Calls to user-chosen URLs: "not sent" is what the socket did, and no message names the URL."""

import logging

import pytest

from local_dev.bad_peers import BadPeer
from shared import outbound, urls

SECRET = "sig=s3cr3t"


def url(scheme, port, host="127.0.0.1"):
    return urls.parse(f"{scheme}://{host}:{port}/cb?{SECRET}")


def call(method, target, allow_list=("127.0.0.1",), **options):
    return outbound.request(method, target, allow_list, "CALLBACK_ALLOWED_HOSTS", timeout=(2, 2), **options)


@pytest.mark.parametrize("behaviour, scheme, sent, why", [
    ("tls_alert", "https", False, "TLS failed (SSLV3_ALERT_HANDSHAKE_FAILURE)"),
    ("tls_garbage", "https", False, "TLS failed (WRONG_VERSION_NUMBER)"),
    ("reset_after_request", "http", True, "Connection reset by peer"),
])
def test_a_failed_request_says_whether_a_byte_of_it_left_and_never_names_the_url(behaviour, scheme, sent, why):
    with BadPeer(behaviour) as peer:
        with pytest.raises(outbound.Failed) as failed:
            call("POST", url(scheme, peer.port), data=b"{}")
    assert (failed.value.sent, str(failed.value)) == (sent, why)
    assert failed.value.__cause__ is None and failed.value.__suppress_context__  # no chained text with the URL


def test_a_host_that_is_not_listening_surely_got_nothing(refused_port):
    with pytest.raises(outbound.Failed) as failed:
        call("GET", url("http", refused_port), connect_retries=1)
    assert (failed.value.sent, str(failed.value)) == (False, "Connection refused")


def test_urllib3_logs_no_query_of_a_call_made_here(refused_port, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(outbound.Failed):
        call("GET", url("http", refused_port), connect_retries=1)
    messages = [record.getMessage() for record in caplog.records]
    assert any("Retrying" in message and "/cb?(query hidden)" in message for message in messages)
    assert not any("s3cr3t" in message for message in messages)


@pytest.mark.parametrize("behaviour, never_sent", [("tls_alert", True), ("reset_after_request", False)])
def test_the_sdk_transport_tells_a_tracked_call_what_its_socket_did(behaviour, never_sent):
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError
    from azure.core.pipeline.transport import HttpRequest

    from shared.outbound import http_transport

    scheme = "https" if behaviour.startswith("tls") else "http"
    transport = http_transport(connection_timeout=2, read_timeout=2)
    tracked = outbound.Call()
    with transport, BadPeer(behaviour) as peer, outbound.tracking(tracked):
        with pytest.raises((ServiceRequestError, ServiceResponseError)):
            transport.send(HttpRequest("POST", f"{scheme}://127.0.0.1:{peer.port}/createRun", data=b"{}"))
    assert tracked.never_sent is never_sent


def test_a_call_that_used_no_connection_made_here_proves_nothing():
    assert outbound.Call().never_sent is False  # e.g. one that went through a proxy's own connections


# Where a call may go: the name is resolved here, and only an admitted address is connected to.

@pytest.mark.parametrize("address, listed, admitted", [
    ("20.190.128.1", (), True), ("2606:4700::1111", (), True), ("::ffff:8.8.8.8", (), True),
    ("127.0.0.1", (), False), ("::1", (), False), ("10.1.2.3", (), False), ("172.16.0.1", (), False),
    ("192.168.1.1", (), False), ("169.254.169.254", (), False), ("100.64.0.1", (), False), ("0.0.0.0", (), False),
    ("224.0.0.1", (), False), ("240.0.0.1", (), False), ("255.255.255.255", (), False), ("fe80::1%eth0", (), False),
    ("fc00::1", (), False), ("fec0::1", (), False), ("ff02::1", (), False), ("::", (), False),
    ("::ffff:127.0.0.1", (), False), ("::ffff:169.254.169.254", (), False), ("2002:7f00:1::", (), False),
    ("64:ff9b::a00:1", (), False), ("::7f00:1", (), False), ("2001:db8::1", (), False),
    # Special-purpose blocks some Python versions' tables still call global (IANA's registries say not).
    ("192.0.0.8", (), False), ("3fff::1", (), False), ("5f00::1", (), False), ("64:ff9b:1::1", (), False),
    ("2001:2::1", (), False), ("198.18.0.1", (), False),
    ("127.0.0.1", ("127.0.0.1",), True), ("::1", ("::1",), True), ("::ffff:127.0.0.1", ("127.0.0.1",), True),
    ("127.0.0.1", ("localhost", "*.example.com"), False), ("127.0.0.2", ("127.0.0.1",), False),
])
def test_an_address_is_admitted_when_globally_routable_or_itself_listed(address, listed, admitted):
    assert outbound.admits(address, outbound.listed_addresses(listed)) is admitted


def test_a_name_that_resolves_to_loopback_is_refused_unless_its_address_is_listed():
    from local_dev.check_endpoint import CheckEndpoint

    with CheckEndpoint() as endpoint:
        endpoint.set("cb", json={})
        target = urls.parse(endpoint.url("cb").replace("127.0.0.1", "localhost"))
        with pytest.raises(outbound.AddressRefused) as refused:
            call("GET", target, ("localhost",))
        assert endpoint.seen("cb").calls == 0
        with call("GET", target, ("localhost", "127.0.0.1")) as response:
            assert response.status_code == 200
        assert endpoint.seen("cb").headers[0]["Host"].startswith("localhost:")  # the name, not the address
    # (Where /etc/hosts also maps localhost to ::1, both addresses are named.)
    assert str(refused.value).startswith("host localhost resolves to ") and "127.0.0.1" in str(refused.value)
    assert str(refused.value).endswith(", not a public address; the app calls such an address only when "
                                       "CALLBACK_ALLOWED_HOSTS lists it")


@pytest.mark.parametrize("dns_names, verified", [(("localhost",), True), ((), False)])
def test_tls_is_checked_against_the_name_not_the_address_connected_to(tmp_path, dns_names, verified):
    """The connection goes to the checked address, but SNI and the certificate check keep the name: a
    certificate for 127.0.0.1 alone does not pass for https://localhost."""
    from local_dev.tls import make_test_ca

    ca = make_test_ca(tmp_path, dns_names=dns_names, addresses=("127.0.0.1",))
    with BadPeer("tls_garbage_after_request", tls=ca.server_context()) as peer:
        with pytest.raises(outbound.Failed) as failed:  # the peer answers garbage once it has the request
            call("POST", url("https", peer.port, "localhost"), ("localhost", "127.0.0.1"), data=b"{}",
                 verify=str(ca.ca_file))
    if verified:
        assert failed.value.sent and peer.received[0].startswith(b"POST /cb?")
    else:
        assert not failed.value.sent and "Hostname mismatch" in str(failed.value) and peer.received == [b""]
