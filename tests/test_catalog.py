"""The catalog's entries (shared.catalog, shared.storage.catalog, catalog_api): registered, read, listed,
replaced and removed through the registered functions, each checked as a pause body is."""

import json

import jsonschema
import pytest

from shared import catalog
from shared.errors import InvalidRequest
from shared.web import openapi
from tests.support import TARGET

ENTRY = {"title": "Backfill sales", "description": "Re-load one day of sales.", "target": TARGET,
         "approvers": ["Alice@contoso.com", "bob@contoso.com"], "requesters": ["carol@contoso.com", "*@Fabrikam.com"]}


class Catalog:
    """Calls the catalog's functions the way the host does (through tests/conftest.py's Api)."""

    def __init__(self, api):
        self.api = api

    def put(self, entry, body=None, **fields):
        raw = json.dumps({**ENTRY, **fields} if body is None else body).encode()
        return self.api.call("put_catalog_entry", "PUT", f"catalog/{entry}", body=raw,
                             headers={"Content-Type": "application/json"}, route_params={"entry": entry})

    def get(self, entry):
        return self.api.call("get_catalog_entry", "GET", f"catalog/{entry}", route_params={"entry": entry})

    def delete(self, entry):
        return self.api.call("delete_catalog_entry", "DELETE", f"catalog/{entry}", route_params={"entry": entry})

    def list(self, **params):
        return self.api.call("list_catalog", "GET", "catalog", params={k: str(v) for k, v in params.items()})


@pytest.fixture
def entries(api, smtp):
    """The catalog's API, with an SMTP server: an entry's requests email its approvers unless it names channels."""
    return Catalog(api)


def conforms(record: dict, schema: str) -> None:
    document = openapi.document()
    jsonschema.Draft202012Validator({**document["components"]["schemas"][schema], "components": document[
        "components"]}).validate(json.loads(json.dumps(record)))


def fields_of(response) -> list:
    return [error["field"] for error in json.loads(response.get_body())["errors"]]


def test_an_entry_is_registered_read_listed_and_removed(entries):
    created = entries.put("backfill-sales")
    assert created.status_code == 201, created.get_body()
    record = json.loads(created.get_body())
    assert created.headers["Location"].endswith("/api/catalog/backfill-sales")
    assert record["entry"] == "backfill-sales" and record["title"] == "Backfill sales"
    assert record["approvers"] == ["alice@contoso.com", "bob@contoso.com"]  # as they are compared
    assert record["requesters"] == ["carol@contoso.com", "*@fabrikam.com"]
    assert record["updated_by"] == "api (function key)" and record["updated_at"].endswith("Z")
    conforms(record, "CatalogEntry")
    read = entries.get("backfill-sales")
    assert read.status_code == 200 and json.loads(read.get_body()) == record
    listed = json.loads(entries.list().get_body())
    assert listed == {"items": [record], "cursor": None}
    conforms(listed, "CatalogPage")
    assert entries.delete("backfill-sales").status_code == 204
    assert entries.get("backfill-sales").status_code == 404
    assert json.loads(entries.list().get_body())["items"] == []


def test_putting_an_entry_again_replaces_it_with_200(entries):
    assert entries.put("export", form="pipeline", expires_in=3600).status_code == 201
    replaced = entries.put("export", title="Export, v2", required_approvals=2)
    assert replaced.status_code == 200 and "Location" not in replaced.headers
    record = json.loads(entries.get("export").get_body())
    assert record["title"] == "Export, v2" and record["required_approvals"] == 2
    assert "form" not in record and "expires_in" not in record  # replaced, not merged


def test_a_pipeline_form_is_stored_as_given_so_a_request_reads_the_pipeline_afresh(entries):
    created = entries.put("with-form", form="pipeline")
    assert created.status_code == 201, created.get_body()
    assert json.loads(entries.get("with-form").get_body())["form"] == "pipeline"


def test_a_listed_form_must_fit_the_pipeline(entries):
    refused = entries.put("typed", form=[{"name": "day", "type": "integer"}])
    assert refused.status_code == 400 and fields_of(refused) == ["form[0].type"]
    assert entries.put("typed", form=[{"name": "day", "type": "string"}]).status_code == 201


@pytest.mark.parametrize("entry", ["Upper", "-lead", "a_b", "x" * 64, "dots.no"])
def test_a_bad_entry_id_is_refused_naming_entry(entries, entry):
    refused = entries.put(entry)
    assert refused.status_code == 400 and fields_of(refused) == ["entry"]
    assert fields_of(entries.get(entry)) == ["entry"] and fields_of(entries.delete(entry)) == ["entry"]


@pytest.mark.parametrize("missing", ["title", "target", "approvers", "requesters"])
def test_each_required_field_is_named_when_missing(entries, missing):
    refused = entries.put("needs", {key: value for key, value in ENTRY.items() if key != missing})
    assert refused.status_code == 400 and fields_of(refused) == [missing]


@pytest.mark.parametrize("requester, field", [("*@", "requesters[0]"), ("bob@@x.com", "requesters[0]"),
                                              ("*@nodot", "requesters[0]"), ("not an address", "requesters[0]")])
def test_a_requester_must_be_an_identity_or_a_domain_pattern(entries, requester, field):
    refused = entries.put("who", requesters=[requester])
    assert refused.status_code == 400 and fields_of(refused) == [field]


def test_requesters_are_1_to_50_and_named_once(entries):
    assert fields_of(entries.put("who", requesters=[])) == ["requesters"]
    assert fields_of(entries.put("who", requesters=[f"p{i}@contoso.com" for i in range(51)])) == ["requesters"]
    assert fields_of(entries.put("who", requesters=["a@contoso.com", "A@contoso.com"])) == ["requesters"]


def test_the_target_is_checked_field_by_field_and_a_quorum_must_be_reachable(entries):
    refused = entries.put("bad", target={**TARGET, "factory_name": "x", "surprise": 1}, required_approvals=3)
    assert refused.status_code == 400
    assert set(fields_of(refused)) == {"target.factory_name", "target.surprise"}
    assert fields_of(entries.put("bad", required_approvals=3)) == ["required_approvals"]


def test_an_unknown_pipeline_is_refused_naming_it(entries):
    refused = entries.put("ghost", target={**TARGET, "pipeline_name": "No_Such"})
    assert refused.status_code == 400 and fields_of(refused) == ["target.pipeline_name"]
    assert entries.get("ghost").status_code == 404  # nothing stored


def test_a_factory_not_allowed_is_refused_403(entries, configure):
    configure(ALLOWED_FACTORIES="*/rg-other/*")
    assert entries.put("elsewhere").status_code == 403
    assert entries.get("elsewhere").status_code == 404


def test_an_entry_over_the_size_limit_is_413_naming_nothing_else(entries):
    """Each field within its own limits, the whole over what one entry may hold (MAX_ENTRY_BYTES)."""
    form = [{"name": f"f{i}", "type": "choice", "choices": [f"{n:03d}" + "c" * 147 for n in range(100)]}
            for i in range(10)]
    refused = entries.put("big", form=form)
    assert refused.status_code == 413 and fields_of(refused) == ["(body)"]
    assert entries.put("big", description="x" * 600 * 1024).status_code == 413  # over any body's limit
    assert entries.get("big").status_code == 404


def test_unknown_entries_answer_404(entries):
    assert entries.get("nobody").status_code == 404
    assert entries.delete("nobody").status_code == 404


def test_entries_are_listed_in_id_order_a_page_at_a_time(entries):
    for entry in ("c-entry", "a-entry", "b-entry"):
        assert entries.put(entry).status_code == 201
    first = json.loads(entries.list(limit=2).get_body())
    assert [item["entry"] for item in first["items"]] == ["a-entry", "b-entry"] and first["cursor"]
    assert "cursor=" in first["next_url"] and "/api/catalog?" in first["next_url"]
    second = json.loads(entries.list(limit=2, cursor=first["cursor"]).get_body())
    assert [item["entry"] for item in second["items"]] == ["c-entry"] and second["cursor"] is None
    assert fields_of(entries.list(cursor="not-a-cursor")) == ["cursor"]
    assert fields_of(entries.list(limit=0)) == ["limit"]


def test_the_body_declaration_is_what_the_document_publishes():
    assert openapi.document()["components"]["schemas"]["CatalogEntryRequest"] == catalog.ENTRY_BODY.schema()
    with pytest.raises(InvalidRequest):
        catalog.parse_entry({**ENTRY, "title": "   "})
    assert catalog.parse_entry(ENTRY)["requesters"] == ["carol@contoso.com", "*@fabrikam.com"]


def test_an_entry_whose_approvers_could_not_be_told_is_refused(api):
    """Without notify a request emails the approvers: with no SMTP server configured that cannot work."""
    refused = Catalog(api).put("quiet")
    assert refused.status_code == 400 and fields_of(refused) == ["notify"]
    assert "SMTP" in json.loads(refused.get_body())["detail"]
    assert Catalog(api).get("quiet").status_code == 404
