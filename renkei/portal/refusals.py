"""What the portal accepts, and how it refuses the rest.

A login is a pydantic model (:class:`LoginRequest`) whether it comes as JSON or as the
page's form; each endpoint states the one content type it takes (415 otherwise). Every
refusal is a 4xx in the API's JSON — or, for the form, the login page again with a
message — and never quotes the input back (FastAPI's default 422 does).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from slowapi.errors import RateLimitExceeded
from starlette.exceptions import HTTPException as StarletteHTTPException

from .auth import Authenticator
from .pages import login_page

__all__ = [
    "FAILED",
    "FORM",
    "JSON",
    "THROTTLED",
    "LoginRequest",
    "add_refusals",
    "too_many",
]

FAILED = "認証に失敗しました。 / Login failed."
THROTTLED = "試行回数が多すぎます。しばらくしてからお試しください。 / Too many attempts; try later."
_INVALID = "入力が正しくありません。 / The form was not filled in correctly."


class LoginRequest(BaseModel):
    """A signed challenge, as ``POST /api/login`` and the login form carry it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    resident_code: str = Field(pattern=r"^[0-9]{11}$", description="住民票コード, 11 digits.")
    challenge: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_.\-]+$")
    signature: str = Field(min_length=1, max_length=256, description="Ed25519, base64.")


def _content_type(*accepted: str) -> Callable[[Request], Awaitable[None]]:
    async def check(request: Request) -> None:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in accepted:
            raise HTTPException(415, f"send {' or '.join(accepted)}")

    return check


JSON = Depends(_content_type("application/json"))
FORM = Depends(_content_type("application/x-www-form-urlencoded"))


def too_many() -> Response:
    return JSONResponse({"error": "too many attempts"}, 429, headers={"Retry-After": "60"})


def add_refusals(app: FastAPI, auth: Authenticator) -> None:
    """4xx answers in the API's JSON, or the login page again for the form; never the
    input echoed back (FastAPI's default 422 quotes it)."""

    def is_page(request: Request) -> bool:
        return not request.url.path.startswith("/api/")

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if is_page(request):
            return login_page(auth.challenge(), auth.portal_id, _INVALID, 422)
        fields = sorted({".".join(str(p) for p in e.get("loc", ())[1:]) for e in exc.errors()})
        return JSONResponse({"error": "invalid request", "fields": fields}, 422)

    async def throttled(request: Request, exc: Exception) -> Response:
        if is_page(request):
            return login_page(auth.challenge(), auth.portal_id, THROTTLED, 429)
        return too_many()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if is_page(request) and request.method == "POST" and request.url.path == "/login":
            return login_page(auth.challenge(), auth.portal_id, _INVALID, exc.status_code)
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(RateLimitExceeded, throttled)
    app.add_exception_handler(StarletteHTTPException, http_error)
