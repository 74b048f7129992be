"""One defence for every state-changing POST a sign-in cookie authorises: the links, the console and
whatever form comes next.

Under APPROVER_SIGN_IN=easyauth the App Service sign-in cookie says who acts, and a browser sends
that cookie along with a form any other site makes it post (cross-site request forgery). Such a
POST is accepted only when

- it comes from the app's own pages: `Sec-Fetch-Site: same-origin` where the browser sends that
  header, else an `Origin` (or, without one, a `Referer`) naming the app's own host — a POST that
  shows none of the three is refused too; and
- it carries the anti-forgery token its form was rendered with: an HMAC, under a key every
  instance shares (`shared.store.shared_key`), of who is signed in, their sign-in session (the
  hash of its cookie) and when it was issued, good for TOKEN_LIFETIME.

A request without cookies (curl with a bearer token, ADF) carries no ambient authority and is not
affected; neither is one with nobody signed in (the service asks for a sign-in first).
"""

import base64
import hashlib
import hmac
import time
from urllib.parse import urlsplit

from .errors import CrossSite, FormExpired

FIELD = "antiforgery_token"
SESSION_COOKIE = "AppServiceAuthSession"  # App Service Authentication's session cookie
TOKEN_LIFETIME = 12 * 3600  # a confirmation page may stay open for a working day
_CLOCK_SKEW = 300           # instances' clocks may differ a little
_KEY_NAME = "antiforgery"


def applies(headers) -> bool:
    """Whether a signed-in person's POST carries cookies, so the sign-in may be the cookie's: then it
    must pass `check`."""
    return bool((headers.get("Cookie") or "").strip())


def _session(headers) -> bytes:
    """The hash of the sign-in session's cookie (empty when the request carries none)."""
    for part in (headers.get("Cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE:
            return hashlib.sha256(value.encode("utf-8", "replace")).digest()
    return b""


def _mac(issued: int, who: str, session: bytes) -> str:
    from .store import shared_key

    message = b"|".join((b"antiforgery-v1", str(issued).encode(), who.encode("utf-8"), session))
    digest = hmac.new(shared_key(_KEY_NAME), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue(who: str, headers, now: float | None = None) -> str:
    """A token for the forms of a page shown to `who` in this request's sign-in session."""
    issued = int(now if now is not None else time.time())
    return f"{issued}.{_mac(issued, who, _session(headers))}"


def _origin(url: str | None) -> tuple | None:
    """(host, port) of a URL, default ports left out; the scheme is not compared, since the app may
    see its own URL as http behind the platform's TLS front end."""
    try:
        parts = urlsplit(url or "")
        port = parts.port
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    return host.lower(), None if port in (80, 443) else port


def _same_origin(headers, own_urls) -> bool:
    site = (headers.get("Sec-Fetch-Site") or "").strip().lower()
    if site:  # only a browser sets it, and no script can: it says where the form was
        return site == "same-origin"
    ours = {_origin(url) for url in own_urls} - {None}
    origin = (headers.get("Origin") or "").strip()
    if origin:
        return _origin(origin) in ours  # "null" (a sandboxed page, a data: URL) is nobody's own
    # No evidence at all is a refusal too: every browser that posts a form sends one of the three.
    return _origin(headers.get("Referer")) in ours


def check(headers, fields: dict, who: str, own_urls, back_url: str | None = None,
          now: float | None = None) -> None:
    """Refuse (403) a cookie-authorised POST from another site or without this session's token.

    Takes the token out of `fields`, so the form's own fields are validated as before.
    """
    token = fields.pop(FIELD, None)
    if not _same_origin(headers, own_urls):
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
