"""Call back the ADF WebHook activity waiting on a pause, only at allowed hosts, never twice blindly.

The callBackUri arrives from whoever holds the function key, so it is untrusted: it goes
through the one URL checker (`shared.urls`) when the pause is made and again before every
call, and only the URL rebuilt from its checked parts is called. Redirects are never followed.

A POST is not repeated by any retry loop once it may have reached the receiver: urllib3
retries only connection attempts (the request was never sent), never a read or a status. A
short answer body is read and dropped, so that its connection serves the next callback.
What the answer means is told apart here, so the lifecycle can stay true:

- `DELIVERED`: a 2xx; the activity has the outcome.
- `ALREADY_COMPLETED`: 409, what a completed activity answers to any further callback.
- `Refused`: the request surely had no effect (no byte of it left: no address the app may call,
  no connection, a failed TLS handshake; or a 3xx/4xx other than 409).
- `Unknown`: it may have arrived (a byte of it left and no answer came, a read timeout, a 5xx).

Which of the two a failure is comes from what the socket did (`shared.outbound`), not from the
exception's type.
"""

import logging
from datetime import timedelta
from enum import Enum

from shared import clients, outbound, urls
from shared.jsonbody import canonical
from shared.settings import get_settings
from shared.targets.outside import Refused, Unknown

logger = logging.getLogger(__name__)

SETTING = "CALLBACK_ALLOWED_HOSTS"


class Delivery(Enum):
    DELIVERED = "delivered"
    ALREADY_COMPLETED = "already_completed"


def check(raw, field: str = "callBackUri") -> urls.CheckedUrl:
    """Parse and allow-list a callBackUri from a request (400 or 403 naming the field)."""
    return urls.check_field(raw, get_settings().callback_allowed_hosts, field=field, setting=SETTING)


CONNECT_RETRIES = 2


def answer_within(limits) -> float:
    """The longest one callback may take, from the first connection attempt to its answer's status:
    every connection attempt, then the read timeout. (A read timeout alone limits each read, and a
    receiver sending a byte now and then would hold the decision for ever.)"""
    return limits.callback_connect_timeout_seconds * (CONNECT_RETRIES + 1) + limits.callback_read_timeout_seconds


def send_window() -> timedelta:
    """How long one send can take, with a margin: a send younger than this may still be running."""
    return timedelta(seconds=answer_within(get_settings().limits) + 15)


def deliver(stored_uri: str, body: bytes) -> Delivery:
    """POST `body` (JSON) once to the stored callBackUri; return what happened or raise Refused/Unknown.

    Their messages never carry the URL: its query is a credential.
    """
    settings = get_settings()
    try:
        target = urls.allowed(stored_uri, settings.callback_allowed_hosts, SETTING)
    except urls.UrlRefused as refused:
        # Checked again at call time: the allow-list may have been narrowed since the pause was made.
        raise Refused("CallbackHostNotAllowed", f"callBackUri {refused}", forbidden=refused.forbidden) from None
    limits = settings.limits
    deadline = clients.Deadline(answer_within(limits))
    try:
        # Connections that could not be made are retried (nothing was sent); never a read, never a status.
        # The status line decides (stream=True): the body says nothing the app uses, and only a short one is read.
        with deadline:
            response = outbound.request("POST", target, settings.callback_allowed_hosts, SETTING,
                                        connect_retries=CONNECT_RETRIES, watch=deadline.watch, stream=True, data=body,
                                        headers={"Content-Type": "application/json"},
                                        timeout=(limits.callback_connect_timeout_seconds,
                                                 limits.callback_read_timeout_seconds))
            status, cut_short = response.status_code, deadline.expired
            whole = _read_short_body(response)
            deadline.finish()
            if whole and not deadline.expired:  # (after finish: the deadline can no longer shut its socket)
                response.raw.release_conn()
            response.close()
        if cut_short:  # its socket was shut mid-answer: what was read may be cut short
            raise outbound.Failed("cut short", sent=True, timed_out=True)
    except outbound.AddressRefused as refused:
        raise Refused("CallbackAddressNotAllowed", f"callBackUri {refused}", forbidden=True) from None
    except outbound.Failed as failure:
        if not failure.sent:
            raise Refused("CallbackUnreachable", f"could not reach the callback host, nothing was sent: {failure}",
                          transient=True) from None
        why = f"no whole answer within {answer_within(limits):g} s" if deadline.expired else failure
        raise Unknown("CallbackNoAnswer", f"the callback was sent but no answer came back: {why}") from None
    if 200 <= status < 300:
        return Delivery.DELIVERED
    if status == 409:
        return Delivery.ALREADY_COMPLETED
    if status >= 500:
        raise Unknown("CallbackServerError", f"the callback target answered HTTP {status}")
    raise Refused("CallbackRefused", f"the callback target answered HTTP {status}", status=status,
                  transient=status in (408, 429))


SHORT_BODY = 4096  # an answer body up to this long is read, so that its connection serves the next callback


def _read_short_body(response) -> bool:
    """Read (and drop) a short answer body of known length, within the deadline, and say whether it was read whole:
    its connection may then go back to the pool, and the next callback to the same host (every callback of a region
    goes to one Data Factory host) needs no new connection or TLS handshake. A longer body, or one of unknown length,
    is not read: closing the response closes its connection. The bytes are read as sent, from the http.client
    response under urllib3's: never decompressed (a few hundred bytes of nested gzip unpack to gigabytes), and not
    handed back to the pool by urllib3 at their end, which would come before the deadline is finished. The outcome
    is the status, whatever happens here; a body sent slowly holds the call no longer than the deadline."""
    length = response.headers.get("Content-Length", "")
    size = int(length) if length.isascii() and length.isdigit() else None
    wire = getattr(response.raw, "_fp", None)
    if size is None or size > SHORT_BODY or response.headers.get("Transfer-Encoding") or wire is None:
        return False
    try:
        read = wire.read(size)
    except Exception:  # (cut short by the deadline, a reset: its connection is closed)
        return False
    return len(read) == size and wire.isclosed()


def approved_payload(record: dict) -> bytes:
    """What the WebHook activity receives on approval: its output, status 200."""
    output = {key: record.get(key) for key in ("pause_id", "status", "comment", "input", "data")}
    return canonical({"Output": output, "StatusCode": "200"}).encode("utf-8")


def checkpoint_payload(output: dict) -> bytes:
    """What a checkpoint's WebHook activity receives when it may go on."""
    return canonical({"Output": output, "StatusCode": "200"}).encode("utf-8")


def failed_payload(code: str, message: str) -> bytes:
    """What the WebHook activity receives on cancel or expiry: an error, so the activity fails."""
    return canonical({"Error": {"ErrorCode": code, "Message": message}, "StatusCode": "400"}).encode("utf-8")
