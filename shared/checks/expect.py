"""What a check expects, and what an answer means for it: the status, the value at a JSON path.

An answer is read as UTF-8 JSON (RFC 8259), no deeper than MAX_DEPTH levels (found before parsing,
so no answer can make the parser recurse until it fails), and only what the expectation needs is
kept: the status, or the value at the path, cut to 200 characters.
"""

import json
import re
from dataclasses import dataclass

from shared.check_fields import JSON_OPERATORS
from shared.jsonbody import MAX_DEPTH, canonical, depth
from shared.lifecycle.model import CheckResult as Result


@dataclass(frozen=True)
class Seen:
    result: Result
    detail: str


def json_at(document, path: str):
    """(found, value) at a path like $.a.b[0] or $['a b']."""
    value = document
    for name, index, quoted in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]|\['([^']*)'\]", path[1:]):
        key = name or quoted
        if index:
            if not isinstance(value, list) or int(index) >= len(value):
                return False, None
            value = value[int(index)]
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            return False, None
    return True, value


def same(a, b) -> bool:
    # JSON equality: true is not 1.
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def holds(expect: dict, document) -> tuple[bool, str]:
    found, value = json_at(document, expect["path"])
    op = next(op for op in JSON_OPERATORS if op in expect)
    if op == "exists":
        return found == expect["exists"], f"{expect['path']} {'exists' if found else 'does not exist'}"
    if not found:
        return False, f"{expect['path']} is not in the answer"
    shown = canonical(value)[:200]
    if op == "equals":
        return same(value, expect["equals"]), f"{expect['path']} is {shown}"
    if op == "in":
        return any(same(value, option) for option in expect["in"]), f"{expect['path']} is {shown}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False, f"{expect['path']} is {shown}, not a number"
    limit = expect[op]
    result = {"lt": value < limit, "le": value <= limit, "gt": value > limit, "ge": value >= limit}[op]
    return result, f"{expect['path']} is {shown}"


def judge(expect: dict, status: int, body: bytes) -> Seen:
    """What an HTTP check's answer means for its expectation: the status, then the JSON value."""
    wanted = expect.get("status")
    if (status not in wanted) if wanted else not 200 <= status < 300:
        return Seen(Result.NOT_YET, f"answered HTTP {status}")
    if "json" not in expect:
        return Seen(Result.PASSED, f"answered HTTP {status}")
    try:
        # JSON between systems is UTF-8 (RFC 8259); json.loads would take UTF-16 and UTF-32 bytes too.
        text = bytes(body).decode("utf-8-sig")
    except UnicodeDecodeError:
        return Seen(Result.NOT_YET, f"answered HTTP {status}, not UTF-8 JSON")
    deep = Seen(Result.ERROR, f"the answer is nested deeper than {MAX_DEPTH} levels")
    try:
        document = json.loads(text)
    except ValueError:
        return Seen(Result.NOT_YET, f"answered HTTP {status}, not JSON")
    except RecursionError:  # json.loads gives up at the interpreter's recursion limit, at once
        return deep
    if depth(document) > MAX_DEPTH:
        return deep
    holds_now, seen = holds(expect["json"], document)
    return Seen(Result.PASSED if holds_now else Result.NOT_YET, seen)
