"""Where the app's storage account is, and how the app proves who it is there.

Either a connection string (Azurite locally; an account key, which Azure need not have), or an
identity-based connection in the Functions convention: `<PREFIX>__accountName` or
`<PREFIX>__tableServiceUri` (and `__queueServiceUri`), `<PREFIX>__credential` = `managedidentity`, and
`<PREFIX>__clientId` for a user-assigned identity. The Functions host reads the same settings for
AzureWebJobsStorage, so one identity and no key serve both.
"""

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from shared.errors import SettingsError

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def guid(value: str | None, name: str) -> str | None:
    value = (value or "").strip()
    if value and not GUID.fullmatch(value):
        raise SettingsError(f"{name} must be a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47.")
    return value.lower() or None


@dataclass(frozen=True)
class StorageAccount:
    """The account of the app's tables (and queues): a connection string, or endpoints reached with a
    Microsoft Entra token (`uses_identity`)."""

    setting: str                          # the prefix it was read from, for messages
    connection_string: str | None = field(default=None, repr=False)  # it may hold an account key
    table_endpoint: str | None = None     # https://<account>.table.core.windows.net
    queue_endpoint: str | None = None     # https://<account>.queue.core.windows.net
    managed_identity: bool = False        # __credential=managedidentity; else DefaultAzureCredential
    client_id: str | None = None          # __clientId: a user-assigned managed identity

    @property
    def uses_identity(self) -> bool:
        return self.connection_string is None


# The parts of an identity-based storage connection the app reads (the Functions host reads
# `__blobServiceUri` too, for its own use).
_IDENTITY_PARTS = ("accountName", "tableServiceUri", "queueServiceUri", "credential", "clientId")
_ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")


def storage_account(env) -> StorageAccount:
    """PAUSES_STORAGE_CONNECTION when it (or any `PAUSES_STORAGE_CONNECTION__` part) is set, else
    AzureWebJobsStorage; a connection string, or an identity-based connection, never both."""
    for prefix in ("PAUSES_STORAGE_CONNECTION", "AzureWebJobsStorage"):
        connection = (env.get(prefix) or "").strip()
        parts = {part: (env.get(f"{prefix}__{part}") or "").strip() for part in _IDENTITY_PARTS}
        if connection and any(parts.values()):
            given = ", ".join(f"{prefix}__{part}" for part, value in parts.items() if value)
            raise SettingsError(f"{prefix} is a connection string and {given} is set too: keep one of them "
                                f"(the identity-based parts need no account key).")
        if connection:
            return StorageAccount(prefix, connection_string=connection)
        if any(parts.values()):
            return _identity_storage(prefix, parts)
    raise SettingsError("Set AzureWebJobsStorage (or PAUSES_STORAGE_CONNECTION) to a Table storage connection "
                        "string (UseDevelopmentStorage=true for Azurite), or name the account for a managed "
                        "identity: AzureWebJobsStorage__accountName and "
                        "AzureWebJobsStorage__credential=managedidentity.")


def _identity_storage(prefix: str, parts: dict) -> StorageAccount:
    account = parts["accountName"]
    if account and not _ACCOUNT_NAME.fullmatch(account):
        raise SettingsError(f"{prefix}__accountName must be a storage account name: 3-24 lower-case letters and "
                            "digits.")

    # Endpoints given (another cloud, a custom domain) are the whole truth: none is made up beside them.
    # An account name alone means Azure's public cloud, as it does for the Functions host.
    by_name = account and not (parts["tableServiceUri"] or parts["queueServiceUri"])

    def endpoint(part: str, service: str) -> str | None:
        value = parts[part].rstrip("/")
        if not value:
            return f"https://{account}.{service}.core.windows.net" if by_name else None
        try:
            url = urlsplit(value)
            host = url.hostname
        except ValueError:  # "https://[::1", a host that NFKC-normalizes into other characters
            host = None
        # A token is only ever sent over TLS (azure-core refuses otherwise); no credentials in the URL.
        if not host or url.scheme != "https" or url.username or url.password or url.query or url.fragment:
            raise SettingsError(f"{prefix}__{part} must be an https:// endpoint such as "
                                f"https://<account>.{service}.core.windows.net.")
        return value

    table = endpoint("tableServiceUri", "table")
    if table is None:
        given = ", ".join(f"{prefix}__{part}" for part, value in parts.items() if value)
        raise SettingsError(f"{given} do not say where the tables are: set {prefix}__accountName or "
                            f"{prefix}__tableServiceUri.")
    credential = parts["credential"].lower()
    if credential not in ("", "managedidentity"):
        raise SettingsError(f"{prefix}__credential must be managedidentity (or not set: then the developer's "
                            "own sign-in, az login or environment variables, is used).")
    return StorageAccount(prefix, table_endpoint=table, queue_endpoint=endpoint("queueServiceUri", "queue"),
                          managed_identity=credential == "managedidentity",
                          client_id=guid(parts["clientId"], f"{prefix}__clientId"))
