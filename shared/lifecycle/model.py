"""The pause lifecycle, declared as data: statuses, who may do what, and what each step records.

One table (`RULES`) says, for every action in every mode: who may take it, from which status,
the status that claims the pause while the outside call is made, the status it leaves the pause
in, the outside call, and which field keeps the person's words. `shared.lifecycle.engine.decide()` is
the one engine that carries a row out:

    claim  (conditional write on the ETag: exactly one caller wins; no claim when there is no call)
    call   (start the run, or call the WebHook back)
    record (the resulting status and what the call returned)

With named approvers, an approval that does not yet reach `required_approvals` is a row of its
own (RECORD_APPROVAL: no call, the pause stays pending with one more entry in `approvals`); the
one that reaches it is an ordinary APPROVE.

What a failed call means is fixed per call (see `shared.targets.outside`):

    call        refused (surely no effect)   unknown (may have had an effect)
    START_RUN   back to pending (502)        look the run up: found → final; none → pending;
                                             cannot tell → stays claimed, reconciled later
    CALL_BACK   back to pending (502)        final, with callback_confirmed false; the identical
                                             payload is re-sent by the timer until confirmed

A claim nobody finished (the process died, storage failed) is *stale* after STALE_CLAIM_SECONDS
and reconciled by the next click or the timer: a START_RUN claim looks the run up (found → its
final status with the run id; none → back to pending); a CALL_BACK claim becomes failed, with
last_error, since whether a callback arrived cannot be asked.
"""

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    RESTARTING = "restarting"  # claimed by an approval (or restart on timeout): run or callback in flight
    CANCELLING = "cancelling"  # claimed by a cancel: the Error callback in flight (callback mode)
    EXPIRING = "expiring"      # claimed by the timer: the Error callback in flight (callback mode)
    HELD = "held"              # a checkpoint waiting on one or more holds
    SCHEDULED = "scheduled"    # decided to continue outside its start window (or for a chosen start): waits for start_at
    RELEASING = "releasing"    # claimed by a release: the checkpoint's callback in flight
    RESTARTED = "restarted"
    RELEASED = "released"      # a checkpoint whose holds were all released: its run continued
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"


OPEN = frozenset({Status.PENDING, Status.HELD, Status.SCHEDULED})
CLAIMED = frozenset({Status.RESTARTING, Status.CANCELLING, Status.EXPIRING, Status.RELEASING})
FINAL = frozenset({Status.RESTARTED, Status.RELEASED, Status.CANCELLED, Status.EXPIRED, Status.FAILED})
# Nobody is asked any more: reminders and escalations end (a scheduled pause was decided already).
ASKED_NO_MORE = FINAL | {Status.SCHEDULED}


class Mode(StrEnum):
    RESTART = "restart"    # start the next pipeline through the SDK
    CALLBACK = "callback"  # call the waiting WebHook activity back
    CHECKPOINT = "checkpoint"  # a run held at a checkpoint: called back when its holds end


class Action(StrEnum):
    APPROVE = "approve"
    RECORD_APPROVAL = "record_approval"        # one of several approvals needed: counted, nothing called
    CANCEL = "cancel"
    EXPIRE = "expire"                          # the timer, for on_timeout "expire"
    CHECKS_CONTINUE = "checks_continue"        # checks passed (auto), or ran out with on_timeout "restart"
    CHECKS_EXPIRE = "checks_expire"            # checks ran out (or cannot pass) with on_timeout "expire"
    RESTART_ON_TIMEOUT = "restart_on_timeout"  # the timer, for on_timeout "restart"
    RELEASE = "release"                        # every hold a checkpoint waits on was released (or expired)
    HOLD_CANCEL = "hold_cancel"                # a hold a checkpoint waits on was cancelled: the run fails
    NOT_NOTIFIED = "not_notified"              # the approval email could not be sent: nobody holds a link
    SCHEDULE = "schedule"                      # an approval outside the start window (or for a chosen start)
    CHECKS_SCHEDULE = "checks_schedule"        # checks passed (or ran out, on_timeout "restart") outside the window
    SCHEDULE_ON_TIMEOUT = "schedule_on_timeout"  # on_timeout "restart" outside the window
    START_SCHEDULED = "start_scheduled"        # the timer, at start_at: continue as decided
    CANCEL_SCHEDULED = "cancel_scheduled"      # a cancel while scheduled (its link, or an operator)


class Actor(StrEnum):
    PERSON = "person"  # through a link, until expires_at
    CHECKS = "checks"  # the pause's automated checks (run by the timer), until expires_at
    TIMER = "timer"    # only once expires_at has passed
    HOLDS = "holds"    # an operator releasing or cancelling a hold (or the timer when one expires); no expiry
    APP = "app"        # the app itself, in the request that made the pause; no expiry
    START = "start"    # the timer, once a scheduled pause's start_at has come


class Call(StrEnum):
    NONE = "none"
    START_RUN = "start_run"
    CALL_BACK = "call_back"


@dataclass(frozen=True)
class Rule:
    actor: Actor
    source: Status       # the status the action may start from
    claim: Status | None  # None: no outside call, so one conditional write goes straight to `result`
    result: Status        # the status the action leaves the pause in
    call: Call
    text: str            # the record field for the decision's words: "comment" or "reason"
    error_code: str | None = None  # callback mode: the Error sent instead of the Output
    gated: bool = False  # in checks_mode "gate", only once every check has passed


_P, _C, _T, _H, _A, _ST = Actor.PERSON, Actor.CHECKS, Actor.TIMER, Actor.HOLDS, Actor.APP, Actor.START
_S = Status

RULES: dict[tuple[Action, Mode], Rule] = {
    # (action, mode)                              who  from        claim          result         call            words      callback Error
    (Action.APPROVE, Mode.RESTART):            Rule(_P, _S.PENDING, _S.RESTARTING, _S.RESTARTED, Call.START_RUN, "comment", gated=True),
    (Action.APPROVE, Mode.CALLBACK):           Rule(_P, _S.PENDING, _S.RESTARTING, _S.RESTARTED, Call.CALL_BACK, "comment", gated=True),
    (Action.RECORD_APPROVAL, Mode.RESTART):    Rule(_P, _S.PENDING, None,          _S.PENDING,   Call.NONE,      "comment", gated=True),
    (Action.RECORD_APPROVAL, Mode.CALLBACK):   Rule(_P, _S.PENDING, None,          _S.PENDING,   Call.NONE,      "comment", gated=True),
    (Action.CANCEL, Mode.RESTART):             Rule(_P, _S.PENDING, None,          _S.CANCELLED, Call.NONE,      "reason"),
    (Action.CANCEL, Mode.CALLBACK):            Rule(_P, _S.PENDING, _S.CANCELLING, _S.CANCELLED, Call.CALL_BACK, "reason", "PauseCancelled"),
    (Action.EXPIRE, Mode.RESTART):             Rule(_T, _S.PENDING, None,          _S.EXPIRED,   Call.NONE,      "reason"),
    (Action.EXPIRE, Mode.CALLBACK):            Rule(_T, _S.PENDING, _S.EXPIRING,   _S.EXPIRED,   Call.CALL_BACK, "reason", "PauseExpired"),
    (Action.RESTART_ON_TIMEOUT, Mode.RESTART):  Rule(_T, _S.PENDING, _S.RESTARTING, _S.RESTARTED, Call.START_RUN, "comment"),
    (Action.RESTART_ON_TIMEOUT, Mode.CALLBACK): Rule(_T, _S.PENDING, _S.RESTARTING, _S.RESTARTED, Call.CALL_BACK, "comment"),
    (Action.CHECKS_CONTINUE, Mode.RESTART):    Rule(_C, _S.PENDING, _S.RESTARTING, _S.RESTARTED, Call.START_RUN, "comment"),
    (Action.CHECKS_CONTINUE, Mode.CALLBACK):   Rule(_C, _S.PENDING, _S.RESTARTING, _S.RESTARTED, Call.CALL_BACK, "comment"),
    (Action.CHECKS_EXPIRE, Mode.RESTART):      Rule(_C, _S.PENDING, None,          _S.EXPIRED,   Call.NONE,      "reason"),
    (Action.CHECKS_EXPIRE, Mode.CALLBACK):     Rule(_C, _S.PENDING, _S.EXPIRING,   _S.EXPIRED,   Call.CALL_BACK, "reason", "PauseExpired"),
    (Action.RELEASE, Mode.CHECKPOINT):         Rule(_H, _S.HELD,    _S.RELEASING,  _S.RELEASED,  Call.CALL_BACK, "comment"),
    (Action.HOLD_CANCEL, Mode.CHECKPOINT):     Rule(_H, _S.HELD,    _S.CANCELLING, _S.CANCELLED, Call.CALL_BACK, "reason", "HoldCancelled"),
    # The WebHook that waits on a callback pause has its answer (502) instead of a callback.
    (Action.NOT_NOTIFIED, Mode.RESTART):       Rule(_A, _S.PENDING, None,          _S.CANCELLED, Call.NONE,      "reason"),
    (Action.NOT_NOTIFIED, Mode.CALLBACK):      Rule(_A, _S.PENDING, None,          _S.CANCELLED, Call.NONE,      "reason"),
    # Start windows: a decision to continue made outside the window is recorded and waits for start_at.
    (Action.SCHEDULE, Mode.RESTART):           Rule(_P, _S.PENDING, None,          _S.SCHEDULED, Call.NONE,      "comment", gated=True),
    (Action.SCHEDULE, Mode.CALLBACK):          Rule(_P, _S.PENDING, None,          _S.SCHEDULED, Call.NONE,      "comment", gated=True),
    (Action.CHECKS_SCHEDULE, Mode.RESTART):    Rule(_C, _S.PENDING, None,          _S.SCHEDULED, Call.NONE,      "comment"),
    (Action.CHECKS_SCHEDULE, Mode.CALLBACK):   Rule(_C, _S.PENDING, None,          _S.SCHEDULED, Call.NONE,      "comment"),
    (Action.SCHEDULE_ON_TIMEOUT, Mode.RESTART):  Rule(_T, _S.PENDING, None,        _S.SCHEDULED, Call.NONE,      "comment"),
    (Action.SCHEDULE_ON_TIMEOUT, Mode.CALLBACK): Rule(_T, _S.PENDING, None,        _S.SCHEDULED, Call.NONE,      "comment"),
    (Action.START_SCHEDULED, Mode.RESTART):    Rule(_ST, _S.SCHEDULED, _S.RESTARTING, _S.RESTARTED, Call.START_RUN, "comment"),
    (Action.START_SCHEDULED, Mode.CALLBACK):   Rule(_ST, _S.SCHEDULED, _S.RESTARTING, _S.RESTARTED, Call.CALL_BACK, "comment"),
    (Action.CANCEL_SCHEDULED, Mode.RESTART):   Rule(_P, _S.SCHEDULED, None,        _S.CANCELLED, Call.NONE,      "reason"),
    (Action.CANCEL_SCHEDULED, Mode.CALLBACK):  Rule(_P, _S.SCHEDULED, _S.CANCELLING, _S.CANCELLED, Call.CALL_BACK, "reason", "PauseCancelled"),
}

# Named approvers: an action that counts towards required_approvals, and the row it is carried out
# as while the quorum is not reached (the approval is counted; the pause stays pending).
QUORUM = {Action.APPROVE: Action.RECORD_APPROVAL}
# With named approvers, these say why (the other approvers and the pipeline's owner read it).
WORDS_REQUIRED_WITH_APPROVERS = frozenset({Action.CANCEL, Action.CANCEL_SCHEDULED})
# A decision to continue made outside the pause's start window (or for a later start the approver
# chose) is carried out as the row that schedules it; the timer starts it at start_at.
WINDOWED = {Action.APPROVE: Action.SCHEDULE, Action.CHECKS_CONTINUE: Action.CHECKS_SCHEDULE,
            Action.RESTART_ON_TIMEOUT: Action.SCHEDULE_ON_TIMEOUT}
# What an action means on a pause that is scheduled already.
WHILE_SCHEDULED = {Action.CANCEL: Action.CANCEL_SCHEDULED}

# What the timer does with a pending pause whose expiry has passed, by its on_timeout; and what
# the checks do when their attempts run out (or one can never pass), by the same on_timeout.
ON_TIMEOUT = {"expire": Action.EXPIRE, "restart": Action.RESTART_ON_TIMEOUT}
CHECKS_ON_TIMEOUT = {"expire": Action.CHECKS_EXPIRE, "restart": Action.CHECKS_CONTINUE}

# What becomes of a decision whose outside call ended so: a WebHook activity that had already
# completed (409: it timed out, say) took no decision, so the pause failed; a pause the timer could
# not settle in TIMER_ATTEMPTS runs failed too.
ALREADY_COMPLETED = Status.FAILED
GIVEN_UP = Status.FAILED

# A stale claim reconciled: a START_RUN claim by whether Data Factory has the run (found: the
# claim's result, recorded with the run id; none: back to the status it was claimed from); a
# CALL_BACK claim cannot be asked whether its callback arrived, so it failed.
RECONCILED = {(Call.START_RUN, True): "result", (Call.START_RUN, False): "source", Call.CALL_BACK: Status.FAILED}


class HoldStatus(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"    # also an active hold whose expires_at passed
    CANCELLED = "cancelled"


# What the holds a checkpoint waits on do to it: one cancelled fails it at once; once none is active
# (all released, or expired) it continues; until then it stays held.
HOLD_ENDINGS = {HoldStatus.CANCELLED: Action.HOLD_CANCEL, HoldStatus.RELEASED: Action.RELEASE}

# What a follow-up in a chat channel says happened to a pause: "Approved by alice@… at 14:02 UTC".
DECIDED_WORDS = {Status.RESTARTED: "Approved", Status.RELEASED: "Released", Status.CANCELLED: "Cancelled",
                 Status.EXPIRED: "Expired", Status.FAILED: "Failed"}

# How a decided or claimed pause is described to whoever meets it: "This pause ...".
SAID = {
    Status.RESTARTING: "is being restarted right now",
    Status.CANCELLING: "is being cancelled right now",
    Status.EXPIRING: "is expiring right now",
    Status.RELEASING: "is being released right now",
    Status.RELEASED: "was already released",
    Status.HELD: "is held at a checkpoint",
    Status.SCHEDULED: "was approved and waits for its start time",
    Status.RESTARTED: "was already approved and restarted",
    Status.CANCELLED: "was already cancelled",
    Status.EXPIRED: "has expired",
    Status.FAILED: "has failed",
}


def rule_for(action: Action, mode: Mode) -> Rule:
    return RULES[(action, mode)]


def claimed_from(status: Status) -> tuple[Status, ...]:
    """The open statuses a pause in `status` was in before: its own while it is open; while it is
    claimed, the source of every rule that claims it (a cancel claims from pending in callback mode
    and from held as a hold's cancel, so `cancelling` has two); none once it is final."""
    if status in OPEN:
        return (status,)
    sources = {rule.source for rule in RULES.values() if rule.claim is status}
    return tuple(source for source in Status if source in sources)


def claim_rule(status: Status, action: str | None, mode: Mode) -> Rule | None:
    """The rule whose claim left a pause in `status` (`claim_action` is recorded with the claim)."""
    for (rule_action, rule_mode), rule in RULES.items():
        if rule_mode is mode and rule.claim is status and (action is None or rule_action == action):
            return rule
    return None


class SweepOutcome(StrEnum):
    """What one timer visit of a due pause did."""

    EXPIRED = "expired"                  # settled by on_timeout "expire"
    RESTARTED = "restarted"              # settled by on_timeout "restart"
    UNCONFIRMED = "unconfirmed"          # settled, but its callback is not confirmed yet: re-sent later
    RECONCILED = "reconciled"            # a stale claim whose run exists was recorded
    RELEASED = "released"                # a stale claim without a run went back to pending
    REDELIVERED = "redelivered"          # an unconfirmed callback was re-sent and confirmed
    UNDELIVERED = "undelivered"          # gave up re-sending an unconfirmed callback (last_error says why)
    RESCHEDULED = "rescheduled"          # not due yet after all (a young claim, a later expiry, a re-send)
    CHECKED = "checked"                  # a check attempt was made; the pause waits (for more, or for people)
    CHECKPOINT_CONTINUED = "checkpoint_continued"  # a checkpoint's callback the app owed was delivered
    CHECKPOINT_SETTLED = "checkpoint_settled"      # a held checkpoint was released or failed by its holds
    STILL_HELD = "still_held"                      # a held checkpoint's holds are still active
    ALREADY_SETTLED = "already_settled"  # final before the timer came
    MISSING = "missing"                  # an index row whose pause does not exist
    RETRY = "retry"                      # could not settle it now: counted, tried again next run
    DEFERRED = "deferred"                # ARM throttles (or soon would): tried again later, not counted
    FAILED = "failed"                    # gave up after TIMER_ATTEMPTS: marked failed
    NOTIFIED = "notified"                # the chat follow-ups owed on a decided pause were posted (or recorded failed)
    REMINDED = "reminded"                # a pending pause's reminder was sent (and the next one scheduled)
    ESCALATED = "escalated"              # a pending pause was escalated (approvers added, more people told)
    SCHEDULED = "scheduled"              # settled by on_timeout "restart" outside its window: waits for start_at
    STARTED = "started"                  # a scheduled pause was continued at its start_at


class CheckResult(StrEnum):
    """What one attempt of a check found."""

    PASSED = "passed"
    NOT_YET = "not_yet"  # answered, but the condition does not hold yet (what was seen is kept)
    ERROR = "error"      # could not be asked (why is kept); tried again next time
    FAILED = "failed"    # can never pass (an ADF run that ended otherwise): the pause settles at once


def checks_passed(entity: dict) -> bool:
    """Whether every check has passed (True for a pause without checks)."""
    return not entity.get("check_max_attempts") or entity.get("checks_passed") is True


# Who decided, when no person did.
TIMER = "expiry timer"
APP = "app"        # the app itself had to (an email that could not be sent, a call that can never be made)
CHECKS = "checks"  # the pause's automated checks


@dataclass(frozen=True)
class Audit:
    """Who acted: an identity only when it is known for sure (a personal link, a sign-in, the timer)."""

    decided_by: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    via: str | None = None  # "personal_link" or "sign_in" when decided_by names a person


TIMER_AUDIT = Audit(decided_by=TIMER)
