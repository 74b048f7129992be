"""The typed errors the service raises, each knowing its HTTP status.

Handlers never build error responses themselves: `shared.http` maps these in one place,
so the client sees a clear message and the log keeps the detail.
"""


class PauseError(Exception):
    """Base class: a failure the caller should be told about, with its HTTP status."""

    status = 500
    code = "internal_error"
    title = "Internal Server Error"

    def __init__(self, detail: str, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidRequest(PauseError):
    status, code, title = 400, "invalid_request", "Bad Request"

    def __init__(self, detail: str, errors: list[dict] | None = None):
        super().__init__(detail, errors=errors or [])
        self.errors = errors or []


class FormInvalid(InvalidRequest):
    """Values an approver gave on a pause's form that the form refuses: nothing was decided. A page shows
    the form again with each message by its field and what was typed kept; a program gets each field
    named `input.<field>`."""

    code = "form_invalid"

    def __init__(self, detail: str, field_errors: dict, typed: dict, start_error: dict | None = None):
        super().__init__(detail, [{"field": f"input.{name}", "rule": "form", "message": message}
                                  for name, message in field_errors.items()] + ([start_error] if start_error else []))
        self.field_errors, self.typed = field_errors, typed
        self.start_error = start_error  # a chosen start the pause refuses ({"field": "start_at", ...}), shown by it


class Forbidden(PauseError):
    status, code, title = 403, "forbidden", "Forbidden"


class LinkHandedOn(PauseError):
    """A personal link whose approver handed their part on to someone else: it no longer works."""

    status, code, title = 409, "link_reassigned", "Conflict"

    def __init__(self, detail: str, pause_id: str, to: str):
        super().__init__(detail, pause_id=pause_id, reassigned_to=to)


class NotFound(PauseError):
    status, code, title = 404, "not_found", "Not Found"


class AlreadyDecided(PauseError):
    """The pause was decided before: carries the record so pages can say what and when."""

    status, code, title = 409, "already_decided", "Conflict"

    def __init__(self, detail: str, pause: dict):
        super().__init__(detail, pause_id=pause["pause_id"], current_status=pause["status"],
                         decided_at=pause.get("decided_at"), run_id=pause.get("run_id"))
        self.pause = pause


class HoldEnded(PauseError):
    """The hold was released or cancelled before (or expired)."""

    status, code, title = 409, "hold_ended", "Conflict"


class ConsoleSignIn(PauseError):
    """The console needs a signed-in operator; the page offers the sign-in."""

    status, code, title = 401, "sign_in_required", "Unauthorized"


class NotAnOperator(PauseError):
    status, code, title = 403, "not_an_operator", "Forbidden"


class NotARequester(PauseError):
    """The signed-in person may not request that entry, or there is no such entry: the same answer, so
    nobody learns from it which entries exist."""

    status, code, title = 403, "not_a_requester", "Forbidden"


class TooManyOpenRequests(PauseError):
    """A requester has as many open requests of an entry as one may have at once."""

    status, code, title = 429, "too_many_open_requests", "Too Many Requests"


class CrossSite(PauseError):
    """A form posted from another site's page (the sign-in cookie came along); `back_url` is the page
    to send it from."""

    status, code, title = 403, "cross_site", "Forbidden"

    def __init__(self, detail: str, back_url: str | None = None):
        super().__init__(detail)
        self.back_url = back_url


class FormExpired(CrossSite):
    """A cookie-authorised form without this session's anti-forgery token: out of date, or not the app's."""

    code = "form_expired"


class Expired(PauseError):
    status, code, title = 410, "expired", "Gone"

    def __init__(self, detail: str, pause: dict):
        super().__init__(detail, pause_id=pause["pause_id"], expires_at=pause["expires_at"])
        self.pause = pause


class PayloadTooLarge(PauseError):
    status, code, title = 413, "payload_too_large", "Content Too Large"

    def __init__(self, detail: str, errors: list[dict] | None = None):
        super().__init__(detail, errors=errors or [])
        self.errors = errors or []


class DamagedRecord(PauseError):
    """The stored record lacks what the lifecycle needs (e.g. a property deleted by hand)."""

    status, code, title = 409, "damaged_record", "Conflict"


class UpstreamFailed(PauseError):
    """ADF (or a callback target) refused; nothing was started and the link still works."""

    status, code, title = 502, "upstream_failed", "Bad Gateway"


class UpstreamThrottled(UpstreamFailed):
    """ARM throttled the call (429): nothing was started, and the same call works after `retry_after`
    seconds. A person is told as for any refusal; the app's own work defers the item, never counting it
    as a failed attempt."""

    code = "upstream_throttled"

    def __init__(self, detail: str, retry_after: float, **extra):
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class OutcomeUnknown(UpstreamFailed):
    """ADF got the request but did not answer, and could not be asked: the pause stays claimed."""

    code = "outcome_unknown"


class EmailNotSent(UpstreamFailed):
    """The approval email could not be sent; the pause was cancelled so no live link remains."""

    code = "email_failed"


class ChannelNotSent(UpstreamFailed):
    """A chat channel the pause was to be posted to did not take it; the pause was cancelled."""

    code = "channel_failed"


class Unavailable(PauseError):
    """Storage could not be reached; nothing was written."""

    status, code, title = 503, "storage_unavailable", "Service Unavailable"


class SignInUnavailable(PauseError):
    """APPROVER_SIGN_IN=easyauth, but App Service Authentication is not in front of the app."""

    status, code, title = 503, "sign_in_unavailable", "Service Unavailable"


class ChecksPending(PauseError):
    """Gate mode: approving waits until every check has passed."""

    status, code, title = 409, "checks_pending", "Conflict"

    def __init__(self, pause: dict):
        super().__init__("The checks have not passed yet: approving is possible once they have.",
                         pause_id=pause["pause_id"])
        self.pause = pause


class SettingsError(RuntimeError):
    """A required setting is missing or malformed: the app cannot serve."""
