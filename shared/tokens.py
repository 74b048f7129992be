"""One-time tokens: `<pause_id><secret>`, URL-safe, with only a hash of the secret stored.

The pause id (32 hex characters, 16 random bytes) makes the lookup a point read; the secret
(64 random bytes, 86 base64url characters) is the credential. Tokens are checked for shape
before any storage call, and the secret is compared in constant time.
"""

import base64
import hashlib
import hmac
import re
import secrets
from typing import NamedTuple

PAUSE_ID_LENGTH = 32
SECRET_BYTES = 64
SECRET_LENGTH = 86  # base64url of 64 bytes without padding
TOKEN_LENGTH = PAUSE_ID_LENGTH + SECRET_LENGTH

PAUSE_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
_TOKEN_PATTERN = re.compile(r"([0-9a-f]{32})([A-Za-z0-9_-]{86})")


class MalformedToken(ValueError):
    """The string cannot be a token we issued."""


class Token(NamedTuple):
    pause_id: str
    secret: str

    def __str__(self) -> str:
        return self.pause_id + self.secret


def new_pause_id() -> str:
    return secrets.token_hex(16)


def issue(pause_id: str) -> tuple[str, str]:
    """Return a new token for `pause_id` and the hash to store instead of it."""
    secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode()
    return pause_id + secret, hash_secret(secret)


def parse(token: str) -> Token:
    """Split a token into pause id and secret, or raise MalformedToken."""
    match = _TOKEN_PATTERN.fullmatch(token or "")
    if not match:
        raise MalformedToken("not a pause token")
    return Token(match.group(1), match.group(2))


def hash_secret(secret: str) -> str:
    # 64 random bytes cannot be brute-forced, so a plain SHA-256 suffices (no slow KDF needed).
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def match(secret: str, candidates: list) -> str | None:
    """Which of `candidates` ((name, stored hash) pairs) the secret belongs to, or None.

    Every candidate is compared, in constant time each, so timing tells nothing about which
    (if any) matched.
    """
    found = None
    for name, stored_hash in candidates:
        if secret_matches(secret, stored_hash) and found is None:
            found = name
    return found


def secret_matches(secret: str, stored_hash) -> bool:
    """Compare in constant time, so response timing reveals nothing about the stored hash.

    A stored value that is not an ASCII string (a damaged record) matches nothing.
    """
    if not isinstance(stored_hash, str) or not stored_hash.isascii():
        stored_hash = ""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def decision_links(base_url: str, token: str) -> dict:
    """The approve and cancel links of a token, under the app's base URL."""
    from shared.settings import ROUTE_PREFIX

    api = f"{base_url.rstrip('/')}/{ROUTE_PREFIX}"
    return {"restart_url": f"{api}/restart/{token}", "cancel_url": f"{api}/cancel/{token}"}
