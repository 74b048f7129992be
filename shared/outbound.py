"""Calls to URLs that users chose (WebHook callbacks, HTTP checks), and what the socket did in any call.

What a failed outside call means depends on whether the request was sent, and exception types
cannot tell (an ssl.SSLError comes from a handshake, or from a read after the request left;
urllib3 wraps and rewraps errors, and its messages carry the URL). So the connection classes here
note in the calling thread's `Call` that a connection was used and when the first byte of the
request was handed to a socket: a failure before that byte (no connection, a failed TLS
handshake) surely had no effect.

A user-chosen URL's host name was allow-listed, but a name may resolve to anything (an internal
record, a DNS rebinding attack). Guarded connections resolve the name themselves and connect only
to an address that is globally routable or itself listed in the allow-list the call was checked
against, to that very address (no second lookup, which a rebinding server would answer
differently); TLS SNI, the certificate check and the Host header keep the name.

urllib3 logs each request's target (path and query) and a callBackUri's query is a credential (ADF
signs it there): urllib3's loggers hide queries once a session is built here.
"""

import contextlib
import contextvars
import functools
import ipaddress
import logging
import re
import socket
import sys
from dataclasses import dataclass
from typing import Callable

from shared.clients import POOL_SIZE, FreshEnough, built_once
from shared.urls import CheckedUrl


class AddressRefused(Exception):
    """The host name resolved only to addresses the allow-list does not admit: nothing was sent."""


class Failed(Exception):
    """A request failed. `sent`: a byte of it may have reached the other side. The text names no URL."""

    def __init__(self, message: str, *, sent: bool, timed_out: bool):
        super().__init__(message)
        self.sent = sent
        self.timed_out = timed_out


@dataclass
class Call:
    """What the connections of one call did, and (for a user-chosen URL) where they may go."""

    listed: frozenset | None = None  # addresses the allow-list names; None: no address rule (the app's own services)
    setting: str = ""                 # the allow-list's app setting, to name in a refusal
    watch: Callable | None = None     # given each socket an answer is read from (a check's deadline)
    secret_path: bool = False         # the URL's path is a credential too (a chat webhook): log no target at all
    used: bool = False                # a connection made here was opened or written to
    sent: bool = False                # a byte of the request was handed to a socket

    @property
    def never_sent(self) -> bool:
        """Surely not sent: a connection made here was used and no byte of the request left through it.
        (Nothing seen, e.g. a connection through a proxy, proves nothing.)"""
        return self.used and not self.sent


_current: contextvars.ContextVar = contextvars.ContextVar("outbound_call", default=None)


@contextlib.contextmanager
def tracking(call: Call | None = None):
    """Note in `call` what the connections made in this block (in this thread) do."""
    call = call or Call()
    token = _current.set(call)
    try:
        yield call
    finally:
        _current.reset(token)


# The connections.

class _Tracked:
    """Mixed into a urllib3 connection class: tell the current Call what the socket does."""

    def _new_conn(self):
        call = _current.get()
        if call is not None:
            call.used = True
        return super()._new_conn()

    def send(self, data):
        if self.sock is None and self.auto_open:
            self.connect()  # plain http connects on its first send; connecting sends nothing of the request
        call = _current.get()
        if call is not None:
            call.used = call.sent = True  # before the bytes go: a partial send may have arrived
        super().send(data)

    def getresponse(self, *args, **kwargs):
        call = _current.get()
        if call is not None and call.watch is not None and self.sock is not None:
            call.watch(self.sock)
        return super().getresponse(*args, **kwargs)


class _Guarded(_Tracked):
    """Mixed into a urllib3 connection class: resolve the host and connect only to an admitted address."""

    def _new_conn(self):
        from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
        from urllib3.util.connection import allowed_gai_family, create_connection

        call = _current.get()
        if call is None or call.listed is None:  # fail closed: no rule, no connection
            raise AddressRefused(f"host {self.host} was called without an allow-list")
        call.used = True
        try:
            found = socket.getaddrinfo(self._dns_host, self.port, allowed_gai_family(), socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        addresses = list(dict.fromkeys(info[4][0] for info in found))
        admitted = [address for address in addresses if admits(address, call.listed)]
        if not admitted:
            raise AddressRefused(f"host {self.host} resolves to {', '.join(addresses)}, not a public address; the app "
                                 f"calls such an address only when {call.setting} lists it")
        error = None
        for address in admitted:
            try:
                # An IP literal: getaddrinfo parses it, nothing is looked up again.
                sock = create_connection((address, self.port), self.timeout, source_address=self.source_address,
                                         socket_options=self.socket_options)
            except socket.timeout as exc:
                error = ConnectTimeoutError(self, f"Connection to {self.host} timed out. "
                                                  f"(connect timeout={self.timeout})")
                error.__cause__ = exc
            except OSError as exc:
                error = NewConnectionError(self, f"Failed to establish a new connection: {exc}")
                error.__cause__ = exc
            else:
                sys.audit("http.client.connect", self, self.host, self.port)
                return sock
        raise error


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: the last 32 bits are an IPv4 address


def _route_of(address):
    """The IPv4 address an IPv6 one stands for (IPv4-mapped, 6to4, NAT64), else the address itself."""
    if address.version == 6:
        if address.ipv4_mapped or address.sixtofour:
            return address.ipv4_mapped or address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


# IANA special-purpose blocks that are not globally reachable but that the `ipaddress` tables of some
# Python versions (3.11.7 here) still call global: IETF protocol assignments, IETF assignments in
# IPv6, documentation (RFC 9637), SRv6 SIDs, local-use NAT64, benchmarking.
_NOT_GLOBAL = tuple(ipaddress.ip_network(block) for block in (
    "192.0.0.0/24", "198.18.0.0/15", "2001::/23", "3fff::/20", "5f00::/16", "64:ff9b:1::/48"))


def routable(address) -> bool:
    """Whether an address is globally routable: not loopback, private, link-local, multicast, reserved,
    unspecified, shared or otherwise special-purpose, also when embedded in IPv6."""
    address = _route_of(address)
    return address.is_global and not (address.is_multicast or address.is_reserved or address.is_private
                                       or address.is_loopback or address.is_link_local or address.is_unspecified
                                       or getattr(address, "is_site_local", False)
                                       or any(address in block for block in _NOT_GLOBAL
                                              if block.version == address.version))


def admits(address: str, listed: frozenset) -> bool:
    """Whether a connection may go to `address`: routable, or itself listed (an IPv4-mapped one as its IPv4)."""
    parsed = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope (%eth0) is not part of the address
    if parsed in listed or (parsed.version == 6 and parsed.ipv4_mapped in listed):
        return True
    return routable(parsed)


def listed_addresses(patterns) -> frozenset:
    """The IP literals on an allow-list."""
    found = set()
    for pattern in patterns:
        try:
            found.add(ipaddress.ip_address(pattern))
        except ValueError:
            pass
    return frozenset(found)


@functools.cache
def _pool_classes(guarded: bool) -> dict:
    from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.connection import HTTPConnection, HTTPSConnection

    mixin = _Guarded if guarded else _Tracked

    class Connection(mixin, HTTPConnection):
        pass

    class TlsConnection(mixin, HTTPSConnection):
        pass

    class Pool(FreshEnough, HTTPConnectionPool):
        ConnectionCls = Connection

    class TlsPool(FreshEnough, HTTPSConnectionPool):
        ConnectionCls = TlsConnection

    return {"http": Pool, "https": TlsPool}


def adapter(*, guarded: bool = False, **options):
    """A requests HTTPAdapter whose connections report to the current Call (and, guarded, check addresses)."""
    from requests.adapters import HTTPAdapter

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = _pool_classes(guarded)

        def proxy_manager_for(self, proxy, **kwargs):
            manager = super().proxy_manager_for(proxy, **kwargs)
            if not proxy.lower().startswith("socks"):  # SOCKS brings its own connection classes
                manager.pool_classes_by_scheme = _pool_classes(guarded)
            return manager

    return Adapter(**options)


def http_transport(*, connection_timeout: float, read_timeout: float):
    """The HTTP transport of the app's SDK clients: the SDK's own, on a session built here.

    - urllib3 retries nothing (as azure-core configures its own sessions): every retry is the
      SDK policy's decision, made knowing the method and whether a request may have had effect.
    - The keep-alive pool holds POOL_SIZE connections instead of requests' 10, so 32
      concurrent invocations do not open (and throw away) a connection each.
    - requests looks for proxies and a CA bundle in the environment on every request, a scan
      of every environment variable: ~10 % of a Table call here, more on Azure with its many
      app settings. Without a proxy configured, the CA bundle it would find (if any) is read
      once, here, and given to the transport; with a proxy (whose use can depend on the host,
      through NO_PROXY) requests keeps deciding per request.

    The timeouts are given here: a client handed a transport no longer builds one from its
    own keyword arguments.
    """
    from urllib.request import getproxies

    from azure.core.pipeline.transport import RequestsTransport
    from requests import Session
    from urllib3.util import Retry

    options = {"connection_timeout": connection_timeout, "read_timeout": read_timeout}
    session = Session()
    session.trust_env = bool(getproxies())
    if not session.trust_env:
        # What requests itself would take from the environment: REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE.
        with Session() as probe:
            verify = probe.merge_environment_settings("https://localhost/", {}, None, True, None)["verify"]
        options.update(connection_verify=verify, use_env_settings=False)
    # Its connections tell a call tracked with `tracking()` whether a request was sent.
    tracked = adapter(pool_maxsize=POOL_SIZE, max_retries=Retry(total=False, redirect=False, raise_on_status=False))
    for prefix in ("https://", "http://"):
        session.mount(prefix, tracked)
    return RequestsTransport(session=session, session_owner=True, **options)


# Calls to user-chosen URLs.

@built_once
def session(allow_list: tuple, connect_retries: int):
    """The session for calls checked against `allow_list`, retrying a connection that could not be made.
    One per list, so no pooled connection admitted under one list serves a call under another."""
    import requests
    from urllib3.util import Retry

    _hide_queries_in_urllib3_logs()
    session = requests.Session()
    session.trust_env = False  # no proxies or .netrc credentials picked up from the environment
    # Retry a connection that could not be made (nothing was sent); never a read, never a status.
    retry = Retry(total=connect_retries, connect=connect_retries, read=0, status=0, other=0, redirect=0,
                  backoff_factor=0.2, allowed_methods=None, raise_on_status=False, raise_on_redirect=False)
    for prefix in ("https://", "http://"):
        session.mount(prefix, adapter(guarded=True, max_retries=retry, pool_maxsize=POOL_SIZE))
    return session


def request(method: str, target: CheckedUrl, allow_list: tuple, setting: str, *, connect_retries: int = 0,
            watch: Callable | None = None, secret_path: bool = False, **options):
    """Send one request to a URL checked against `allow_list` (the app setting `setting`), only to an
    address the list admits, never following a redirect.

    Raise AddressRefused, or Failed saying whether the request may have been sent; neither names the URL.
    """
    call = Call(listed=listed_addresses(allow_list), setting=setting, watch=watch, secret_path=secret_path)
    with tracking(call):
        try:
            return session(tuple(allow_list), connect_retries).request(method, target.url, allow_redirects=False,
                                                                       **options)
        except AddressRefused:
            raise
        except Exception as exc:  # whatever its type: what the socket did decides
            raise Failed(why(exc), sent=not call.never_sent, timed_out=timed_out(exc)) from None


# What went wrong, told without the URL.

def _causes(exc: BaseException):
    """`exc` and every exception it wraps (causes, contexts, urllib3's reasons, azure-core's inner errors)."""
    seen, todo = set(), [exc]
    while todo:
        current = todo.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue  # an ssl.SSLError's `reason` is a string, not an exception
        seen.add(id(current))
        yield current
        todo += [current.__cause__, current.__context__, getattr(current, "reason", None),
                 getattr(current, "inner_exception", None), *getattr(current, "args", ())]


def timed_out(exc: BaseException) -> bool:
    """Whether `exc` is, or wraps, a timeout (urllib3 wraps read timeouts in a MaxRetryError)."""
    from urllib3.exceptions import NewConnectionError
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    # urllib3 derives NewConnectionError (a refused connection, too) from ConnectTimeoutError.
    return any(isinstance(cause, (Urllib3Timeout, TimeoutError)) and not isinstance(cause, NewConnectionError)
               for cause in _causes(exc))


def why(exc: BaseException) -> str:
    """What failed, in words that never carry the URL (urllib3's and requests' messages do)."""
    import ssl
    from http.client import RemoteDisconnected

    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"the TLS certificate was not accepted ({cause.verify_message or cause.reason})"
    for cause in causes:
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed ({cause.reason or type(cause).__name__})"
    if timed_out(exc):
        return "timed out"
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return "the host name could not be resolved"
        if isinstance(cause, RemoteDisconnected):
            return "the connection was closed without an answer"
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    return type(exc).__name__


class _HideQueries(logging.Filter):
    """Hide every query in a record's message (urllib3 logs request targets, some of them signed), and
    every path too while a call whose path is a credential (a chat webhook) is made in this thread."""

    _QUERY = re.compile(r"\?[^\s\"'()]*")
    _TARGET = re.compile(r"(?<=[\s\"'])/[^\s\"'()]*")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's to report, not ours
            return True
        call = _current.get()
        if call is not None and call.secret_path:
            record.msg, record.args = self._TARGET.sub("/(target hidden)", message), None
        elif "?" in message:
            record.msg, record.args = self._QUERY.sub("?(query hidden)", message), None
        return True


_HIDE_QUERIES = _HideQueries()


def _hide_queries_in_urllib3_logs() -> None:
    # A logger's filters see only the records made on it, not on its children: each module's logger.
    for name in ("connectionpool", "connection", "poolmanager", "response", "util.retry"):
        logger = logging.getLogger(f"urllib3.{name}")
        if _HIDE_QUERIES not in logger.filters:
            logger.addFilter(_HIDE_QUERIES)
