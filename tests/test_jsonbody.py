"""Strict JSON (shared/jsonbody.py): what a body may be, how deep it may nest, and its canonical form."""


import pytest

from shared.errors import InvalidRequest, PayloadTooLarge
from shared.jsonbody import MAX_DEPTH, canonical, depth, parse_object


@pytest.mark.parametrize("body", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e999}', b'{"a": 1, "a": 2}',
                                  b"[1]", b'"text"', b"{", b"\xff", b'{"a": "\\ud800"}'])
def test_what_is_not_one_strict_json_object_is_refused(body):
    with pytest.raises((InvalidRequest, PayloadTooLarge)):
        parse_object(body)


def test_nesting_is_bounded_before_and_after_parsing():
    assert parse_object(b'{"a": ' + b"[" * (MAX_DEPTH - 2) + b"]" * (MAX_DEPTH - 2) + b"}")
    with pytest.raises(InvalidRequest):
        parse_object(b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert depth({"a": [1, {"b": []}]}) == 4 and depth(7) == 0


def test_canonical_json_is_compact_utf8_and_keeps_the_callers_key_order():
    # Key order is kept: `data` comes back byte for byte as it was sent.
    assert canonical({"b": 1, "a": ["caf\u00e9", None]}) == '{"b":1,"a":["caf\u00e9",null]}'
    with pytest.raises(ValueError):
        canonical({"a": float("nan")})
