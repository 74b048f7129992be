"""One defence for every state-changing POST a sign-in cookie authorises: the links, the console and
whatever form comes next.

Under APPROVER_SIGN_IN=easyauth the App Service sign-in cookie says who acts, and a browser sends
that cookie along with a form any other site makes it post (cross-site request forgery). Such a
POST is accepted only when

- it comes from the app's own pages: `Sec-Fetch-Site: same-origin` where the browser sends that
  header, else an `Origin` (or, without one, a `Referer`) naming the app's own origin — a POST
  that shows none of the three is refused too; and
- it carries the anti-forgery token its form was rendered with: an HMAC, under a key every
  instance shares (`shared.storage.tables.shared_key`), of who is signed in, their sign-in session (the
  hash of its cookie) and when it was issued, good for TOKEN_LIFETIME.

A request signed in by a header (a program with a bearer token) carries no ambient authority and
is not affected; neither is one with nobody signed in (curl, ADF: the service asks for a sign-in
first, or the link itself is the credential).
"""

import base64
import hashlib
import hmac
import time
from urllib.parse import urlsplit

from shared.errors import CrossSite, FormExpired

FIELD = "antiforgery_token"
SESSION_COOKIE = "AppServiceAuthSession"  # App Service Authentication's session cookie
TOKEN_LIFETIME = 12 * 3600  # a confirmation page may stay open for a working day
_CLOCK_SKEW = 300           # instances' clocks may differ a little
_KEY_NAME = "antiforgery"


def from_browser(headers) -> bool:
    """Whether a signed-in person's POST may be authorised by the session cookie, so it must pass
    `check`: App Service Authentication signs programs in by a header a page cannot make a browser
    send to another site (`Authorization: Bearer`, or the legacy `X-ZUMO-AUTH`), and browsers by
    the cookie; without such a header the sign-in is the cookie's, whatever cookies are sent."""
    return not any((headers.get(name) or "").strip() for name in ("Authorization", "X-ZUMO-AUTH"))


def _session(headers) -> bytes:
    """The hash of the sign-in session's cookie (empty when the request carries none)."""
    for part in (headers.get("Cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE:
            return hashlib.sha256(value.encode("utf-8", "replace")).digest()
    return b""


def _mac(issued: int, who: str, session: bytes) -> str:
    from shared.storage.tables import shared_key

    message = b"|".join((b"antiforgery-v1", str(issued).encode(), who.encode("utf-8"), session))
    digest = hmac.new(shared_key(_KEY_NAME), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue(who: str, headers, now: float | None = None) -> str:
    """A token for the forms of a page shown to `who` in this request's sign-in session."""
    issued = int(now if now is not None else time.time())
    return f"{issued}.{_mac(issued, who, _session(headers))}"


def _origin(url: str | None) -> tuple | None:
    """(scheme, host, port) of a URL, the port made explicit."""
    try:
        parts = urlsplit(url or "")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    return parts.scheme, host.lower(), port or {"http": 80, "https": 443}[parts.scheme]


def own_origins(request_url: str, public_base_url: str | None) -> set:
    """The origins of the app's own pages: PUBLIC_BASE_URL's and the request's own, and, where the app
    sees its URL as plain http on the default port (behind the platform's TLS front end), the same
    host over https."""
    found = {_origin(public_base_url), _origin(request_url)} - {None}
    for scheme, host, port in list(found):
        if (scheme, port) == ("http", 80):
            found.add(("https", host, 443))
    return found


def same_origin(headers, ours: set) -> bool:
    """Whether a POST shows it comes from a page of one of the origins `ours`."""
    site = (headers.get("Sec-Fetch-Site") or "").strip().lower()
    if site:  # only a browser sets it, and no script can: it says where the form was
        return site == "same-origin"
    origin = (headers.get("Origin") or "").strip()
    if origin:
        return _origin(origin) in ours  # "null" (a sandboxed page, a data: URL) is nobody's own
    # No evidence at all is a refusal too: every browser that posts a form sends one of the three.
    return _origin(headers.get("Referer")) in ours


def check(headers, token, who: str, ours: set, back_url: str | None = None, now: float | None = None) -> None:
    """Refuse (403) a cookie-authorised POST from another site (not one of the origins `ours`) or
    without this session's token."""
    if not same_origin(headers, ours):
        raise CrossSite("This form can only be sent from this app's own pages. Nothing was changed.", back_url)
    if not _valid(token, who, headers, now):
        raise FormExpired("This page is out of date, or was not made by this app for you: open it again and send "
                          "the form from there. Nothing was changed.", back_url)


def _valid(token, who: str, headers, now: float | None) -> bool:
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 100:
        return False
    issued_text, mac = token.split(".")
    if not issued_text.isascii() or not issued_text.isdigit():
        return False
    issued, now = int(issued_text), now if now is not None else time.time()
    if not now - TOKEN_LIFETIME <= issued <= now + _CLOCK_SKEW:
        return False
    return hmac.compare_digest(_mac(issued, who, _session(headers)).encode(), mac.encode("utf-8", "replace"))
