"""Chat channels (`notify.channels`): which webhook a channel name stands for, and one post to it.

A channel name `approvals` is the app setting `CHANNEL_APPROVALS` holding `teams:<https URL>` (a Teams
Workflows webhook) or `slack:<https URL>` (a Slack incoming webhook). The URL is a credential: it
never travels in a pause, never appears in a log line, a record or an error (in Azure it is a Key
Vault reference). Its host must be on CHANNEL_ALLOWED_HOSTS, by the rules a callBackUri follows, and
the post goes through the app's guarded connections (the address the name resolves to is checked too).
"""

import logging
import time
from dataclasses import dataclass, field, fields

from shared import clients, outbound, urls
from shared.clock import retry_after_seconds
from shared.notify import slack, teams
from shared.notify.message import Message
from shared.settings import Limits, Settings, app_setting
from shared.validation import CHANNEL_NAME

logger = logging.getLogger(__name__)

NAME = CHANNEL_NAME
SETTING = "CHANNEL_ALLOWED_HOSTS"
RENDERERS = {"teams": teams.render, "slack": slack.render}
MAX_ANSWER_BYTES = 4096  # an answer says "ok" or names an error; nothing longer is read
# App settings whose names a channel's would take: never read as a webhook.
RESERVED = frozenset({SETTING, *(f.name.upper() for f in fields(Limits) if f.name.startswith("channel_"))})
THROTTLED_TRIES, MIN_WAIT = 3, 1.0  # a 429 is sent again at most this often, waiting at least this long


@dataclass(frozen=True)
class Channel:
    name: str
    kind: str
    url: urls.CheckedUrl = field(repr=False)  # a credential


class ChannelUnusable(ValueError):
    """The channel cannot be posted to as set up (its message names the app setting, never the URL)."""


class NotPosted(Exception):
    """A post that did not surely arrive: `outcome` "failed" (surely not posted) or "unknown" (it may
    have been: never posted again for the same purpose). The message never holds the URL."""

    def __init__(self, channel: str, outcome: str, detail: str, retry_after: float | None = None):
        super().__init__(f"channel {channel}: {detail}")
        self.channel, self.outcome, self.detail = channel, outcome, detail
        self.retry_after = retry_after  # a 429's Retry-After that was longer than could be waited out


def setting_name(name: str) -> str:
    return "CHANNEL_" + name.upper().replace("-", "_")


def channel(name: str, settings: Settings) -> Channel:
    """The channel `name` stands for, read from its app setting when used (a rotated URL needs no restart)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ChannelUnusable(f"{name!r} is not a channel name (1-40 of a-z, 0-9 and -)")
    setting = setting_name(name)
    if setting in RESERVED:
        raise ChannelUnusable(f"{name!r} cannot name a channel: {setting} is an app setting of its own")
    value = (app_setting(setting) or "").strip()
    if not value:
        raise ChannelUnusable(f"channel {name} is not set up: app setting {setting} is not set")
    kind, colon, raw = value.partition(":")
    if not colon or kind.strip().lower() not in RENDERERS:
        raise ChannelUnusable(f"app setting {setting} must be teams:<https URL> or slack:<https URL>")
    try:
        url = urls.allowed(raw.strip(), settings.channel_allowed_hosts, SETTING)
    except urls.UrlRefused as refused:
        raise ChannelUnusable(f"app setting {setting} holds a URL that {refused}") from None
    return Channel(name, kind.strip().lower(), url)


def post(target: Channel, message: Message, settings: Settings) -> None:
    """Post `message` to `target` once; a 429 is waited out (Retry-After) within
    CHANNEL_RETRY_AFTER_MAX_SECONDS, since a throttled post was not taken. Raise NotPosted."""
    limits = settings.limits
    body = RENDERERS[target.kind](message)
    give_up_at = time.monotonic() + limits.channel_retry_after_max_seconds
    for attempt in range(1 + THROTTLED_TRIES):
        status, answer, retry_after = _send(target, body, settings)
        wait = max(retry_after or 0, MIN_WAIT)
        if status != 429 or retry_after is None or attempt == THROTTLED_TRIES or \
                time.monotonic() + wait > give_up_at:
            break
        time.sleep(wait)
    if (target.kind == "teams" and status in (200, 202)) or (target.kind == "slack" and status == 200):
        logger.info("posted to channel %s (%s)", target.name, target.kind)
        return
    said = f": {answer}" if answer else ""
    if status >= 500:
        raise NotPosted(target.name, "unknown", f"{target.kind} answered HTTP {status}{said}")
    raise NotPosted(target.name, "failed", f"{target.kind} refused the message: HTTP {status}{said}",
                    retry_after=retry_after if status == 429 else None)


def _send(target: Channel, body: dict, settings: Settings) -> tuple[int, str, float | None]:
    """One POST: its status, the start of its answer (one line of text), and a 429's Retry-After."""
    limits = settings.limits
    deadline = clients.Deadline(limits.channel_connect_timeout_seconds + limits.channel_read_timeout_seconds)
    try:
        with deadline:
            response = outbound.request("POST", target.url, settings.channel_allowed_hosts, SETTING,
                                        watch=deadline.watch, secret_path=True, stream=True, json=body,
                                        timeout=(limits.channel_connect_timeout_seconds,
                                                 limits.channel_read_timeout_seconds))
            try:
                status, raw = response.status_code, response.raw.read(MAX_ANSWER_BYTES, decode_content=True)
                retry_after = _seconds(response.headers.get("Retry-After"))
            except Exception as exc:  # the post was sent: whatever breaks its answer leaves its fate unknown
                raise outbound.Failed(outbound.why(exc), sent=True, timed_out=outbound.timed_out(exc)) from None
            finally:
                deadline.finish()
                response.close()
        if deadline.expired:
            raise outbound.Failed("cut short", sent=True, timed_out=True)
    except outbound.AddressRefused as refused:
        raise NotPosted(target.name, "failed", str(refused)) from None
    except outbound.Failed as failure:
        if not failure.sent:
            raise NotPosted(target.name, "failed", f"could not connect, nothing was sent: {failure}") from None
        why = "no whole answer in time" if deadline.expired else str(failure)
        raise NotPosted(target.name, "unknown", f"sent, but no answer came back: {why}") from None
    answer = " ".join(raw.decode("utf-8", "replace").split())[:200]
    return status, answer, retry_after


def _seconds(value: str | None) -> float | None:
    """A 429's Retry-After in seconds (`shared.clock.retry_after_seconds`), if it is a wait of under an hour."""
    seconds = retry_after_seconds(value)
    return seconds if seconds is not None and 0 <= seconds < 3600 else None
