"""What a citizen reads: records as JSON for the API, and the pages, from Jinja2 templates.

The templates (``templates/``) are rendered with autoescape on, so every value from the
trail or the directory — a legal basis, an agency's name — is text, never markup. The
history page is a table and a timeline; each row carries, as ``data-`` attributes, the
record fields its words were made from, which its script (``static/verify.js``) checks
against the record's bytes once it has proven them (:mod:`.evidence`).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from .auth import login_message
from .evidence import heads_json, keys_json, place_json, proof_json
from .index import PortalIndex, Row
from .labels import ITEMS, STEP_TITLES, describe, jst

__all__ = ["history_answer", "history_json", "history_page", "login_page", "record_json"]

_templates = Environment(
    loader=PackageLoader("renkei.portal", "templates"),
    autoescape=select_autoescape(["html"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _item(code: str) -> tuple[str, str]:
    return ITEMS.get(code, (code, code))


_ROWS_KEPT = 200_000  # records whose unchanging JSON is kept (about 1 KB each)


def record_json(index: PortalIndex, row: Row) -> dict[str, Any]:
    """One record as ``/api/history`` answers it, in Japanese and English, with its bytes
    and its proof. All but the proof is kept per record while the names stay the same."""
    kept = index.rows_json.get((row.partition, row.position)) if row.partition >= 0 else None
    if kept is not None and kept[0] is index.names and kept[1] is row:
        return kept[2] | proof_json(index.trail, row)
    names = index.names
    ja, en = describe(
        row.step, row.actor, row.requester, row.provider, row.scenario_id, row.items,
        row.error_code, names,
    )  # fmt: skip
    requester = row.requester or row.actor
    document = {
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
    } | place_json(row)  # fmt: skip
    if row.partition >= 0:
        if len(index.rows_json) >= _ROWS_KEPT:
            index.rows_json.clear()
        index.rows_json[(row.partition, row.position)] = (names, row, document)
    return document | proof_json(index.trail, row)


def history_json(
    index: PortalIndex, rows: list[Row], audit_key: str, complete: bool
) -> dict[str, Any]:
    """What ``/api/history`` answers: the records, the tree heads they are proven against
    (once each, with their bytes), and the session's audit key, which the page's script
    checks every record is about."""
    records = [record_json(index, r) for r in rows]
    return {"records": records, "heads": heads_json(index.trail, records),
            "audit_key": audit_key, "complete": complete}  # fmt: skip


_ANSWERS_KEPT = 256  # persons whose last answer is kept (a few MB for long histories)


def history_answer(index: PortalIndex, audit_key: str, complete: bool) -> bytes:
    """:func:`history_json` of the person's history, encoded; the same bytes again until
    :meth:`PortalIndex.version` changes."""
    key = (audit_key, complete, *index.version())
    answer = index.answers.get(key)
    if answer is None:
        document = history_json(index, index.history(audit_key), audit_key, complete)
        answer = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        index.answers[key] = answer
        while len(index.answers) > _ANSWERS_KEPT:
            index.answers.popitem(last=False)
    else:
        index.answers.move_to_end(key)
    return answer


def login_page(challenge: str, portal_id: str, error: str | None, status: int) -> HTMLResponse:
    """The login form around a fresh challenge, with ``error`` above it if any."""
    message = login_message(portal_id, challenge, "<住民票コード>").decode()
    document = _templates.get_template("login.html").render(
        challenge=challenge, message=message, error=error
    )
    return HTMLResponse(document, status)


def history_page(index: PortalIndex, rows: list[Row], complete: bool) -> HTMLResponse:
    """The history of ``rows`` (newest first) as a table and a timeline by day (JST)."""
    names = index.names
    shown: list[dict[str, Any]] = []
    for row in rows:
        ja, en = describe(
            row.step, row.actor, row.requester, row.provider, row.scenario_id, row.items,
            row.error_code, names,
        )  # fmt: skip
        title_ja, title_en = STEP_TITLES.get(row.step, (row.step, row.step))
        requester = row.requester or row.actor
        when = jst(row.occurred_ms)
        shown.append(
            {
                "record": f"{row.partition}:{row.position}" if row.partition >= 0 else "",
                "step": row.step,
                "when": when,
                "day": when[:10],
                "time": when[11:],
                "title_ja": title_ja,
                "title_en": title_en,
                "text_ja": ja,
                "text_en": en,
                "requester_id": requester,
                "requester": names.agency(requester),
                "provider_id": row.provider or "",
                "provider": None if row.provider is None else names.agency(row.provider),
                "duty": names.duties.get(row.scenario_id or ""),
                "legal_basis": row.legal_basis or "",
                "item_codes": " ".join(row.items),
                "item_labels": [_item(i) for i in row.items],
            }
        )
    days: list[tuple[str, list[dict[str, Any]]]] = []
    for entry in shown:
        if not days or days[-1][0] != entry["day"]:
            days.append((str(entry["day"]), []))
        days[-1][1].append(entry)
    trusted = index.trail.trusted if index.trail is not None else None
    key_list = [] if trusted is None else sorted(
        (key_id, base64.b64encode(public).decode()) for key_id, public in trusted.keys.items()
    )  # fmt: skip
    document = _templates.get_template("history.html").render(
        rows=shown, days=days, complete=complete, keys=keys_json(trusted), key_list=key_list
    )
    return HTMLResponse(document)
