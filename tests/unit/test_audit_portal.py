"""The portal without Kafka: authentication, isolation between citizens, non-disclosure."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from renkei.audit.disclosure import Release, sign_release
from renkei.crypto import SigningKey
from renkei.errors import SignatureError
from renkei.portal import (
    Authenticator,
    CitizenRegistry,
    PortalIndex,
    create_app,
    login_message,
    register_citizen,
)
from renkei.portal.labels import Names
from schemas.models import AuditRecord, AuditStep, Header

ALICE, BOB = "10000000001", "10000000002"
ALICE_KEY, BOB_KEY = "a" * 32, "b" * 32
LEGAL = "番号法第19条第8号 主務省令第2条の表 第26項"


def record(audit_key: str, step: AuditStep, **fields: Any) -> AuditRecord:
    return AuditRecord(
        header=Header.new("hub"),
        audit_key=audit_key,
        step=step,
        actor=fields.pop("actor", "city-shinagawa"),
        items=fields.pop("items", ()),
        occurred_at=datetime(2026, 4, 1, 1, 2, tzinfo=UTC),
        prev_hash=bytes(32),
        **fields,
    )


def forwarded(audit_key: str, **fields: Any) -> AuditRecord:
    defaults: dict[str, Any] = {
        "requester": "city-shinagawa", "provider": "jps", "scenario_id": "S003",
        "legal_basis": LEGAL, "items": ("pension.benefit_status",), "hub_request_id": "h" * 32,
    }  # fmt: skip
    return record(audit_key, AuditStep.FORWARDED, **(defaults | fields))


class Citizen:
    def __init__(self, resident_code: str, citizens: Path, audit_key: str) -> None:
        self.resident_code = resident_code
        self.key = SigningKey.generate()
        register_citizen(citizens, resident_code, self.key.public_bytes, audit_key)

    async def login(self, client: httpx.AsyncClient) -> str:
        challenge = (await client.get("/api/challenge")).json()["challenge"]
        signature = self.key.sign(login_message("renkei-portal", challenge, self.resident_code))
        response = await client.post(
            "/api/login",
            json={"resident_code": self.resident_code, "challenge": challenge,
                  "signature": base64.b64encode(signature).decode()},
        )  # fmt: skip
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token


Portal = tuple[httpx.AsyncClient, PortalIndex, Citizen, Citizen]


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[Portal]:
    citizens = tmp_path / "citizens.json"
    alice, bob = Citizen(ALICE, citizens, ALICE_KEY), Citizen(BOB, citizens, BOB_KEY)
    index = PortalIndex()
    index.names = Names(
        {
            "city-shinagawa": ("品川区", "Shinagawa City"),
            "jps": ("日本年金機構", "Japan Pension Service"),
        },
        {"S003": ("生活保護法による保護の決定及び実施に関する事務", "public assistance")},
    )
    index.add(forwarded(ALICE_KEY))
    index.add(record(ALICE_KEY, AuditStep.ENROLLED, requester="city-shinagawa"))
    index.add(forwarded(BOB_KEY, requester="jps", provider="city-shinagawa",
                        items=("resident_tax.income",), hub_request_id="b" * 32))  # fmt: skip
    withheld = ("employment_insurance.benefit_status",)
    index.add(forwarded(ALICE_KEY, scenario_id="S005", hub_request_id="c" * 32,
                        items=withheld, disclosable=False))  # fmt: skip
    app = create_app(index, Authenticator(CitizenRegistry(citizens)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
        yield client, index, alice, bob


async def history(client: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    response = await client.get("/api/history", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    records: list[dict[str, Any]] = response.json()["records"]
    return records


async def page(client: httpx.AsyncClient, path: str, token: str) -> str:
    return (await client.get(path, headers={"Cookie": f"renkei_session={token}"})).text


async def test_login_with_the_registered_key(portal: Portal) -> None:
    client, _, alice, _ = portal
    records = await history(client, await alice.login(client))
    assert [r["step"] for r in records] == ["ENROLLED", "FORWARDED"]  # newest first
    asked = records[1]
    assert asked["text_ja"] == (
        "品川区が日本年金機構に、あなたの年金の支給状況を照会しました"
        "(事務:生活保護法による保護の決定及び実施に関する事務)。"
    )
    assert asked["text_en"] == (
        "Shinagawa City asked Japan Pension Service for your pension benefit status "
        'for "public assistance".'
    )
    assert asked["legal_basis"] == LEGAL
    assert asked["occurred_at_jst"] == "2026-04-01 10:02"


async def test_no_history_without_a_session(portal: Portal) -> None:
    client, *_ = portal
    assert (await client.get("/api/history")).status_code == 401
    forged = await client.get("/api/history", headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 401
    assert (await client.get("/history")).headers["location"] == "/"


MISTAKES = ["wrong-key", "other-citizen", "unknown-code", "reused", "unknown-challenge",
            "not-base64", "other-portal"]  # fmt: skip


@pytest.mark.parametrize("mistake", MISTAKES)
async def test_bad_logins_fail_alike(portal: Portal, mistake: str) -> None:
    client, _, alice, bob = portal
    challenge = (await client.get("/api/challenge")).json()["challenge"]
    code, key, portal_id = alice.resident_code, alice.key, "renkei-portal"
    if mistake == "wrong-key":
        key = SigningKey.generate()
    elif mistake == "other-citizen":
        key = bob.key  # Bob signs, claiming to be Alice
    elif mistake == "unknown-code":
        code = "19999999999"
    elif mistake == "other-portal":
        portal_id = "another-service"
    elif mistake == "reused":
        first = key.sign(login_message(portal_id, challenge, code))
        body = {"resident_code": code, "challenge": challenge,
                "signature": base64.b64encode(first).decode()}  # fmt: skip
        assert (await client.post("/api/login", json=body)).status_code == 200
    elif mistake == "unknown-challenge":
        challenge = "made-up"
    signature = base64.b64encode(key.sign(login_message(portal_id, challenge, code))).decode()
    if mistake == "not-base64":
        signature = "%%%"
    response = await client.post(
        "/api/login", json={"resident_code": code, "challenge": challenge, "signature": signature}
    )
    assert response.status_code == 401
    assert response.json() == {"error": "authentication failed"}  # never says why


async def test_citizens_see_only_their_own_records(portal: Portal) -> None:
    client, _, alice, bob = portal
    alice_records = await history(client, await alice.login(client))
    bob_records = await history(client, await bob.login(client))
    assert {r["requester"]["id"] for r in bob_records} == {"jps"}
    assert [r["items"][0]["code"] for r in bob_records] == ["resident_tax.income"]
    assert all(r["items"] != bob_records[0]["items"] for r in alice_records)
    # No parameter names a person: extra query arguments change nothing.
    token = await alice.login(client)
    sneaky = await client.get(
        f"/api/history?audit_key={BOB_KEY}&resident_code={BOB}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert sneaky.json()["records"] == alice_records


async def test_withheld_records_stay_hidden_until_released(portal: Portal) -> None:
    client, index, alice, _ = portal
    token = await alice.login(client)
    assert all(r["scenario_id"] != "S005" for r in await history(client, token))
    assert "雇用保険" not in await page(client, "/history", token)
    operator = SigningKey.generate()
    release = sign_release(operator, "investigation closed", hub_request_id="c" * 32)
    release.check(operator.public_bytes)
    index.release(release)
    released = [r for r in await history(client, token) if r["scenario_id"] == "S005"]
    assert len(released) == 1
    assert "雇用保険" in await page(client, "/history", token)


async def test_release_by_scenario_and_time(portal: Portal) -> None:
    _, index, *_ = portal
    before = int(datetime(2026, 4, 1, 1, 2, tzinfo=UTC).timestamp() * 1000)
    index.release(sign_release(SigningKey.generate(), "r", scenario_id="S005", until_ms=before))
    assert all(r.scenario_id != "S005" for r in index.history(ALICE_KEY))  # occurred at `before`
    index.release(sign_release(SigningKey.generate(), "r", scenario_id="S005", until_ms=before + 1))
    assert any(r.scenario_id == "S005" for r in index.history(ALICE_KEY))


def test_forged_release_does_not_verify() -> None:
    operator = SigningKey.generate()
    release = sign_release(operator, "r", hub_request_id="c" * 32)
    forged = Release.parse(
        release.model_copy(update={"reason": "other"}).model_dump_json().encode()
    )
    with pytest.raises(SignatureError):
        forged.check(operator.public_bytes)


async def test_page_login_and_logout(portal: Portal) -> None:
    client, _, alice, _ = portal
    login_page = await client.get("/")
    assert login_page.status_code == 200
    assert "default-src 'none'" in login_page.headers["content-security-policy"]
    challenge = login_page.text.split('id="challenge">')[1].split("<")[0]
    signature = alice.key.sign(login_message("renkei-portal", challenge, alice.resident_code))
    form = {"resident_code": alice.resident_code, "challenge": challenge,
            "signature": base64.b64encode(signature).decode()}  # fmt: skip
    answer = await client.post("/login", data=form)
    assert answer.status_code == 303
    assert "httponly" in answer.headers["set-cookie"].lower()
    shown = await client.get("/history")  # the client keeps the cookie
    assert "品川区が日本年金機構に" in shown.text
    assert (await client.post("/logout")).status_code == 303
    assert (await client.get("/history")).status_code == 303


async def test_html_is_escaped(portal: Portal) -> None:
    client, index, alice, _ = portal
    index.add(forwarded(ALICE_KEY, legal_basis="<script>alert(1)</script>"))
    text = await page(client, "/history", await alice.login(client))
    assert "<script>" not in text
    assert "&lt;script&gt;" in text
