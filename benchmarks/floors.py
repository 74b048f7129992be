"""The floor: the raw SDK calls a pause and a restart need, with nothing of the app around them.

Entities are clones of what the app itself stored (`template`), so the floor writes exactly
the bytes the app writes. The calls use the same SDK options as `shared.storage.tables` and
`shared.targets.adf` (insert without echoing the entity back, conditional merges, `create_run`).
"""

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from azure.core import MatchConditions
from azure.core.credentials import AccessToken
from azure.data.tables import TableServiceClient, UpdateMode

from shared.storage.due_index import DueIndex
from shared.storage.tables import unpack_json

from .harness import DECIDER_HEADERS

# What shared.storage.tables passes to create_entity: the service answers 204 with the ETag, not the entity.
INSERT_OPTIONS = {"response_preference": "return-no-content"}


class _StandinCredential:
    def get_token(self, *scopes, **kwargs):
        return AccessToken("local-adf-standin-token", 4102444800)


def clean(entity) -> dict:
    """A stored entity as a plain dict of the properties to write (no service metadata)."""
    return {name: value for name, value in dict(entity).items() if name != "Timestamp"}


def _transport(pool_size: int | None):
    """The SDK's default transport, with room for `pool_size` connections kept alive (default 10)."""
    if not pool_size:
        return {}
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from urllib3 import Retry

    session = requests.Session()
    # What RequestsTransport mounts itself (no urllib3 retries: the SDK's policy retries), bigger pool.
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=pool_size,
                                            max_retries=Retry(total=False, redirect=False, raise_on_status=False))
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return {"transport": RequestsTransport(session=session, session_owner=True)}


def _app_transport() -> dict:
    """The transport the app's own clients use (shared.outbound.http_transport)."""
    from shared.outbound import http_transport

    return {"transport": http_transport(connection_timeout=300, read_timeout=300)}


class RawOps:
    """The raw operations, on stock SDK clients of their own (one connection pool each, as the app has).

    `app_transport` gives them the app's tuned HTTP transport instead, to tell what the
    transport saves from what the app's own code costs.
    """

    def __init__(self, connection_string: str, table: str, arm_endpoint: str, subscription: str,
                 pool_size: int | None = None, app_transport: bool = False):
        transport = _app_transport if app_transport else lambda: _transport(pool_size)
        self.service = TableServiceClient.from_connection_string(connection_string, **transport())
        self.table = self.service.get_table_client(table)
        self.index = self.service.get_table_client(table + "expiry")
        self.status = self.service.get_table_client(table + "status")
        from azure.mgmt.datafactory import DataFactoryManagementClient

        self._adf = DataFactoryManagementClient(_StandinCredential(), subscription, base_url=arm_endpoint,
                                                credential_scopes=[arm_endpoint + "/.default"], **transport())
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="raw-index")

    def close(self) -> None:
        self._pool.shutdown()
        self._adf.close()
        self.service.close()

    def template(self, pause_id: str) -> dict:
        """The entity the app stored for `pause_id`, to clone."""
        return clean(self.table.get_entity(pause_id, "pause"))

    @staticmethod
    def clone(template: dict) -> dict:
        """A new pause like `template`: fresh id and secret hash, same properties."""
        return {**template, "PartitionKey": secrets.token_hex(16), "secret_hash": secrets.token_hex(32)}

    def index_row(self, entity: dict) -> dict:
        partition, row = DueIndex.keys(entity["PartitionKey"], entity["expires_at"])
        return {"PartitionKey": partition, "RowKey": row}

    def insert_one(self, entity: dict) -> None:
        """The one insert a pause needs at the very least: its entity."""
        self.table.create_entity(entity, **INSERT_OPTIONS)

    def insert_two(self, entity: dict) -> None:
        """Both rows a pause needs, one after the other: the due-index row, then the entity."""
        self.index.create_entity(self.index_row(entity), **INSERT_OPTIONS)
        self.table.create_entity(entity, **INSERT_OPTIONS)

    def insert_two_concurrently(self, entity: dict) -> None:
        """Both rows at once: the index row on a worker thread, the entity on this one."""
        index_write = self._pool.submit(self.index.create_entity, self.index_row(entity), **INSERT_OPTIONS)
        self.table.create_entity(entity, **INSERT_OPTIONS)
        index_write.result()

    def insert_three_concurrently(self, entity: dict) -> None:
        """The three rows a pause writes, all at once: its due-index and status-index rows on worker
        threads, the entity on this one."""
        status_row = {"PartitionKey": "index", "RowKey": f"open|{secrets.token_hex(10)}|{entity['PartitionKey']}"}
        writes = [self._pool.submit(self.index.create_entity, self.index_row(entity), **INSERT_OPTIONS),
                  self._pool.submit(self.status.create_entity, status_row, **INSERT_OPTIONS)]
        self.table.create_entity(entity, **INSERT_OPTIONS)
        for write in writes:
            write.result()

    def read(self, pause_id: str) -> None:
        """The point read a link needs."""
        self.table.get_entity(pause_id, "pause")

    def restart(self, pause_id: str, comment: str) -> str:
        """Point read, conditional claim, createRun, conditional write of the outcome; return the run id."""
        entity = self.table.get_entity(pause_id, "pause")
        now = datetime.now(timezone.utc)
        claimed = self.table.update_entity({"PartitionKey": pause_id, "RowKey": "pause", "status": "restarting",
                                            "claimed_at": now}, mode=UpdateMode.MERGE,
                                           etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified)
        parameters = {**json.loads(unpack_json(entity, "parameters") or "{}"), "pause_id": pause_id}
        run = self._adf.pipelines.create_run(entity["resource_group"], entity["factory_name"], entity["pipeline_name"],
                                             parameters=parameters, enforce_https=False)
        self.table.update_entity({"PartitionKey": pause_id, "RowKey": "pause", "status": "restarted",
                                  "run_id": run.run_id, "decided_at": now, "comment": comment, "decided_by": None,
                                  "client_ip": "203.0.113.7", "user_agent": DECIDER_HEADERS["User-Agent"]},
                                 mode=UpdateMode.MERGE, etag=claimed["etag"],
                                 match_condition=MatchConditions.IfNotModified)
        return run.run_id
