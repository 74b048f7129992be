"""People's sign-in names (e-mail or UPN): the one way they are compared, so no name folds onto another.

(Not `shared.targets.identity`, which is the app's own credential towards Azure.)

Identities are compared in lower case, but Python's lower() and casefold() fold more than ASCII
letters: the Kelvin sign `\u212a` lowers to `k`, so `\u212aate@contoso.com` would match
`kate@contoso.com`; NFKC turns `\ufb01` into `fi` and fullwidth `\uff4b` into `k`; casefold turns
`\u00df` into `ss`. Whoever controls such a name (a guest account, a directory that allows it)
could pass for someone else. So an identity is accepted only when folding it the Unicode way
(NFKC, case folding, NFKC again) gives exactly what lower-casing its ASCII letters gives, and
folding that gives it again: then no other spelling folds onto it. Any other identity is refused,
never folded into a match; so is one holding an invisible or unassigned character (a control,
format, private-use or unassigned code point, a separator other than the ASCII space), whose
meaning or look is not stable. A name in another script that only looks like a Latin one (a
Cyrillic `\u0430`) folds onto nothing else: it is a name of its own and never matches the Latin
one; the directory, not this app, decides who may hold it.
"""

import unicodedata

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _folded(text: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def key(text) -> str | None:
    """Return the form `text` is compared in (ASCII letters lower-cased), or None if it could pass for another."""
    if not isinstance(text, str) or not text:
        return None
    lowered = text.translate(_ASCII_LOWER)
    if _folded(text) != lowered or _folded(lowered) != lowered:
        return None
    if any(unicodedata.category(char)[0] == "C" or (unicodedata.category(char)[0] == "Z" and char != " ")
           for char in text):
        return None
    return lowered


_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~.")
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def valid_address(address: str) -> bool:
    """Tell whether `address` is one plain addr-spec (``name@example.com``) we can send to.

    Stricter than RFC 5322 on purpose: no display names, quotes, comments, lists, whitespace or
    control characters, ASCII only (write an internationalised domain in its ``xn--`` form), and a
    domain with at least one dot.
    """
    if not isinstance(address, str) or not address or len(address) > 254 or address.count("@") != 1:
        return False
    local, domain = address.split("@")
    if not 0 < len(local) <= 64 or not set(local) <= _LOCAL_CHARS:
        return False
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    labels = domain.split(".")
    if len(labels) < 2 or labels[-1].isdigit():
        return False
    for label in labels:
        if not 0 < len(label) <= 63 or not set(label) <= _LABEL_CHARS:
            return False
        if label.startswith("-") or label.endswith("-"):
            return False
    from email.headerregistry import Address  # loaded only when an address is checked

    try:  # the email package must read it back as exactly this one address
        return Address(addr_spec=address).addr_spec == address
    except (ValueError, IndexError, TypeError):
        return False
