"""Time as the app writes it: now in UTC, and moments as ISO 8601 UTC text."""

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment) -> str | None:
    if not isinstance(moment, datetime):
        return None
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
