"""Run a FunctionApp's timer-triggered functions on their NCRONTAB schedules, as `func start` does.

Schedules may name an app setting (`%PAUSE_SWEEP_SCHEDULE%`), resolved from the environment.
Each timer runs in one background thread; an exception is logged and the next run still happens.
"""

import logging
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

import azure.functions as func
from azure.functions.timer import TimerRequest

from local_dev.service import Service
from local_dev.worker_threads import PROCESS, WorkerThreads

logger = logging.getLogger(__name__)

TIMER_TRIGGER = "timerTrigger"


@dataclass(frozen=True)
class TimerFunction:
    name: str
    schedule: str
    parameter: str
    user_function: object


class SettingMissing(RuntimeError):
    """A binding names an app setting that is not set: the Functions host does not start either."""


class ScheduleSettingMissing(SettingMissing):
    """A timer's schedule names an app setting that is not set."""


def resolve_settings(text: str, what: str, env=os.environ, error=SettingMissing) -> str:
    """Replace each `%SETTING%` in a binding's `text` with the setting's value, as the Functions host does."""
    def value(match):
        if not env.get(match.group(1)):
            raise error(f"{what} names the app setting {match.group(1)}, which is not set (local.settings.json.example "
                        "should set it)")
        return env[match.group(1)]
    return re.sub(r"%([^%]+)%", value, text)


def resolve_schedule(schedule: str, env=os.environ) -> str:
    """The timer's schedule with `%SETTING%` replaced by the setting's value."""
    return resolve_settings(schedule, "the timer's schedule", env, ScheduleSettingMissing)


def timer_functions(function_app: func.FunctionApp) -> list[TimerFunction]:
    """The timer-triggered functions registered on `function_app`."""
    function_app.functions_bindings = None  # get_functions() refuses to index twice otherwise
    found = []
    for function in function_app.get_functions():
        trigger = function.get_trigger()
        if trigger.type == TIMER_TRIGGER:
            found.append(TimerFunction(function.get_function_name(), resolve_schedule(trigger.schedule),
                                       trigger.name, function.get_user_function()))
    return found


def next_run(schedule: str, after: datetime) -> datetime:
    """The next moment `schedule` (six NCRONTAB fields, seconds first) fires after `after`."""
    from croniter import croniter

    return croniter(schedule, after, second_at_beginning=True).get_next(datetime)


class TimerRunner(Service):
    """Fires each timer function at its scheduled times until stopped, on one of the worker's `threads` (as the
    HTTP and queue functions of the process do)."""

    def __init__(self, timers: list[TimerFunction], threads: WorkerThreads = PROCESS):
        self.timers, self._worker = timers, threads
        self._stop = threading.Event()
        self._threads = []

    def start(self) -> "TimerRunner":
        for timer in self.timers:
            thread = threading.Thread(target=self._loop, args=(timer,), name=f"timer-{timer.name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _loop(self, timer: TimerFunction) -> None:
        while True:
            due = next_run(timer.schedule, datetime.now(timezone.utc))
            if self._stop.wait((due - datetime.now(timezone.utc)).total_seconds()):
                return
            try:
                self._worker.invoke(timer.user_function, {timer.parameter: TimerRequest(past_due=False)})
                logger.info("timer %s ran", timer.name)
            except Exception:  # the host logs a failed run and keeps the schedule
                logger.exception("timer %s failed", timer.name)
