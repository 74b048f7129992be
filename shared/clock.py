"""Time as the app writes it: now in UTC, and moments as ISO 8601 UTC text."""

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; one without a zone (written by hand into a table) counts as UTC, never as
    the host's local time."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def iso(moment) -> str | None:
    """A moment as ISO 8601 UTC text ("2026-12-06T10:00:00Z"); None for anything that is not one.

    Table storage hands back moments in UTC; one without a zone (written by hand) counts as UTC,
    never as the host's local time, and one out of range gives None rather than an error.
    """
    if not isinstance(moment, datetime):
        return None
    try:
        return as_utc(moment).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (OverflowError, ValueError):
        return None


def from_iso(text: str) -> datetime:
    """ISO 8601 text the app wrote (`iso`) as a moment in UTC; ValueError for anything else."""
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header's wait in seconds: delta-seconds as written (its bounds are the caller's), or the time
    left until an HTTP-date (RFC 9110 allows either; 0 once it has passed); None when it is neither. A date without a
    zone ("-0000") names no moment, and one too large for the C library (OverflowError) is no date."""
    from email.utils import parsedate_to_datetime

    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, (when - utcnow()).total_seconds()) if when.tzinfo is not None else None
