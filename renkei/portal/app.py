"""マイ・ポータル: the citizen's view of the audit trail (FastAPI; an API and a plain page).

=========================  =============================================================
``GET  /api/challenge``    a signed, short-lived challenge to sign
``POST /api/login``        JSON ``{resident_code, challenge, signature}`` → ``{token}`` (+ cookie)
``GET  /api/history``      the session's own records (``Authorization: Bearer`` or cookie),
                           each with its bytes, inclusion proof and signed tree head
``GET  /api/schemas``      the Avro schemas of records and tree heads, by fingerprint
``GET  /static/verify.js`` the history page's script: checks every record in the browser
``POST /api/logout``       ends the session
``GET  /``                 the login page (server-rendered HTML)
``POST /login``            the login form → ``/history``
``GET  /history``          the history page, in Japanese and English
``POST /logout``           ends the session → ``/``
``/register``, ``/api/passkey/*``  passkeys: :mod:`.passkey_routes`
``GET  /healthz``          what is indexed, what waits or was rejected; 503 unless caught up
``GET  /metrics``          Prometheus text: the witness's alarms and tree sizes
=========================  =============================================================

Every answer about a person comes from the session's audit key: there is no parameter
naming a person, so a citizen cannot ask for anyone else's records. Bodies are pydantic
models; anything malformed is a 4xx with a short reason that never echoes the input.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slowapi import Limiter
from slowapi.util import get_remote_address

from renkei.errors import AuthenticationError, ConfigurationError, ThrottledError
from renkei.topics import Topics
from schemas.codec import Codec

from .auth import Authenticator, Session
from .guard import Guard
from .index import PortalIndex
from .pages import history_answer, history_page, login_page
from .passkey_routes import passkey_router
from .passkeys import Passkeys
from .refusals import FAILED, FORM, JSON, THROTTLED, LoginRequest, add_refusals, too_many
from .scripts import add_script_routes
from .settings import PortalTrust

__all__ = ["COOKIE", "LoginLimits", "LoginRequest", "create_app"]

COOKIE = "renkei_session"


@dataclass(frozen=True)
class LoginLimits:
    """Rate limits on logging in (``limits`` notation), counted in ``storage_uri``.

    :param per_ip: attempts per client address, failed or not.
    :param storage_uri: a ``limits`` storage; ``memory://`` counts per process.
    """

    per_ip: str = "60/minute"
    storage_uri: str = "memory://"


def create_app(
    index: PortalIndex,
    auth: Authenticator,
    *,
    kafka: dict[str, Any] | None = None,
    topics: Topics | None = None,
    codec: Codec | None = None,
    trust: PortalTrust | None = None,
    limits: LoginLimits | None = None,
    tls: bool = False,
    stale_after_s: float = 300,
    passkeys: Passkeys | None = None,
) -> FastAPI:
    """The portal app. With ``kafka``, ``topics``, ``codec`` and ``trust`` it follows the
    trail itself, believing only what verifies against ``trust``; without, ``index`` is
    filled by the caller (tests, the benchmark).

    :param limits: login rate limits (default :class:`LoginLimits`).
    :param tls: served over HTTPS: ``Secure`` cookies and HSTS.
    :param stale_after_s: ``/healthz`` says "stuck" once a record waited this long.
    :param passkeys: passkey registration and login (:mod:`.passkey_routes`); with
        ``kafka`` and ``topics`` it follows their topics itself.
    :raises ConfigurationError: Kafka without pinned trust, or a trail without verifier.
    """
    following = kafka is not None and topics is not None and codec is not None
    if following and (trust is None or index.trail is None):
        raise ConfigurationError("the portal follows Kafka only with pinned keys and a verifier")
    limits = limits or LoginLimits()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        from .follow import follow
        from .passkey_follow import start_following

        task = None
        if kafka is not None and topics is not None and codec is not None and trust is not None:
            task = asyncio.create_task(follow(index, kafka, topics, codec, trust))
        stop_passkeys = start_following(passkeys, kafka, topics)
        try:
            yield
        finally:
            await stop_passkeys()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="Renkei portal", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    limiter = Limiter(
        key_func=get_remote_address, strategy="moving-window",
        storage_uri=limits.storage_uri, key_prefix="renkei-portal",
    )  # fmt: skip
    app.state.limiter = limiter
    app.add_middleware(Guard, tls=tls)
    add_refusals(app, auth)
    add_script_routes(app)
    per_ip = limiter.shared_limit(limits.per_ip, scope="login")

    def token_of(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip()
        return request.cookies.get(COOKIE)

    def session_of(request: Request) -> Session | None:
        return auth.session(token_of(request))

    def with_cookie(response: Response, token: str) -> Response:
        response.set_cookie(
            COOKIE, token, max_age=int(auth.session_ttl_s), httponly=True,
            samesite="strict", secure=tls, path="/",
        )  # fmt: skip
        return response

    if passkeys is not None:
        app.include_router(passkey_router(passkeys, per_ip, with_cookie))

    def complete() -> bool:
        return bool(index.health(stale_after_s)["caught_up"])

    # -- API -------------------------------------------------------------------------

    @app.get("/api/challenge")
    async def api_challenge() -> Response:
        return JSONResponse(
            {
                "challenge": auth.challenge(),
                "expires_in_s": int(auth.challenge_ttl_s),
                "portal_id": auth.portal_id,
                "sign": "Ed25519 over UTF-8 'renkei-portal-login/v1\\n<portal_id>\\n"
                "<challenge>\\n<resident_code>'",
            }
        )

    @app.post("/api/login", dependencies=[JSON])
    @per_ip
    async def api_login(request: Request, body: LoginRequest) -> Response:
        try:
            token, _ = auth.login(body.resident_code, body.challenge, body.signature)
        except ThrottledError:
            return too_many()
        except AuthenticationError:
            return JSONResponse({"error": "authentication failed"}, 401)
        response = JSONResponse({"token": token, "expires_in_s": int(auth.session_ttl_s)})
        return with_cookie(response, token)

    @app.get("/api/history")
    async def api_history(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return JSONResponse({"error": "not logged in"}, 401)
        answer = history_answer(index, session.audit_key, complete())
        return Response(answer, media_type="application/json")

    @app.post("/api/logout")
    async def api_logout(request: Request) -> Response:
        auth.logout(token_of(request))
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/healthz")
    async def healthz() -> Response:
        health = index.health(stale_after_s)
        return JSONResponse(health, 200 if health["caught_up"] else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        # The process's default registry: the witness's renkei_witness_alarms_total{kind}
        # and renkei_witness_tree_size{partition} (counts and sizes, nobody's records).
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # -- pages -----------------------------------------------------------------------

    @app.get("/")
    async def page_login(request: Request) -> Response:
        if session_of(request) is not None:
            return RedirectResponse("/history", 303)
        return login_page(auth.challenge(), auth.portal_id, None, 200)

    @app.post("/login", dependencies=[FORM])
    @per_ip
    async def page_login_post(request: Request, form: Annotated[LoginRequest, Form()]) -> Response:
        try:
            token, _ = auth.login(form.resident_code, form.challenge, form.signature)
        except ThrottledError:
            return login_page(auth.challenge(), auth.portal_id, THROTTLED, 429)
        except AuthenticationError:
            return login_page(auth.challenge(), auth.portal_id, FAILED, 401)
        return with_cookie(RedirectResponse("/history", 303), token)

    @app.get("/history")
    async def page_history(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return RedirectResponse("/", 303)
        return history_page(index, index.history(session.audit_key), complete())

    @app.post("/logout")
    async def page_logout(request: Request) -> Response:
        auth.logout(token_of(request))
        response = RedirectResponse("/", 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return app
