"""The history page checked by a real browser (headless Chromium through chromedriver):
its script proves every row against the signed tree head with WebCrypto, and says ✗ for
a record whose bytes the portal altered or a row that does not show what its record
says; and the Japanese is drawn with real glyphs, not empty boxes.

No Kafka: the portal's index is filled from a trail built here (tests/unit/
test_portal_evidence.py), through the same TrailVerifier as a live portal.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from renkei.auditchain import AuditSigner
from renkei.crypto import SigningKey
from renkei.portal import PortalIndex, login_message
from tests.integration.test_portal import ELEMENT, Browser, chromium, serving
from tests.unit.test_audit_portal import Citizen
from tests.unit.test_portal_evidence import ALICE, ALICE_KEY, CODEC, alices_portal

ROWS = 6  # Alice's records in alices_trail


async def elements(browser: Browser, css: str) -> list[str]:
    found = await browser.call("POST", "/elements", {"using": "css selector", "value": css})
    return [e[ELEMENT] for e in found]


async def attribute(browser: Browser, element: str, name: str) -> str | None:
    value: str | None = await browser.call("GET", f"/element/{element}/attribute/{name}")
    return value


async def verdicts(browser: Browser) -> list[tuple[str | None, str | None]]:
    """(data-verdict, data-reason) of each table row, once the script is done."""
    await browser.wait_for('#verify[data-state="done"]', timeout_s=30)
    return [
        (
            await attribute(browser, row, "data-verdict"),
            await attribute(browser, row, "data-reason"),
        )
        for row in await elements(browser, "tr.record")
    ]


@asynccontextmanager
async def alice_logged_in(tmp_path: Path) -> AsyncIterator[tuple[Browser, str, PortalIndex]]:
    """Alice's portal served, and a browser logged in through the login form."""
    citizens = tmp_path / "citizens.json"
    alice = Citizen(ALICE, citizens, ALICE_KEY)
    index, app = alices_portal(AuditSigner(SigningKey.generate()), citizens)
    async with serving(app) as base, chromium(tmp_path) as browser:
        await browser.open(base + "/")
        challenge = await browser.text("#challenge")
        signature = alice.key.sign(login_message("renkei-portal", challenge, ALICE))
        await browser.type("#resident_code", ALICE)
        await browser.type("#signature", base64.b64encode(signature).decode())
        await browser.click("#submit")
        await browser.wait_for("#logout")
        yield browser, base, index


def tamper(index: PortalIndex, step: str, **changes: Any) -> None:
    """Change what the portal holds for Alice's first row of ``step`` (as a compromised
    portal, or a store edited under it, would serve it)."""
    rows = index._rows[ALICE_KEY]
    at = next(i for i, row in enumerate(rows) if row.step == step)
    rows[at] = rows[at]._replace(**changes)
    index.answers.clear()  # behind the index's back: its answers would not change


async def test_the_browser_verifies_every_row(tmp_path: Path) -> None:
    async with alice_logged_in(tmp_path) as (browser, _, _):
        assert await verdicts(browser) == [("verified", None)] * ROWS
        status = await browser.text("#verify-status")
        assert f"{ROWS} of {ROWS} records verified in this browser" in status
        for event in await elements(browser, "li.event"):  # the timeline, too
            assert await attribute(browser, event, "data-verdict") == "verified"
        text = await browser.body_text()
        assert "✓ 検証済み" in text
        assert "not checked in this browser" not in text
        await browser.call("POST", "/window/rect", {"width": 1400, "height": 1500})
        await browser.screenshot(tmp_path / "history.png")
        if os.environ.get("RENKEI_SCREENSHOTS"):
            shutil.copy(tmp_path / "history.png", os.environ["RENKEI_SCREENSHOTS"])


async def test_altered_bytes_and_rows_that_misquote_their_record_show_a_cross(
    tmp_path: Path,
) -> None:
    async with alice_logged_in(tmp_path) as (browser, base, index):
        rows = index._rows[ALICE_KEY]
        forwarded = next(row for row in rows if row.step == "FORWARDED")
        altered = bytearray(forwarded.data)
        at = altered.index(b"pension.benefit_status")
        altered[at : at + 7] = b"PENSION"  # same length: still decodes, not the hub's record
        tamper(index, "FORWARDED", data=bytes(altered))
        tamper(index, "ANSWERED", legal_basis="番号法第19条第99号")  # shown, not in the bytes
        await browser.open(base + "/history")
        shown = dict(zip(["NOTIFIED"] * 3 + ["ANSWERED", "FORWARDED", "ENROLLED"],
                         await verdicts(browser), strict=False))  # fmt: skip
        assert shown["FORWARDED"] == (
            "failed", "not in the signed tree: the inclusion proof fails"
        )  # fmt: skip
        assert shown["ANSWERED"] == (
            "failed", "the page does not show what the record says (legal_basis)"
        )  # fmt: skip
        assert shown["ENROLLED"] == ("verified", None)
        assert "✗ 署名付きツリーに含まれていません" in await browser.body_text()
        assert f"{ROWS - 2} of {ROWS} records verified" in await browser.text("#verify-status")


async def test_a_head_signed_by_another_key_than_the_pinned_one_shows_a_cross(
    tmp_path: Path,
) -> None:
    async with alice_logged_in(tmp_path) as (browser, base, index):
        assert index.trail is not None
        index.trail.trusted.keys.clear()  # the page now carries no key that signed the heads
        index.answers.clear()
        await browser.open(base + "/history")
        assert (
            await verdicts(browser)
            == [("failed", "signed with a key this portal does not pin")] * ROWS
        )


async def test_a_head_whose_signature_does_not_verify_shows_a_cross(tmp_path: Path) -> None:
    async with alice_logged_in(tmp_path) as (browser, base, index):
        assert index.trail is not None
        state = index.trail._partitions[0]
        assert state.latest is not None
        data = bytearray(state.latest.data)
        _, content, _ = CODEC.signature_span(bytes(data))
        data[content] ^= 1  # the signature's first byte
        state.latest = dataclasses.replace(state.latest, data=bytes(data))
        index.answers.clear()
        await browser.open(base + "/history")
        assert (
            await verdicts(browser)
            == [("failed", "the tree head's signature does not verify")] * ROWS
        )
