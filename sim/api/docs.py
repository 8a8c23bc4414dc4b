"""``/docs`` without internet access: Swagger UI's assets served by sim itself.

quart-schema renders the ``/docs`` page and, by default, points it at Swagger UI on a
CDN, so the page is blank offline. Here its two assets (the script bundle and the style
sheet) come from the ``swagger-ui-py`` package instead, which ships Swagger UI's
distribution files (5.x: the OpenAPI 3.1 document needs it).
"""

from __future__ import annotations

import logging
from functools import cache
from importlib.metadata import distribution
from pathlib import Path

from quart import Blueprint, Quart, Response, send_from_directory
from quart_schema import hide

__all__ = ["ASSETS_PATH", "register_docs", "swagger_ui_dir"]

log = logging.getLogger(__name__)

#: where the page loads its assets from
ASSETS_PATH = "/docs/assets"
#: how long a browser may keep them (they change only with the package)
MAX_AGE_S = 24 * 3600

docs_assets = Blueprint("docs_assets", __name__)


@cache
def swagger_ui_dir() -> Path:
    """The folder of Swagger UI's files inside the installed ``swagger-ui-py`` package.

    Found through the distribution's metadata: importing ``swagger_ui`` would load its
    framework integrations, none of which sim uses.
    """
    return Path(str(distribution("swagger-ui-py").locate_file("swagger_ui/static")))


@docs_assets.get(f"{ASSETS_PATH}/<path:filename>")
@hide
async def asset(filename: str) -> Response:
    """A Swagger UI file (not part of the API document); 404 for anything else."""
    response = await send_from_directory(swagger_ui_dir(), filename)
    response.cache_control.public = True
    response.cache_control.max_age = MAX_AGE_S
    return response


def register_docs(app: Quart) -> None:
    """Serve Swagger UI's assets and point quart-schema's ``/docs`` page at them."""
    app.config["QUART_SCHEMA_SWAGGER_JS_URL"] = f"{ASSETS_PATH}/swagger-ui-bundle.js"
    app.config["QUART_SCHEMA_SWAGGER_CSS_URL"] = f"{ASSETS_PATH}/swagger-ui.css"
    app.register_blueprint(docs_assets)
    log.debug("Swagger UI assets from %s", swagger_ui_dir())
