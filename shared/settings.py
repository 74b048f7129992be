"""Every app setting, read once from the environment, typed, with explicit defaults.

Nothing else in the app reads `os.environ`. Tests set the environment, then call
`get_settings.cache_clear()`.
"""

import functools
import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

# The route prefix host.json declares; the links the app hands out include it.
ROUTE_PREFIX = "api"

# Where ADF and Synapse send WebHook callBackUri from: their regional data-plane hosts
# (e.g. dpeastus.svc.datafactory.azure.com), in the public and sovereign clouds.
DEFAULT_CALLBACK_HOSTS = (
    "*.svc.datafactory.azure.com", "*.svc.datafactory.azure.us", "*.svc.datafactory.azure.cn",
    "*.svc.azuresynapse.net", "*.svc.azuresynapse.azure.us", "*.svc.azuresynapse.azure.cn",
)
DEFAULT_SWEEP_SCHEDULE = "0 */5 * * * *"


class SettingsError(RuntimeError):
    """A required setting is missing or malformed: the app cannot serve."""


def is_loopback_host(host: str | None) -> bool:
    """True for localhost and 127.0.0.0/8 or ::1 literals."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


@dataclass(frozen=True)
class Settings:
    storage_connection: str
    pauses_table: str = "pauses"
    arm_endpoint: str = "https://management.azure.com"
    public_base_url: str | None = None
    allowed_factories: tuple[str, ...] = ()
    callback_allowed_hosts: tuple[str, ...] = DEFAULT_CALLBACK_HOSTS
    smtp: Smtp | None = None

    @property
    def expiry_table(self) -> str:
        """The index of pending pauses by expiry time, beside the pauses table."""
        return self.pauses_table + "expiry"

    @property
    def arm_is_local_standin(self) -> bool:
        """A loopback http:// ARM endpoint is the local ADF stand-in, not Azure."""
        parts = urlsplit(self.arm_endpoint)
        return parts.scheme == "http" and is_loopback_host(parts.hostname)


def _from_environ(env) -> Settings:
    connection = env.get("PAUSES_STORAGE_CONNECTION") or env.get("AzureWebJobsStorage")
    if not connection:
        raise SettingsError("Set AzureWebJobsStorage (or PAUSES_STORAGE_CONNECTION) to a "
                            "Table storage connection string; UseDevelopmentStorage=true for Azurite.")
    arm = (env.get("ARM_ENDPOINT") or Settings.arm_endpoint).rstrip("/")
    scheme = urlsplit(arm).scheme
    if scheme not in ("http", "https") or (scheme == "http" and not is_loopback_host(urlsplit(arm).hostname)):
        raise SettingsError("ARM_ENDPOINT must be an https:// URL (http:// only for a loopback stand-in).")
    base = (env.get("PUBLIC_BASE_URL") or "").rstrip("/") or None
    if base and urlsplit(base).scheme not in ("http", "https"):
        raise SettingsError("PUBLIC_BASE_URL must start with https:// (or http:// locally).")
    table = env.get("PAUSES_TABLE") or Settings.pauses_table
    # Table names are 3-63 letters and digits starting with a letter; "<table>expiry" must fit too.
    if not (table.isascii() and table.isalnum() and table[0].isalpha() and 3 <= len(table) <= 57):
        raise SettingsError("PAUSES_TABLE must be 3-57 letters and digits, starting with a letter.")
    return Settings(
        storage_connection=connection,
        callback_allowed_hosts=tuple(h.lower() for h in _csv(env.get("CALLBACK_ALLOWED_HOSTS")))
        or DEFAULT_CALLBACK_HOSTS,
        smtp=_smtp(env),
        pauses_table=table,
        arm_endpoint=arm,
        public_base_url=base,
        allowed_factories=_allowed_factories(env.get("ALLOWED_FACTORIES")),
    )


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
    starttls = (env.get("SMTP_STARTTLS") or "true").strip().lower()
    if starttls not in ("true", "false", "1", "0", "yes", "no"):
        raise SettingsError("SMTP_STARTTLS must be true or false.")
    return Smtp(host=host, port=int(port), username=env.get("SMTP_USERNAME") or None,
                password=env.get("SMTP_PASSWORD") or None, sender=sender,
                starttls=starttls in ("true", "1", "yes"))


def _allowed_factories(value) -> tuple[str, ...]:
    """Factory patterns; none (or a lone `*` among them) means any factory."""
    patterns = _csv(value)
    return () if "*" in patterns else patterns


def sweep_schedule() -> str:
    """The expiry timer's NCRONTAB schedule; read at import by function_app, so it has a default."""
    return os.environ.get("PAUSE_SWEEP_SCHEDULE") or DEFAULT_SWEEP_SCHEDULE


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process's settings, read from the environment on first call."""
    return _from_environ(os.environ)
