"""shared.errors promises a small family of typed errors, each knowing the HTTP status, the problem `code` and
the `title` it is answered with, and carrying in `extra` only what a client may be told: the fields of a 400 or
413 (`errors`, each naming a `field`), and for a decided or expired pause the facts a page shows about it.
`shared.web.http` answers them; this file holds each error to its status, title, code and fields.
"""

import inspect
import json

import pytest

from shared import errors
from shared.errors import (AlreadyDecided, ChecksPending, CrossSite, EmailNotSent, Expired, FormExpired, InvalidRequest,
                           OutcomeUnknown, PauseError, PayloadTooLarge, UpstreamFailed)

PAUSE = {"pause_id": "a" * 32, "status": "restarted", "decided_at": "2026-11-25T10:00:00Z", "run_id": "run-1",
         "expires_at": "2026-11-26T10:00:00Z", "token_hash": "never-shown"}

# Every error of the module: how to make one, and the status, code and title it is answered with.
EXPECTED = {
    "PauseError": ((), 500, "internal_error", "Internal Server Error"),
    "InvalidRequest": ((), 400, "invalid_request", "Bad Request"),
    "Forbidden": ((), 403, "forbidden", "Forbidden"),
    "NotFound": ((), 404, "not_found", "Not Found"),
    "AlreadyDecided": ((PAUSE,), 409, "already_decided", "Conflict"),
    "LinkHandedOn": (("pid", "bob@contoso.com"), 409, "link_reassigned", "Conflict"),
    "HoldEnded": ((), 409, "hold_ended", "Conflict"),
    "FormInvalid": (({"size": "must be a whole number"}, {"size": ["1.5"]}), 400, "form_invalid", "Bad Request"),
    "ConsoleSignIn": ((), 401, "sign_in_required", "Unauthorized"),
    "NotAnOperator": ((), 403, "not_an_operator", "Forbidden"),
    "NotARequester": ((), 403, "not_a_requester", "Forbidden"),
    "TooManyOpenRequests": ((), 429, "too_many_open_requests", "Too Many Requests"),
    "CrossSite": ((), 403, "cross_site", "Forbidden"),
    "FormExpired": ((), 403, "form_expired", "Forbidden"),
    "Expired": ((PAUSE,), 410, "expired", "Gone"),
    "PayloadTooLarge": ((), 413, "payload_too_large", "Content Too Large"),
    "DamagedRecord": ((), 409, "damaged_record", "Conflict"),
    "UpstreamFailed": ((), 502, "upstream_failed", "Bad Gateway"),
    "UpstreamThrottled": ((5.0,), 502, "upstream_throttled", "Bad Gateway"),
    "OutcomeUnknown": ((), 502, "outcome_unknown", "Bad Gateway"),
    "EmailNotSent": ((), 502, "email_failed", "Bad Gateway"),
    "ChannelNotSent": ((), 502, "channel_failed", "Bad Gateway"),
    "Unavailable": ((), 503, "storage_unavailable", "Service Unavailable"),
    "SignInUnavailable": ((), 503, "sign_in_unavailable", "Service Unavailable"),
    "ChecksPending": (None, 409, "checks_pending", "Conflict"),  # takes the pause only; its detail is fixed
}


def module_errors():
    return sorted(name for name, value in vars(errors).items()
                  if inspect.isclass(value) and issubclass(value, PauseError) and value.__module__ == errors.__name__)


def make(name):
    args = EXPECTED[name][0]
    cls = getattr(errors, name)
    return cls(PAUSE) if args is None else cls("Nothing was changed.", *args)


def test_every_error_of_the_module_is_held_to_a_status_here():
    assert module_errors() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_error_knows_its_status_code_and_title(name):
    error = make(name)
    _, status, code, title = EXPECTED[name]
    assert isinstance(error, PauseError)
    assert (error.status, error.code, error.title) == (status, code, title)
    assert str(error) == error.detail
    json.dumps(error.extra)  # what a problem+json body carries must be JSON


def test_codes_are_unique_so_a_client_can_tell_every_error_apart():
    codes = [make(name).code for name in EXPECTED]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("cls", [InvalidRequest, PayloadTooLarge])
def test_a_400_or_413_names_each_field_that_is_wrong(cls):
    wrong = [{"field": "notification.title", "rule": "max_length", "message": "at most 200 characters"}]
    error = cls("The body has 1 error.", wrong)
    assert error.errors == wrong and error.extra == {"errors": wrong}
    bare = cls("The body is wrong.")
    assert bare.errors == [] and bare.extra == {"errors": []}
    bare.errors.append({"field": "x"})
    assert cls("Again.").errors == []  # no list shared between errors


def test_already_decided_tells_what_was_decided_and_when_never_the_rest_of_the_record():
    error = AlreadyDecided("Already approved.", PAUSE)
    assert error.extra == {"pause_id": PAUSE["pause_id"], "current_status": "restarted",
                           "decided_at": "2026-11-25T10:00:00Z", "run_id": "run-1"}
    assert error.pause is PAUSE  # for the page, which shows the decision
    undecided = AlreadyDecided("Being approved.", {"pause_id": "b" * 32, "status": "restarting"})
    assert (undecided.extra["decided_at"], undecided.extra["run_id"]) == (None, None)


def test_expired_and_checks_pending_name_the_pause():
    assert Expired("Expired.", PAUSE).extra == {"pause_id": PAUSE["pause_id"], "expires_at": PAUSE["expires_at"]}
    pending = ChecksPending(PAUSE)
    assert pending.extra == {"pause_id": PAUSE["pause_id"]} and pending.pause is PAUSE
    assert "checks have not passed" in pending.detail


def test_refinements_are_caught_as_their_family():
    assert isinstance(OutcomeUnknown("x"), UpstreamFailed) and isinstance(EmailNotSent("x"), UpstreamFailed)
    expired = FormExpired("Out of date.", back_url="/api/restart/abc")
    assert isinstance(expired, CrossSite) and expired.back_url == "/api/restart/abc"
    assert CrossSite("From elsewhere.").back_url is None
    assert PauseError("x", reason="someone_else").extra == {"reason": "someone_else"}
