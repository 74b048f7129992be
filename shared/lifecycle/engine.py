"""Carry out a row of the lifecycle table: claim, call out once, record — also when things break.

`decide()` is the one engine behind approve, cancel and the timer's expiry. Every write that
moves a pause is conditional on the ETag it read and carries a fresh `claim_id`, so a write
whose answer was lost (or that the storage SDK retried into a 412) is recognised on read-back
as the caller's own. What a failed outside call means is decided by `shared.targets.outside`; see
`shared.lifecycle.model` for the table and what happens on each kind of failure.
"""

import contextlib
import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import NoReturn

from shared.clock import utcnow
from shared.errors import AlreadyDecided, Forbidden, OutcomeUnknown, Unavailable, UpstreamFailed, UpstreamThrottled
from shared.lifecycle import calls
from shared.lifecycle.model import ALREADY_COMPLETED, APP, FINAL, Action, Audit, Call, Mode, Status
from shared.lifecycle.plan import Plan, count
from shared.lifecycle.plan import plan as planned
from shared.settings import get_settings
from shared.storage import status_index
from shared.storage.due_index import FOLLOWUP, get_due_index
from shared.storage.pauses import get_store, index_writer
from shared.storage.records import json_field, json_field_strict, moment, to_record
from shared.storage.tables import Conflict, Stored, pack_json
from shared.targets.adf import get_adf
from shared.targets.outside import OutsideCallFailed, Refused, Throttled, Unknown
from shared.validation import Decision

logger = logging.getLogger(__name__)

# A run started for a claim is looked for from this long before the claim (clock skew).
LOOKUP_MARGIN = timedelta(minutes=1)
_CLAIM_ATTEMPTS = 3

def _reconcile_later(pause_id: str, now: datetime) -> None:
    """A claim stays in place: make sure the timer looks at it once it is stale, not only at expiry."""
    try:
        get_due_index().add(pause_id, now + stale_after())
    except Exception:  # its expiry row still brings the timer at the latest then
        logger.warning("could not schedule the reconciliation of pause_id=%s", pause_id)


def stale_after() -> timedelta:
    return timedelta(seconds=get_settings().limits.stale_claim_seconds)


def write_verified(pause_id: str, stored: Stored, changes: dict, claim_id: str, index: bool = True) -> Stored | None:
    """Apply `changes` if the pause still has `stored.etag`; None if someone else changed it first.

    When the answer is lost or the storage SDK's retry of a landed write comes back 412, the pause
    is read back: carrying `claim_id` and the new status, the write was ours and it landed. A write
    that made the pause final updates the status index too (unless `index` is False: the caller
    did that itself).
    """
    store, attempts = get_store(), get_settings().limits.record_attempts
    indexed = _indexed if index else (lambda pause_id, landed: landed)
    for attempt in range(attempts):
        try:
            etag = store.update(pause_id, changes, stored.etag)
            return indexed(pause_id, Stored({**stored.entity, **changes}, etag))
        except Conflict:
            pass
        except Unavailable:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
        current = store.get(pause_id)
        if current.entity.get("claim_id") == claim_id and current.entity.get("status") == changes["status"]:
            return indexed(pause_id, current)
        if current.etag != stored.etag:
            return None
    raise Unavailable("Pause storage did not take the write; nothing was changed. Try again shortly.")


def _indexed(pause_id: str, landed: Stored) -> Stored:
    """A write that made the pause final moves it from the open rows to the decisions in the status
    index, and one posted to chat channels owes them a follow-up."""
    if landed.entity.get("status") in FINAL:
        status_index.settled(pause_id, landed.entity)
        if json_field(landed.entity, "channels"):
            _owe_followup(pause_id)
    return landed


def _owe_followup(pause_id: str) -> None:
    """The timer posts a decided pause's chat follow-ups (a row of the due index), so a slow or failing
    channel never delays or undoes the decision; it checks the decision landed before it posts."""
    try:
        get_due_index().add_work(FOLLOWUP, pause_id, utcnow())
    except Exception:  # the decision stands; only its follow-up is lost, and the log says so
        logger.exception("could not schedule the chat follow-up of pause_id=%s", pause_id)


def _target_words(entity: dict) -> str:
    return "The callback to Data Factory" if entity.get("mode") == Mode.CALLBACK else "Azure Data Factory"


def _minutes() -> int:
    return int(get_settings().limits.stale_claim_seconds // 60) or 1


def _give_back(pause_id: str, claimed: Stored, claim_id: str, failure: OutsideCallFailed,
               now: datetime, back_to: Status = Status.PENDING) -> NoReturn:
    """The call surely had no effect: put the pause back (to pending, so the link works again), and say so."""
    attempts = count(claimed.entity.get("attempts")) + 1
    changes = {"status": back_to.value, "attempts": attempts, "last_error": failure.summary}
    logger.warning("outside call refused pause_id=%s attempt=%d code=%s detail=%s", pause_id, attempts,
                   failure.code, failure)
    try:
        released = write_verified(pause_id, claimed, changes, claim_id) is not None
    except Exception:  # storage down or refusing: the claim stays and is released once stale
        logger.exception("could not release the claim on pause_id=%s", pause_id)
        released = False
    if not released:
        _reconcile_later(pause_id, now)
    later = "" if released else (" The pause could not be released just now; it is released automatically "
                                 f"within {_minutes()} minutes.")
    if isinstance(failure, Refused) and failure.forbidden:
        raise Forbidden(f"{failure} Nothing was sent.{later}")
    if isinstance(failure, Throttled):
        raise UpstreamThrottled(f"{_target_words(claimed.entity)} was throttled by Azure ({failure.code}). Nothing "
                                f"was started; the link still works, so try again in a moment.{later}",
                                failure.retry_after, attempts=attempts)
    raise UpstreamFailed(f"{_target_words(claimed.entity)} failed ({failure.code}). Nothing was started; the link "
                         f"still works, so try again in a moment.{later}", attempts=attempts)


def _keep_claim(pause_id: str, claimed: Stored, claim_id: str, why: str, now: datetime) -> None:
    """Leave the claim in place, noting why on the record, for reconciliation once it is stale."""
    try:
        write_verified(pause_id, claimed, {"status": claimed.entity["status"], "last_error": why[:1000]}, claim_id)
    except Exception:
        logger.exception("could not note why the claim stays pause_id=%s: %s", pause_id, why)
    _reconcile_later(pause_id, now)


def _look_up(pause_id: str, claimed: Stored, claim_id: str, unknown: Unknown, now: datetime,
             back_to: Status = Status.PENDING) -> dict:
    """createRun may have started a run: find it before anything else may start one.

    Looked for twice, a few seconds apart, in case ADF lists a new run a moment late; the search
    stops well within the claim's lifetime, so no reconciliation can overtake this decision.
    """
    limits = get_settings().limits
    since = moment(claimed.entity, "claimed_at") - LOOKUP_MARGIN
    deadline = time.monotonic() + limits.stale_claim_seconds / 2
    run_id = None
    try:
        for attempt in range(2):
            if attempt:
                time.sleep(limits.run_lookup_retry_seconds)
            run_id = get_adf().find_run(calls.target_of(claimed.entity), pause_id, since, deadline=deadline)
            if run_id:
                break
    except (Unknown, Throttled) as lookup:  # throttled: asked again when the claim is reconciled, later
        why = f"{unknown.summary} — and the run could not be looked up: {lookup.summary}"
        _keep_claim(pause_id, claimed, claim_id, why, now)
        logger.error("run outcome unknown pause_id=%s: %s", pause_id, why)
        raise OutcomeUnknown(
            f"Azure Data Factory did not answer ({unknown.code}) and could not be asked whether the run started "
            f"({lookup.code}). To make sure the pipeline runs at most once, this pause stays 'restarting' and is "
            f"checked again automatically within {_minutes()} minutes; do not start the pipeline by hand.") \
            from unknown
    if run_id is None:
        _give_back(pause_id, claimed, claim_id,
                   Refused(unknown.code, f"{unknown} Data Factory has no run for this pause, so none was started."),
                   now, back_to)
    logger.warning("createRun gave no clear answer but the run exists pause_id=%s run_id=%s", pause_id, run_id)
    return {"run_id": run_id, "last_error": f"{unknown.summary} (the run was found and recorded)"[:1000]}


def _unconfirmed(pause_id: str, payload: bytes, unknown: Unknown, now: datetime) -> dict:
    """The callback may have arrived: the decision stands; the identical bytes are re-sent until confirmed, the
    first time CALLBACK_REDELIVERY_SECONDS after this send (which a scheduled start makes long after its decision)."""
    logger.warning("callback outcome unknown pause_id=%s code=%s: recorded as sent, to be re-sent", pause_id,
                   unknown.code)
    return {"callback_confirmed": False, "callback_attempts": 1, "callback_sent_at": now, "last_error": unknown.summary,
            **pack_json("callback_payload", payload.decode("utf-8"))}


def _record(pause_id: str, claimed: Stored, claim_id: str, changes: dict, source: Status = Status.PENDING) -> dict:
    """Write the outcome of a call that happened; if storage will not take it, reconciliation will.

    A final outcome's status-index rows are written at the same time as the record, not after it,
    so an approval waits for one write, not two in a row. Should the record not land after all
    (storage down, the pause changed meanwhile), that index update is undone: the pause keeps its
    open row, so a listing of claimed pauses still shows it until reconciliation records it.
    """
    indexing = _index_alongside(pause_id, {**claimed.entity, **changes})
    try:
        landed = write_verified(pause_id, claimed, changes, claim_id, index=indexing is None)
    except Exception as exc:  # the call happened: never let storage turn that into a 500 "nothing changed"
        logger.error("outcome not recorded pause_id=%s status=%s: %s; left for reconciliation", pause_id,
                     changes["status"], exc)
        landed = None
    finally:
        for started in indexing or ():
            started.result()  # neither raises: they log (listings repair the index)
    if landed is not None:
        return to_record(landed.entity)
    current = _read_quietly(pause_id)
    if current is not None and current.entity.get("status") in FINAL:
        # Recorded after all (a reconciliation found the run, or our write landed unanswered): the
        # index update made alongside is the pause's true one, not to be taken back.
        return to_record(current.entity)
    # Released meanwhile (back to where it was claimed from: pending, or scheduled for a scheduled start).
    if current is not None and changes.get("run_id") and current.entity.get("status") == source:
        landed = _record_over_release(pause_id, current, changes)
        if landed is not None:
            return to_record(landed.entity)
    if indexing is not None:
        # (A scheduled start keeps the decision it was scheduled with: its row is filed under that.)
        status_index.reopened(pause_id, claimed.entity, changes.get("decided_at", claimed.entity.get("decided_at")))
    logger.error("outcome not recorded pause_id=%s status=%s: left for reconciliation", pause_id, changes["status"])
    return to_record({**claimed.entity, **changes})


def _index_alongside(pause_id: str, entity: dict) -> list | None:
    """Start the status-index update of a pause that becomes final, and the row owing its chat
    follow-ups (Futures), or None when there is none to make here: not final, or the timer gathering
    index updates into batches (its thread's collector is not seen by another thread)."""
    if entity.get("status") not in FINAL or status_index.deferring_now():
        return None
    started = [index_writer().submit(status_index.settled, pause_id, entity)]
    if json_field(entity, "channels"):
        started.append(index_writer().submit(_owe_followup, pause_id))
    return started


def _read_quietly(pause_id: str) -> Stored | None:
    """The pause as stored now, or None when storage cannot say."""
    try:
        return get_store().get(pause_id)
    except Exception:
        logger.exception("could not read the pause back pause_id=%s", pause_id)
        return None


def _record_over_release(pause_id: str, current: Stored, changes: dict) -> Stored | None:
    """A reconciliation released this claim while its run was being started: the run is the truth."""
    try:
        claim_id = uuid.uuid4().hex
        return write_verified(pause_id, current, {**changes, "claim_id": claim_id}, claim_id)
    except Exception:
        logger.exception("could not record the run over a released claim pause_id=%s", pause_id)
        return None


def fail_unclaimed(pause_id: str, stored: Stored, why: str, now: datetime) -> Stored | None:
    """End a pause whose call can never be made as failed, with no claim; None if it changed meanwhile."""
    claim_id = uuid.uuid4().hex
    changes = {"status": Status.FAILED.value, "claim_id": claim_id, "decided_at": now, "decided_by": APP,
               "last_error": why[:1000]}
    landed = write_verified(pause_id, stored, changes, claim_id)
    if landed is not None:
        logger.error("pause failed before any call pause_id=%s: %s", pause_id, why)
    return landed


def decide(pause_id: str, stored: Stored, action: Action, decision: Decision, audit: Audit, now: datetime,
           also=None) -> dict:
    """Carry out `action` on the pause exactly once; return its record, or raise a typed error.

    The pause is won with a conditional write; a lost race re-reads it and plans again (so two
    approvers clicking at once both count, and one of them reaches the quorum). `also` are
    properties written with that first write (the timer's check results: one write, not two), or
    a function of the pause as it is then that returns them.
    """
    # Each lost race means another write landed; with named approvers every one of them may be
    # counting an approval at the same instant, and each must be counted, not turned away.
    attempts = _CLAIM_ATTEMPTS + len(json_field_strict(stored.entity, "approvers", []) or [])
    for _ in range(attempts):
        try:
            plan = planned(stored.entity, action, decision, audit, now)
        except calls.CannotCall as cannot:
            failed = fail_unclaimed(pause_id, stored, str(cannot), now)
            if failed is None:
                stored = get_store().get(pause_id)
                continue
            raise AlreadyDecided(f"This pause has failed: {cannot}", to_record(failed.entity)) from None
        rule, claim_id = plan.rule, uuid.uuid4().hex
        extra = (also(stored.entity) if callable(also) else also) or {}
        if rule.claim is None:
            changes = {**extra, "status": rule.result.value, "claim_id": claim_id, **plan.changes}
        else:
            changes = {**extra, "status": rule.claim.value, "claim_id": claim_id, "claimed_at": now,
                       "claim_action": plan.action.value, "claimed_by": audit.decided_by}
        if rule.result is Status.SCHEDULED:
            _start_later(pause_id, plan.changes["start_at"])
        try:
            won = write_verified(pause_id, stored, changes, claim_id)
        except Unavailable:
            if rule.claim is not None:
                # The claim may have landed (then it is released once stale), but nothing was called.
                _reconcile_later(pause_id, now)
            raise Unavailable("Pause storage is unavailable, so nothing was started. Try again shortly.") from None
        if won is None:
            stored = get_store().get(pause_id)
            continue
        if rule.claim is None:
            logger.info("pause decided pause_id=%s action=%s status=%s", pause_id, plan.action, rule.result)
            return to_record(won.entity)
        return _carry_out(pause_id, won, claim_id, plan, now)
    with contextlib.suppress(calls.CannotCall):
        planned(stored.entity, action, decision, audit, now)  # says why, if the pause was decided meanwhile
    raise AlreadyDecided("This pause is being decided by someone else right now.", to_record(stored.entity))


def _carry_out(pause_id: str, claimed: Stored, claim_id: str, plan: Plan, now: datetime) -> dict:
    """Make the claimed pause's one outside call and record what came of it."""
    rule = plan.rule
    try:
        outcome = calls.call(rule, pause_id, claimed.entity, plan.payload)
    except Refused as refused:
        _give_back(pause_id, claimed, claim_id, refused, now, rule.source)
    except Unknown as unknown:
        if rule.call is Call.START_RUN:
            outcome = _look_up(pause_id, claimed, claim_id, unknown, now, rule.source)
        else:
            outcome = _unconfirmed(pause_id, plan.payload, unknown, now)
    # (An outcome may override the status: a WebHook that had already completed makes it failed.)
    record = _record(pause_id, claimed, claim_id, {"status": rule.result.value, **plan.changes, **outcome},
                     rule.source)
    logger.info("pause decided pause_id=%s action=%s status=%s run_id=%s confirmed=%s", pause_id, plan.action,
                record["status"], record.get("run_id") or "-", record.get("callback_confirmed", "-"))
    if outcome.get("status") == ALREADY_COMPLETED.value:
        raise AlreadyDecided(calls.ACTIVITY_COMPLETED, record)
    if outcome.get("callback_confirmed") is False:
        try:
            get_due_index().add(pause_id, redelivery_due(now, 1))
        except Exception:  # its expiry row is still there: the timer re-sends then at the latest
            logger.error("could not schedule the callback re-send pause_id=%s", pause_id)
    return record


def _start_later(pause_id: str, start_at: datetime) -> None:
    """The timer's visit at start_at, written before the pause is scheduled: a pause is never scheduled
    without it. (Should the decision not land, the row finds the pause as it is then and moves on.)"""
    try:
        get_due_index().add(pause_id, start_at)
    except Exception as exc:
        logger.error("could not schedule the start pause_id=%s start_at=%s: %s", pause_id, start_at, exc)
        raise Unavailable("Pause storage is unavailable, so nothing was decided. Try again shortly.") from exc


def redelivery_due(now: datetime, attempts: int) -> datetime:
    """When the next send of an unconfirmed callback is due, after `attempts` sends."""
    limits = get_settings().limits
    return now + timedelta(seconds=limits.callback_redelivery_seconds * 2 ** (attempts - 1))
