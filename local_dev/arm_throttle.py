"""Azure Resource Manager's request throttling, for the local ADF stand-in. Development and tests only.

What ARM does, from Microsoft Learn, "Understand how Azure Resource Manager throttles requests"
(https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling,
the regional token-bucket architecture every subscription was moved to from 2024):

- Subscription limits apply per subscription, per security principal (user or application) and
  per kind of operation, each a token bucket: reads 250 at once, refilled 25 a second; writes
  200, 10 a second; deletes 200, 10 a second. A request takes one token; the bucket never holds
  more than its size. Limits are per region: the stand-in is one region.
- A global subscription limit per kind, 15 times the principal's, is shared by all principals; a
  request is throttled when either is exceeded. (The tenant limits are the same sizes; every
  route here is subscription-level, so they are not modelled.)
- Beyond the limit ARM answers 429 Too Many Requests with `Retry-After` in seconds, and does not
  process the request ("your request isn't processed").
- Answers carry what remains for their kind: `x-ms-ratelimit-remaining-subscription-reads` on
  reads, `-writes` on writes (every PUT, PATCH and POST), `-deletes` on deletes, and the global
  bucket's `x-ms-ratelimit-remaining-subscription-global-reads` / `-global-writes`. Seen on a real
  write (2026): `...-writes: 199` with `...-global-writes: 2999`, what remains after it in buckets
  of 200 and 3,000. (`-global-deletes` is assumed by analogy; it was not seen.)
- The 429's body, as ARM answered it in 2026 (quoted in Azure/ARO-HCP's tests):
  {"error": {"code": "SubscriptionRequestsThrottled", "message": "Number of 'read' requests for
  subscription '<id>' actor '<object id>' exceeded. Please try again after '10' seconds after
  additional tokens are available. Refer to https://aka.ms/arm-throttling for additional information."}}

Where the documents say nothing the stand-in chooses: buckets refill continuously (a write token
every 100 ms rather than 10 each second); `Retry-After` is the whole seconds until the buckets
hold a token again (at least 1; ARM's own values are not documented and run larger); a 429 also
carries the remaining headers (0). The principal is the token's `oid` (else `appid`, else `sub`)
when it is a JWT, else a digest of the token (which never appears in an answer).

    throttle = ArmThrottle(Throttle())        # ARM's sizes; Throttle(...).scaled(10) for ten times them
    decision = throttle.take(subscription, principal_of(token), "POST")
    decision.allowed, decision.headers, decision.retry_after, decision.message
"""

import base64
import binascii
import hashlib
import json
import math
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable

KINDS = ("reads", "writes", "deletes")
GLOBAL_FACTOR = 15
SCALE_SETTING = "ADF_STANDIN_THROTTLE_SCALE"
_KIND_OF_METHOD = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}  # every other method writes
_SINGULAR = {"reads": "read", "writes": "write", "deletes": "delete"}


@dataclass(frozen=True)
class Throttle:
    """Bucket sizes and refill rates (a second) per subscription and principal: ARM's by default.

    `global_factor` sizes the subscription's bucket shared by all principals; `clock` (seconds,
    monotonic) is what the buckets refill by, so a test can move time instead of waiting."""

    reads: int = 250
    reads_per_second: float = 25
    writes: int = 200
    writes_per_second: float = 10
    deletes: int = 200
    deletes_per_second: float = 10
    global_factor: float = GLOBAL_FACTOR
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)

    def __post_init__(self):
        for kind in KINDS:
            if getattr(self, kind) < 1 or getattr(self, f"{kind}_per_second") <= 0:
                raise ValueError(f"{kind}: a bucket holds at least 1 token and refills at a positive rate")
        if self.global_factor < 1:
            raise ValueError("global_factor is at least 1: the subscription's bucket is never smaller")

    def scaled(self, factor: float) -> "Throttle":
        """The same limits `factor` times as large: every bucket and every refill rate."""
        if not factor > 0:
            raise ValueError(f"the scale must be a positive number, got {factor!r}")
        sizes = {kind: max(1, round(getattr(self, kind) * factor)) for kind in KINDS}
        rates = {f"{kind}_per_second": getattr(self, f"{kind}_per_second") * factor for kind in KINDS}
        return replace(self, **sizes, **rates)

    def size(self, kind: str) -> int:
        return getattr(self, kind)

    def rate(self, kind: str) -> float:
        return getattr(self, f"{kind}_per_second")


def throttle_from_setting(text: str | None) -> Throttle:
    """ARM's limits scaled by the setting ADF_STANDIN_THROTTLE_SCALE (unset or empty: ARM's own)."""
    if text is None or not text.strip():
        return Throttle()
    try:
        factor = float(text)
    except ValueError:
        raise ValueError(f"{SCALE_SETTING} must be a positive number, got {text!r}") from None
    try:
        return Throttle().scaled(factor)
    except ValueError:
        raise ValueError(f"{SCALE_SETTING} must be a positive number, got {text!r}") from None


def principal_of(token: str, claims: dict | None = None) -> str:
    """Who ARM counts a request against: the object id of a JWT (checked `claims`, else read unverified)."""
    if claims is None:
        claims = _unverified_claims(token)
    for name in ("oid", "appid", "sub"):
        if isinstance(claims.get(name), str) and claims[name]:
            return claims[name]
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:16]


def _unverified_claims(token: str) -> dict:
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def kind_of(method: str) -> str:
    return _KIND_OF_METHOD.get(method.upper(), "writes")


@dataclass
class _Bucket:
    size: float
    rate: float
    tokens: float
    at: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.size, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def seconds_to_token(self) -> float:
        return max(0.0, (1 - self.tokens) / self.rate)


@dataclass(frozen=True)
class Decision:
    """Whether a request may go on, and what ARM's answer to it says about the buckets."""

    allowed: bool
    headers: dict
    retry_after: int = 0
    message: str = ""


class ArmThrottle:
    """The token buckets of every (subscription, principal, kind), and of every (subscription, kind)."""

    def __init__(self, limits: Throttle | None = None):
        self.limits = limits or Throttle()
        self._buckets = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Every bucket full again."""
        with self._lock:
            self._buckets.clear()

    def take(self, subscription: str, principal: str, method: str) -> Decision:
        """Take a token for one request from its principal's and its subscription's bucket, or refuse it."""
        kind, key = kind_of(method), (subscription or "").lower()  # ARM's ids are case-insensitive
        with self._lock:
            own = self._bucket((key, principal, kind), 1)
            shared = self._bucket((key, kind), self.limits.global_factor)
            allowed = own.tokens >= 1 and shared.tokens >= 1
            if allowed:
                own.tokens -= 1
                shared.tokens -= 1
            headers = {f"x-ms-ratelimit-remaining-subscription-{kind}": str(math.floor(own.tokens)),
                       f"x-ms-ratelimit-remaining-subscription-global-{kind}": str(math.floor(shared.tokens))}
            if allowed:
                return Decision(True, headers)
            wait = max(1, math.ceil(max(own.seconds_to_token(), shared.seconds_to_token())))
        message = (f"Number of '{_SINGULAR[kind]}' requests for subscription '{subscription}' actor '{principal}' "
                   f"exceeded. Please try again after '{wait}' seconds after additional tokens are available. "
                   "Refer to https://aka.ms/arm-throttling for additional information.")
        return Decision(False, {**headers, "Retry-After": str(wait)}, wait, message)

    def _bucket(self, key: tuple, factor: float) -> _Bucket:
        now, kind = self.limits.clock(), key[-1]
        bucket = self._buckets.get(key)
        if bucket is None:
            size = self.limits.size(kind) * factor
            bucket = self._buckets[key] = _Bucket(size, self.limits.rate(kind) * factor, size, now)
        bucket.refill(now)
        return bucket
