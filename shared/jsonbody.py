"""Strict JSON parsing for request bodies: no NaN/Infinity, no duplicate keys, bounded depth."""

import json
import math

from shared.errors import InvalidRequest

MAX_DEPTH = 64


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def depth(value) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), computed without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        stack.extend((child, level + 1) for child in children)
    return deepest


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:  # a lone surrogate such as "\udc00", which JSON escapes can carry
        return False


def unencodable(value, limit: int = 10) -> list[str]:
    """Paths (`a.b[2]`) of keys or strings that cannot be encoded as UTF-8, so cannot be stored."""
    found, stack = [], [(value, "")]
    while stack and len(found) < limit:
        item, path = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                found.append(path or "(body)")
        elif isinstance(item, dict):
            for key, child in item.items():
                name = key if _encodable(key) else key.encode("utf-8", "backslashreplace").decode("ascii")
                child_path = f"{path}.{name}" if path else name
                if name != key:
                    found.append(child_path)
                stack.append((child, child_path))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(item))
    return sorted(found)


def parse_object(body: bytes) -> dict:
    """Parse a request body that must be one JSON object, or raise InvalidRequest."""
    try:
        text = body.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float,
                           object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise InvalidRequest("The body is not UTF-8 text.", [{"field": "(body)", "rule": "encoding",
                                                              "message": "must be UTF-8 encoded JSON"}])
    except RecursionError:
        raise InvalidRequest("The body is nested too deeply.", [{"field": "(body)", "rule": "max_depth",
                                                                 "message": f"nesting deeper than {MAX_DEPTH} levels"}])
    except ValueError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}.",
                             [{"field": "(body)", "rule": "json", "message": "must be a JSON object"}])
    if not isinstance(value, dict):
        raise InvalidRequest("The body must be a JSON object.",
                             [{"field": "(body)", "rule": "type", "message": "must be a JSON object"}])
    if depth(value) > MAX_DEPTH:
        raise InvalidRequest("The body is nested too deeply.", [{"field": "(body)", "rule": "max_depth",
                                                                 "message": f"nesting deeper than {MAX_DEPTH} levels"}])
    bad = unencodable(value)
    if bad:
        raise InvalidRequest(f"The body has text that cannot be stored: {', '.join(bad)}.",
                             [{"field": path, "rule": "encoding",
                               "message": "must be valid Unicode text (it holds an unpaired surrogate such as \\udc00)"}
                              for path in bad])
    return value


def canonical(value) -> str:
    """Serialize the way the app stores and compares JSON: compact, UTF-8, key order kept."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
