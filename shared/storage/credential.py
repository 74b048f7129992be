"""The app's credential towards an identity-based storage account (shared.connections): one per process,
its token cached and renewed before it expires; and what to tell an operator when storage refuses it.
"""

from shared.clients import OneAtATime, built_once
from shared.outbound import http_transport
from shared.settings import get_settings


@built_once
def credential():
    """The token credential for an identity-based storage connection, one per process (its token is
    cached and renewed before it expires; concurrent first calls ask for one token, not one each).

    `__credential=managedidentity`: the app's managed identity (a user-assigned one when
    `__clientId` names it), as the Functions host reads the same settings. Without it, azure-identity's
    default chain: a developer's environment variables or `az login` on their machine.
    """
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    settings = get_settings()
    account, limits = settings.storage, settings.limits
    if account.managed_identity:
        # The identity endpoint within the storage budget: its library's default retries wait ~9 s
        # for an endpoint that does not answer, inside a person's request.
        return _StorageCredential(ManagedIdentityCredential(
            client_id=account.client_id, retry_total=limits.storage_retry_total, retry_backoff_factor=0.2,
            transport=http_transport(connection_timeout=limits.storage_connect_timeout_seconds,
                                     read_timeout=limits.storage_read_timeout_seconds)))
    return _StorageCredential(DefaultAzureCredential(managed_identity_client_id=account.client_id))


class NoToken(Exception):
    """The identity endpoint refused a token for storage (an identity not assigned to the app, say).
    Deliberately not an azure-core error: the Tables SDK takes any HttpResponseError in create_entity
    for the service's answer and fails reading its (absent) response, and no retry policy should
    repeat a refusal."""


class _StorageCredential(OneAtATime):
    """One token request at a time. A refusal is NoToken; an endpoint that could not be asked stays
    the transport error it is (storage unavailable: try again), not a refusal."""

    def get_token(self, *scopes, **kwargs):
        from azure.core.exceptions import AzureError, ClientAuthenticationError, ServiceRequestError

        with self._lock:
            try:
                return self._credential.get_token(*scopes, **kwargs)
            except ClientAuthenticationError as exc:
                raise NoToken(exc.message) from exc
            except AzureError:
                raise
            except Exception as exc:  # anything else from the identity library: no request was sent
                raise ServiceRequestError(f"could not get a token for storage: {type(exc).__name__}: {exc}") \
                    from exc


def access_hint() -> str:
    account = get_settings().storage
    if account.uses_identity:
        who = f"user-assigned identity {account.client_id}" if account.client_id else "identity"
        return (f"give the app's {who} the role Storage Table Data Contributor on {account.table_endpoint} "
                f"(see {account.setting}__credential and __clientId)")
    return f"check the account key in {account.setting}"


def identity_hint() -> str:
    account = get_settings().storage
    which = f"the user-assigned identity {account.client_id} ({account.setting}__clientId)" if account.client_id \
        else "a system-assigned identity (or, locally, a signed-in developer)"
    return f"check that the app has {which}"
