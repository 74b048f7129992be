"""Strict JSON (shared/jsonbody.py): what a body may be, and the depth scan that runs before parsing."""

import json

import pytest

from shared.errors import InvalidRequest, PayloadTooLarge
from shared.jsonbody import MAX_DEPTH, canonical, deeper_than, depth, parse_object


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


@pytest.mark.parametrize("text, deeper", [
    (b"[" * 65 + b"]" * 65, True),
    (b"[" * 64 + b"]" * 64, False),
    (b'{"s": "' + b"[" * 500 + b'"}', False),                    # brackets in a string do not nest
    (b'{"s": "\\"' + b"[" * 500 + b'"}', False),                 # nor after an escaped quote in it
    (b'["\\\\"' + b", [" * 65 + b"]" * 65 + b"]", True),          # an escaped backslash ends the escape
])
def test_the_depth_scan_reads_strings_and_escapes_as_json_does(text, deeper):
    assert deeper_than(text, MAX_DEPTH) is deeper
    if not deeper:
        assert depth(json.loads(text)) <= MAX_DEPTH


def test_canonical_json_is_compact_utf8_and_keeps_the_callers_key_order():
    # Key order is kept: `data` comes back byte for byte as it was sent.
    assert canonical({"b": 1, "a": ["caf\u00e9", None]}) == '{"b":1,"a":["caf\u00e9",null]}'
    with pytest.raises(ValueError):
        canonical({"a": float("nan")})
