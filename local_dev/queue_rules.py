"""The Functions host's rules for queue triggers that local_dev.queues follows: host.json's `extensions.queues`
settings and their defaults, the polling back-off, poison queue names, message encoding, and which storage
account a trigger's `connection` setting names.

Sources: Microsoft.Azure.WebJobs.Extensions.Storage.Queues 5.x (azure-sdk-for-net, sdk/storage/
Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared: Queues/QueuesOptions.cs, QueuePollingIntervals.cs,
Timers/RandomizedExponentialBackoffStrategy.cs; Queues/src/Listeners/QueueListenerFactory.cs) and Microsoft Learn's
"Azure Queue storage trigger for Azure Functions".
"""

import base64
import binascii
import json
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

MIN_POLLING_INTERVAL = 0.1  # seconds: the host's first delay after an empty poll, and the least maxPollingInterval
LEASE_SECONDS = 600  # how long the host hides a message it runs (renewed halfway); not a host.json setting
POISON_SUFFIX = "-poison"
_QUEUE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d+)?))?")


class QueuesSettingError(ValueError):
    """host.json's queues section, or a trigger's queue or connection, is one the Functions host would refuse."""


def _processors() -> int:
    """What the host multiplies the default newBatchThreshold by: 1 on the Consumption plan, else the cores."""
    return 1 if os.environ.get("WEBSITE_SKU", "").lower() == "dynamic" else (os.cpu_count() or 1)


@dataclass(frozen=True)
class QueuesOptions:
    """host.json `extensions.queues`, in seconds where the host takes a TimeSpan."""

    batch_size: int = 16
    new_batch_threshold: Optional[int] = None  # None: batch_size // 2 per processor, as the host
    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0  # the delay before a failed message is tried again
    max_dequeue_count: int = 5
    message_encoding: str = "base64"
    lease_seconds: int = LEASE_SECONDS  # the host's constant; the tests shorten it

    def __post_init__(self):
        if not 1 <= self.batch_size <= 32:
            raise QueuesSettingError("queues.batchSize must be from 1 to 32 (a receive takes at most 32 messages)")
        if self.new_batch_threshold is not None and self.new_batch_threshold < 0:
            raise QueuesSettingError("queues.newBatchThreshold must not be negative")
        if self.max_polling_interval < MIN_POLLING_INTERVAL:
            raise QueuesSettingError("queues.maxPollingInterval must not be less than 00:00:00.1")
        if self.max_dequeue_count < 1:
            raise QueuesSettingError("queues.maxDequeueCount must not be less than 1")
        if self.message_encoding not in ("base64", "none"):
            raise QueuesSettingError('queues.messageEncoding must be "base64" or "none"')
        if self.lease_seconds < 1:
            raise QueuesSettingError("a message is hidden for at least 1 s while its function runs")

    @property
    def threshold(self) -> int:
        """newBatchThreshold: the next batch is fetched once no more than this many messages are still running."""
        if self.new_batch_threshold is not None:
            return self.new_batch_threshold
        return self.batch_size // 2 * _processors()

    @property
    def concurrency(self) -> int:
        """The most messages running at once: batchSize + newBatchThreshold."""
        return self.batch_size + self.threshold

    @property
    def visibility_timeout_seconds(self) -> int:
        return round(self.visibility_timeout)


def parse_timespan(value, name: str) -> float:
    """Seconds in a .NET TimeSpan string ("[d.]hh:mm[:ss[.fff]]"), as host.json writes durations.

    A bare number is refused: the host's TimeSpan.Parse reads "2000" as 2000 days, not milliseconds.
    """
    match = _TIMESPAN.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise QueuesSettingError(f'queues.{name} must be a duration such as "00:00:30" (hh:mm:ss), not {value!r}')
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds or 0)


def read_queues_options(host_json_path, **overrides) -> QueuesOptions:
    """QueuesOptions from host.json's `extensions.queues` (the host's defaults for what it leaves out)."""
    path = Path(host_json_path)
    host = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    section = host.get("extensions", {}).get("queues", {})
    values = {}
    for key, field in (("batchSize", "batch_size"), ("newBatchThreshold", "new_batch_threshold"),
                       ("maxDequeueCount", "max_dequeue_count")):
        if key in section:
            values[field] = int(section[key])
    for key, field in (("maxPollingInterval", "max_polling_interval"), ("visibilityTimeout", "visibility_timeout")):
        if key in section:
            values[field] = parse_timespan(section[key], key)
    if "messageEncoding" in section:
        values["message_encoding"] = str(section["messageEncoding"]).lower()
    return QueuesOptions(**{**values, **overrides})


class PollingBackoff:
    """The host's delay before polling a queue that was empty: 100 ms, then 100 ms more than twice the last
    increase each time (±20 % at random, so workers sharing a queue drift apart) up to the maximum; back to
    100 ms once a poll since the last delay found messages."""

    def __init__(self, maximum: float, minimum: float = MIN_POLLING_INTERVAL, uniform=random.uniform):
        self.minimum, self.maximum, self._uniform = minimum, maximum, uniform
        self._current, self._exponent = 0.0, 0

    def next_delay(self, found: bool) -> float:
        if found:
            self._current, self._exponent = self.minimum, 1
        elif self._current != self.maximum:
            interval = self.minimum
            if self._exponent > 0:
                interval += self._uniform(0.8, 1.2) * 2 ** (self._exponent - 1) * self.minimum
            if interval < self.maximum:
                self._current, self._exponent = interval, self._exponent + 1
            else:
                self._current = self.maximum
        return self._current


def check_queue_name(name: str, function: str) -> str:
    """The queue name, if Azure Queue storage accepts it: 3-63 lower-case letters, digits and single hyphens."""
    if not _QUEUE_NAME.fullmatch(name):
        raise QueuesSettingError(f"the queue trigger of {function} names queue {name!r}: a queue name is 3-63 "
                                 "lower-case letters, digits and single hyphens, starting with a letter or digit")
    return name


def poison_queue_name(name: str) -> Optional[str]:
    """`<name>-poison`; None, as for the host, when the queue is itself a poison queue or the name would be too long."""
    if name.endswith(POISON_SUFFIX) or len(name) + len(POISON_SUFFIX) > 63:
        return None
    return name + POISON_SUFFIX


def decode_body(content: str, encoding: str) -> Optional[bytes]:
    """The message body the function receives; None when base64 is expected and the message is not."""
    if encoding == "none":
        return content.encode("utf-8")
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        return None


def queue_service(connection: str, env, pool_size: int):
    """(QueueServiceClient, credential or None) for the account the trigger's `connection` names, as the host reads
    it: the setting itself as a connection string, else `<connection>__queueServiceUri` (or `__accountName`) with a
    Microsoft Entra token (`__credential=managedidentity` and `__clientId`, else azure-identity's default chain).
    The HTTP pool holds a connection for each function that may run at once."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from azure.storage.queue import QueueServiceClient

    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    transport = RequestsTransport(session=session, session_owner=True)
    value = (env.get(connection) or "").strip()
    if value:
        return QueueServiceClient.from_connection_string(value, transport=transport), None
    account = (env.get(f"{connection}__accountName") or "").strip()
    endpoint = (env.get(f"{connection}__queueServiceUri") or "").strip() or (
        account and f"https://{account}.queue.core.windows.net")
    if not endpoint:
        session.close()
        raise QueuesSettingError(f"a queue trigger's connection {connection} is not set: set {connection} to a "
                                 f"connection string or {connection}__queueServiceUri to the account's queue endpoint")
    credential = _credential(connection, env)
    return QueueServiceClient(endpoint, credential=credential, transport=transport), credential


def _credential(connection: str, env):
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    client_id = (env.get(f"{connection}__clientId") or "").strip() or None
    if (env.get(f"{connection}__credential") or "").strip().lower() == "managedidentity":
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential(managed_identity_client_id=client_id)
