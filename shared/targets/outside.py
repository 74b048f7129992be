"""What a failed outside call (ADF, a WebHook callback) means for the pause that made it.

Every failure of an outside call is one of two kinds, and the lifecycle treats them apart:

- `Refused`: the call surely had no effect (never sent, or answered with a refusal). The
  pause can be given back and the same link works again.
- `Unknown`: it may have had an effect (sent, then no answer, a timeout, a 5xx, anything
  unforeseen). It is never repeated blindly: a run is looked up, a callback is recorded as
  made and only ever re-sent byte for byte.
"""


class OutsideCallFailed(Exception):
    """Base: `code` names the cause (ARM's error code where there is one), `str()` says it."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code

    @property
    def summary(self) -> str:
        return f"{self.code}: {self}"[:1000]


class Refused(OutsideCallFailed):
    """Surely no effect. `forbidden`: the app's own policy refused (the host is not allowed)."""

    def __init__(self, code: str, message: str, forbidden: bool = False, status: int | None = None,
                 transient: bool = False):
        super().__init__(code, message)
        self.forbidden = forbidden
        self.status = status
        self.transient = transient  # the same call may well work a little later (no connection, 408, 429)


class Unknown(OutsideCallFailed):
    """Maybe had an effect: look it up or record it, never resend it blindly."""


class Throttled(Refused):
    """Refused by throttling (429): not processed, and the same call works after `retry_after` seconds."""

    def __init__(self, code: str, message: str, retry_after: float):
        super().__init__(code, message, status=429, transient=True)
        self.retry_after = retry_after
