"""Catalog entries: the pipelines people may ask to run, stored in a table of their own.

Table `<table>catalog`, one partition ("catalog"), one row per entry (RowKey: the entry's id), so a
listing in id order is one range query. The entry's fields are one JSON value (`pack_json`); who
changed it last and when are plain properties.
"""

from datetime import datetime
from typing import NamedTuple

from shared.clients import built_once
from shared.clock import as_utc
from shared.errors import NotFound
from shared.settings import get_settings
from shared.storage.tables import forgotten_with_settings, insert, one_page, pack_json, table, translate, unpack_json

PARTITION = "catalog"


class StoredEntry(NamedTuple):
    entry: str
    fields_json: str        # the entry's fields as canonical JSON
    updated_at: datetime
    updated_by: str | None


def _from_entity(entity) -> StoredEntry:
    return StoredEntry(entry=entity["RowKey"], fields_json=unpack_json(entity, "fields") or "{}",
                       updated_at=as_utc(entity["updated_at"]), updated_by=entity.get("updated_by"))


def _not_found() -> NotFound:
    return NotFound("No catalog entry has that id.")


class CatalogStore:
    def __init__(self, table_client):
        self._table = table_client

    @translate("catalog")
    def put(self, stored: StoredEntry) -> bool:
        """Store the entry, replacing whatever had its id; True when it is new."""
        from azure.core.exceptions import ResourceExistsError
        from azure.data.tables import UpdateMode

        entity = {"PartitionKey": PARTITION, "RowKey": stored.entry, "updated_at": stored.updated_at,
                  **({"updated_by": stored.updated_by} if stored.updated_by else {}),
                  **pack_json("fields", stored.fields_json)}
        try:
            insert(self._table, entity)
            return True
        except ResourceExistsError:
            pass
        # A replace drops every property the new entry does not name (chunks of a longer old value too).
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        return False

    @translate("catalog")
    def get(self, entry: str) -> StoredEntry:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return _from_entity(self._table.get_entity(partition_key=PARTITION, row_key=entry))
        except ResourceNotFoundError:
            raise _not_found() from None

    @translate("catalog")
    def delete(self, entry: str) -> None:
        """Remove an entry (NotFound when there is none: the SDK's delete says nothing either way)."""
        self.get(entry)
        self._table.delete_entity(partition_key=PARTITION, row_key=entry)

    @translate("catalog query")
    def page(self, limit: int, cursor: str | None) -> tuple[list[StoredEntry], str | None]:
        """One page of entries in id order, and the next page's cursor."""
        def pages_from(token):
            return self._table.query_entities("PartitionKey eq @p", parameters={"p": PARTITION},
                                              results_per_page=limit).by_page(continuation_token=token)

        entities, next_cursor = one_page(pages_from, cursor)
        return [_from_entity(entity) for entity in entities], next_cursor


@forgotten_with_settings
@built_once
def get_catalog() -> CatalogStore:
    return CatalogStore(table(get_settings().catalog_table))
