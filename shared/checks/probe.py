"""Making one check attempt's calls: an HTTP endpoint (only an allowed host and address, a header secret
only to its hosts, the whole answer within CHECK_TIMEOUT_SECONDS) or an ADF run's status."""

import re

from shared import clients, outbound, urls
from shared.checks import expect as expect_module
from shared.checks.expect import Result, Seen
from shared.settings import Settings, SettingsError, app_setting, app_setting_hosts
from shared.targets.adf import get_adf
from shared.targets.outside import OutsideCallFailed, Throttled

SETTING = "CHECK_ALLOWED_HOSTS"
MAX_RESPONSE_BYTES = 1024 * 1024
TERMINAL_RUN_STATUSES = ("Succeeded", "Failed", "Cancelled")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}")
_HEADER_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,8190}[\x21-\x7e])?")  # visible ASCII, as sent
_NOT_SENDABLE = {"host", "content-length", "transfer-encoding", "connection", "content-type", "expect", "te",
                 "upgrade", "proxy-authorization", "keep-alive"}


def header_from_setting(name: str) -> tuple[str, str]:
    """The header an app setting holds ("Name: value"); ValueError saying what is wrong."""
    raw = app_setting(name)
    if raw is None:
        raise ValueError(f"app setting {name} is not set")
    header, sep, value = raw.partition(":")
    header, value = header.strip(), value.strip()
    if not sep or not _HEADER_NAME.fullmatch(header) or not _HEADER_VALUE.fullmatch(value):
        raise ValueError(f"app setting {name} must hold one header, 'Name: value'")
    if header.lower() in _NOT_SENDABLE:
        raise ValueError(f"app setting {name} names the header {header}, which the app sets itself")
    return header, value


class HeaderNotAllowed(ValueError):
    """A header setting may not be sent to this host."""


def header_for(name: str, host: str) -> tuple[str, str]:
    """The header app setting `name` holds, if its `<name>_HOSTS` lets it go to `host`; ValueError saying
    why not. Read at pause time and again before each call: either setting may have changed."""
    header = header_from_setting(name)
    try:
        hosts = app_setting_hosts(f"{name}_HOSTS")
    except SettingsError as bad:
        raise HeaderNotAllowed(str(bad).rstrip(".")) from None
    if not urls.host_allowed(host, hosts):
        raise HeaderNotAllowed(f"app setting {name} may be sent only to the hosts in {name}_HOSTS, which does not "
                               f"list {host}")
    return header


CONNECT_SECONDS = 3.0


def run_http(check: dict, settings: Settings) -> Seen:
    """Call an HTTP check once (only to an allowed host and address, its whole answer within the timeout)
    and judge its answer."""
    http, expect = check["http"], check.get("expect") or {}
    try:
        target = urls.allowed(http["url"], settings.check_allowed_hosts, SETTING)
        headers = dict([header_for(http["header_setting"], target.host)]) if http.get("header_setting") else {}
    except (urls.UrlRefused, ValueError) as refused:
        return Seen(Result.ERROR, str(refused))
    timeout = settings.limits.check_timeout_seconds
    late = Seen(Result.ERROR, f"no whole answer within {timeout:g} s")
    deadline = clients.Deadline(timeout)
    try:
        with deadline, outbound.request(http.get("method", "GET"), target, settings.check_allowed_hosts, SETTING,
                                        connect_retries=1, watch=deadline.watch, json=http.get("body"),
                                        headers=headers, timeout=(min(CONNECT_SECONDS, timeout), timeout),
                                        stream=True) as response:
            try:
                body = bytearray()
                for chunk in response.iter_content(64 * 1024):
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        return Seen(Result.ERROR, f"the answer is over {MAX_RESPONSE_BYTES // 1024} KiB")
                status = response.status_code
            finally:
                deadline.finish()  # before the response hands its connection back to the pool
        if deadline.expired:  # the answer may have been cut short
            return late
    except outbound.AddressRefused as refused:
        return Seen(Result.ERROR, str(refused))
    except outbound.Failed as failure:
        if deadline.expired or failure.timed_out:
            return late
        return Seen(Result.ERROR, f"{'no answer' if failure.sent else 'could not connect'}: {failure}")
    except Exception as exc:  # the answer could not be read: this check failed, not the attempt
        if deadline.expired or outbound.timed_out(exc):
            return late
        return Seen(Result.ERROR, f"no whole answer: {outbound.why(exc)}")
    return expect_module.judge(expect, status, body)


def run_adf(check: dict, target) -> Seen:
    """Read an ADF run's status once, in the pause's factory, and judge it."""

    wanted = check["expect"]["status"]
    try:
        run = get_adf().get_run(target, check["adf_run"]["run_id"])
    except Throttled:
        raise  # not an answer about the run: the attempt is given back (shared.checks.monitor)
    except OutsideCallFailed as failure:
        return Seen(Result.ERROR, failure.summary)
    expected_pipeline = check["adf_run"].get("pipeline_name")
    if expected_pipeline and (run.get("pipeline_name") or "").lower() != expected_pipeline.lower():
        return Seen(Result.FAILED, f"run {check['adf_run']['run_id']} is of pipeline {run.get('pipeline_name')}, "
                                   f"not {expected_pipeline}")
    status = run.get("status") or "?"
    if status in wanted:
        return Seen(Result.PASSED, f"run is {status}")
    if status in TERMINAL_RUN_STATUSES:
        message = (run.get("message") or "").strip()
        return Seen(Result.FAILED, f"run ended {status}" + (f": {message[:500]}" if message else ""))
    return Seen(Result.NOT_YET, f"run is {status}")
