"""Timer and queue entry points: put due work on the queue (or settle it here), and settle each message.

The timer reads the due index every minute. With DUE_WORK_QUEUE (the default) it enqueues each due item
and the queue-triggered function settles it, on as many instances as the host scales it to (work waiting
for ARM's write limit comes back on `<DUE_WORK_QUEUE>-paced`, settled the same way); with
DUE_WORK_QUEUE empty the timer settles everything itself, in one process.
"""

import logging

import azure.functions as func

from shared import due_work, sweep
from shared.bindings import due_work_trigger, sweep_schedule
from shared.settings import get_settings

bp = func.Blueprint()
logger = logging.getLogger(__name__)


# The schedule is the app setting PAUSE_SWEEP_SCHEDULE (NCRONTAB), resolved by the Functions host,
# or every minute without it; a missed run is caught up by the next one, since the sweep reads what is due.
@bp.timer_trigger(schedule=sweep_schedule(), arg_name="timer", run_on_startup=False, use_monitor=True)
def expire_pauses(timer: func.TimerRequest) -> None:
    """Enqueue (or settle) every due item; never fail the run (what is not done stays due)."""
    try:
        if get_settings().due_work_queue:
            due_work.enqueue_due()
        else:
            sweep.sweep()
    except Exception:  # each item is isolated; this is only for the unforeseen
        logger.exception("timer run failed; everything unsettled stays due")


def settle_due_work(message: func.QueueMessage) -> None:
    """Settle the one due item a message names (raising only when the host should deliver it again)."""
    _settle(message)


def settle_paced_work(message: func.QueueMessage) -> None:
    """Settle an item that waited for ARM's write limit (its own queue: a backlog on the main one would hold
    it past its slot)."""
    _settle(message)


def _listen(function, trigger: tuple[str, str] | None) -> None:
    if trigger is not None:  # None: the timer settles due work itself, and no function listens on a queue
        queue, connection = trigger
        bp.queue_trigger(arg_name="message", queue_name=queue, connection=connection)(function)


_listen(settle_due_work, due_work_trigger())
_listen(settle_paced_work, due_work_trigger(paced=True))


def _settle(message: func.QueueMessage) -> None:
    due_work.settle(message.get_body().decode("utf-8", "replace"), message.dequeue_count or 1)
