"""HTTP entry point that publishes the API's OpenAPI 3.1 description (anonymous)."""

import azure.functions as func

from shared.web import http as web
from shared.web import openapi

bp = func.Blueprint()


@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@web.handles_errors
def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    """Serve the OpenAPI document, generated from the declarations that validate requests."""
    return web.json_response(openapi.document())
