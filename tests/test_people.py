"""People's names (shared/people.py): one comparison form, and no spelling that passes for another."""

import pytest

from shared.people import key, valid_address


@pytest.mark.parametrize("name, compared", [
    ("Alice@Contoso.com", "alice@contoso.com"),
    ("bob.o'neil+ops@contoso.com", "bob.o'neil+ops@contoso.com"),
    ("Display Name", "display name"),                  # a plain space is allowed in a name
    ("k\u0131ra@contoso.com", "k\u0131ra@contoso.com"),  # dotless i folds onto nothing else: a name of its own
])
def test_a_name_is_compared_with_its_ascii_letters_lower_cased(name, compared):
    assert key(name) == compared


@pytest.mark.parametrize("name", [
    "\u212aate@contoso.com",        # Kelvin sign: lower() makes it k
    "\ufb01nance@contoso.com",      # fi ligature: NFKC makes it fi
    "\uff4bate@contoso.com",        # fullwidth k
    "stra\u00dfe@contoso.com",      # sharp s: casefold makes it ss
    "\u0130nga@contoso.com",        # dotted capital I: lower() adds a combining dot
    "ali\u200bce@contoso.com",      # a zero-width space
    "alice\u00a0@contoso.com",      # a no-break space
    "", None, 5,
])
def test_a_name_that_could_pass_for_another_is_refused_not_folded(name):
    assert key(name) is None


@pytest.mark.parametrize("address, valid", [
    ("alice@contoso.com", True), ("a.b-c+d@mail.contoso.co.uk", True),
    ("Alice <alice@contoso.com>", False), ("alice@localhost", False), ("alice@@contoso.com", False),
    (".alice@contoso.com", False), ("al..ice@contoso.com", False), ("alice@-contoso.com", False),
    ("alice@contoso.123", False), ("al ice@contoso.com", False), ("alic\u00e9@contoso.com", False),
    ("a" * 65 + "@contoso.com", False), ("alice@contoso.com\r\nBcc: x@y.z", False),
])
def test_an_address_mail_may_go_to_is_one_plain_ascii_addr_spec(address, valid):
    assert valid_address(address) is valid


@pytest.mark.parametrize("address", [
    "alice@example.com", "first.last+tag@sub.example.co.uk", "o'brien@example.ie", "x@xn--bcher-kva.example",
    "UPPER_case-1@Example.ORG"])
def test_valid_address_accepts_normal_addresses(address):
    assert valid_address(address)


@pytest.mark.parametrize("address", [
    "", "a", "a@b", "a b@c.d", "a@b.c,d@e.f", "<a@b.c>", "a@b.c\nBcc: x@y.z", "a@b.c\r\n", "a@@b.c",
    "a@b@c.d", "@b.c", "a@.b.c", "a@b..c", "a@b.c.", ".a@b.c", "a..b@c.d", "a@-b.c", "a@b.c\t",
    '"a b"@c.d', "Alice <a@b.c>", "a@b.c (comment)", "a@1.2.3.4", "a@[127.0.0.1]", "é@b.c", "a\x00@b.c",
    "x" * 250 + "@b.cd", "a" * 65 + "@b.cd"])
def test_valid_address_rejects_malformed_addresses(address):
    assert not valid_address(address)
