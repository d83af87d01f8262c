"""What every portal response and request goes through: security headers and a body limit.

A plain ASGI middleware (no per-request task, unlike Starlette's ``BaseHTTPMiddleware``),
so it costs the history API next to nothing:

* every response gets a strict CSP (scripts only from the portal itself — the history
  page's ``/static/verify.js``; no inline script, no ``eval``; fetches only to the portal;
  no framing), ``nosniff``,
  ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer`` and ``Cache-Control:
  no-store`` (pages show personal data; a shared cache must never keep them), and HSTS
  when the portal is served over TLS;
* a request body must state its length (411 otherwise) and stay under
  ``max_body_bytes`` (413): a login is a few hundred bytes, and nobody gets to make the
  portal buffer megabytes.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SECURITY_HEADERS", "Guard"]

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; connect-src 'self'; "
    "style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_HSTS = "max-age=31536000; includeSubDomains"


class Guard:
    """Security headers on every response; a bounded, declared request body.

    :param app: the application.
    :param tls: served over HTTPS (HSTS is only meaningful there).
    :param max_body_bytes: the largest request body accepted.
    """

    def __init__(self, app: ASGIApp, *, tls: bool = False, max_body_bytes: int = 16_384) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        headers = dict(SECURITY_HEADERS)
        if tls:
            headers["Strict-Transport-Security"] = _HSTS
        self._headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self._headers:
                    if name.decode() not in headers:
                        headers.raw.append((name, value))
            await send(message)

        problem = self._body_problem(scope)
        if problem is not None:
            status, text = problem
            await JSONResponse({"error": text}, status)(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _body_problem(self, scope: Scope) -> tuple[int, str] | None:
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return None
        length = Headers(scope=scope).get("content-length")
        if length is None:
            chunked = "chunked" in Headers(scope=scope).get("transfer-encoding", "").lower()
            return (411, "a request body needs a Content-Length") if chunked else None
        if not length.isdigit():
            return 400, "bad Content-Length"
        if int(length) > self.max_body_bytes:
            return 413, "request body too large"
        return None
