"""HTTP entry points for the catalog's entries (function key): register, read, list and remove the
pipelines people may ask to run. (Step 1 of the catalog: requesting a run comes next.)"""

import azure.functions as func

from shared import catalog, validation
from shared.web import http as web

bp = func.Blueprint()


@bp.route(route="catalog/{entry}", methods=["PUT"], auth_level=func.AuthLevel.FUNCTION)
@web.handles_errors
def put_catalog_entry(req: func.HttpRequest) -> func.HttpResponse:
    """Register or replace an entry: 201 with its Location when new, 200 when replaced."""
    record, created = catalog.put_entry(req.route_params.get("entry", ""), web.json_body(req), web.api_actor(req))
    if not created:
        return web.json_response(record)
    return web.json_response(record, 201, headers={"Location": f"{web.base_url(req)}/api/catalog/{record['entry']}"})


@bp.route(route="catalog/{entry}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@web.handles_errors
def get_catalog_entry(req: func.HttpRequest) -> func.HttpResponse:
    """One entry as stored."""
    return web.json_response(catalog.get_entry(req.route_params.get("entry", "")))


@bp.route(route="catalog/{entry}", methods=["DELETE"], auth_level=func.AuthLevel.FUNCTION)
@web.handles_errors
def delete_catalog_entry(req: func.HttpRequest) -> func.HttpResponse:
    """Remove an entry; requests already made from it are unaffected."""
    catalog.delete_entry(req.route_params.get("entry", ""), web.api_actor(req))
    return func.HttpResponse(status_code=204)


@bp.route(route="catalog", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@web.handles_errors
def list_catalog(req: func.HttpRequest) -> func.HttpResponse:
    """Entries in id order, a page at a time."""
    page = catalog.list_entries(validation.parse_limit(req.params.get("limit")), req.params.get("cursor"))
    if page["cursor"]:
        page["next_url"] = web.next_page_url(req, page["cursor"], "catalog")
    return web.json_response(page)
