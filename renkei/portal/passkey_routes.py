"""The passkey routes: the register page, its script, and the two ceremonies' JSON API.

==================================  ========================================================
``GET  /register``                  the registration page (resident code + registration code)
``GET  /static/passkey.js``         the script of the register and login pages (WebAuthn)
``POST /api/passkey/register/options``  ``{resident_code, registration_code}`` → creation options
``POST /api/passkey/register``      ``{challenge, credential}`` → ``{token}`` (+ cookie)
``GET  /api/passkey/login/options`` request options for any passkey of this portal
``POST /api/passkey/login``         ``{challenge, credential}`` → ``{token}`` (+ cookie)
==================================  ========================================================

Bodies are pydantic models with every field bounded (the WebAuthn JSON of a credential,
base64url strings, no other member); the POSTs take only ``application/json`` and count
against the same per-address login limit as the Ed25519 login. Every refusal is the same
401 ``{"error": "authentication failed"}`` (429 when throttled).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field

from renkei.errors import AuthenticationError, ThrottledError

from .passkeys import Passkeys
from .refusals import JSON, too_many

__all__ = [
    "AuthenticationCredentialIn",
    "PasskeyLogin",
    "PasskeyRegistration",
    "RegistrationCredentialIn",
    "RegistrationStart",
    "passkey_router",
]

SCRIPT_PATH = "/static/passkey.js"
_B64URL = r"^[A-Za-z0-9_-]+={0,2}$"
_SIGNED = r"^[A-Za-z0-9_.\-]+$"
_Transport = Literal["usb", "nfc", "ble", "internal", "hybrid", "cable", "smart-card"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RegistrationStart(_Strict):
    """The codes the citizen types on the register page."""

    resident_code: str = Field(pattern=r"^[0-9]{11}$", description="住民票コード, 11 digits.")
    registration_code: str = Field(
        min_length=24, max_length=40, pattern=r"^[A-Za-z2-7 -]+$",
        description="The one-time code from the registry's counter (24 base32 characters).",
    )  # fmt: skip


class _Attestation(_Strict):
    clientDataJSON: str = Field(min_length=1, max_length=4096, pattern=_B64URL)
    attestationObject: str = Field(min_length=1, max_length=8192, pattern=_B64URL)
    transports: list[_Transport] = Field(default_factory=list, max_length=8)


class _Assertion(_Strict):
    clientDataJSON: str = Field(min_length=1, max_length=4096, pattern=_B64URL)
    authenticatorData: str = Field(min_length=1, max_length=2048, pattern=_B64URL)
    signature: str = Field(min_length=1, max_length=1024, pattern=_B64URL)
    userHandle: str | None = Field(default=None, max_length=128, pattern=_B64URL)


class _Credential(_Strict):
    id: str = Field(min_length=1, max_length=1400, pattern=_B64URL)
    rawId: str = Field(min_length=1, max_length=1400, pattern=_B64URL)
    type: Literal["public-key"]
    clientExtensionResults: dict[str, bool] = Field(default_factory=dict, max_length=8)
    authenticatorAttachment: Literal["platform", "cross-platform"] | None = None


class RegistrationCredentialIn(_Credential):
    """What ``navigator.credentials.create()`` gave, as WebAuthn's JSON."""

    response: _Attestation


class AuthenticationCredentialIn(_Credential):
    """What ``navigator.credentials.get()`` gave, as WebAuthn's JSON."""

    response: _Assertion


class PasskeyRegistration(_Strict):
    """The end of a registration ceremony."""

    challenge: str = Field(min_length=1, max_length=512, pattern=_SIGNED)
    credential: RegistrationCredentialIn


class PasskeyLogin(_Strict):
    """The end of a login ceremony."""

    challenge: str = Field(min_length=1, max_length=512, pattern=_SIGNED)
    credential: AuthenticationCredentialIn


_templates = Environment(
    loader=PackageLoader("renkei.portal", "templates"),
    autoescape=select_autoescape(["html"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_FAILED = {"error": "authentication failed"}


def passkey_router(
    passkeys: Passkeys,
    per_ip: Callable[[Any], Any],
    with_cookie: Callable[[Response, str], Response],
) -> APIRouter:
    """The routes, for ``create_app`` to include.

    :param per_ip: the app's per-address login limit (a slowapi decorator).
    :param with_cookie: sets the session cookie on an answer.
    """
    router = APIRouter()
    script = files("renkei.portal").joinpath("static/passkey.js").read_bytes()

    def signed_in(token: str, ttl_s: int) -> Response:
        return with_cookie(JSONResponse({"token": token, "expires_in_s": ttl_s}), token)

    @router.get("/register")
    async def page_register() -> Response:
        return HTMLResponse(_templates.get_template("register.html").render())

    @router.get(SCRIPT_PATH)
    async def passkey_js() -> Response:
        return Response(script, media_type="text/javascript; charset=utf-8")

    @router.post("/api/passkey/register/options", dependencies=[JSON])
    @per_ip
    async def register_options(request: Request, body: RegistrationStart) -> Response:
        try:
            options = passkeys.registration_options(body.resident_code, body.registration_code)
        except ThrottledError:
            return too_many()
        except AuthenticationError:
            return JSONResponse(_FAILED, 401)
        return JSONResponse(options)

    @router.post("/api/passkey/register", dependencies=[JSON])
    @per_ip
    async def register(request: Request, body: PasskeyRegistration) -> Response:
        try:
            token, _ = await passkeys.register(body.challenge, body.credential.model_dump())
        except ThrottledError:
            return too_many()
        except AuthenticationError:
            return JSONResponse(_FAILED, 401)
        return signed_in(token, int(passkeys.auth.session_ttl_s))

    @router.get("/api/passkey/login/options")
    async def login_options() -> Response:
        return JSONResponse(passkeys.login_options())

    @router.post("/api/passkey/login", dependencies=[JSON])
    @per_ip
    async def login(request: Request, body: PasskeyLogin) -> Response:
        try:
            token, _ = await passkeys.login(body.challenge, body.credential.model_dump())
        except ThrottledError:
            return too_many()
        except AuthenticationError:
            return JSONResponse(_FAILED, 401)
        return signed_in(token, int(passkeys.auth.session_ttl_s))

    return router
