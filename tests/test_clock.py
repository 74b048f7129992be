"""Time as the app writes it (shared/clock.py)."""

from datetime import datetime, timedelta, timezone

from shared.clock import as_utc, iso, utcnow


def test_moments_are_written_in_utc_whatever_the_host_zone_and_odd_ones_are_none():
    assert iso(datetime(2026, 12, 6, 10, 0, 7, 999)) == "2026-12-06T10:00:07Z"  # no zone: UTC, never local time
    assert iso(datetime(2026, 12, 6, 11, 0, tzinfo=timezone(timedelta(hours=1)))) == "2026-12-06T10:00:00Z"
    assert iso(datetime.min) == "0001-01-01T00:00:00Z"
    assert iso(datetime.min.replace(tzinfo=timezone(timedelta(hours=1)))) is None  # before year 1 in UTC
    assert iso("2026-12-06") is None and iso(None) is None


def test_now_is_in_utc():
    assert utcnow().utcoffset() == timedelta(0)


def test_a_moment_without_a_zone_counts_as_utc_and_others_are_converted():
    naive = as_utc(datetime(2026, 12, 6, 10, 0))
    assert naive == datetime(2026, 12, 6, 10, 0, tzinfo=timezone.utc) and naive.utcoffset() == timedelta(0)
    amsterdam = as_utc(datetime(2026, 12, 6, 11, 0, tzinfo=timezone(timedelta(hours=1))))
    assert amsterdam.hour == 10 and amsterdam.utcoffset() == timedelta(0)
