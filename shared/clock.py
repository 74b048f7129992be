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
