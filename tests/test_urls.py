"""The one URL checker: strict grammar, rebuilt URL, and no disagreement with the HTTP client about the host."""

import ipaddress
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from urllib3.util import parse_url

from shared import urls

ALLOWED = ("*.svc.datafactory.azure.com", "127.0.0.1", "::1")


@pytest.mark.parametrize("raw, rebuilt", [
    ("https://dpeastus.svc.datafactory.azure.com/cb", "https://dpeastus.svc.datafactory.azure.com/cb"),
    ("HTTPS://DPEASTUS.SVC.DATAFACTORY.AZURE.COM:443/cb?x=1&y=%2F", "https://dpeastus.svc.datafactory.azure.com/cb?x=1&y=%2F"),
    ("https://dpeastus.svc.datafactory.azure.com", "https://dpeastus.svc.datafactory.azure.com/"),
    ("https://dpeastus.svc.datafactory.azure.com:8443/a/b", "https://dpeastus.svc.datafactory.azure.com:8443/a/b"),
    ("http://127.0.0.1:7072/_standin/callbacks/x", "http://127.0.0.1:7072/_standin/callbacks/x"),
    ("http://[::1]:80/cb", "http://[::1]/cb"),
])
def test_allowed_urls_are_rebuilt_from_their_checked_parts(raw, rebuilt):
    assert urls.allowed(raw, ALLOWED, "X").url == rebuilt


@pytest.mark.parametrize("raw", [
    "", "   ", "https://", "https:///cb", "//dpeastus.svc.datafactory.azure.com/cb", "javascript:alert(1)",
    "https://user@dpeastus.svc.datafactory.azure.com/", "https://dpeastus.svc.datafactory.azure.com/#frag",
    "https://evil.example\\@dpeastus.svc.datafactory.azure.com/", "https://a.svc.datafactory.azure.com:0/",
    "https://a.svc.datafactory.azure.com:65536/", "https://a.svc.datafactory.azure.com:+443/",
    "https://a.svc.datafactory.azure.com:44 3/", "https://-a.svc.datafactory.azure.com/",
    "https://a-.svc.datafactory.azure.com/", "https://a..svc.datafactory.azure.com/", "https://a_b.example/",
    "https://" + "a" * 64 + ".example/", "https://" + ("a" * 60 + ".") * 5 + "example/", "https://[::1/",
    "https://[fe80::1%25eth0]/", "https://[1.2.3.4]/", "https://01.2.3.4/", "https://1.2.3/", "https://0x7f.1/",
    "https://4294967295/", "https://example.123/", "https://ex%61mple.com/", "https://exämple.com/",
    "https://example.com/a b", "https://example.com/\x00", "https://example.com/%zz", "https://example.com/<x>",
    "https://example.com/a\\b", "https://example.com/{x}", "https://example.com/?q=\"", "ws://example.com/",
])
def test_malformed_or_ambiguous_urls_are_refused(raw):
    with pytest.raises(urls.UrlRefused) as refused:
        urls.parse(raw)
    assert not refused.value.forbidden


@pytest.mark.parametrize("raw", [
    "https://evil.example/cb", "https://svc.datafactory.azure.com/cb", "https://svc.datafactory.azure.com.evil.example/",
    "http://dpeastus.svc.datafactory.azure.com/cb", "http://localhost/cb", "http://127.0.0.2/cb",
    "https://10.0.0.1/cb", "https://[::2]/cb",
])
def test_well_formed_urls_off_the_allow_list_are_forbidden(raw):
    with pytest.raises(urls.UrlRefused) as refused:
        urls.allowed(raw, ALLOWED, "X")
    assert refused.value.forbidden


def test_a_wildcard_never_matches_an_ip_and_plain_http_needs_an_exact_loopback_entry():
    assert not urls.host_allowed("10.0.0.1", ("*.0.0.1",))
    with pytest.raises(urls.UrlRefused):
        urls.allowed("http://127.0.0.1/cb", ("*.0.0.1",), "X")


@pytest.mark.parametrize("pattern, valid", [("a.example", True), ("*.a.example", True), ("127.0.0.1", True),
                                            ("::1", True), ("*.127.0.0.1", False), ("a b", False), ("*", False),
                                            ("https://a.example", False), ("a.example/cb", False)])
def test_allow_list_entries_are_checked(pattern, valid):
    assert urls.valid_pattern(pattern) is valid


# Every URL the checker accepts is read by urllib.parse, urllib3 and requests as the same host and port.
_TRICKY = ["@", ":", "/", "\\", "%", "%2e", "%40", "#", "?", "[", "]", " ", "\t", "\u0430", "\uff0e", "\u3002", ";",
           "&", "=", "~", "!", "..", "%00", "\x00"]
_LABELS = ["a", "x", "dpeastus", "svc", "datafactory", "azure", "com", "evil", "example", "0", "127", "1", "xn--p1ai",
           "a-b", "0x7f"]
_host = st.one_of(
    st.lists(st.sampled_from(_LABELS), min_size=1, max_size=5).map(".".join),
    st.sampled_from(["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "evil.example@x.svc.datafactory.azure.com"]))
_piece = st.one_of(st.sampled_from(_TRICKY), st.sampled_from(_LABELS))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scheme=st.sampled_from(["https://", "http://", "HTTPS://", "https:/", "https:\\\\"]), host=_host,
       port=st.sampled_from(["", ":443", ":8443", ":0", ":99999", ":", ":44a"]),
       inside=st.lists(_piece, max_size=3).map("".join), where=st.integers(0, 40),
       path=st.lists(_piece, max_size=6).map(lambda parts: "/" + "".join(parts)))
def test_no_accepted_url_is_read_as_another_host_by_any_client(scheme, host, port, inside, where, path):
    authority = host[:where] + inside + host[where:]
    raw = scheme + authority + port + path
    try:
        checked = urls.parse(raw)
    except urls.UrlRefused:
        return
    for url in (raw, checked.url):
        split = urlsplit(url)
        assert same_host(split.hostname, checked.host)
        assert (split.port or None) in (checked.port, {"https": 443, "http": 80}[checked.scheme])
        assert same_host(parse_url(url).host, checked.host)
    prepared = requests.Request("POST", checked.url).prepare()
    assert same_host(parse_url(prepared.url).host, checked.host)


def same_host(seen, checked):
    """Equal names, or the same address written two ways (::ffff:7f00:1 is ::ffff:127.0.0.1)."""
    seen = (seen or "").lower().strip("[]")
    try:
        return ipaddress.ip_address(seen) == ipaddress.ip_address(checked)
    except ValueError:
        return seen == checked
