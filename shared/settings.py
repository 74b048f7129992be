"""Every app setting, read once from the environment, typed, with explicit defaults.

Nothing else in the app reads `os.environ`. Tests set the environment, then call
`get_settings.cache_clear()`.
"""

import functools
import os
import re
from dataclasses import dataclass, field, fields
from urllib.parse import urlsplit

from shared import people
from shared.connections import GUID, StorageAccount, guid, storage_account
from shared.errors import SettingsError
from shared.urls import is_loopback as is_loopback_host
from shared.urls import valid_pattern

# The route prefix host.json declares; the links the app hands out include it.
ROUTE_PREFIX = "api"

# Where ADF and Synapse send WebHook callBackUri from: their regional data-plane hosts
# (e.g. dpeastus.svc.datafactory.azure.com), in the public and sovereign clouds.
# Where chat messages may go unless CHANNEL_ALLOWED_HOSTS says otherwise: Slack's incoming webhooks
# and the hosts of Teams Workflows ("When a Teams webhook request is received") URLs.
DEFAULT_CHANNEL_HOSTS = ("hooks.slack.com", "*.logic.azure.com", "*.environment.api.powerplatform.com")
DEFAULT_CALLBACK_HOSTS = (
    "*.svc.datafactory.azure.com", "*.svc.datafactory.azure.us", "*.svc.datafactory.azure.cn",
    "*.svc.azuresynapse.net", "*.svc.azuresynapse.azure.us", "*.svc.azuresynapse.azure.cn",
)
# The timer's schedule when PAUSE_SWEEP_SCHEDULE is not set (CONTRACT.md): every minute.
DEFAULT_SWEEP_SCHEDULE = "0 */1 * * * *"


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    username: str | None
    password: str | None
    sender: str
    starttls: bool


DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"


@dataclass(frozen=True)
class Identity:
    """Who the app is towards Azure: its managed identity's tenant, and the app registration that
    lets that identity act in other tenants (workload identity federation)."""

    home_tenant: str | None = None            # AZURE_TENANT_ID
    client_id: str | None = None              # AZURE_CLIENT_ID: a user-assigned managed identity
    cross_tenant_client_id: str | None = None  # CROSS_TENANT_CLIENT_ID
    allowed_tenants: tuple[str, ...] = ()      # ALLOWED_TENANTS; empty: any
    authority_host: str = DEFAULT_AUTHORITY_HOST  # AZURE_AUTHORITY_HOST

    def is_home(self, tenant_id: str | None) -> bool:
        return tenant_id is None or (self.home_tenant is not None and tenant_id.lower() == self.home_tenant)


def _identity(env) -> Identity:
    allowed = tuple(part.lower() for part in _csv(env.get("ALLOWED_TENANTS")))
    bad = [part for part in allowed if not GUID.fullmatch(part)]
    if bad:
        raise SettingsError(f"ALLOWED_TENANTS must list tenant GUIDs; not: {', '.join(bad)}.")
    authority = (env.get("AZURE_AUTHORITY_HOST") or DEFAULT_AUTHORITY_HOST).rstrip("/")
    if urlsplit(authority).scheme != "https":
        raise SettingsError("AZURE_AUTHORITY_HOST must be an https:// URL (Entra ID requires it).")

    def read_guid(name):
        return guid(env.get(name), name)

    return Identity(home_tenant=read_guid("AZURE_TENANT_ID"), client_id=read_guid("AZURE_CLIENT_ID"),
                    cross_tenant_client_id=read_guid("CROSS_TENANT_CLIENT_ID"), allowed_tenants=allowed,
                    authority_host=authority)


@dataclass(frozen=True)
class Limits:
    """Timeouts and retry budgets: today's production values, each an app setting so tests can shorten them.

    The environment name of each is its field name in upper case (`STALE_CLAIM_SECONDS`, ...).
    """

    arm_connect_timeout_seconds: float = 5
    arm_read_timeout_seconds: float = 10
    # Retries of requests that cannot have had an effect (reads, throttled or unsent writes).
    arm_retry_total: int = 2
    # ARM's Retry-After may ask for more than a person on the page can wait.
    arm_max_retry_after_seconds: float = 5
    # ARM's write bucket refills at this rate per subscription and principal; background writes (createRun
    # from the timer or the queue) slow down while fewer than ARM_WRITES_LOW_WATER remain (shared.targets.pacing).
    arm_writes_per_second: float = 10
    arm_writes_low_water: float = 20
    # The same for reads (250, refilled at 25 a second): the timer's and the queue's adf_run checks.
    arm_reads_per_second: float = 25
    arm_reads_low_water: float = 25
    storage_connect_timeout_seconds: float = 3
    storage_read_timeout_seconds: float = 4
    storage_retry_total: int = 1
    callback_connect_timeout_seconds: float = 3
    callback_read_timeout_seconds: float = 10
    # A chat post (Teams, Slack): the connection, the answer, and how long a 429's Retry-After is
    # waited out within a person's request before the post counts as refused.
    channel_connect_timeout_seconds: float = 3
    channel_read_timeout_seconds: float = 10
    channel_retry_after_max_seconds: float = 5
    # A claim older than this whose outcome was never recorded belonged to a process that died.
    stale_claim_seconds: float = 600
    # Writes of an outcome that already happened are tried this often before reconciliation takes over.
    record_attempts: int = 3
    # The timer gives a pause it cannot settle this many runs, then marks it failed.
    timer_attempts: int = 5
    # The due-work queue: a message's dequeues before its pause is marked failed (host.json's
    # queues.maxDequeueCount), and how long a row stays marked as on the queue (not sent again).
    queue_max_dequeue_count: int = 5
    due_queue_lease_seconds: float = 900
    # Pages of queryPipelineRuns read when looking for a run whose createRun got no answer, and the
    # wait before looking a second time (in case ADF lists a new run a moment late).
    run_lookup_max_pages: int = 10
    run_lookup_retry_seconds: float = 3
    # How long "this pipeline exists" is remembered per process.
    pipeline_check_ttl_seconds: float = 600
    sweep_concurrency: int = 32
    # Below the Consumption plan's default function timeout (5 minutes), with room to record.
    sweep_time_budget_seconds: float = 240
    # An unconfirmed callback is re-sent (the identical payload) after this, doubling each time.
    callback_redelivery_seconds: float = 60
    callback_redelivery_attempts: int = 8
    # A checkpoint with no hold is called back this long after its WebHook was answered (see shared.outbox).
    checkpoint_callback_delay_seconds: float = 2
    # A held checkpoint is looked at by the timer at least this often (a releaser that died, a hold's expiry).
    hold_recheck_seconds: float = 300
    # An HTTP check's whole answer must come within this.
    check_timeout_seconds: float = 10


# Pacing margins (shared.targets.pacing): under 1 no call goes blind; past ARM's bucket / 4 a process may keep 1/16.
_MARGINS = {"arm_writes_low_water": (1, 50), "arm_reads_low_water": (1, 62)}


def _limits(env) -> Limits:
    values = {}
    for item in fields(Limits):
        name = item.name.upper()
        text = env.get(name)
        if text is None or text == "":
            continue
        kind = int if item.type in (int, "int") else float
        try:
            value = kind(text)
        except ValueError:
            raise SettingsError(f"{name} must be a {'whole ' if kind is int else ''}number, got {text!r}.") from None
        lowest = 0 if item.name.endswith(("_retry_total", "_retry_seconds")) else 1 if kind is int else 1e-3
        if not lowest <= value < 10 ** 7 or value != value:  # (retries may be off; nan is not a number)
            raise SettingsError(f"{name} must be from {lowest:g} to below 10000000, got {text!r}.")
        bounds = _MARGINS.get(item.name)
        if bounds and not bounds[0] <= value <= bounds[1]:
            raise SettingsError(f"{name} must be from {bounds[0]:g} to {bounds[1]:g}, got {text!r}.")
        values[item.name] = value
    return Limits(**values)


def _choice(env, name: str, values: tuple) -> str:
    value = (env.get(name) or values[0]).strip().lower()
    if value not in values:
        raise SettingsError(f"{name} must be one of {', '.join(values)}.")
    return value


def _flag(env, name: str, default: bool) -> bool:
    text = (env.get(name) or "").strip().lower()
    if not text:
        return default
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise SettingsError(f"{name} must be true or false.")
    return text in ("true", "1", "yes")


@dataclass(frozen=True)
class Settings:
    storage: StorageAccount
    pauses_table: str = "pauses"
    arm_endpoint: str = "https://management.azure.com"
    public_base_url: str | None = None
    allowed_factories: tuple[str, ...] = ()
    callback_allowed_hosts: tuple[str, ...] = DEFAULT_CALLBACK_HOSTS
    check_allowed_hosts: tuple[str, ...] = ()  # CHECK_ALLOWED_HOSTS: where HTTP checks may go; none by default
    channel_allowed_hosts: tuple[str, ...] = DEFAULT_CHANNEL_HOSTS  # CHANNEL_ALLOWED_HOSTS: chat webhooks
    smtp: Smtp | None = None
    check_pipeline_exists: bool = True
    limits: Limits = field(default_factory=Limits)
    identity: Identity = field(default_factory=Identity)
    # "none": the link is the credential; "easyauth": App Service Authentication stands in front of
    # the links, and only then are its principal headers trusted.
    approver_sign_in: str = "none"
    # WEBSITE_AUTH_ENABLED=True: App Service says its Authentication really stands in front (it sets
    # this itself; so does the local development sign-in). Without it, easyauth routes are refused.
    platform_auth_enabled: bool = False
    # OPERATORS: who may use the operators' console (besides the Pauses.Operator app role), as compared.
    operators: tuple[str, ...] = ()
    # DUE_WORK_QUEUE: the queue the timer puts due work on, settled by a queue-triggered function on as
    # many instances as the host scales to; empty: the timer settles it itself, in one process.
    due_work_queue: str = "pauses-due"

    @property
    def paced_work_queue(self) -> str:
        """Where due work waiting for ARM's write limit comes back (`<DUE_WORK_QUEUE>-paced`): a short queue of
        its own, so a start is taken up at its slot, not behind the backlog of the main queue."""
        return f"{self.due_work_queue}{PACED_SUFFIX}" if self.due_work_queue else ""

    @property
    def expiry_table(self) -> str:
        """The due index (when each pause next needs the timer), beside the pauses table; named for
        its first use, kept so that existing deployments keep their rows."""
        return self.pauses_table + "expiry"

    @property
    def status_table(self) -> str:
        """The status index (open pauses, held checkpoints, decisions by time), beside the pauses table."""
        return self.pauses_table + "status"

    @property
    def keys_table(self) -> str:
        """Keys every instance of the app shares (the anti-forgery key), made on first use."""
        return self.pauses_table + "keys"

    @property
    def holds_table(self) -> str:
        """Operators' holds and their status index."""
        return self.pauses_table + "holds"

    @property
    def catalog_table(self) -> str:
        """The catalog: pipelines people may ask to run."""
        return self.pauses_table + "catalog"

    @property
    def requests_table(self) -> str:
        """Requests made from the catalog, per requester: the slots that cap open ones, and a history."""
        return self.pauses_table + "requests"

    @property
    def arm_is_local_standin(self) -> bool:
        """A loopback http:// ARM endpoint is the local ADF stand-in, not Azure."""
        parts = urlsplit(self.arm_endpoint)
        return parts.scheme == "http" and is_loopback_host(parts.hostname)


def _https_or_loopback(url) -> bool:
    """A URL the app builds links or calls on: a host (and a port, if any, that is a number), no query or fragment,
    https (http only to this machine)."""
    try:
        host, _ = url.hostname, url.port  # (a port that is not a number raises)
    except ValueError:
        return False
    return bool(host) and not (url.query or url.fragment) and (
        url.scheme == "https" or url.scheme == "http" and is_loopback_host(host))


def _from_environ(env) -> Settings:
    arm = (env.get("ARM_ENDPOINT") or Settings.arm_endpoint).rstrip("/")
    if not _https_or_loopback(urlsplit(arm)):
        raise SettingsError("ARM_ENDPOINT must be an https:// URL with a host and no query (http:// only for a "
                            "loopback stand-in).")
    base = (env.get("PUBLIC_BASE_URL") or "").rstrip("/") or None
    # Its links carry one-time tokens: never in the clear off this machine.
    if base and not _https_or_loopback(urlsplit(base)):
        raise SettingsError("PUBLIC_BASE_URL must be an https:// URL with a host and no query (http:// only for a "
                            "loopback address, on this machine).")
    table = env.get("PAUSES_TABLE") or Settings.pauses_table
    # Table names are 3-63 letters and digits starting with a letter; "<table>requests" must fit too.
    if not (table.isascii() and table.isalnum() and table[0].isalpha() and 3 <= len(table) <= 55):
        raise SettingsError("PAUSES_TABLE must be 3-55 letters and digits, starting with a letter.")
    callback_hosts = _hosts(env.get("CALLBACK_ALLOWED_HOSTS"), "CALLBACK_ALLOWED_HOSTS") or DEFAULT_CALLBACK_HOSTS
    check_hosts = _hosts(env.get("CHECK_ALLOWED_HOSTS"), "CHECK_ALLOWED_HOSTS")
    storage = storage_account(env)
    return Settings(
        storage=storage,
        due_work_queue=due_work_queue_of(env, storage),
        callback_allowed_hosts=callback_hosts,
        check_allowed_hosts=check_hosts,
        channel_allowed_hosts=_hosts(env.get("CHANNEL_ALLOWED_HOSTS"), "CHANNEL_ALLOWED_HOSTS") or DEFAULT_CHANNEL_HOSTS,
        check_pipeline_exists=_flag(env, "CHECK_PIPELINE_EXISTS", True),
        limits=_limits(env),
        identity=_identity(env),
        approver_sign_in=_choice(env, "APPROVER_SIGN_IN", ("none", "easyauth")),
        platform_auth_enabled=(env.get("WEBSITE_AUTH_ENABLED") or "").strip().lower() == "true",
        operators=_operators(env),
        smtp=_smtp(env),
        pauses_table=table,
        arm_endpoint=arm,
        public_base_url=base,
        allowed_factories=_allowed_factories(env.get("ALLOWED_FACTORIES")),
    )


_QUEUE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]")


PACED_SUFFIX = "-paced"
POISON_SUFFIX = "-poison"  # the Functions host's, for a queue's poison queue: made only when the name fits in 63
MAX_DUE_WORK_QUEUE = 63 - len(PACED_SUFFIX) - len(POISON_SUFFIX)  # so both queues have their poison queue


def due_work_queue_of(env, storage: StorageAccount) -> str:
    """DUE_WORK_QUEUE: a queue name (3-50 of a-z, 0-9 and single hyphens), or empty for the timer alone."""
    given = env.get("DUE_WORK_QUEUE")
    if given is None:  # by default, the queue where the account has one the app knows of
        return "" if storage.uses_identity and not storage.queue_endpoint else Settings.due_work_queue
    name = given.strip()
    if name and (not _QUEUE_NAME.fullmatch(name) or len(name) > MAX_DUE_WORK_QUEUE):
        raise SettingsError(f"DUE_WORK_QUEUE must be a queue name of 3-{MAX_DUE_WORK_QUEUE} lower-case letters, digits "
                            f"and single hyphens (the app adds {PACED_SUFFIX!r} for a second queue, and the Functions "
                            f"host {POISON_SUFFIX!r} to each for its poison queue), starting and ending with a letter "
                            "or digit (or empty: the timer settles due work itself).")
    if name and storage.uses_identity and not storage.queue_endpoint:
        raise SettingsError(f"DUE_WORK_QUEUE needs the queue endpoint: set {storage.setting}__queueServiceUri (or "
                            f"{storage.setting}__accountName), or DUE_WORK_QUEUE to empty.")
    return name


def _operators(env) -> tuple[str, ...]:
    names = _csv(env.get("OPERATORS"))
    keys = [people.key(name) for name in names]
    bad = [name for name, key in zip(names, keys) if key is None]
    if bad:
        raise SettingsError("OPERATORS has names with characters that could pass for another name (Unicode "
                            f"look-alikes, invisible characters): {', '.join(ascii(name) for name in bad)}.")
    return tuple(keys)


def _hosts(value: str | None, name: str) -> tuple[str, ...]:
    """A comma list of host names, IP literals and `*.` suffixes, lower case; SettingsError naming `name`."""
    hosts = tuple(host.lower() for host in _csv(value))
    bad = [host for host in hosts if not valid_pattern(host)]
    if bad:
        raise SettingsError(f"{name} has entries that are not host names, IP addresses or '*.' and a host name: "
                            f"{', '.join(bad)}.")
    return hosts


def _smtp(env) -> Smtp | None:
    host = env.get("SMTP_HOST")
    if not host:
        return None
    port = env.get("SMTP_PORT") or "587"
    if not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError("SMTP_PORT must be a port number, e.g. 587.")
    sender = env.get("SMTP_FROM")
    if not sender:
        raise SettingsError("SMTP_FROM is required when SMTP_HOST is set.")
    return Smtp(host=host, port=int(port), username=env.get("SMTP_USERNAME") or None,
                password=env.get("SMTP_PASSWORD") or None, sender=sender,
                starttls=_flag(env, "SMTP_STARTTLS", True))


def _allowed_factories(value) -> tuple[str, ...]:
    """Factory patterns; none (or a lone `*` among them) means any factory."""
    patterns = _csv(value)
    return () if "*" in patterns else patterns


def app_setting(name: str) -> str | None:
    """The value of an app setting a pause names (an HTTP check's header_setting), read when used.

    Read each time, not cached: a rotated secret (a Key Vault reference) takes effect without a
    restart. Names are checked by the request schema before they get here.
    """
    return os.environ.get(name)


def app_setting_hosts(name: str) -> tuple[str, ...]:
    """The hosts an app setting a pause names lists (a header setting's `<NAME>_HOSTS`), read when used.

    Same rules as CHECK_ALLOWED_HOSTS; SettingsError when it is not set, empty or malformed.
    """
    hosts = _hosts(app_setting(name), name)
    if not hosts:
        raise SettingsError(f"app setting {name} is not set; it must list the hosts the header may be sent to")
    return hosts


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process's settings, read from the environment on first call."""
    return _from_environ(os.environ)
