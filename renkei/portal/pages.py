"""What a citizen reads: records as JSON for the API, and the pages, from Jinja2 templates.

The templates (``templates/``) are rendered with autoescape on, so every value from the
trail or the directory — a legal basis, an agency's name — is text, never markup.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from .auth import login_message
from .index import PortalIndex, Row
from .labels import ITEMS, STEP_TITLES, describe, jst

__all__ = ["history_page", "login_page", "record_json"]

_templates = Environment(
    loader=PackageLoader("renkei.portal", "templates"),
    autoescape=select_autoescape(["html"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _item(code: str) -> tuple[str, str]:
    return ITEMS.get(code, (code, code))


def record_json(index: PortalIndex, row: Row) -> dict[str, Any]:
    """One record as ``/api/history`` answers it, in Japanese and English."""
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
        "items": [{"code": i, "ja": _item(i)[0], "en": _item(i)[1]} for i in row.items],
        "outcome": row.error_code,
        "text_ja": ja,
        "text_en": en,
    }  # fmt: skip


def login_page(challenge: str, portal_id: str, error: str | None, status: int) -> HTMLResponse:
    """The login form around a fresh challenge, with ``error`` above it if any."""
    message = login_message(portal_id, challenge, "<住民票コード>").decode()
    document = _templates.get_template("login.html").render(
        challenge=challenge, message=message, error=error
    )
    return HTMLResponse(document, status)


def history_page(index: PortalIndex, rows: list[Row], complete: bool) -> HTMLResponse:
    """The history table of ``rows`` (newest first)."""
    shown = []
    for row in rows:
        ja, en = describe(
            row.step, row.actor, row.requester, row.provider, row.scenario_id, row.items,
            row.error_code, index.names,
        )  # fmt: skip
        title_ja, title_en = STEP_TITLES.get(row.step, (row.step, row.step))
        shown.append(
            {
                "step": row.step,
                "when": jst(row.occurred_ms),
                "title_ja": title_ja,
                "title_en": title_en,
                "text_ja": ja,
                "text_en": en,
                "legal_basis": row.legal_basis or "",
                "item_labels": [_item(i) for i in row.items],
            }
        )
    document = _templates.get_template("history.html").render(rows=shown, complete=complete)
    return HTMLResponse(document)
