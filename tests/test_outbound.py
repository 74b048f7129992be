"""Calls to user-chosen URLs: "not sent" is what the socket did, and no message names the URL."""

import logging

import pytest

from local_dev.bad_peers import BadPeer
from local_dev.ports import free_port
from shared import outbound, urls

SECRET = "sig=s3cr3t"


def url(scheme, port):
    return urls.parse(f"{scheme}://127.0.0.1:{port}/cb?{SECRET}")


@pytest.mark.parametrize("behaviour, scheme, sent, why", [
    ("tls_alert", "https", False, "TLS failed (SSLV3_ALERT_HANDSHAKE_FAILURE)"),
    ("tls_garbage", "https", False, "TLS failed (WRONG_VERSION_NUMBER)"),
    ("reset_after_request", "http", True, "Connection reset by peer"),
])
def test_a_failed_request_says_whether_a_byte_of_it_left_and_never_names_the_url(behaviour, scheme, sent, why):
    with BadPeer(behaviour) as peer:
        with pytest.raises(outbound.Failed) as failed:
            outbound.request("POST", url(scheme, peer.port), ("127.0.0.1",), data=b"{}", timeout=(2, 2))
    assert (failed.value.sent, str(failed.value)) == (sent, why)
    assert failed.value.__cause__ is None and failed.value.__suppress_context__  # no chained text with the URL


def test_a_host_that_is_not_listening_surely_got_nothing():
    with pytest.raises(outbound.Failed) as failed:
        outbound.request("GET", url("http", free_port()), ("127.0.0.1",), connect_retries=1, timeout=(2, 2))
    assert (failed.value.sent, str(failed.value)) == (False, "Connection refused")


def test_urllib3_logs_no_query_of_a_call_made_here(caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(outbound.Failed):
        outbound.request("GET", url("http", free_port()), ("127.0.0.1",), connect_retries=1, timeout=(2, 2))
    messages = [record.getMessage() for record in caplog.records]
    assert any("Retrying" in message and "/cb?(query hidden)" in message for message in messages)
    assert not any("s3cr3t" in message for message in messages)


@pytest.mark.parametrize("behaviour, never_sent", [("tls_alert", True), ("reset_after_request", False)])
def test_the_sdk_transport_tells_a_tracked_call_what_its_socket_did(behaviour, never_sent):
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError
    from azure.core.pipeline.transport import HttpRequest

    from shared.clients import http_transport

    scheme = "https" if behaviour.startswith("tls") else "http"
    transport = http_transport(connection_timeout=2, read_timeout=2)
    call = outbound.Call()
    with transport, BadPeer(behaviour) as peer, outbound.tracking(call):
        with pytest.raises((ServiceRequestError, ServiceResponseError)):
            transport.send(HttpRequest("POST", f"{scheme}://127.0.0.1:{peer.port}/createRun", data=b"{}"))
    assert call.never_sent is never_sent


def test_a_call_that_used_no_connection_made_here_proves_nothing():
    assert outbound.Call().never_sent is False  # e.g. one that went through a proxy's own connections
