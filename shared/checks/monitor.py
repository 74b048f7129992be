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

import logging
import time
from datetime import datetime, timedelta

from shared import urls
from shared.check_fields import DEFAULT_CHECK_EVERY, DEFAULT_CHECKS_MODE
from shared.checks.expect import Result
from shared.checks.probe import CONNECT_SECONDS, SETTING, HeaderNotAllowed, header_for, run_adf, run_http
from shared.clock import from_iso, iso
from shared.errors import AlreadyDecided, Forbidden, InvalidRequest, Unavailable, UpstreamThrottled
from shared.jsonbody import canonical
from shared.lifecycle import calls, engine
from shared.lifecycle.model import CHECKS, CHECKS_ON_TIMEOUT, CLAIMED, Action, Audit, Status, SweepOutcome
from shared.settings import Settings, get_settings
from shared.storage.pauses import get_store
from shared.storage.records import json_field, json_field_strict, moment
from shared.storage.tables import Conflict, Stored, pack_json
from shared.targets.adf import PipelineTarget, get_adf, pacing_key
from shared.targets.outside import Throttled

logger = logging.getLogger(__name__)



# What a pause may ask for, checked when it is made.

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


def next_due(entity: dict) -> datetime | None:
    """When this pause's next check attempt is due; None when no attempt is owed."""
    if not entity.get("check_max_attempts") or entity.get("checks_passed") is True:
        return None
    if int(entity.get("check_attempts") or 0) >= int(entity["check_max_attempts"]):
        return None
    return moment(entity, "next_check_at")


def span(entity: dict, settings: Settings | None = None) -> timedelta:
    """The longest one attempt can take (each check within its timeout, one after the other), with room.
    No attempt starts while another may still be running, and one not finished by then has died."""
    limits = (settings or get_settings()).limits
    http = limits.check_timeout_seconds + CONNECT_SECONDS  # the whole answer within the timeout, after connecting
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
    by_timeout = CHECKS_ON_TIMEOUT.get(entity.get("on_timeout"), CHECKS_ON_TIMEOUT["expire"])
    attempts = int(entity.get("check_attempts") or 0)
    if failed:
        return by_timeout, "A check can no longer pass: " + "; ".join(failed)
    if entity.get("checks_passed") is True:
        return (Action.CHECKS_CONTINUE, None) if (entity.get("checks_mode") or DEFAULT_CHECKS_MODE) == "auto" else None
    if attempts >= int(entity["check_max_attempts"]):
        return by_timeout, f"The checks did not all pass in {attempts} attempts."
    return None


def attempt(pause_id: str, stored: Stored, now: datetime) -> tuple[SweepOutcome, datetime | None]:
    """Make the pause's next check attempt; settle it if that decides it. Return what happened and
    when the pause next needs the timer (None when it was decided)."""
    entity, settings = stored.entity, get_settings()
    # Checks that pass lead to the pause's call: if that call can never be made (a damaged record, a
    # factory no longer allowed), the pause fails now, and no check host is called for nothing.
    why = calls.cannot_call(entity, Action.CHECKS_CONTINUE)
    if why is not None:
        if engine.fail_unclaimed(pause_id, stored, why, now) is None:
            raise Conflict()  # changed meanwhile: the timer looks at it again
        return SweepOutcome.FAILED, None
    checks = json_field_strict(entity, "checks", [])
    previous = json_field_strict(entity, "check_results", [None] * len(checks))
    previous += [None] * (len(checks) - len(previous))
    target = _target(entity)
    # ARM's read bucket for run checks is paced like its write bucket for starts: wait before taking the attempt.
    _pace_reads(sum("adf_run" in check and not _passed(before) for check, before in zip(checks, previous)), target,
                now, pause_id)
    attempts = int(entity.get("check_attempts") or 0) + 1
    # The next attempt is due after check_every, and never while this one may still be running.
    after = now + max(timedelta(seconds=int(entity.get("check_every") or DEFAULT_CHECK_EVERY)), span(entity, settings))
    claim = {"check_attempts": attempts, "next_check_at": after, "check_started_at": now}
    # Taken with a conditional write: another timer instance that took it makes this attempt.
    etag = get_store().update(pause_id, claim, stored.etag)
    results = previous[:len(checks)]
    try:
        # ADF's runs first: a read ARM throttles gives the attempt back before any check host is called.
        for index in sorted(range(len(checks)), key=lambda i: "http" in checks[i]):
            check, before = checks[index], previous[index]
            if _passed(before):
                continue  # a check that passed stays passed
            seen = run_http(check, settings) if "http" in check else run_adf(check, target)
            results[index] = {"result": seen.result.value, "detail": seen.detail[:500], "at": iso(now),
                              "attempts": int((before or {}).get("attempts") or 0) + 1}
    except Throttled as throttled:  # ARM's backpressure costs time, never an attempt: this one is given back
        _give_back(pause_id, etag, attempts, now + timedelta(seconds=throttled.retry_after))
        raise UpstreamThrottled(f"Azure throttled reading a run ({throttled.code}): checked later.",
                                throttled.retry_after) from throttled
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


def _give_back(pause_id: str, etag: str, attempts: int, retry_at: datetime) -> None:
    """The attempt met ARM's 429: as if not taken (the count as before, the next one after Retry-After), unless
    the pause changed meanwhile. The write is tried RECORD_ATTEMPTS times (a conditional write: one that landed
    unanswered leaves the next try nothing to do); storage refusing every try leaves the attempt counted."""
    if _keep_retried(pause_id, etag, {"check_attempts": attempts - 1, "next_check_at": retry_at}, attempts):
        logger.info("checks attempt given back pause_id=%s attempt=%d: ARM throttled a read", pause_id, attempts)
    else:
        logger.error("could not give back check attempt %d of pause_id=%s after ARM throttled it", attempts, pause_id)


def _keep_retried(pause_id: str, etag: str, changes: dict, attempts: int) -> bool:
    """`_keep` tried RECORD_ATTEMPTS times while storage is unavailable, a moment apart, as the engine records an
    outcome; False when every try was refused. (A write that landed unanswered leaves the next try nothing to
    do: the pause changed, and `_keep` leaves it.)"""
    tries = max(1, get_settings().limits.record_attempts)
    for tried in range(1, tries + 1):
        try:
            _keep(pause_id, etag, changes, attempts)
            return True
        except Unavailable as unavailable:
            logger.warning("storage refused writing check attempt %d of pause_id=%s (try %d of %d): %s", attempts,
                           pause_id, tried, tries, unavailable.detail)
            if tried < tries:
                time.sleep(0.2 * tried)
    return False


def _passed(result) -> bool:
    return bool(result) and result.get("result") == Result.PASSED


def _pace_reads(reads: int, target, now: datetime, item: str) -> None:
    """Before an attempt that reads `reads` ADF runs: while ARM's read bucket for the subscription looks nearly
    empty, defer the item (the attempt not taken) rather than be throttled."""
    if not reads or target is None:
        return
    get_adf().read_pacer.go_or_defer(
        pacing_key(target), now.timestamp(), item, "Azure's read limit for this subscription is nearly reached: "
                                                   "checked later.", reads)


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
    if all(current.entity.get(name) == value for name, value in changes.items()):
        return  # an earlier try of this write landed, its answer lost
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
    from shared.validation import Decision

    action, why = decision
    try:
        calls.pace_start(pause_id, attempted.entity, action, now)  # the run it starts: not past ARM's write margin
    except UpstreamThrottled:
        # This attempt's results are kept: the checks passed, and the start they owe waits for its slot. Storage
        # refusing every try loses them (logged); the item is deferred all the same, and the checks run again.
        if results and not _keep_retried(pause_id, attempted.etag, results, attempts):
            logger.error("could not keep the results of check attempt %d of pause_id=%s", attempts, pause_id)
        raise
    mine = _ours(attempts) if attempts else None
    also = (lambda entity: results if mine(entity) else {}) if results else None
    try:
        record = engine.decide(pause_id, attempted, action, Decision(comment=why),
                                  Audit(decided_by=CHECKS), now, also=also)
    except AlreadyDecided:  # someone decided, or is deciding, first
        if results:
            _keep(pause_id, attempted.etag, results, attempts)
        current = get_store().get(pause_id).entity
        if current.get("status") in CLAIMED:  # look again once that decision is recorded, or stale
            return SweepOutcome.RESCHEDULED, moment(current, "claimed_at") + engine.stale_after()
        return SweepOutcome.ALREADY_SETTLED, None
    outcome = SweepOutcome.RESTARTED if action is Action.CHECKS_CONTINUE else SweepOutcome.EXPIRED
    if record.get("status") == Status.SCHEDULED:  # passed outside the start window: this row becomes its start's
        return SweepOutcome.SCHEDULED, from_iso(record["start_at"])
    if record.get("callback_confirmed") is False:
        return SweepOutcome.UNCONFIRMED, engine.redelivery_due(now, 1)
    return outcome, None


def _target(entity: dict):
    if not all(entity.get(name) for name in ("subscription_id", "resource_group", "factory_name")):
        return None
    return PipelineTarget(entity["subscription_id"], entity["resource_group"], entity["factory_name"],
                          entity.get("pipeline_name") or "", entity.get("tenant_id"))
