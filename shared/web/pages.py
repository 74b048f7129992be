"""Render the HTML pages people see, with one Jinja2 environment and strict security headers.

The stylesheet is inlined (no external assets) and allowed by its hash in the
Content-Security-Policy, so the pages run no script and load nothing from anywhere.
"""

import base64
import functools
import hashlib
import math
from datetime import datetime, timezone
from pathlib import Path

from shared.lifecycle.model import Status

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


@functools.lru_cache(maxsize=1)
def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["relative"] = relative_time
    env.filters["utc"] = utc_time
    env.filters["asked_by"] = asked_by
    env.filters["form_text"] = form_text
    env.filters["in_zone"] = in_zone
    env.filters["window_words"] = window_words
    env.tests["callback"] = is_callback
    env.globals["style"] = _stylesheet()[0]
    env.globals["Status"] = Status  # every status a page names comes from the lifecycle model
    return env


@functools.lru_cache(maxsize=1)
def _stylesheet():
    from markupsafe import Markup

    css = (TEMPLATES_DIR / "style.css").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode()
    return Markup(css), f"'sha256-{digest}'"


def security_headers(html: bool) -> dict:
    """Headers for every response; pages also get a CSP that allows only their own stylesheet."""
    headers = {
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        # The token is in the URL: never send it onwards. Pages say "same-origin" instead, so that a
        # form posted from them carries its Origin (under "no-referrer" browsers send "Origin: null").
        "Referrer-Policy": "same-origin" if html else "no-referrer",
    }
    if html:
        headers["Content-Security-Policy"] = (
            f"default-src 'none'; style-src {_stylesheet()[1]}; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        headers["X-Frame-Options"] = "DENY"
    return headers


def render(template: str, **context) -> str:
    """Render `templates/<template>` with autoescaping on."""
    return _environment().get_template(template).render(**context)


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(timezone.utc)


def relative_time(moment: str | None, now: datetime | None = None) -> str:
    """Describe an ISO 8601 UTC moment relative to now, in words: "in 3 hours", "5 minutes ago"."""
    if not moment:
        return ""
    # Floor, so a moment a fraction of a second ago (stored to the second) is "ago", not "in".
    seconds = math.floor((_parse(moment) - (now or datetime.now(timezone.utc))).total_seconds())
    future, seconds = seconds >= 0, abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            words = f"{count} {unit}{'s' if count != 1 else ''}"
            break
    else:
        words = "less than a minute"
    return f"in {words}" if future else f"{words} ago"


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def utc_time(moment: str | None) -> str:
    """Write an ISO 8601 moment for people, in UTC and the same in every locale: "Wed 25 Nov 2026, 10:00 UTC"."""
    if not moment:
        return ""
    then = _parse(moment)
    return f"{_DAYS[then.weekday()]} {then.day} {_MONTHS[then.month - 1]} {then.year}, {then:%H:%M} UTC"


def is_callback(pause) -> bool:
    """Whether a pause lets the waiting run continue (callback mode) rather than starting a pipeline."""
    return bool(pause) and (pause.get("mode") == "callback" or not pause.get("pipeline_name"))


_ASKED_BY_KEYS = {"pipeline": ("pipeline", "pipeline_name", "pipelineName"),
                  "run_id": ("run_id", "runId", "pipeline_run_id", "RunId")}


def asked_by(source) -> dict:
    """The calling pipeline and run id from a pause's free-form `source`, where it names them."""
    if not isinstance(source, dict):
        return {}
    found = {}
    for fact, keys in _ASKED_BY_KEYS.items():
        for key in keys:
            value = source.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
                found[fact] = str(value).strip()[:256]
                break
    return found


def form_text(value, field: dict, time_zone: str = "UTC") -> str:
    """A form field's default as its input shows it (shared.forms.to_text): JSON for arrays and objects,
    `true`/`false`, a datetime as datetime-local writes it in the page's time zone."""
    from shared.forms import to_text
    from shared.windows import zone

    text = to_text(field, value, zone(time_zone))
    return text if isinstance(text, str) else ""


def in_zone(moment: str | None, time_zone: str | None) -> str:
    """A moment in a start window's time zone, with UTC beside it: "Monday 7 December 2026 at 02:00
    (Europe/Amsterdam, 01:00 UTC)"; in UTC alone without a zone."""
    from shared.windows import zone

    if not moment:
        return "at a time not recorded"
    at = _parse(moment)
    if not time_zone:
        return f"on {at:%A} {at.day} {at:%B %Y} at {at:%H:%M} UTC"
    local = at.astimezone(zone(time_zone))
    return f"on {local:%A} {local.day} {local:%B %Y} at {local:%H:%M} ({time_zone}, {at:%H:%M} UTC)"


def window_words(window: dict) -> str:
    """A stored start window as people read it: "02:00-05:00 Europe/Amsterdam, Monday to Friday"."""
    days = window.get("days")
    names = {"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday",
             "sat": "Saturday", "sun": "Sunday"}
    on = f", opening {', '.join(names.get(day, day) for day in days)}" if days and len(days) < 7 else ""
    return f"{window.get('from')}-{window.get('to')} {window.get('time_zone')}{on}"
