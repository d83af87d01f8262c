"""The portal on a live trail: login, isolation, non-disclosure and release, what a
citizen sees in a real browser (headless Chromium through chromedriver's WebDriver API),
and forgeries written to the trail and to the releases that the portal never believes."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from hub_stream.worker import load_hub_keys
from producers.registry_publisher import RegistryPublisher
from renkei.audit.disclosure import publish_release, sign_release
from renkei.audit.rebuild import audit_key_of_resident
from renkei.audit.replay import Filter, entries
from renkei.auditchain import TRUST_FILE, TrustedKeys, chain_hash, load_or_create_signer
from renkei.crypto import SigningKey
from renkei.portal import (
    Authenticator,
    CitizenRegistry,
    PortalIndex,
    PortalTrust,
    TrailVerifier,
    create_app,
    login_message,
    register_citizen,
)
from renkei.topics import Topics, TopicSpec, ensure_topics
from schemas.models import AuditStep, Header
from tests.integration.hub_env import HubEnv, eventually, hub_env
from tests.integration.test_audit import CODEC, HUB_SETTINGS, WITHHELD, populate

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the WebDriver element reference key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def env(kafka_bootstrap: str, topics: Topics, tmp_path: Path) -> Any:
    async with hub_env(kafka_bootstrap, topics, tmp_path / "keys", **HUB_SETTINGS) as running:
        yield running


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Run the portal on 127.0.0.1 inside this event loop; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the portal did not start"
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class Browser:
    """Just enough of the W3C WebDriver protocol, spoken to chromedriver."""

    def __init__(self, client: httpx.AsyncClient, session: str) -> None:
        self.client = client
        self.session = session

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.client.request(
            method, f"/session/{self.session}{path}", json=body, timeout=60
        )
        assert response.status_code == 200, response.text
        return response.json()["value"]

    async def open(self, url: str) -> None:
        await self.call("POST", "/url", {"url": url})

    async def element(self, css: str) -> str:
        found = await self.call("POST", "/element", {"using": "css selector", "value": css})
        element: str = found[ELEMENT]
        return element

    async def text(self, css: str) -> str:
        value: str = await self.call("GET", f"/element/{await self.element(css)}/text")
        return value

    async def type(self, css: str, text: str) -> None:
        await self.call("POST", f"/element/{await self.element(css)}/value", {"text": text})

    async def click(self, css: str) -> None:
        await self.call("POST", f"/element/{await self.element(css)}/click", {})

    async def wait_for(self, css: str, timeout_s: float = 15) -> None:
        """Wait until the page shows ``css``: a click that submits a form navigates later."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        body = {"using": "css selector", "value": css}
        while True:
            found = await self.client.post(f"/session/{self.session}/element", json=body)
            if found.status_code == 200:
                return
            assert asyncio.get_running_loop().time() < deadline, f"{css} never appeared"
            await asyncio.sleep(0.05)

    async def body_text(self) -> str:
        return await self.text("body")

    async def screenshot(self, path: Path) -> None:
        png = base64.b64decode(await self.call("GET", "/screenshot"))
        await asyncio.to_thread(path.write_bytes, png)


@asynccontextmanager
async def chromium(tmp_path: Path) -> AsyncIterator[Browser]:
    """Headless Chromium driven by chromedriver; fails in CI when either is missing."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        message = "needs Debian's chromium and chromium-driver (see infra/setup.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        driver, f"--port={port}", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(100):
                try:
                    if (await client.get("/status")).json()["value"]["ready"]:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            args = [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}",
                "--window-size=1200,900",
            ]  # fmt: skip
            capabilities = {"browserName": "chrome",
                            "goog:chromeOptions": {"binary": binary, "args": args}}  # fmt: skip
            created = await client.post(
                "/session", json={"capabilities": {"alwaysMatch": capabilities}}, timeout=60
            )
            assert created.status_code == 200, created.text
            browser = Browser(client, created.json()["value"]["sessionId"])
            try:
                yield browser
            finally:
                await client.delete(f"/session/{browser.session}")
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)


def pinned(env: HubEnv) -> PortalTrust:
    """What the operators hand the portal out of band: the audit keys and their own key."""
    audit_keys = TrustedKeys.load(env.settings.key_dir / TRUST_FILE)
    return PortalTrust(audit_keys, env.keys("operator").signing.public_bytes)


def portal_of(env: HubEnv, citizens: Path) -> tuple[PortalIndex, Any]:
    trust = pinned(env)
    index = PortalIndex(TrailVerifier(trust.audit_keys, CODEC))
    app = create_app(index, Authenticator(CitizenRegistry(citizens)), kafka=env.kafka,
                     topics=env.topics, codec=CODEC, trust=trust)  # fmt: skip
    return index, app


async def all_verified(index: PortalIndex) -> None:
    """Caught up, and every record read is covered by a checkpoint (the hub signs every
    300 ms here)."""

    async def done() -> bool:
        health = index.health()
        return bool(health["caught_up"]) and health["unverified"] == 0 and health["lag"] == 0

    await eventually(done, timeout_s=30)


async def api_login(base: str, key: SigningKey, resident_code: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base)
    challenge = (await client.get("/api/challenge")).json()["challenge"]
    signature = key.sign(login_message("renkei-portal", challenge, resident_code))
    answer = await client.post(
        "/api/login",
        json={"resident_code": resident_code, "challenge": challenge,
              "signature": base64.b64encode(signature).decode()},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    client.headers["Authorization"] = f"Bearer {answer.json()['token']}"
    client.cookies.clear()
    return client


async def test_portal_shows_each_citizen_their_own_history(env: HubEnv, tmp_path: Path) -> None:
    done = await populate(env)
    keyring, _ = load_hub_keys(env.settings)
    citizens = tmp_path / "citizens.json"
    first, second = done.people[0], done.people[1]
    keys = {p.resident_code: SigningKey.generate() for p in (first, second)}
    audit_keys: dict[str, str] = {}
    for p in (first, second):
        key = await audit_key_of_resident(env.kafka, env.topics, keyring, p.resident_code)
        assert key is not None
        audit_keys[p.resident_code] = key
        register_citizen(citizens, p.resident_code, keys[p.resident_code].public_bytes, key)

    index, app = portal_of(env, citizens)
    async with serving(app) as base:
        await all_verified(index)
        theirs = [e.record async for e in entries(
            env.kafka, env.topics.audit, CODEC,
            Filter(audit_keys=frozenset({audit_keys[first.resident_code]})),
        )]  # fmt: skip
        shown = [r for r in theirs if r.disclosable]
        assert len(shown) < len(theirs)  # the withheld exchange is in the trail...

        alice = await api_login(base, keys[first.resident_code], first.resident_code)
        bob = await api_login(base, keys[second.resident_code], second.resident_code)
        try:
            mine = (await alice.get("/api/history")).json()["records"]
            assert len(mine) == len(shown)  # ...but not on the portal
            assert all(r["scenario_id"] != WITHHELD for r in mine)
            steps = {r["step"] for r in mine}
            assert {"FORWARDED", "ANSWERED", "ENROLLED", "NOTIFIED", "REGISTRY_APPLIED"} <= steps
            asked = next(r for r in mine if r["step"] == "FORWARDED")
            assert asked["requester"]["name_ja"] == "品川区"
            assert asked["provider"]["name_en"] == "Japan Pension Service"
            assert asked["legal_basis"].startswith("番号法第19条第8号")
            others = (await bob.get("/api/history")).json()["records"]
            assert any(r["provider"] and r["provider"]["id"] == "kyokai-kenpo" for r in others)
            assert not any(r["provider"] and r["provider"]["id"] == "kyokai-kenpo" for r in mine)

            async with chromium(tmp_path) as browser:
                await browser.open(base + "/")
                challenge = await browser.text("#challenge")
                signature = keys[first.resident_code].sign(
                    login_message("renkei-portal", challenge, first.resident_code)
                )
                await browser.type("#resident_code", first.resident_code)
                await browser.type("#signature", base64.b64encode(signature).decode())
                await browser.click("#submit")
                await browser.wait_for("#logout")  # the history page
                text = await browser.body_text()
                await browser.screenshot(tmp_path / "portal.png")
                if os.environ.get("RENKEI_SCREENSHOTS"):
                    shutil.copy(tmp_path / "portal.png", os.environ["RENKEI_SCREENSHOTS"])
                assert "あなたの情報の提供等記録" in text
                assert "Your data exchange history" in text
                assert "品川区が日本年金機構に、あなたの年金の支給状況を照会しました" in text
                assert "Shinagawa City asked Japan Pension Service for your pension benefit" in text
                assert "番号法第19条第8号 主務省令第2条の表 第26項" in text
                assert "住民票の異動情報(住所の変更)が品川区に通知されました。" in text
                assert (
                    "was notified of a change in your resident record (change of address)" in text
                )
                assert "SECRET-VALUE" not in text  # never values
                assert "雇用保険" not in text  # withheld
                assert "全国健康保険協会" not in text  # the other citizen's exchange

                # The investigation ends: an operator releases the withheld exchange.
                hub_id = next(r.hub_request_id for r in theirs if r.scenario_id == WITHHELD)
                assert hub_id
                # An agency's key is in the directory too, but only the pinned
                # operators' key releases anything.
                city = env.keys("city-shinagawa").signing
                forged = sign_release(city, "not theirs", hub_request_id=hub_id,
                                      operator="city-shinagawa")  # fmt: skip
                await publish_release(env.kafka, env.topics, forged)

                async def refused() -> bool:
                    return index.releases_rejected == 1

                await eventually(refused, timeout_s=30)
                records = (await alice.get("/api/history")).json()["records"]
                assert all(r["scenario_id"] != WITHHELD for r in records)

                operator = env.keys("operator").signing
                await publish_release(
                    env.kafka, env.topics, sign_release(operator, "closed", hub_request_id=hub_id)
                )

                async def released() -> bool:
                    records = (await alice.get("/api/history")).json()["records"]
                    return any(r["scenario_id"] == WITHHELD for r in records)

                await eventually(released, timeout_s=30)
                await browser.open(base + "/history")
                assert "雇用保険(基本手当)の受給状況" in await browser.body_text()
                await browser.click("#logout")
                await browser.wait_for("#challenge")  # back at the login page
                assert "チャレンジ" in await browser.body_text()
        finally:
            await alice.aclose()
            await bob.aclose()


async def test_a_forged_record_on_the_trail_is_not_shown(env: HubEnv, tmp_path: Path) -> None:
    """Anyone who can write to hub.audit can read a citizen's audit key and the chain head
    off the trail and append a record that links to it: the portal must not show it."""
    done = await populate(env)
    keyring, _ = load_hub_keys(env.settings)
    first = done.people[0]
    audit_key = await audit_key_of_resident(env.kafka, env.topics, keyring, first.resident_code)
    assert audit_key is not None
    key = SigningKey.generate()
    citizens = tmp_path / "citizens.json"
    register_citizen(citizens, first.resident_code, key.public_bytes, audit_key)
    index, app = portal_of(env, citizens)
    async with serving(app) as base:
        await all_verified(index)
        alice = await api_login(base, key, first.resident_code)
        try:
            before = (await alice.get("/api/history")).json()["records"]
            trail = [e async for e in entries(env.kafka, env.topics.audit, CODEC)]
            partition = next(e.partition for e in trail if e.record.audit_key == audit_key)
            last = [e for e in trail if e.partition == partition][-1]  # the chain head
            forged = last.record.model_copy(update={
                "header": Header.new("hub"), "step": AuditStep.FORWARDED,
                "requester": "kyokai-kenpo", "provider": "jps", "actor": "kyokai-kenpo",
                "scenario_id": "S003", "items": ("pension.annual_amount",),
                "hub_request_id": "f" * 32, "audit_key": audit_key, "disclosable": True,
                "prev_hash": chain_hash(last.value),
            })  # fmt: skip
            producer = AIOKafkaProducer(**env.kafka)
            await producer.start()
            try:
                await producer.send_and_wait(
                    env.topics.audit, CODEC.encode(forged), key=audit_key.encode(),
                    partition=partition,
                )  # fmt: skip
            finally:
                await producer.stop()
            # The hub goes on writing (a move: registry and notice records for her), and
            # signs a checkpoint over its own records, not over the forgery.
            async with RegistryPublisher(env.keys("registry"), env.kafka, env.topics) as reg:
                await reg.move(first.resident_code, "東京都品川区東五反田二丁目5番2号",
                               first.birth_date)  # fmt: skip

            async def moved_again() -> bool:
                records = (await alice.get("/api/history")).json()["records"]
                return len(records) > len(before) and index.health()["unverified"] == 0

            await eventually(moved_again, timeout_s=30)
            after = (await alice.get("/api/history")).json()["records"]
            assert all(r["provider"] is None or r["provider"]["id"] != "jps"
                       or r["requester"]["id"] != "kyokai-kenpo" for r in after)  # fmt: skip
            assert "pension.annual_amount" not in {i["code"] for r in after for i in r["items"]}
            health = (await alice.get("/healthz")).json()
            assert health["rejected"] == 1
            assert health["caught_up"] is True
        finally:
            await alice.aclose()


async def test_health_says_what_is_wrong_until_the_trail_exists(
    topics: Topics, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A portal started before the hub: 503 naming the missing topic, never "caught up"
    on nothing, and it starts reading by itself once the topic is there."""
    kafka = {"bootstrap_servers": kafka_bootstrap}
    signer = load_or_create_signer(tmp_path / "keys")
    trust = PortalTrust(TrustedKeys({signer.key_id: signer.key.public_bytes}),
                        SigningKey.generate().public_bytes)  # fmt: skip
    index = PortalIndex(TrailVerifier(trust.audit_keys, CODEC))
    app = create_app(index, Authenticator(CitizenRegistry(tmp_path / "citizens.json")),
                     kafka=kafka, topics=topics, codec=CODEC, trust=trust)  # fmt: skip
    async with serving(app) as base, httpx.AsyncClient(base_url=base) as client:

        async def says_missing() -> bool:
            answer = await client.get("/healthz")
            return answer.status_code == 503 and "does not exist" in (
                answer.json()["problem"] or ""
            )

        await eventually(says_missing, timeout_s=30)
        assert (await client.get("/healthz")).json()["caught_up"] is False
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await ensure_topics(admin, [TopicSpec(topics.audit, 1, {})])
        finally:
            await admin.close()

        async def healthy() -> bool:
            return (await client.get("/healthz")).status_code == 200

        await eventually(healthy, timeout_s=60)
        health = (await client.get("/healthz")).json()
        assert (health["status"], health["problem"], health["lag"]) == ("ok", None, 0)
