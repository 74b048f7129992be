"""The Function App: create it and register the blueprints; the logic lives in `shared/`."""

import logging

import azure.functions as func

from api_docs import bp as docs_bp
from catalog_api import bp as catalog_bp
from console import bp as console_bp
from expire_pauses import bp as expire_bp
from holds_api import bp as holds_bp
from pause_pipeline import bp as pause_bp
from reassign_approver import bp as reassign_bp
from request_pages import bp as request_bp
from restart_pipeline import bp as restart_bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(pause_bp)
app.register_functions(restart_bp)
app.register_functions(expire_bp)
app.register_functions(docs_bp)
app.register_functions(holds_bp)
app.register_functions(console_bp)
app.register_functions(reassign_bp)
app.register_functions(catalog_bp)
app.register_functions(request_bp)

# Quiet the SDKs' per-request HTTP logging; our own modules log one line per decision.
logging.getLogger("azure").setLevel(logging.WARNING)
