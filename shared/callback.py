"""Call back the ADF WebHook activity waiting on a pause, and only at allowed hosts.

The callBackUri arrives in an unauthenticated-looking body from whoever holds the function
key, so the app treats it as untrusted: https only (plain http just for loopback hosts listed
explicitly), no credentials in the URL, host on CALLBACK_ALLOWED_HOSTS, and redirects are
never followed (a redirect could lead anywhere).
"""

import functools
import logging
import time
from urllib.parse import urlsplit

from .errors import Forbidden, InvalidRequest
from .settings import is_loopback_host

logger = logging.getLogger(__name__)

MAX_URI_LENGTH = 4096
_ATTEMPTS = 3
_RETRY_STATUSES = (429, 500, 502, 503, 504)


class CallbackFailed(Exception):
    """The callback target did not accept the call; `status` is its HTTP status when it answered."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def _host_matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def check_uri(uri, allowed_hosts) -> str:
    """Return the callBackUri if the app may call it; else raise InvalidRequest (400) or Forbidden (403)."""
    def invalid(message):
        return InvalidRequest(f"callBackUri {message}.", [{"field": "callBackUri", "rule": "url",
                                                            "message": message}])

    if not isinstance(uri, str) or not uri:
        raise invalid("must be a non-empty string")
    if len(uri) > MAX_URI_LENGTH:
        raise invalid(f"must be at most {MAX_URI_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in uri):
        raise invalid("must not contain spaces or control characters")
    try:
        parts = urlsplit(uri)
        parts.port  # raises ValueError for a malformed port
    except ValueError:
        raise invalid("is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise invalid("must be an absolute https:// URL")
    if parts.username or parts.password:
        raise invalid("must not carry credentials")
    host = parts.hostname.lower()
    if parts.scheme == "http":
        # Plain http only for a loopback host listed exactly (local tests), never via a wildcard.
        if not (is_loopback_host(host) and host in allowed_hosts):
            raise Forbidden(f"callBackUri must use https; plain http is allowed only for loopback hosts "
                            f"listed in CALLBACK_ALLOWED_HOSTS (got host {host}).")
        return uri
    if not any(_host_matches(host, pattern) for pattern in allowed_hosts):
        raise Forbidden(f"callBackUri host {host} is not in CALLBACK_ALLOWED_HOSTS; add it there if it "
                        "is your Data Factory's callback host.")
    return uri


@functools.lru_cache(maxsize=1)
def _session():
    import requests

    session = requests.Session()
    session.trust_env = False  # no proxies or .netrc credentials picked up from the environment
    return session


def post(uri: str, payload: dict) -> None:
    """POST `payload` as JSON to `uri`; retry briefly on connection errors and 5xx/429, else raise."""
    import requests

    last = None
    for attempt in range(_ATTEMPTS):
        if attempt:
            time.sleep(0.5 * attempt)
        try:
            response = _session().post(uri, json=payload, timeout=(3, 10), allow_redirects=False)
        except requests.RequestException as exc:
            last = CallbackFailed(f"callback target unreachable: {type(exc).__name__}")
            continue
        if 200 <= response.status_code < 300:
            return
        last = CallbackFailed(f"callback target answered HTTP {response.status_code}", response.status_code)
        if response.status_code not in _RETRY_STATUSES:
            break
    raise last


def approved_payload(record: dict) -> dict:
    """What the WebHook activity receives on approval: its output, status 200."""
    output = {key: record.get(key) for key in ("pause_id", "status", "comment", "input", "data")}
    return {"Output": output, "StatusCode": "200"}


def failed_payload(code: str, message: str) -> dict:
    """What the WebHook activity receives on cancel or expiry: an error, so the activity fails."""
    return {"Error": {"ErrorCode": code, "Message": message}, "StatusCode": "400"}
