"""マイ・ポータル: the citizen's view of the audit trail (FastAPI; an API and a plain page).

=========================  =============================================================
``GET  /api/challenge``    a single-use challenge to sign
``POST /api/login``        ``{resident_code, challenge, signature}`` → ``{token}`` (+ cookie)
``GET  /api/history``      the session's own records (``Authorization: Bearer`` or cookie)
``POST /api/logout``       ends the session
``GET  /``                 the login page (server-rendered HTML, no script)
``POST /login``            the login form → ``/history``
``GET  /history``          the history page, in Japanese and English
``POST /logout``           ends the session → ``/``
``GET  /healthz``          records indexed, persons, caught up with the trail
=========================  =============================================================

Every answer about a person comes from the session's audit key: there is no parameter
naming a person, so a citizen cannot ask for anyone else's records.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import html
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from renkei.errors import AuthenticationError
from renkei.topics import Topics
from schemas.codec import Codec

from .auth import Authenticator, Session, login_message
from .index import PortalIndex, Row
from .labels import ITEMS, STEP_TITLES, describe, jst

__all__ = ["COOKIE", "create_app"]

COOKIE = "renkei_session"
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def create_app(
    index: PortalIndex,
    auth: Authenticator,
    *,
    kafka: dict[str, Any] | None = None,
    topics: Topics | None = None,
    codec: Codec | None = None,
    secure_cookies: bool = False,
) -> FastAPI:
    """The portal app. With ``kafka``, ``topics`` and ``codec`` it follows the trail itself;
    without, ``index`` is filled by the caller (tests, the benchmark).

    :param secure_cookies: mark the session cookie ``Secure`` (behind HTTPS).
    """

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = None
        if kafka is not None and topics is not None and codec is not None:
            task = asyncio.create_task(index.follow(kafka, topics, codec))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(title="Renkei portal", lifespan=lifespan, docs_url=None, redoc_url=None)

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
            samesite="strict", secure=secure_cookies, path="/",
        )  # fmt: skip
        return response

    def login(resident_code: str, challenge: str, signature: str) -> tuple[str, Session]:
        try:
            raw = base64.b64decode(signature.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise AuthenticationError("authentication failed") from exc
        return auth.login(resident_code.strip(), challenge.strip(), raw)

    # -- API -------------------------------------------------------------------------

    @app.get("/api/challenge")
    async def api_challenge() -> Response:
        challenge = auth.challenge()
        return JSONResponse(
            {
                "challenge": challenge,
                "expires_in_s": int(auth.challenge_ttl_s),
                "portal_id": auth.portal_id,
                "sign": "Ed25519 over UTF-8 'renkei-portal-login/v1\\n<portal_id>\\n"
                "<challenge>\\n<resident_code>'",
            },
            headers=_HEADERS,
        )

    @app.post("/api/login")
    async def api_login(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            token, _ = login(
                str(body["resident_code"]), str(body["challenge"]), str(body["signature"])
            )
        except (AuthenticationError, ValueError, KeyError, TypeError):
            return JSONResponse({"error": "authentication failed"}, 401, headers=_HEADERS)
        response = JSONResponse(
            {"token": token, "expires_in_s": int(auth.session_ttl_s)}, headers=_HEADERS
        )
        return with_cookie(response, token)

    @app.get("/api/history")
    async def api_history(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return JSONResponse({"error": "not logged in"}, 401, headers=_HEADERS)
        rows = index.history(session.audit_key)
        return JSONResponse(
            {"records": [_as_json(index, r) for r in rows], "complete": index.caught_up.is_set()},
            headers=_HEADERS,
        )

    @app.post("/api/logout")
    async def api_logout(request: Request) -> Response:
        auth.logout(token_of(request))
        response = JSONResponse({"ok": True}, headers=_HEADERS)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/healthz")
    async def healthz() -> Response:
        return JSONResponse(
            {
                "records": index.records,
                "persons": index.persons,
                "caught_up": index.caught_up.is_set(),
            }
        )

    # -- pages -----------------------------------------------------------------------

    @app.get("/")
    async def page_login(request: Request) -> Response:
        if session_of(request) is not None:
            return RedirectResponse("/history", 303)
        return _page(_login_body(auth.challenge(), auth.portal_id, None))

    @app.post("/login")
    async def page_login_post(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        try:
            token, _ = login(
                form.get("resident_code", ""), form.get("challenge", ""), form.get("signature", "")
            )
        except AuthenticationError:
            body = _login_body(
                auth.challenge(), auth.portal_id, "認証に失敗しました。 / Login failed."
            )
            return _page(body, 401)
        return with_cookie(RedirectResponse("/history", 303), token)

    @app.get("/history")
    async def page_history(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return RedirectResponse("/", 303)
        return _page(_history_body(index, index.history(session.audit_key)))

    @app.post("/logout")
    async def page_logout(request: Request) -> Response:
        auth.logout(token_of(request))
        response = RedirectResponse("/", 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return app


def _as_json(index: PortalIndex, row: Row) -> dict[str, Any]:
    names = index.names
    ja, en = describe(
        row.step, row.actor, row.requester, row.provider, row.scenario_id, row.items,
        row.error_code, names,
    )  # fmt: skip
    requester = row.requester or row.actor
    return {
        "occurred_at_ms": row.occurred_ms,
        "occurred_at_jst": jst(row.occurred_ms),
        "step": row.step,
        "requester": {"id": requester, "name_ja": names.agency(requester)[0],
                      "name_en": names.agency(requester)[1]},
        "provider": None if row.provider is None else {
            "id": row.provider, "name_ja": names.agency(row.provider)[0],
            "name_en": names.agency(row.provider)[1],
        },
        "scenario_id": row.scenario_id,
        "legal_basis": row.legal_basis,
        "items": [{"code": i, "ja": ITEMS.get(i, (i, i))[0], "en": ITEMS.get(i, (i, i))[1]}
                  for i in row.items],
        "outcome": row.error_code,
        "text_ja": ja,
        "text_en": en,
    }  # fmt: skip


# -- HTML ------------------------------------------------------------------------------

_STYLE = """
body{font-family:"Noto Sans CJK JP","Hiragino Sans",sans-serif;margin:2rem auto;max-width:60rem;
color:#1a1a1a;line-height:1.6;padding:0 1rem}
h1{font-size:1.4rem;border-bottom:3px solid #0050a0;padding-bottom:.3rem}
.en{color:#555;font-size:.9em}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccc;padding:.4rem .6rem;vertical-align:top;text-align:left}
th{background:#eef3fa}.error{color:#a00000;font-weight:bold}
textarea,input[type=text]{width:100%;font-family:monospace}code{word-break:break-all}
button{padding:.4rem 1.2rem}
"""


def _page(body: str, status: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="ja"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>マイ・ポータル / My Portal</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )
    return HTMLResponse(document, status, headers=_HEADERS)


def _login_body(challenge: str, portal_id: str, error: str | None) -> str:
    e = html.escape
    message = login_message(portal_id, challenge, "<住民票コード>").decode()
    problem = f'<p class="error" id="error">{e(error)}</p>' if error else ""
    return f"""
<h1>マイ・ポータル <span class="en">My Portal</span></h1>
<p>あなたの情報が、いつ、どの機関からどの機関へ、どの法令に基づいて照会・提供されたかを確認できます。
<br><span class="en">See when which agency asked which agency about you, for what,
under which law.</span></p>
{problem}
<form method="post" action="/login" id="login">
<p><label>住民票コード <span class="en">Resident code</span><br>
<input type="text" name="resident_code" id="resident_code" inputmode="numeric"
 autocomplete="off" required></label></p>
<p>チャレンジ <span class="en">Challenge</span>: <code id="challenge">{e(challenge)}</code></p>
<input type="hidden" name="challenge" value="{e(challenge)}">
<p class="en">Sign <code>{e(message)}</code> (lines separated by a newline) with your key —
<code>renkei portal sign --key &lt;your key file&gt; --resident-code &lt;code&gt;
--challenge {e(challenge)}</code>, standing in for the My Number card.</p>
<p><label>署名 <span class="en">Signature (base64)</span><br>
<textarea name="signature" id="signature" rows="3" required></textarea></label></p>
<p><button type="submit" id="submit">ログイン / Log in</button></p>
</form>"""


def _history_body(index: PortalIndex, rows: list[Row]) -> str:
    e = html.escape
    names = index.names
    lines = []
    for row in rows:
        ja, en = describe(
            row.step, row.actor, row.requester, row.provider, row.scenario_id, row.items,
            row.error_code, names,
        )  # fmt: skip
        title_ja, title_en = STEP_TITLES.get(row.step, (row.step, row.step))
        items = "<br>".join(
            f"{e(ITEMS.get(i, (i, i))[0])} <span class='en'>{e(ITEMS.get(i, (i, i))[1])}</span>"
            for i in row.items
        )
        lines.append(
            f'<tr class="record" data-step="{e(row.step)}"><td>{e(jst(row.occurred_ms))}</td>'
            f"<td>{e(title_ja)}<br><span class='en'>{e(title_en)}</span></td>"
            f"<td>{e(ja)}<br><span class='en'>{e(en)}</span></td>"
            f"<td>{e(row.legal_basis or '')}</td><td>{items}</td></tr>"
        )
    if not lines:
        table = "<p id='empty'>記録はありません。 <span class='en'>No records.</span></p>"
    else:
        table = (
            "<table id='history'><thead><tr><th>日時 <span class='en'>When (JST)</span></th>"
            "<th>種別 <span class='en'>Kind</span></th>"
            "<th>内容 <span class='en'>What happened</span></th>"
            "<th>根拠法令 <span class='en'>Legal basis</span></th>"
            "<th>項目 <span class='en'>Items</span></th></tr></thead><tbody>"
            + "".join(lines)
            + "</tbody></table>"
        )
    return f"""
<h1>あなたの情報の提供等記録 <span class="en">Your data exchange history</span></h1>
<p>照会・提供された情報の内容(値)は、この記録にも連携基盤にも保存されていません。
<br><span class="en">The values exchanged are never stored in this record,
nor by the hub.</span></p>
{table}
<form method="post" action="/logout"><p>
<button type="submit" id="logout">ログアウト / Log out</button></p></form>"""
