"""What /api/history gives a browser to prove each record by itself (bytes, inclusion
proof, signed tree head), the page that carries the pinned key and loads only its own
script, and the table and timeline a person reads."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from renkei.auditchain import GENESIS, AuditSigner, TrustedKeys, chain_hash
from renkei.crypto import SigningKey
from renkei.merkle import Frontier, leaf_hash, verify_inclusion
from renkei.portal import (
    Authenticator,
    CitizenRegistry,
    PortalIndex,
    TrailVerifier,
    create_app,
    register_citizen,
)
from renkei.portal.labels import Names
from renkei.treehead import SignedHead, build_head
from schemas.codec import default_codec
from schemas.models import AuditRecord, AuditStep, Header
from tests.unit.test_audit_portal import LEGAL, Citizen

CODEC = default_codec()
ALICE, BOB = "10000000001", "10000000002"
ALICE_KEY, BOB_KEY = "a" * 32, "b" * 32
NAMES = Names(
    {"city-shinagawa": ("品川区", "Shinagawa City"),
     "jps": ("日本年金機構", "Japan Pension Service"),
     "kyokai-kenpo": ("全国健康保険協会", "Japan Health Insurance Association")},
    {"S003": ("生活保護法による保護の決定及び実施に関する事務", "public assistance")},
)  # fmt: skip
START = datetime(2026, 4, 1, 1, 2, tzinfo=UTC)


class Trail:
    """One hub.audit partition as the hub writes it: records, then a signed tree head."""

    def __init__(self, signer: AuditSigner, partition: int = 0) -> None:
        self.signer, self.partition = signer, partition
        self.values: list[bytes] = []
        self.head = GENESIS
        self.frontier = Frontier()
        self.pending: list[bytes] = []

    def record(self, audit_key: str, step: AuditStep, **fields: Any) -> bytes:
        n = len(self.values)
        value = CODEC.encode(AuditRecord(
            header=Header.new("hub"), audit_key=audit_key, step=step,
            actor=fields.pop("actor", "hub"), items=fields.pop("items", ()),
            occurred_at=fields.pop("occurred_at", START + timedelta(hours=n)),
            prev_hash=self.head, **fields,
        ))  # fmt: skip
        self.values.append(value)
        self.head = chain_hash(value)
        self.pending.append(leaf_hash(value))
        return value

    def tree_head(self) -> bytes:
        previous = self.frontier.size
        self.frontier, consistency = self.frontier.extend(self.pending)
        self.pending = []
        head = build_head(
            self.signer, CODEC, partition=self.partition, tree_size=self.frontier.size,
            root_hash=self.frontier.root(), chain_hash=self.head, previous_size=previous,
            consistency=consistency, now_ms=1_775_000_000_000 + len(self.values),
            message_id=f"{self.partition:016x}{self.frontier.size:016x}",
        )  # fmt: skip
        self.values.append(head)
        return head


def alices_trail(signer: AuditSigner) -> Trail:
    """Exchanges and life-event notices about Alice (one to many agencies), one about Bob."""
    trail = Trail(signer)
    trail.record(ALICE_KEY, AuditStep.ENROLLED, actor="city-shinagawa", requester="city-shinagawa")
    asked = {"requester": "city-shinagawa", "provider": "jps", "scenario_id": "S003",
             "legal_basis": LEGAL, "items": ("pension.benefit_status",),
             "hub_request_id": "h" * 32}  # fmt: skip
    trail.record(ALICE_KEY, AuditStep.FORWARDED, actor="city-shinagawa", **asked)
    trail.record(
        BOB_KEY,
        AuditStep.FORWARDED,
        actor="kyokai-kenpo",
        **(asked | {"requester": "kyokai-kenpo", "hub_request_id": "b" * 32}),
    )
    trail.tree_head()
    trail.record(ALICE_KEY, AuditStep.ANSWERED, actor="jps", **asked)
    for agency in ("city-shinagawa", "jps", "kyokai-kenpo"):  # the bulk fan-out of one move
        trail.record(ALICE_KEY, AuditStep.NOTIFIED, provider="registry", requester=agency,
                     items=("MOVED",), occurred_at=START + timedelta(days=2))  # fmt: skip
    trail.tree_head()
    return trail


def alices_portal(signer: AuditSigner, citizens: Path) -> tuple[PortalIndex, Any]:
    trusted = TrustedKeys({signer.key_id: signer.key.public_bytes})
    index = PortalIndex(TrailVerifier(trusted, CODEC))
    index.names = NAMES
    assert index.trail is not None
    for offset, value in enumerate(alices_trail(signer).values):
        for verified in index.trail.add_verified(0, offset, 1_775_000_000_000, value):
            index.add_verified(verified)
    index.caught_up.set()
    return index, create_app(index, Authenticator(CitizenRegistry(citizens)))


Portal = tuple[httpx.AsyncClient, PortalIndex, Citizen, AuditSigner]


@pytest.fixture
async def portal(tmp_path: Path) -> AsyncIterator[Portal]:
    signer = AuditSigner(SigningKey.generate())
    citizens = tmp_path / "citizens.json"
    alice = Citizen(ALICE, citizens, ALICE_KEY)
    register_citizen(citizens, BOB, SigningKey.generate().public_bytes, BOB_KEY)
    index, app = alices_portal(signer, citizens)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
        yield client, index, alice, signer


async def test_every_record_comes_with_a_proof_against_the_signed_head(portal: Portal) -> None:
    client, _, alice, signer = portal
    token = await alice.login(client)
    answer = (await client.get("/api/history", headers={"Authorization": f"Bearer {token}"})).json()
    assert answer["audit_key"] == ALICE_KEY
    records = answer["records"]
    assert [r["step"] for r in records] == ["NOTIFIED"] * 3 + ["ANSWERED", "FORWARDED", "ENROLLED"]
    assert {r["requester"]["id"] for r in records if r["step"] == "NOTIFIED"} == {
        "city-shinagawa", "jps", "kyokai-kenpo"
    }  # fmt: skip
    trusted = TrustedKeys({signer.key_id: signer.key.public_bytes})
    for r in records:
        data = base64.b64decode(r["bytes"])
        assert CODEC.decode_as(data, AuditRecord).audit_key == ALICE_KEY
        head = SignedHead.parse(base64.b64decode(answer["heads"]["0"]["bytes"]), CODEC)
        head.check(trusted, CODEC)
        assert (r["head"]["tree_size"], r["head"]["root_hash"], r["head"]["key_id"]) == (
            head.size, head.root.hex(), signer.key_id
        )  # fmt: skip
        assert head.size == 7  # the latest head, whichever head released the record
        assert r["leaf_index"] == r["position"]
        proof = [bytes.fromhex(h) for h in r["proof"]]
        assert verify_inclusion(leaf_hash(data), r["leaf_index"], head.size, proof, head.root)
    assert sorted(r["position"] for r in records) == [0, 1, 3, 4, 5, 6]  # 2 is Bob's
    assert list(answer["heads"]) == ["0"]  # each head once, with its bytes


async def test_the_page_loads_only_its_own_script_and_carries_the_pinned_key(
    portal: Portal,
) -> None:
    client, _, alice, signer = portal
    page = await client.get(
        "/history", headers={"Cookie": f"renkei_session={await alice.login(client)}"}
    )
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert "unsafe-eval" not in csp
    assert '<script src="/static/verify.js" defer></script>' in page.text
    assert page.text.count("<script") == 1  # no inline script
    key = base64.b64encode(signer.key.public_bytes).decode()
    assert f"{signer.key_id}&#34;: &#34;{key}" in page.text  # from the portal's configuration
    assert page.text.count('class="verdict unchecked"') == 12  # table and timeline, each row
    assert "not checked in this browser" in page.text  # until the script says otherwise
    script = await client.get("/static/verify.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "crypto.subtle.digest('SHA-256'" in script.text
    schemas = (await client.get("/api/schemas")).json()["schemas"]
    fingerprint = CODEC.fingerprint(AuditRecord).hex()
    assert schemas[fingerprint]["name"] == "AuditRecord"


async def test_table_and_timeline_say_who_asked_whom_for_what_under_which_law(
    portal: Portal,
) -> None:
    client, _, alice, _ = portal
    page = (await client.get(
        "/history", headers={"Cookie": f"renkei_session={await alice.login(client)}"}
    )).text  # fmt: skip
    table, timeline = page.split('id="timeline"')
    for part in (table, timeline):
        assert "品川区が日本年金機構に、あなたの年金の支給状況を照会しました" in part
        assert "Shinagawa City asked Japan Pension Service for your pension benefit status" in part
        assert LEGAL in part
        assert "2026-04-01" in part  # JST
        for name in ("品川区", "日本年金機構", "全国健康保険協会"):  # each told of the move
            assert f"住民票の異動情報(住所の変更)が{name}に通知されました。" in part
    assert "10:02" in table  # 01:02 UTC is 10:02 in Japan
    assert '<li class="day">2026-04-03</li>' in timeline  # the notices' day
    assert 'data-record="0:2"' not in page  # Bob's record, on the same partition
