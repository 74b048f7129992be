"""The local host's timer runner: schedules resolved like the Functions host, runs on time."""

import threading
from datetime import datetime, timezone

import azure.functions as func

from local_dev.timers import TimerFunction, TimerRunner, next_run, resolve_schedule, timer_functions
from local_dev.worker_threads import WorkerThreads


def test_schedule_names_an_app_setting():
    assert resolve_schedule("%SWEEP%", {"SWEEP": "0 */5 * * * *"}) == "0 */5 * * * *"
    assert resolve_schedule("0 0 * * * *", {}) == "0 0 * * * *"


def test_next_run_reads_ncrontab_with_seconds_first():
    after = datetime(2026, 1, 1, 0, 1, 3, tzinfo=timezone.utc)
    assert next_run("0 */5 * * * *", after) == datetime(2026, 1, 1, 0, 5, 0, tzinfo=timezone.utc)
    assert next_run("*/10 * * * * *", after) == datetime(2026, 1, 1, 0, 1, 10, tzinfo=timezone.utc)


def test_timer_functions_are_found_on_the_app():
    bp = func.Blueprint()

    @bp.timer_trigger(schedule="0 */5 * * * *", arg_name="tick")
    def sweep(tick: func.TimerRequest) -> None:
        pass

    app = func.FunctionApp()
    app.register_functions(bp)
    [timer] = timer_functions(app)
    assert (timer.name, timer.schedule, timer.parameter) == ("sweep", "0 */5 * * * *", "tick")


def test_runner_fires_every_second_and_survives_a_failing_run():
    calls = []
    fired_twice = threading.Event()

    def tick(timer):
        calls.append(timer.past_due)
        if len(calls) == 2:
            fired_twice.set()
        raise RuntimeError("a failing run must not stop the schedule")

    with TimerRunner([TimerFunction("t", "* * * * * *", "timer", tick)]):
        assert fired_twice.wait(5)
    assert calls[:2] == [False, False]


def test_a_timer_run_waits_for_one_of_the_workers_threads():
    threads, held, release, fired = WorkerThreads(1), threading.Event(), threading.Event(), threading.Event()

    def hold():  # a function of the same worker, running on its only thread
        held.set()
        release.wait(10)

    holder = threading.Thread(target=threads.invoke, args=(hold, {}))
    holder.start()
    try:
        assert held.wait(5)
        with TimerRunner([TimerFunction("t", "* * * * * *", "timer", lambda timer: fired.set())], threads=threads):
            assert not fired.wait(1.5)  # due every second, but no thread free
            release.set()
            assert fired.wait(5)
    finally:
        release.set()
        holder.join(10)
