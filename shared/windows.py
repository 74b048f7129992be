"""Start windows: the local hours in which a paused pipeline may continue, and when it next may.

A window is wall-clock time in an IANA time zone (`02:00`-`05:00` Europe/Amsterdam), opening on
some days of the week; `to` before `from` runs past midnight into the next day. The zone rules
come from the `tzdata` package, loaded explicitly, so every host computes the same instants
whatever its own /usr/share/zoneinfo holds.

Daylight-saving changes: each opening day's interval is taken in local wall-clock time, then
converted to UTC. A local time the clocks skip (spring forward) means the first instant after
the gap; a local time they repeat (autumn) means its first occurrence. So a window opens at most
once per opening day, and one lying wholly in a gap does not open that day.
"""

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.schema import INVALID, Choice, ListOf, Object, Problems, Text

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
MAX_START_AHEAD = timedelta(days=30)
# A week of opening days and then some: enough to pass a day on which the window does not open
# (it lies in a daylight-saving gap) and still find the next opening.
_SCAN_DAYS = 16

_HH_MM = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,2}")


# --- the zone rules, from tzdata only ------------------------------------------------------------

@functools.cache
def zone_names() -> frozenset[str]:
    """Every time zone name the tzdata package ships (its own `zones` list)."""
    return frozenset((resources.files("tzdata") / "zones").read_text(encoding="utf-8").split())


@functools.cache
def zone(name: str) -> ZoneInfo:
    """The rules of the zone `name`, read from the tzdata package (never the host's zoneinfo)."""
    if name not in zone_names():
        raise ZoneInfoNotFoundError(f"No time zone {name!r} in tzdata")
    resource = resources.files("tzdata.zoneinfo")
    for part in name.split("/"):
        resource = resource / part
    with resource.open("rb") as data:
        return ZoneInfo.from_file(data, key=name)


# --- the request field ---------------------------------------------------------------------------

class _TimeZoneName(Text):
    """An IANA time zone name that tzdata knows."""

    def check(self, value, path, problems):
        checked = super().check(value, path, problems)
        if checked is not INVALID and checked not in zone_names():
            problems.add(path, "time_zone", "must be an IANA time zone name like Europe/Amsterdam or America/New_York")
            return INVALID
        return checked


class _DistinctList(ListOf):
    """A list whose items are all different."""

    def check(self, value, path, problems):
        checked = super().check(value, path, problems)
        if checked is not INVALID and len(set(checked)) != len(checked):
            problems.add(path, "unique", "must not name a day twice")
            return INVALID
        return checked

    def schema(self):
        return {**super().schema(), "uniqueItems": True}


class _WindowObject(Object):
    """The window object, refusing an empty window (`from` equal to `to`)."""

    def check(self, value, path, problems, required=None):
        checked = super().check(value, path, problems, required)
        if checked is not INVALID and checked["from"] == checked["to"]:
            problems.add(f"{path}.to" if path else "to", "differs_from_from",
                         "must differ from `from` (leave start_window out to start at any time)")
            return INVALID
        return checked


START_WINDOW = _WindowObject(
    "Start only inside this window. A decision to continue (an approval, checks passing, "
    "on_timeout restart) made outside it is recorded and the pause becomes `scheduled`, continuing "
    "when the window next opens; inside it, at once. Times are local wall-clock times in `time_zone`: "
    "a time skipped by a daylight-saving change means the first instant after the change, a repeated "
    "time its first occurrence.",
    fields={
        "time_zone": _TimeZoneName(
            "IANA time zone of the window's times, like Europe/Amsterdam or America/New_York "
            "(rules from the IANA tz database, daylight-saving changes included).",
            max_chars=64, pattern=_ZONE_NAME, rule_text="an IANA time zone name like Europe/Amsterdam"),
        "days": _DistinctList(
            Choice("", values=DAYS),
            "Days on which the window opens, each at most once (default: every day). A window past "
            "midnight runs into the next day: fri with 22:00-04:00 includes Saturday 01:00.",
            max_items=len(DAYS)),
        "from": Text("Local time the window opens, HH:MM (24-hour, 00:00-23:59).", pattern=_HH_MM,
                     rule_text="a time HH:MM from 00:00 to 23:59"),
        "to": Text("Local time the window closes, HH:MM (24-hour, 00:00-23:59), not the same as `from`; "
                   "earlier than `from` means the next day (22:00 to 04:00 spans midnight).", pattern=_HH_MM,
                   rule_text="a time HH:MM from 00:00 to 23:59"),
    },
    required=("time_zone", "from", "to"))


@dataclass(frozen=True)
class StartWindow:
    time_zone: str          # IANA name, one tzdata knows
    days: tuple[str, ...]   # the days the window opens on, in week order ("mon" first); all seven by default
    opens: time             # local wall-clock time ("from")
    closes: time            # local wall-clock time ("to"); not after `opens` means the next day

    def __str__(self):
        days = "" if len(self.days) == len(DAYS) else " on " + ", ".join(self.days)
        return f"{self.opens:%H:%M}-{self.closes:%H:%M} {self.time_zone}{days}"


def parse_window(values: dict) -> StartWindow:
    """The window of values START_WINDOW has checked (or the same values read back from a record)."""
    sent = set(values.get("days") or DAYS)
    return StartWindow(time_zone=values["time_zone"], days=tuple(day for day in DAYS if day in sent),
                       opens=time.fromisoformat(values["from"]), closes=time.fromisoformat(values["to"]))


# --- when the window is open ---------------------------------------------------------------------

def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a moment needs its time zone (an aware datetime)")
    return moment.astimezone(timezone.utc)


def _after_gap(rules: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The instant the clocks jumped, between `before` (old offset) and `after` (new offset)."""
    low, high = int(before.timestamp()), int(after.timestamp())
    offset = after.astimezone(rules).utcoffset()
    while high - low > 1:  # transitions fall on whole seconds
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, rules).utcoffset() == offset:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, timezone.utc)


def local_instant(rules: ZoneInfo, wall: datetime) -> datetime:
    """The UTC instant of the naive local time `wall` in `rules`: a time the clocks skip is the
    first instant after the gap, a time they repeat its first occurrence."""
    first = wall.replace(tzinfo=rules, fold=0).astimezone(timezone.utc)  # fold=0: the earlier of a repeat
    if first.astimezone(rules).replace(tzinfo=None) == wall.replace(fold=0):
        return first
    # In a gap, fold=0 reads `wall` with the offset before it, fold=1 with the one after.
    return _after_gap(rules, wall.replace(tzinfo=rules, fold=1).astimezone(timezone.utc), first)


def _interval(window: StartWindow, rules: ZoneInfo, day: date) -> tuple[datetime, datetime]:
    """The UTC interval of the window opening on the local date `day` (empty if it is all in a gap)."""
    closing_day = day if window.closes > window.opens else day + timedelta(days=1)
    return (local_instant(rules, datetime.combine(day, window.opens)),
            local_instant(rules, datetime.combine(closing_day, window.closes)))


def _intervals(window: StartWindow, moment: datetime):
    """The window's intervals in time order, from one that may still be open at `moment` on."""
    rules = zone(window.time_zone)
    # Two days back: yesterday's window may run past midnight, and an autumn change at midnight
    # can show a local date one behind.
    first = moment.astimezone(rules).date() - timedelta(days=2)
    for n in range(_SCAN_DAYS + 2):
        day = first + timedelta(days=n)
        if DAYS[day.weekday()] in window.days:
            yield _interval(window, rules, day)


def next_start(window: StartWindow, moment: datetime) -> datetime | None:
    """None when `moment` is inside the window (start at once), else the UTC instant it next opens."""
    moment = _utc(moment)
    for opens, closes in _intervals(window, moment):
        if closes <= moment or closes <= opens:
            continue  # over, or empty (a window lying wholly in a spring-forward gap)
        return None if opens <= moment else opens
    raise ValueError(f"the window {window} does not open within {_SCAN_DAYS} days")  # it has no days


def window_contains(window: StartWindow, moment: datetime) -> bool:
    """Whether `moment` lies inside the window (from its opening, up to but not including its close)."""
    return next_start(window, moment) is None


# --- an approver's chosen start (allow_start_at) -------------------------------------------------

def check_start_at(window: StartWindow | None, start_at, now: datetime, path: str,
                   problems: Problems) -> datetime | None:
    """The UTC instant an approver chose to start at, or None with a problem at `path`.

    `start_at` is a datetime or ISO 8601 text; one without an offset (a form's datetime-local) is
    wall-clock time in the window's zone, UTC without a window. It must be after `now`, at most
    30 days ahead, and inside the window when there is one.
    """
    if isinstance(start_at, str):
        try:
            start_at = datetime.fromisoformat(start_at)
        except ValueError:
            start_at = None
    if not isinstance(start_at, datetime):
        problems.add(path, "date_time", "must be a date and time like 2026-03-09T02:30")
        return None
    if start_at.tzinfo is None:
        start_at = local_instant(zone(window.time_zone), start_at) if window else \
            start_at.replace(tzinfo=timezone.utc)
    start_at, now = _utc(start_at), _utc(now)
    if start_at <= now:
        problems.add(path, "future", "must be later than now")
    elif start_at > now + MAX_START_AHEAD:
        problems.add(path, "max_ahead", f"must be at most {MAX_START_AHEAD.days} days ahead")
    elif window is not None and not window_contains(window, start_at):
        problems.add(path, "window", f"must be inside the start window ({window})")
    else:
        return start_at
    return None
