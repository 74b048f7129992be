"""The one checker for every URL the app will call (WebHook callbacks now, automated checks later).

A URL from a request is parsed exactly once, by a grammar stricter than any HTTP client's:
`https://host[:port]/path?query`, host a plain DNS name or IP literal, nothing that parsers
disagree on (`\\`, `@`, `%` or whitespace in the authority, fragments, non-ASCII). The app then
calls only the URL *rebuilt* from the checked parts, so the host on the allow-list is the host
the connection goes to. urllib3 (what `requests` uses) re-parses the rebuilt URL as a second
opinion before it is accepted.
"""

import ipaddress
import re
from dataclasses import dataclass

from shared.errors import Forbidden, InvalidRequest

MAX_URL_LENGTH = 4096
MAX_HOST_LENGTH = 253

# scheme://authority path? query?  — nothing else (no fragment, no userinfo marker '@').
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<path>/[^?#]*)?"
                  r"(?:\?(?P<query>[^#]*))?")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# A top-level label starting with a digit is what resolvers read as a number ("127.1",
# "0x7f000001", "2130706433" all reach 127.0.0.1 through inet_aton): not a DNS name here.
_TOP_LABEL = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")
_IPV4 = re.compile(r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}")
_PORT = re.compile(r"[1-9][0-9]{0,4}")
# RFC 3986 path and query characters: unreserved, sub-delims, ':', '@', '/', '?', and %XX escapes.
_PCHARS = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")


class UrlRefused(ValueError):
    """Why a URL cannot be called; `forbidden` means well-formed but not allowed (403)."""

    def __init__(self, message: str, forbidden: bool = False):
        super().__init__(message)
        self.forbidden = forbidden


@dataclass(frozen=True)
class CheckedUrl:
    scheme: str
    host: str  # lower case; an IPv6 literal without brackets
    port: int | None
    path: str
    query: str | None

    @property
    def is_ip(self) -> bool:
        return _ip(self.host) is not None

    @property
    def url(self) -> str:
        """The URL rebuilt from the checked parts: the only form the app ever sends to."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port else ""
        query = f"?{self.query}" if self.query is not None else ""
        return f"{self.scheme}://{host}{port}{self.path}{query}"


def _ip(host: str):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_loopback(host: str | None) -> bool:
    """localhost, 127.0.0.0/8 or ::1."""
    if not host:
        return False
    address = _ip(host.strip("[]"))
    return host.lower() == "localhost" or (address is not None and address.is_loopback)


def parse_host(text: str) -> str:
    """A host name as the app accepts it, lower-cased; raise UrlRefused otherwise."""
    if text.startswith("[") and text.endswith("]"):
        address = _ip(text[1:-1])
        if address is None or address.version != 6 or "%" in text:
            raise UrlRefused("has an invalid IPv6 address")
        return str(address)
    host = text.lower()
    if _IPV4.fullmatch(host):
        return host
    if not host or len(host) > MAX_HOST_LENGTH:
        raise UrlRefused(f"must have a host name of 1-{MAX_HOST_LENGTH} characters")
    labels = host.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise UrlRefused("must have a plain host name: letters, digits and hyphens in dot-separated labels "
                         "of at most 63 characters")
    if not _TOP_LABEL.fullmatch(labels[-1]):
        raise UrlRefused("must have a host name whose last label starts with a letter, or an IP address")
    return host


def parse(raw) -> CheckedUrl:
    """Parse `raw` by the strict grammar; raise UrlRefused saying what is wrong."""
    if not isinstance(raw, str) or not raw:
        raise UrlRefused("must be a non-empty string")
    if len(raw) > MAX_URL_LENGTH:
        raise UrlRefused(f"must be at most {MAX_URL_LENGTH} characters")
    if not raw.isascii() or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        raise UrlRefused("must be ASCII without spaces or control characters (percent-encode the rest)")
    if "\\" in raw:
        raise UrlRefused("must not contain a backslash")
    match = _URL.fullmatch(raw)
    if not match:
        raise UrlRefused("must be an absolute URL like https://host/path, without a #fragment")
    scheme = match["scheme"].lower()
    if scheme not in ("https", "http"):
        raise UrlRefused("must be an https:// URL")
    authority = match["authority"]
    if "@" in authority or "%" in authority:
        raise UrlRefused("must not carry credentials or escapes in its host")
    host_text, port = authority, None
    if authority.startswith("["):
        end = authority.find("]")
        host_text, rest = authority[:end + 1], authority[end + 1:]
        if end < 0 or (rest and not rest.startswith(":")):
            raise UrlRefused("has an invalid IPv6 address")
        port_text = rest[1:] if rest else None
    elif ":" in authority:
        host_text, port_text = authority.split(":", 1)
    else:
        port_text = None
    if port_text is not None:
        if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
            raise UrlRefused("has an invalid port")
        port = int(port_text)
    host = parse_host(host_text)
    path, query = match["path"] or "/", match["query"]
    if not _PCHARS.fullmatch(path) or (query is not None and not _PCHARS.fullmatch(query)):
        raise UrlRefused("has characters in its path or query that must be percent-encoded")
    if port == {"https": 443, "http": 80}[scheme]:
        port = None
    checked = CheckedUrl(scheme, host, port, path, query)
    _second_opinion(checked)
    return checked


def _second_opinion(checked: CheckedUrl) -> None:
    """urllib3 must read the rebuilt URL as the same scheme, host and port, or it is not called."""
    from urllib3.util import parse_url

    try:
        seen = parse_url(checked.url)
    except ValueError:
        raise UrlRefused("is not a URL the HTTP client can call") from None
    if ((seen.scheme or "").lower(), (seen.host or "").lower().strip("[]"), seen.port) != \
            (checked.scheme, checked.host, checked.port):
        raise UrlRefused("is read differently by the HTTP client")


def host_allowed(host: str, patterns) -> bool:
    """Exact names or IPs, or `*.suffix` for DNS names below that suffix (never an IP)."""
    is_ip = _ip(host) is not None
    for pattern in patterns:
        if pattern.startswith("*."):
            if not is_ip and host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def allowed(raw, patterns, setting: str) -> CheckedUrl:
    """Parse `raw` and check it against the allow-list in `setting`; raise UrlRefused."""
    checked = parse(raw)
    if checked.scheme == "http":
        # Plain http only for a loopback host listed exactly (local tests), never via a wildcard.
        if not (is_loopback(checked.host) and checked.host in patterns):
            raise UrlRefused(f"must use https; plain http is allowed only for loopback hosts listed in {setting} "
                             f"(got host {checked.host})", forbidden=True)
        return checked
    if not host_allowed(checked.host, patterns):
        raise UrlRefused(f"host {checked.host} is not in {setting}; add it there if the app may call it",
                         forbidden=True)
    return checked


def check_field(raw, patterns, *, field: str, setting: str) -> CheckedUrl:
    """`allowed()` for a request field: 400 naming the field, or 403 when the host is not allowed."""
    try:
        return allowed(raw, patterns, setting)
    except UrlRefused as refused:
        if refused.forbidden:
            raise Forbidden(f"{field} {refused}.") from None
        raise InvalidRequest(f"{field} {refused}.", [{"field": field, "rule": "url", "message": str(refused)}]) \
            from None


def valid_pattern(pattern: str) -> bool:
    """Whether an allow-list entry is a host, an IP literal or `*.` and a host."""
    if _ip(pattern) is not None:
        return True
    try:
        parse_host(pattern[2:] if pattern.startswith("*.") else pattern)
    except UrlRefused:
        return False
    return not (pattern.startswith("*.") and _ip(pattern[2:]) is not None)
