"""Automated checks: a pause that polls until a condition holds (the monitor pattern), then goes on.

Only the timer runs checks, never a person's request or a GET. Each attempt is taken with a
conditional write (two timer instances make each attempt once), runs the pause's checks, keeps
each one's result on the record, and then, by `checks_mode`:

- auto: when every check has passed, the pause continues by itself (decided by "checks");
- gate: people decide, and may approve only once every check has passed;

and in either mode, when `check_max_attempts` run out, or an ADF run ends in a status that can
no longer pass, the pause settles by its `on_timeout` at once.

HTTP checks go only to CHECK_ALLOWED_HOSTS, through the URL checker callbacks use (strict host
grammar, the rebuilt URL called, no redirects), read at most 1 MiB within CHECK_TIMEOUT_SECONDS;
a secret header comes from an app setting the pause names, never from the pause itself, and goes
only to the hosts its `<NAME>_HOSTS` setting lists.
"""

import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.targets import outbound
from shared import urls
from shared.errors import AlreadyDecided, Forbidden, InvalidRequest, PauseError
from shared.jsonbody import MAX_DEPTH, canonical, deeper_than
from shared.lifecycle.model import CLAIMED, Action, Status, SweepOutcome
from shared.storage.records import iso, json_field, json_field_strict, moment
from shared.settings import Settings, SettingsError, app_setting, app_setting_hosts, get_settings
from shared.storage.tables import Conflict, Stored, get_store, pack_json

logger = logging.getLogger(__name__)

SETTING = "CHECK_ALLOWED_HOSTS"
MAX_RESPONSE_BYTES = 1024 * 1024
TERMINAL_RUN_STATUSES = ("Succeeded", "Failed", "Cancelled")
CHECKS = "checks"  # who decided, when the checks did
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}")
_HEADER_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,8190}[\x21-\x7e])?")  # visible ASCII, as sent
_NOT_SENDABLE = {"host", "content-length", "transfer-encoding", "connection", "content-type", "expect", "te",
                 "upgrade", "proxy-authorization", "keep-alive"}


class Result(StrEnum):
    PASSED = "passed"
    NOT_YET = "not_yet"  # answered, but the condition does not hold yet (what was seen is kept)
    ERROR = "error"      # could not be asked (why is kept); tried again next time
    FAILED = "failed"    # can never pass (an ADF run that ended otherwise): the pause settles at once


@dataclass(frozen=True)
class Seen:
    result: Result
    detail: str


class ChecksPending(PauseError):
    """Gate mode: approving waits until every check has passed."""

    status, code, title = 409, "checks_pending", "Conflict"

    def __init__(self, pause: dict):
        super().__init__("The checks have not passed yet: approving is possible once they have.",
                         pause_id=pause["pause_id"])
        self.pause = pause


# What a pause may ask for, checked when it is made.

def header_from_setting(name: str) -> tuple[str, str]:
    """The header an app setting holds ("Name: value"); ValueError saying what is wrong."""
    raw = app_setting(name)
    if raw is None:
        raise ValueError(f"app setting {name} is not set")
    header, sep, value = raw.partition(":")
    header, value = header.strip(), value.strip()
    if not sep or not _HEADER_NAME.fullmatch(header) or not _HEADER_VALUE.fullmatch(value):
        raise ValueError(f"app setting {name} must hold one header, 'Name: value'")
    if header.lower() in _NOT_SENDABLE:
        raise ValueError(f"app setting {name} names the header {header}, which the app sets itself")
    return header, value


class HeaderNotAllowed(ValueError):
    """A header setting may not be sent to this host."""


def header_for(name: str, host: str) -> tuple[str, str]:
    """The header app setting `name` holds, if its `<name>_HOSTS` lets it go to `host`; ValueError saying
    why not. Read at pause time and again before each call: either setting may have changed."""
    header = header_from_setting(name)
    try:
        hosts = app_setting_hosts(f"{name}_HOSTS")
    except SettingsError as bad:
        raise HeaderNotAllowed(str(bad).rstrip(".")) from None
    if not urls.host_allowed(host, hosts):
        raise HeaderNotAllowed(f"app setting {name} may be sent only to the hosts in {name}_HOSTS, which does not "
                               f"list {host}")
    return header


def check_at_pause(checks: list, target, settings: Settings) -> None:
    """Refuse at pause time what could only fail later: a host not allowed, a missing header
    setting, an ADF run that does not exist."""
    for index, check in enumerate(checks):
        field = f"checks[{index}]"
        if "http" in check:
            if not settings.check_allowed_hosts:
                raise Forbidden(f"{field}.http.url: this app may call no check hosts (set CHECK_ALLOWED_HOSTS).")
            url = urls.check_field(check["http"]["url"], settings.check_allowed_hosts, field=f"{field}.http.url",
                                   setting=SETTING)
            if check["http"].get("header_setting"):
                try:
                    header_for(check["http"]["header_setting"], url.host)
                except ValueError as bad:
                    rule = "hosts" if isinstance(bad, HeaderNotAllowed) else "app_setting"
                    raise InvalidRequest(f"{field}.http.header_setting: {bad}.", [
                        {"field": f"{field}.http.header_setting", "rule": rule, "message": str(bad)}]) from None
        elif target is not None:
            from shared.targets.adf import get_adf

            if get_adf().run_missing(target, check["adf_run"]["run_id"]):
                raise InvalidRequest(f"{field}.adf_run.run_id: Data Factory has no such run in this factory.", [
                    {"field": f"{field}.adf_run.run_id", "rule": "not_found",
                     "message": "is not a run of this factory (PipelineRunNotFound)"}])


def properties(request, now: datetime) -> dict:
    """What a pause with checks stores: the checks, their (empty) results, when the first attempt is due."""
    return {"checks_mode": request.checks_mode, "check_every": request.check_every,
            "check_max_attempts": request.check_max_attempts, "check_attempts": 0, "checks_passed": False,
            "next_check_at": now, **pack_json("checks", canonical(request.checks)),
            **pack_json("check_results", canonical([None] * len(request.checks)))}


# Running them.

_CONNECT_SECONDS = 3.0


class _Deadline:
    """A wall-clock limit on one check's whole answer. A socket's timeout limits each read, so an
    endpoint sending a byte now and then could hold an attempt for ever; when the time is up this
    shuts the call's socket down, which ends any read in progress."""

    def __init__(self, seconds: float):
        self.expired = self._finished = False
        self._sockets, self._lock = [], threading.Lock()
        self._seconds = seconds

    def __enter__(self) -> "_Deadline":
        import time

        from shared.clients import scheduler

        # One scheduler thread watches every deadline (a thread each cost the timer ~3 %).
        scheduler().at(time.monotonic() + self._seconds, self._expire)
        return self

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self._finished = True  # its connection may serve another call now: never shut it later

    def watch(self, sock) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock) -> None:
    import socket

    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _json_at(document, path: str):
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


def _same(a, b) -> bool:
    # JSON equality: true is not 1.
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def _holds(expect: dict, document) -> tuple[bool, str]:
    found, value = _json_at(document, expect["path"])
    op = next(op for op in ("equals", "in", "lt", "le", "gt", "ge", "exists") if op in expect)
    if op == "exists":
        return found == expect["exists"], f"{expect['path']} {'exists' if found else 'does not exist'}"
    if not found:
        return False, f"{expect['path']} is not in the answer"
    shown = canonical(value)[:200]
    if op == "equals":
        return _same(value, expect["equals"]), f"{expect['path']} is {shown}"
    if op == "in":
        return any(_same(value, option) for option in expect["in"]), f"{expect['path']} is {shown}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False, f"{expect['path']} is {shown}, not a number"
    limit = expect[op]
    holds = {"lt": value < limit, "le": value <= limit, "gt": value > limit, "ge": value >= limit}[op]
    return holds, f"{expect['path']} is {shown}"


def run_http(check: dict, settings: Settings) -> Seen:
    http, expect = check["http"], check.get("expect") or {}
    try:
        target = urls.allowed(http["url"], settings.check_allowed_hosts, SETTING)
        headers = dict([header_for(http["header_setting"], target.host)]) if http.get("header_setting") else {}
    except (urls.UrlRefused, ValueError) as refused:
        return Seen(Result.ERROR, str(refused))
    timeout = settings.limits.check_timeout_seconds
    late = Seen(Result.ERROR, f"no whole answer within {timeout:g} s")
    deadline = _Deadline(timeout)
    try:
        with deadline, outbound.request(http.get("method", "GET"), target, settings.check_allowed_hosts, SETTING,
                                        connect_retries=1, watch=deadline.watch, json=http.get("body"),
                                        headers=headers, timeout=(min(_CONNECT_SECONDS, timeout), timeout),
                                        stream=True) as response:
            body = bytearray()
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    return Seen(Result.ERROR, f"the answer is over {MAX_RESPONSE_BYTES // 1024} KiB")
            status = response.status_code
        if deadline.expired:  # the answer may have been cut short
            return late
    except outbound.AddressRefused as refused:
        return Seen(Result.ERROR, str(refused))
    except outbound.Failed as failure:
        if deadline.expired or failure.timed_out:
            return late
        return Seen(Result.ERROR, f"{'no answer' if failure.sent else 'could not connect'}: {failure}")
    except Exception as exc:  # the answer could not be read: this check failed, not the attempt
        if deadline.expired or outbound.timed_out(exc):
            return late
        return Seen(Result.ERROR, f"no whole answer: {outbound.why(exc)}")
    wanted = expect.get("status")
    if (status not in wanted) if wanted else not 200 <= status < 300:
        return Seen(Result.NOT_YET, f"answered HTTP {status}")
    if "json" not in expect:
        return Seen(Result.PASSED, f"answered HTTP {status}")
    try:
        # JSON between systems is UTF-8 (RFC 8259). json.loads would take UTF-16 and UTF-32 bytes too,
        # which the depth scan below cannot read: read the text as UTF-8 (a byte order mark allowed).
        text = bytes(body).decode("utf-8-sig")
    except UnicodeDecodeError:
        return Seen(Result.NOT_YET, f"answered HTTP {status}, not UTF-8 JSON")
    deep = Seen(Result.ERROR, f"the answer is nested deeper than {MAX_DEPTH} levels")
    if deeper_than(body, MAX_DEPTH):  # before parsing: json.loads would recurse until RecursionError
        return deep
    try:
        document = json.loads(text)
    except ValueError:
        return Seen(Result.NOT_YET, f"answered HTTP {status}, not JSON")
    except RecursionError:  # the scan above should make this impossible; never the timer's failure
        return deep
    holds, seen = _holds(expect["json"], document)
    return Seen(Result.PASSED if holds else Result.NOT_YET, seen)


def run_adf(check: dict, target) -> Seen:
    from shared.targets.adf import get_adf
    from shared.targets.outside import OutsideCallFailed

    wanted = check["expect"]["status"]
    try:
        run = get_adf().get_run(target, check["adf_run"]["run_id"])
    except OutsideCallFailed as failure:
        return Seen(Result.ERROR, failure.summary)
    expected_pipeline = check["adf_run"].get("pipeline_name")
    if expected_pipeline and (run.get("pipeline_name") or "").lower() != expected_pipeline.lower():
        return Seen(Result.FAILED, f"run {check['adf_run']['run_id']} is of pipeline {run.get('pipeline_name')}, "
                                   f"not {expected_pipeline}")
    status = run.get("status") or "?"
    if status in wanted:
        return Seen(Result.PASSED, f"run is {status}")
    if status in TERMINAL_RUN_STATUSES:
        message = (run.get("message") or "").strip()
        return Seen(Result.FAILED, f"run ended {status}" + (f": {message[:500]}" if message else ""))
    return Seen(Result.NOT_YET, f"run is {status}")


def next_due(entity: dict) -> datetime | None:
    """When this pause's next check attempt is due; None when no attempt is owed."""
    if not entity.get("check_max_attempts") or entity.get("checks_passed") is True:
        return None
    if int(entity.get("check_attempts") or 0) >= int(entity["check_max_attempts"]):
        return None
    return moment(entity, "next_check_at")


def passed(entity: dict) -> bool:
    """Whether every check has passed (True for a pause without checks)."""
    return not entity.get("check_max_attempts") or entity.get("checks_passed") is True


def span(entity: dict, settings: Settings | None = None) -> timedelta:
    """The longest one attempt can take (each check within its timeout, one after the other), with room.
    No attempt starts while another may still be running, and one not finished by then has died."""
    limits = (settings or get_settings()).limits
    http = limits.check_timeout_seconds + _CONNECT_SECONDS  # the whole answer within the timeout, after connecting
    adf = (limits.arm_connect_timeout_seconds + limits.arm_read_timeout_seconds) * (limits.arm_retry_total + 1)
    checks = json_field(entity, "checks", []) or []
    return timedelta(seconds=sum(http if "http" in check else adf for check in checks if isinstance(check, dict)) + 30)


def in_flight_until(entity: dict, now: datetime) -> datetime | None:
    """When the attempt that is running ends at the latest; None when no attempt is running."""
    attempts = int(entity.get("check_attempts") or 0)
    if not attempts or int(entity.get("check_results_for") or 0) >= attempts or not entity.get("check_started_at"):
        return None
    ends = moment(entity, "check_started_at") + span(entity)
    return ends if ends > now else None


def owed(entity: dict, now: datetime) -> tuple[Action, str | None] | None:
    """The decision the checks owe now, if any: what the last attempt found but could not carry out
    (ADF or storage refused, the process died), or attempts that ran out. None while one runs."""
    if not entity.get("check_max_attempts") or in_flight_until(entity, now):
        return None
    checks = json_field(entity, "checks", []) or []
    results = json_field(entity, "check_results", []) or []
    failed = [f"{check.get('name')}: {result.get('detail')}" for check, result in zip(checks, results)
              if isinstance(check, dict) and isinstance(result, dict) and result.get("result") == Result.FAILED]
    by_timeout = Action.CHECKS_CONTINUE if entity.get("on_timeout") == "restart" else Action.CHECKS_EXPIRE
    attempts = int(entity.get("check_attempts") or 0)
    if failed:
        return by_timeout, "A check can no longer pass: " + "; ".join(failed)
    if entity.get("checks_passed") is True:
        return (Action.CHECKS_CONTINUE, None) if (entity.get("checks_mode") or "auto") == "auto" else None
    if attempts >= int(entity["check_max_attempts"]):
        return by_timeout, f"The checks did not all pass in {attempts} attempts."
    return None


def attempt(pause_id: str, stored: Stored, now: datetime) -> tuple[SweepOutcome, datetime | None]:
    """Make the pause's next check attempt; settle it if that decides it. Return what happened and
    when the pause next needs the timer (None when it was decided)."""
    from shared.lifecycle import engine as decisions

    entity, settings = stored.entity, get_settings()
    # Checks that pass lead to the pause's call: if that call can never be made (a damaged record, a
    # factory no longer allowed), the pause fails now, and no check host is called for nothing.
    why = decisions.cannot_call(entity, Action.CHECKS_CONTINUE)
    if why is not None:
        if decisions.fail_unclaimed(pause_id, stored, why, now) is None:
            raise Conflict()  # changed meanwhile: the timer looks at it again
        return SweepOutcome.FAILED, None
    attempts = int(entity.get("check_attempts") or 0) + 1
    # The next attempt is due after check_every, and never while this one may still be running.
    after = now + max(timedelta(seconds=int(entity.get("check_every") or 300)), span(entity, settings))
    claim = {"check_attempts": attempts, "next_check_at": after, "check_started_at": now}
    # Taken with a conditional write: another timer instance that took it makes this attempt.
    etag = get_store().update(pause_id, claim, stored.etag)
    checks = json_field_strict(entity, "checks", [])
    previous = json_field_strict(entity, "check_results", [None] * len(checks))
    target = _target(entity)
    results = []
    for check, before in zip(checks, previous + [None] * (len(checks) - len(previous))):
        if before and before.get("result") == Result.PASSED:
            results.append(before)  # a check that passed stays passed
            continue
        seen = run_http(check, settings) if "http" in check else run_adf(check, target)
        results.append({"result": seen.result.value, "detail": seen.detail[:500], "at": iso(now),
                        "attempts": int((before or {}).get("attempts") or 0) + 1})
    all_passed = all(r["result"] == Result.PASSED for r in results)
    changes = {"checks_passed": all_passed, "check_results_for": attempts,
               **pack_json("check_results", canonical(results))}
    attempted = Stored({**entity, **claim, **changes}, etag)
    logger.info("checks attempt pause_id=%s attempt=%d passed=%s", pause_id, attempts, all_passed)
    decision = owed(attempted.entity, now)
    if decision is not None:
        return _settle(pause_id, attempted, decision, changes, attempts, now)
    _keep(pause_id, etag, changes, attempts)
    if all_passed:  # gate: people decide now; the timer looks again at expiry
        return SweepOutcome.CHECKED, moment(entity, "expires_at")
    return SweepOutcome.CHECKED, min(after, moment(entity, "expires_at"))


def _ours(attempts: int):
    """Results of attempt `attempts` belong on a pause only while it is pending and no later attempt began."""
    def check(entity: dict) -> bool:
        return entity.get("status") == Status.PENDING and int(entity.get("check_attempts") or 0) == attempts
    return check


def _keep(pause_id: str, etag: str, changes: dict, attempts: int) -> None:
    """Write an attempt's results. If the pause changed meanwhile, only while it is still pending and
    no later attempt began: a claimed pause is a person's decision in flight, whose own writes
    must not be disturbed, and a decided one needs them no more."""
    store = get_store()
    try:
        store.update(pause_id, changes, etag)
        return
    except Conflict:
        current = store.get(pause_id)
    if _ours(attempts)(current.entity):
        try:
            store.update(pause_id, changes, current.etag)
            return
        except Conflict:
            pass
    logger.info("checks attempt results dropped pause_id=%s attempt=%d: the pause changed meanwhile", pause_id,
                attempts)


def settle_owed(pause_id: str, stored: Stored, decision: tuple[Action, str | None],
                now: datetime) -> tuple[SweepOutcome, datetime | None]:
    """Carry out a decision the checks owe (found by `owed`), with nothing new to write."""
    return _settle(pause_id, stored, decision, None, None, now)


def _settle(pause_id: str, attempted: Stored, decision: tuple[Action, str | None], results: dict | None,
            attempts: int | None, now: datetime) -> tuple[SweepOutcome, datetime | None]:
    """The checks decide the pause: through the one engine, as "checks", the results written with its claim."""
    from shared.lifecycle import engine as decisions
    from shared.validation import Decision

    action, why = decision
    mine = _ours(attempts) if attempts else None
    also = (lambda entity: results if mine(entity) else {}) if results else None
    try:
        record = decisions.decide(pause_id, attempted, action, Decision(comment=why),
                                  decisions.Audit(decided_by=CHECKS), now, also=also)
    except AlreadyDecided:  # someone decided, or is deciding, first
        if results:
            _keep(pause_id, attempted.etag, results, attempts)
        current = get_store().get(pause_id).entity
        if current.get("status") in CLAIMED:  # look again once that decision is recorded, or stale
            return SweepOutcome.RESCHEDULED, moment(current, "claimed_at") + decisions.stale_after()
        return SweepOutcome.ALREADY_SETTLED, None
    outcome = SweepOutcome.RESTARTED if action is Action.CHECKS_CONTINUE else SweepOutcome.EXPIRED
    if record.get("callback_confirmed") is False:
        return SweepOutcome.UNCONFIRMED, decisions.redelivery_due(now, 1)
    return outcome, None


def _target(entity: dict):
    from shared.targets.adf import PipelineTarget

    if not all(entity.get(name) for name in ("subscription_id", "resource_group", "factory_name")):
        return None
    return PipelineTarget(entity["subscription_id"], entity["resource_group"], entity["factory_name"],
                          entity.get("pipeline_name") or "", entity.get("tenant_id"))
