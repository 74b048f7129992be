"""Recovery: settle what a decision left unfinished — a stale claim, an unconfirmed callback, a pause
the timer could not settle.

A claim nobody finished (the process died, storage failed) is *stale* after STALE_CLAIM_SECONDS
and reconciled by the next click or the timer: a START_RUN claim looks the run up (found → its
final status with the run id; none → back to where it was claimed from: pending, or scheduled for a
scheduled start, which keeps the approver's decision either way); a CALL_BACK claim becomes failed, with
last_error, since whether a callback arrived cannot be asked. An unconfirmed callback is re-sent
byte for byte until confirmed (bounded); a pause the timer cannot settle in TIMER_ATTEMPTS runs
is given up as failed.
"""

import logging
import uuid
from datetime import datetime, timedelta

from shared.clock import as_utc
from shared.errors import NotFound, Unavailable
from shared.lifecycle.calls import target_of
from shared.lifecycle.engine import LOOKUP_MARGIN, redelivery_due, stale_after, write_verified
from shared.lifecycle.model import FINAL, GIVEN_UP, RECONCILED, TIMER, Call, Status, claim_rule
from shared.lifecycle.plan import count
from shared.settings import get_settings
from shared.storage import status_index
from shared.storage.pauses import get_store
from shared.storage.records import mode_of, moment, status_of, text
from shared.storage.tables import Conflict, Stored, unpack_json
from shared.targets import callback
from shared.targets.adf import get_adf
from shared.targets.outside import OutsideCallFailed

logger = logging.getLogger(__name__)

_DONE_TRIES = 5  # a re-send's outcome written again over other writes to the pause made meanwhile


def is_stale(entity: dict, now: datetime) -> bool:
    return now - moment(entity, "claimed_at") >= stale_after()


def reconcile(pause_id: str, stored: Stored, now: datetime) -> Stored:
    """Settle a stale claim whose outcome was never recorded; return the pause as it is now.

    Restart mode asks ADF whether the run was started: if so it is recorded, else the claim is
    released (pending, or scheduled). A callback's fate cannot be asked for, so such a pause is marked failed.
    Raises Unknown when ADF cannot be asked (the claim stays for the next try).
    """
    entity = stored.entity
    status, mode = status_of(entity), mode_of(entity)
    claimed_at = moment(entity, "claimed_at")
    rule = claim_rule(status, entity.get("claim_action"), mode)
    # A claim id of its own: a decision still in flight must not take this write for its own.
    claim_id = uuid.uuid4().hex
    who = entity.get("claimed_by")
    if rule is None or rule.call is not Call.START_RUN:
        changes = {"status": RECONCILED[Call.CALL_BACK].value, "claim_id": claim_id, "decided_at": now, "decided_by": who or TIMER,
                   "last_error": "Interrupted: the app stopped (or storage failed) while the callback to Data Factory "
                                 "was being made; whether it arrived is unknown. Check the pipeline run."}
    else:
        run_id = get_adf().find_run(target_of(entity), pause_id, claimed_at - LOOKUP_MARGIN, now)
        outcome = getattr(rule, RECONCILED[(Call.START_RUN, bool(run_id))])  # the rule's result, or its source
        if run_id:
            changes = {"status": outcome.value, "claim_id": claim_id, "run_id": run_id, "decided_at": claimed_at,
                       "decided_by": who,
                       "last_error": "Interrupted after createRun; the run was found in Data Factory and recorded."}
            if rule.source is Status.SCHEDULED:  # it started as decided: the approver's decision stays on record
                del changes["decided_at"], changes["decided_by"]
        else:
            changes = {"status": outcome.value, "claim_id": claim_id,
                       "last_error": "Interrupted before Data Factory started a run; the pause was released."}
    landed = write_verified(pause_id, stored, changes, claim_id)
    if landed is None:
        return get_store().get(pause_id)
    # A decision whose record never landed may have updated the index already (see engine._record),
    # filed under the claim's moment: put the open row back for a pause that is open again, and drop
    # that decision row when the outcome is filed under another moment.
    if landed.entity.get("status") not in FINAL:
        status_index.reopened(pause_id, entity, claimed_at)
    elif changes.get("decided_at") != claimed_at:
        status_index.withdrawn(pause_id, claimed_at)
    logger.warning("stale claim reconciled pause_id=%s %s -> %s", pause_id, status, changes["status"])
    return landed


def redeliver(pause_id: str, stored: Stored, now: datetime) -> datetime | bool:
    """Re-send an unconfirmed callback's identical bytes once.

    Return True when confirmed now, False when given up (after CALLBACK_REDELIVERY_ATTEMPTS
    sends, the record says so), or when the next send is due. Raises Conflict when another timer
    instance took this send.
    """
    entity, limits = stored.entity, get_settings().limits
    # A send taken and never recorded as done (its process died, or storage failed around it) may not have been
    # made: it is taken again under its own number (identical bytes: a second arrival changes nothing).
    number = max(1, count(entity.get("callback_attempts"))) + (0 if _undone(entity) else 1)
    payload = unpack_json(entity, "callback_payload")
    if number > limits.callback_redelivery_attempts or payload is None:
        return False
    store, send_id = get_store(), uuid.uuid4().hex
    # Taken with a conditional write, so two timer instances do not both send this attempt. A write that may have
    # landed unanswered (the storage SDK's retry then meets a 412, or no answer at all) is read back: carrying
    # this send's id, it is ours, and the callback is sent. (Storage not answering the read either: raised; the
    # send, if taken, is not done, and is taken again once it must have ended.)
    try:
        etag = store.update(pause_id, {"callback_attempts": number, "callback_sent_at": now,
                                       "callback_taken_id": send_id}, stored.etag)
    except (Conflict, Unavailable):
        current = store.get(pause_id)
        if current.entity.get("callback_taken_id") != send_id:
            raise
        etag = current.etag
    try:
        callback.deliver(text(entity, "callback_uri"), payload.encode("utf-8"))
    except OutsideCallFailed as failure:
        gave_up = number >= limits.callback_redelivery_attempts
        note = f"{failure.summary}; sent {number} time(s)" + ("; gave up re-sending" if gave_up else "")
        _done(pause_id, send_id, {"last_error": note[:1000]}, etag)
        logger.warning("callback re-send failed pause_id=%s attempt=%d: %s", pause_id, number, failure.summary)
        return False if gave_up else redelivery_due(now, number)
    _done(pause_id, send_id, {"callback_confirmed": True}, etag)
    logger.info("callback confirmed on re-send pause_id=%s attempt=%d", pause_id, number)
    return True


def _done(pause_id: str, send_id: str, changes: dict, etag: str) -> None:
    """Record what came of a re-send, and that it was made. Something else may write the pause meanwhile (a
    chat note, a follow-up): the outcome is this send's own to record while the send is still the last taken
    (else, taken again for want of it, the callback would be sent once more each time)."""
    store = get_store()
    for _ in range(_DONE_TRIES):
        try:
            store.update(pause_id, {**changes, "callback_done_id": send_id}, etag)
            return
        except Conflict:
            current = store.get(pause_id)
            if current.entity.get("callback_taken_id") != send_id or not _undone(current.entity):
                return  # taken again since, or recorded (a write that landed unanswered)
            etag = current.etag
    logger.warning("could not record the outcome of callback re-send pause_id=%s: the pause kept changing; the "
                   "send reads as not done and is made again once it must have ended", pause_id)
    raise Conflict()


def _undone(entity: dict) -> bool:
    """A re-send taken (its id written) and not recorded as done."""
    taken = entity.get("callback_taken_id")
    return isinstance(taken, str) and taken != entity.get("callback_done_id")


def resend_due(entity: dict) -> datetime | None:
    """When an unconfirmed callback's next send is due by its record, to the second as the due index keeps time:
    CALLBACK_REDELIVERY_SECONDS after its last send, doubled for each send after the first; a send taken and not
    recorded as done, once it must have ended. None when no send is owed any more (given up) or the record does
    not say.

    A record written before sends were timed (no `callback_sent_at`) has only its decision: the sends are taken to
    have kept to the schedule from there (the sum of the intervals so far), never later than they did."""
    sent, decided = entity.get("callback_sent_at"), entity.get("decided_at")
    if _undone(entity) and isinstance(sent, datetime):
        return (as_utc(sent) + callback.send_window()).replace(microsecond=0)
    attempts, limits = max(1, count(entity.get("callback_attempts"))), get_settings().limits
    if attempts >= limits.callback_redelivery_attempts:
        return None
    if isinstance(sent, datetime):
        due = redelivery_due(as_utc(sent), attempts)
    elif isinstance(decided, datetime):  # the intervals so far: 1, 2, 4 … of them, 2^attempts - 1 in all
        due = as_utc(decided) + timedelta(seconds=limits.callback_redelivery_seconds * (2 ** attempts - 1))
    else:
        return None
    return due.replace(microsecond=0)


def give_up(pause_id: str, why: str, now: datetime) -> bool:
    """Mark a pause the timer could not settle as failed (unless it is final already); False when it
    changed while being given up, so the timer should look again."""
    store = get_store()
    try:
        stored = store.get(pause_id)
    except NotFound:
        return True
    if stored.entity.get("status") in FINAL:
        return True
    claim_id = uuid.uuid4().hex  # read back as ours if the storage SDK's retry of a landed write gets a 412
    changes = {"status": GIVEN_UP.value, "decided_at": now, "decided_by": TIMER, "last_error": why[:1000],
               "claim_id": claim_id}
    if write_verified(pause_id, stored, changes, claim_id) is None:
        logger.info("pause changed while being given up pause_id=%s; the timer looks again", pause_id)
        return False
    logger.error("pause failed pause_id=%s: %s", pause_id, why)
    return True
