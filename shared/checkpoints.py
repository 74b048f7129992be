"""Checkpoints: a WebHook between a pipeline's stages that waits only while an operator's hold matches.

No active hold matches (the common case) → the WebHook is answered `202` and called back right
after with `{"held": false}` (see `shared.outbox`; nothing lasting is written). A hold matches →
the checkpoint is stored as a pause (mode `checkpoint`, status `held`, with its `hold_ids`) and
waits; `settle()` continues it when all its holds were released (or expired) and fails it with
`HoldCancelled` when one was cancelled — through the one engine (`decisions.decide`), so its
callback is made once whoever gets there first: the releaser, the checkpoint itself, the timer.

The race of a checkpoint with a release: the checkpoint reads the holds, stores itself, then reads
its holds again; a release that happened in between (whose releaser could not yet see the stored
checkpoint) is then seen by the checkpoint, which settles itself. The timer looks at every held
checkpoint at least every HOLD_RECHECK_SECONDS and at its holds' expiry.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from shared import holds, outbox, tokens
from shared.clock import utcnow
from shared.errors import AlreadyDecided, NotFound, Unavailable
from shared.jsonbody import canonical
from shared.lifecycle.engine import decide
from shared.lifecycle.model import HOLD_ENDINGS, Audit, HoldStatus, Mode, Status
from shared.settings import get_settings
from shared.storage import status_index
from shared.storage.pauses import add_pause, get_store, index_writer
from shared.storage.records import json_field_strict, to_record
from shared.storage.tables import Stored, pack_json
from shared.targets import callback
from shared.validation import CheckpointRequest, Decision

logger = logging.getLogger(__name__)


def _target(request: CheckpointRequest) -> dict:
    return {part: getattr(request, part) for part in holds.SCOPE_PARTS}


def _recheck_due(waiting_on: list, now: datetime) -> datetime:
    """When the timer next looks at a held checkpoint: its first hold's expiry, or the recheck interval."""
    later = now + timedelta(seconds=get_settings().limits.hold_recheck_seconds)
    return min([later, *(hold.expires_at for hold in waiting_on if hold.expires_at is not None)])


def reach(request: CheckpointRequest, now: datetime | None = None) -> dict:
    """A run reached a checkpoint: continue it (soon after this answer) or hold it."""
    now = now or utcnow()
    callback.check(request.callback_uri)
    payload = callback.checkpoint_payload({"held": False, "checkpoint": request.checkpoint})
    # The callback row and the holds are written/read at once: the common case costs one round trip.
    owed = index_writer().submit(outbox.add, request.callback_uri, payload, now)
    try:
        matched = holds.matching(_target(request), now)
    except BaseException:
        _withdraw(owed)
        raise
    due, etag = owed.result()
    if not matched:
        outbox.send_soon(due, etag, request.callback_uri, payload)
        logger.info("checkpoint passed checkpoint=%s run_id=%s", request.checkpoint, request.run_id)
        return {"held": False, "checkpoint": request.checkpoint}
    try:
        outbox.drop(due)
    except Exception as exc:
        # The row would continue the run while a hold says wait: answer 503 instead, so the WebHook
        # activity fails here (a callback reaching a failed activity later changes nothing).
        logger.error("checkpoint neither held nor passed run_id=%s: its callback row could not be withdrawn: %s",
                     request.run_id, getattr(exc, "detail", None) or exc)
        raise Unavailable("A hold matches this run, but storage did not take the hold; the run stops at this "
                          "checkpoint rather than pass it. Start it again once storage is back.") from exc
    return _hold(request, matched, now)


def _withdraw(owed) -> None:
    """The checkpoint failed before it was answered: its callback row must not continue the run later."""
    try:
        outbox.drop(owed.result()[0])
    except Exception:  # the row was not written, or cannot be deleted: the run's WebHook got an error
        logger.warning("a failed checkpoint's callback row could not be withdrawn")


def _hold(request: CheckpointRequest, matched: list, now: datetime) -> dict:
    pause_id = tokens.new_pause_id()
    hold_ids = [hold.hold_id for hold in matched]
    properties = {
        "status": Status.HELD.value, "mode": Mode.CHECKPOINT.value, "callback_uri": request.callback_uri,
        "subscription_id": request.subscription_id, "resource_group": request.resource_group,
        "factory_name": request.factory_name, "pipeline_name": request.pipeline_name, "run_id": request.run_id,
        "checkpoint": request.checkpoint, "created_at": now, **pack_json("hold_ids", canonical(hold_ids)),
    }
    index_row = status_index.open_row(status_index.HELD, pause_id, now, status_index.open_summary(properties))
    properties["index_key"] = index_row["RowKey"]
    add_pause(pause_id, properties, _recheck_due(matched, now), index_row)
    logger.info("checkpoint held pause_id=%s checkpoint=%s run_id=%s holds=%s", pause_id, request.checkpoint,
                request.run_id, ",".join(hold_ids))
    # A release may have happened between reading the holds and storing this checkpoint. The held
    # checkpoint is stored: whatever fails now, the answer is 202 and the timer's recheck settles it.
    try:
        if any(not _still_active(hold_id, now) for hold_id in hold_ids):
            settle(pause_id, get_store().get(pause_id), now)
    except Exception as exc:
        logger.warning("held checkpoint not settled at once pause_id=%s (the timer will): %s", pause_id,
                       getattr(exc, "detail", None) or exc)
    return {"held": True, "pause_id": pause_id, "hold_ids": hold_ids, "checkpoint": request.checkpoint}


def _still_active(hold_id: str, now: datetime) -> bool:
    try:
        return holds.get(hold_id).active_at(now)
    except NotFound:
        return False


def settle(pause_id: str, stored: Stored, now: datetime):
    """Continue or fail a held checkpoint if its holds say so; return its record, or when to look again.

    Raises AlreadyDecided when someone else settled it first.
    """
    entity = stored.entity
    waiting_on = []
    for hold_id in json_field_strict(entity, "hold_ids", []):
        try:
            waiting_on.append(holds.get(hold_id))
        except NotFound:  # removed by hand: it holds nothing any more
            continue
    active = [hold for hold in waiting_on if hold.active_at(now)]
    cancelled = [hold for hold in waiting_on if hold.status_at(now) == HoldStatus.CANCELLED]
    for hold in waiting_on:
        if hold.status == HoldStatus.ACTIVE and not hold.active_at(now):
            holds.write_down_expiry(hold)
    if cancelled:
        ended = max(cancelled, key=lambda hold: hold.ended_at or now)
        action, words = HOLD_ENDINGS[HoldStatus.CANCELLED], ended.comment or ended.reason
    elif not active:
        ended = max(waiting_on, key=lambda hold: hold.record(now)["ended_at"] or "", default=None)
        action, words = HOLD_ENDINGS[HoldStatus.RELEASED], ended.record(now)["comment"] if ended else None
    else:
        return _recheck_due(active, now)
    who = ended.record(now)["ended_by"] if ended else holds.EXPIRY
    return decide(pause_id, stored, action, Decision(comment=words), Audit(decided_by=who), now)


def waiting_on(hold_id: str) -> list[dict]:
    """The held checkpoints waiting on a hold: the held range of the status index, whose rows name
    their holds, so only the checkpoints of this hold are read."""
    from shared.listing import open_entities

    def names_it(row) -> bool:
        return hold_id in (row.properties.get("hold_ids") or "").split(",")

    found, cursor = [], None
    while True:
        entities, cursor = open_entities(status_index.HELD, 1000, cursor, keep=names_it)
        found.extend(e for e in entities if hold_id in json_field_strict(e, "hold_ids", []))
        if not cursor:
            return found


def end(hold_id: str, status: str, by: str | None, comment: str | None, now: datetime | None = None) -> dict:
    """Release or cancel a hold, then settle every checkpoint waiting on it (each exactly once)."""
    now = now or utcnow()
    hold = holds.end_hold(hold_id, status, by, comment, now)
    outcomes = {"continued": [], "failed": [], "still_held": [], "settled_elsewhere": [], "not_settled": []}

    def one(entity: dict) -> tuple[str, str]:
        pause_id = entity["PartitionKey"]
        try:
            result = settle(pause_id, get_store().get(pause_id), now)
        except AlreadyDecided:
            return "settled_elsewhere", pause_id
        except Exception as exc:  # the timer settles it at its recheck
            logger.warning("checkpoint not settled by the hold's end pause_id=%s: %s", pause_id,
                           getattr(exc, "detail", None) or exc)
            return "not_settled", pause_id
        if isinstance(result, datetime):
            return "still_held", pause_id
        return ("continued" if result["status"] == Status.RELEASED else "failed"), pause_id

    try:
        waiting = waiting_on(hold_id)
    except Exception as exc:  # the hold has ended: say so, and that the timer settles its checkpoints
        logger.warning("checkpoints of hold_id=%s not listed now (the timer settles them): %s", hold_id,
                       getattr(exc, "detail", None) or exc)
        return {**hold.record(now), "checkpoints": outcomes,
                "note": f"The hold is {status}; the runs waiting on it could not be listed just now and are "
                        f"settled by the timer within {int(get_settings().limits.hold_recheck_seconds // 60)} "
                        "minutes."}
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="hold-end") as pool:
        for key, pause_id in pool.map(one, waiting):
            outcomes[key].append(pause_id)
    logger.info("hold %s hold_id=%s checkpoints=%s", status, hold_id, {k: len(v) for k, v in outcomes.items()})
    return {**hold.record(now), "checkpoints": outcomes}


def show(hold_id: str, now: datetime | None = None) -> dict:
    """A hold's record with the checkpoints waiting on it."""
    now = now or utcnow()
    hold = holds.get(hold_id)
    return {**hold.record(now), "waiting": [to_record(e) for e in waiting_on(hold_id)]}

