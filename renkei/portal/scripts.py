"""The routes of the page's own checking: the script and the schemas it reads records with.

``GET /static/verify.js`` is the one script the pages load (CSP ``script-src 'self'``: no
inline script, no ``eval``); ``GET /api/schemas`` the Avro schemas of records and tree
heads by fingerprint (:func:`.evidence.schemas_json`). Neither is about a person, so
neither needs a session.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from .evidence import schemas_json

__all__ = ["SCRIPT_PATH", "add_script_routes"]

SCRIPT_PATH = "/static/verify.js"


def add_script_routes(app: FastAPI) -> None:
    """Serve the checking script and the schemas on ``app``."""
    script = files("renkei.portal").joinpath("static/verify.js").read_bytes()
    schemas = schemas_json()

    @app.get(SCRIPT_PATH)
    async def verify_js() -> Response:
        return Response(script, media_type="text/javascript; charset=utf-8")

    @app.get("/api/schemas")
    async def api_schemas() -> Response:
        return JSONResponse({"schemas": schemas})
