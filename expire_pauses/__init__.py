"""Timer entry point: settle pauses nobody decided before they expired."""

import azure.functions as func

from shared import pauses
from shared.settings import sweep_schedule

bp = func.Blueprint()


# The schedule is an app setting (PAUSE_SWEEP_SCHEDULE, NCRONTAB) with a default of every
# 5 minutes; a missed run is caught up by the next one, since the sweep reads what is due.
@bp.timer_trigger(schedule=sweep_schedule(), arg_name="timer", run_on_startup=False, use_monitor=True)
def expire_pauses(timer: func.TimerRequest) -> None:
    """Settle every pending pause past its expiry by its on_timeout policy."""
    pauses.sweep()
