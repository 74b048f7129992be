"""Timer entry point: settle everything that is due (expiry, check attempts, stale claims, unconfirmed callbacks)."""

import logging

import azure.functions as func

from shared import sweep
from shared.settings import sweep_schedule

bp = func.Blueprint()
logger = logging.getLogger(__name__)


# The schedule is the app setting PAUSE_SWEEP_SCHEDULE (NCRONTAB), resolved by the Functions host,
# or every minute without it; a missed run is caught up by the next one, since the sweep reads what is due.
@bp.timer_trigger(schedule=sweep_schedule(), arg_name="timer", run_on_startup=False, use_monitor=True)
def expire_pauses(timer: func.TimerRequest) -> None:
    """Settle every due pause; never fail the run (what is not settled stays due)."""
    try:
        sweep.sweep()
    except Exception:  # the sweep isolates each pause; this is only for the unforeseen
        logger.exception("timer run failed; everything unsettled stays due")
