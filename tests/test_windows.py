"""Start windows (shared/windows.py): when a decision made at some instant may start the pipeline, as exact UTC
instants, in winter and summer, past midnight, on chosen weekdays and across daylight-saving changes (a skipped
local time opens at the first instant after the gap, a repeated one at its first occurrence); the request field
that declares a window, and the rules for an approver's chosen start. The zone rules come from the tzdata
package."""

from datetime import datetime, timedelta, timezone

import jsonschema
import pytest

from shared import windows
from shared.schema import INVALID, Problems
from shared.windows import (DAYS, START_WINDOW, StartWindow, check_start_at, next_start, parse_window,
                            window_contains, zone, zone_names)

UTC = timezone.utc


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


def window(frm="02:00", to="05:00", time_zone="Europe/Amsterdam", days=None):
    """A window as a request declares it, checked by START_WINDOW and parsed."""
    problems = Problems()
    values = {"time_zone": time_zone, "from": frm, "to": to, **({"days": days} if days else {})}
    checked = START_WINDOW.check(values, "start_window", problems)
    assert problems.errors == []
    return parse_window(checked)


def refused(values):
    """The problems START_WINDOW reports for `values`, as (field, rule)."""
    problems = Problems()
    assert START_WINDOW.check(values, "start_window", problems) is INVALID
    return [(e["field"], e["rule"]) for e in problems.errors]


def local(moment, name):
    return moment.astimezone(zone(name)).isoformat()


# --- the next opening -------------------------------------------------------------------------------------------

def test_a_2330_decision_in_amsterdam_winter_starts_at_0200_plus_0100_the_next_day():
    start = next_start(window(), utc(2026, 1, 15, 22, 30))  # 23:30 CET
    assert start == utc(2026, 1, 16, 1, 0)
    assert local(start, "Europe/Amsterdam") == "2026-01-16T02:00:00+01:00"


def test_a_2330_decision_in_amsterdam_summer_starts_at_0200_plus_0200_the_next_day():
    start = next_start(window(), utc(2026, 7, 15, 21, 30))  # 23:30 CEST
    assert start == utc(2026, 7, 16, 0, 0)
    assert local(start, "Europe/Amsterdam") == "2026-07-16T02:00:00+02:00"


@pytest.mark.parametrize("moment", [utc(2026, 1, 16, 1, 0), utc(2026, 1, 16, 2, 30), utc(2026, 1, 16, 3, 59, 59)],
                         ids=["at-the-opening", "midway", "a-second-before-the-close"])
def test_a_decision_inside_the_window_starts_at_once(moment):
    assert next_start(window(), moment) is None
    assert window_contains(window(), moment)


def test_a_decision_at_the_closing_instant_waits_for_the_next_day():
    assert next_start(window(), utc(2026, 1, 16, 4, 0)) == utc(2026, 1, 17, 1, 0)
    assert not window_contains(window(), utc(2026, 1, 16, 4, 0))


def test_a_moment_in_any_offset_counts_as_its_instant_and_a_naive_one_is_refused():
    assert next_start(window(), datetime.fromisoformat("2026-01-15T23:30:00+01:00")) == utc(2026, 1, 16, 1, 0)
    with pytest.raises(ValueError):
        next_start(window(), datetime(2026, 1, 15, 22, 30))


def test_a_friday_window_past_midnight_runs_into_saturday_morning_only():
    friday_night = window("22:00", "04:00", days=["fri"])
    assert next_start(friday_night, utc(2026, 1, 16, 20, 0)) == utc(2026, 1, 16, 21, 0)  # Fri 21:00 -> Fri 22:00
    assert next_start(friday_night, utc(2026, 1, 16, 22, 0)) is None                    # Fri 23:00
    assert next_start(friday_night, utc(2026, 1, 17, 0, 0)) is None                     # Sat 01:00
    assert next_start(friday_night, utc(2026, 1, 17, 3, 0)) == utc(2026, 1, 23, 21, 0)  # Sat 04:00: closed
    assert next_start(friday_night, utc(2026, 1, 17, 22, 0)) == utc(2026, 1, 23, 21, 0)  # Sat 23:00 -> next Fri


def test_a_weekday_window_puts_a_friday_evening_decision_on_monday():
    weekdays = window(days=["mon", "tue", "wed", "thu", "fri"])
    start = next_start(weekdays, utc(2026, 1, 16, 22, 30))  # Friday 23:30 CET
    assert start == utc(2026, 1, 19, 1, 0)
    assert local(start, "Europe/Amsterdam") == "2026-01-19T02:00:00+01:00"


# --- daylight-saving changes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, decided, opens, shown", [
    # 2026-03-08: New York's clocks go from 02:00 EST to 03:00 EDT (07:00 UTC).
    ("America/New_York", utc(2026, 3, 8, 4, 0), utc(2026, 3, 8, 7, 0), "2026-03-08T03:00:00-04:00"),
    # 2026-03-29: Amsterdam's clocks go from 02:00 CET to 03:00 CEST (01:00 UTC).
    ("Europe/Amsterdam", utc(2026, 3, 28, 22, 0), utc(2026, 3, 29, 1, 0), "2026-03-29T03:00:00+02:00"),
])
def test_a_0230_opening_on_the_spring_forward_sunday_opens_the_instant_the_clocks_jump(name, decided, opens, shown):
    start = next_start(window("02:30", "05:00", name), decided)  # decided Saturday 23:00 local
    assert start == opens
    assert local(start, name) == shown


@pytest.mark.parametrize("name, frm, decided, opens, shown", [
    # 2026-11-01: New York's 01:00-02:00 happens twice, first EDT (-04:00), then EST (-05:00).
    ("America/New_York", "01:30", utc(2026, 11, 1, 3, 0), utc(2026, 11, 1, 5, 30), "2026-11-01T01:30:00-04:00"),
    # 2026-10-25: Amsterdam's 02:00-03:00 happens twice, first CEST (+02:00), then CET (+01:00).
    ("Europe/Amsterdam", "02:30", utc(2026, 10, 24, 21, 0), utc(2026, 10, 25, 0, 30), "2026-10-25T02:30:00+02:00"),
])
def test_an_opening_in_the_autumn_overlap_is_its_first_occurrence(name, frm, decided, opens, shown):
    start = next_start(window(frm, "05:00", name), decided)  # decided Saturday 23:00 local
    assert start == opens
    assert local(start, name) == shown


def test_a_window_wholly_in_the_spring_gap_does_not_open_that_day():
    skipped = window("02:10", "02:50", "America/New_York")
    start = next_start(skipped, utc(2026, 3, 8, 4, 0))  # Saturday 23:00 EST
    assert start == utc(2026, 3, 9, 6, 10)
    assert local(start, "America/New_York") == "2026-03-09T02:10:00-04:00"
    assert not window_contains(skipped, utc(2026, 3, 8, 7, 0))


def test_a_closing_time_in_the_spring_gap_closes_the_instant_the_clocks_jump():
    night = window("01:00", "02:30", "America/New_York")
    assert next_start(night, utc(2026, 3, 8, 6, 0)) is None  # 01:00 EST
    assert next_start(night, utc(2026, 3, 8, 6, 59, 59)) is None
    assert next_start(night, utc(2026, 3, 8, 7, 0)) == utc(2026, 3, 9, 5, 0)  # 03:00 EDT -> Monday 01:00 EDT


def test_a_closing_time_in_the_autumn_overlap_is_its_first_occurrence_and_the_repeat_is_no_second_window():
    night = window("01:00", "01:45", "America/New_York")
    assert next_start(night, utc(2026, 11, 1, 5, 0)) is None  # 01:00 EDT
    assert next_start(night, utc(2026, 11, 1, 5, 44)) is None
    monday = utc(2026, 11, 2, 6, 0)  # 01:00 EST
    assert next_start(night, utc(2026, 11, 1, 5, 45)) == monday  # 01:45 EDT: closed
    assert next_start(night, utc(2026, 11, 1, 6, 30)) == monday  # 01:30 EST, the repeated hour


def test_the_repeated_hour_in_amsterdam_is_outside_a_window_that_closed_in_its_first_pass():
    early = window("02:00", "02:45")
    assert next_start(early, utc(2026, 10, 25, 0, 0)) is None  # 02:00 CEST
    assert next_start(early, utc(2026, 10, 25, 1, 30)) == utc(2026, 10, 26, 1, 0)  # 02:30 CET -> Monday 02:00 CET


def test_a_window_past_midnight_into_the_spring_change_keeps_its_local_times():
    saturday_night = window("22:00", "04:00", "America/New_York", days=["sat"])
    assert next_start(saturday_night, utc(2026, 3, 8, 3, 0)) is None        # Sat 22:00 EST
    assert next_start(saturday_night, utc(2026, 3, 8, 7, 59, 59)) is None   # Sun 03:59:59 EDT
    assert next_start(saturday_night, utc(2026, 3, 8, 8, 0)) == utc(2026, 3, 15, 2, 0)  # Sun 04:00 EDT: closed


# --- the request field ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "europe/amsterdam", "../../etc/passwd", "posixrules",
                                  "right/UTC", "localtime", "", 42])
def test_a_time_zone_tzdata_does_not_know_is_refused_naming_the_field(name):
    errors = refused({"time_zone": name, "from": "02:00", "to": "05:00"})
    assert [field for field, _ in errors] == ["start_window.time_zone"]


def test_from_equal_to_to_is_refused_naming_to():
    assert refused({"time_zone": "UTC", "from": "02:00", "to": "02:00"}) == [("start_window.to", "differs_from_from")]


@pytest.mark.parametrize("at", ["24:00", "7:00", "12:60", "12:00:00", " 12:00", "noon"])
def test_a_time_outside_hh_mm_from_0000_to_2359_is_refused(at):
    assert refused({"time_zone": "UTC", "from": at, "to": "05:00"}) == [("start_window.from", "pattern")]
    assert refused({"time_zone": "UTC", "from": "05:00", "to": at}) == [("start_window.to", "pattern")]


@pytest.mark.parametrize("days, error", [
    ([], ("start_window.days", "items")),
    (list(DAYS) + ["mon"], ("start_window.days", "items")),
    (["mon", "mon"], ("start_window.days", "unique")),
    (["Monday"], ("start_window.days[0]", "enum")),
])
def test_days_are_one_to_seven_distinct_day_names(days, error):
    assert refused({"time_zone": "UTC", "from": "02:00", "to": "05:00", "days": days}) == [error]


def test_the_time_zone_from_and_to_are_required_and_nothing_else_is_known():
    assert sorted(refused({"days": ["mon"], "until": "x"})) == [
        ("start_window.from", "required"), ("start_window.time_zone", "required"), ("start_window.to", "required"),
        ("start_window.until", "unknown_field")]


def test_a_checked_window_parses_to_its_days_in_week_order_or_every_day_by_default():
    assert window("22:00", "00:00", "America/New_York", days=["sun", "fri"]) == StartWindow(
        time_zone="America/New_York", days=("fri", "sun"), opens=datetime(1, 1, 1, 22, 0).time(),
        closes=datetime(1, 1, 1, 0, 0).time())
    assert window().days == DAYS
    assert str(window(days=["sat", "sun"])) == "02:00-05:00 Europe/Amsterdam on sat, sun"


@pytest.mark.parametrize("value, valid", [
    ({"time_zone": "Europe/Amsterdam", "from": "22:00", "to": "04:00", "days": ["fri"]}, True),
    ({"time_zone": "Europe/Amsterdam", "from": "22:00", "to": "24:00"}, False),
    ({"time_zone": "Europe/Amsterdam", "from": "22:00", "to": "04:00", "days": ["fri", "fri"]}, False),
    ({"time_zone": "Europe/Amsterdam", "from": "22:00"}, False),
])
def test_the_published_schema_agrees_with_the_check_and_describes_every_field(value, valid):
    schema = START_WINDOW.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert jsonschema.Draft202012Validator(schema).is_valid(value) is valid
    assert (START_WINDOW.check(value, "start_window", Problems()) is not INVALID) is valid
    assert schema["description"] and all(field["description"] for field in schema["properties"].values())


# --- an approver's chosen start ---------------------------------------------------------------------------------

NOW = utc(2026, 1, 15, 22, 30)  # 23:30 in Amsterdam


def chosen(start_at, start_window=None):
    """(the UTC instant accepted, the problems as (field, rule))."""
    problems = Problems()
    result = check_start_at(start_window, start_at, NOW, "start_at", problems)
    return result, [(e["field"], e["rule"]) for e in problems.errors]


@pytest.mark.parametrize("start_at", ["2026-01-16T02:30", "2026-01-16T02:30:00+01:00", utc(2026, 1, 16, 1, 30),
                                      datetime(2026, 1, 16, 2, 30)])
def test_a_chosen_start_inside_the_window_is_that_instant_and_one_without_offset_is_the_windows_local_time(start_at):
    assert chosen(start_at, window()) == (utc(2026, 1, 16, 1, 30), [])


def test_a_chosen_start_without_offset_and_without_a_window_is_utc():
    assert chosen("2026-01-16T09:00") == (utc(2026, 1, 16, 9, 0), [])


@pytest.mark.parametrize("start_at, rule", [
    (NOW, "future"),
    (NOW - timedelta(minutes=1), "future"),
    (NOW + timedelta(days=30, seconds=1), "max_ahead"),
    ("tomorrow", "date_time"),
    (42, "date_time"),
])
def test_a_chosen_start_must_be_later_than_now_and_at_most_30_days_ahead(start_at, rule):
    assert chosen(start_at) == (None, [("start_at", rule)])


def test_a_chosen_start_exactly_30_days_ahead_is_accepted():
    assert chosen(NOW + timedelta(days=30)) == (NOW + timedelta(days=30), [])


def test_a_chosen_start_outside_the_window_is_refused_naming_the_window():
    problems = Problems()
    assert check_start_at(window(), "2026-01-16T06:00", NOW, "start_at", problems) is None
    assert problems.errors == [{"field": "start_at", "rule": "window",
                                "message": "must be inside the start window (02:00-05:00 Europe/Amsterdam)"}]


# --- the rules come from tzdata ---------------------------------------------------------------------------------

def test_the_zone_names_are_exactly_the_ones_the_tzdata_package_lists():
    from importlib import resources

    listed = (resources.files("tzdata") / "zones").read_text(encoding="utf-8").split()
    assert zone_names() == frozenset(listed)
    assert {"Europe/Amsterdam", "America/New_York", "UTC"} <= zone_names()
    assert not {"posixrules", "localtime", "right/UTC", "posix/UTC"} & zone_names()  # host-only files


def test_a_zone_is_read_from_the_tzdata_package_once_under_its_name(monkeypatch):
    from importlib import resources

    real, asked = resources.files, []
    monkeypatch.setattr(resources, "files", lambda package: asked.append(package) or real(package))
    zone.cache_clear()
    try:
        loaded = zone("America/New_York")
        assert zone("America/New_York") is loaded
    finally:
        zone.cache_clear()
    assert asked == ["tzdata.zoneinfo"]
    assert loaded.key == "America/New_York"
    assert utc(2026, 7, 1).astimezone(loaded).utcoffset() == timedelta(hours=-4)


def test_an_unknown_zone_is_not_looked_up_anywhere_else():
    with pytest.raises(KeyError):
        windows.zone("Mars/Olympus_Mons")
