"""Passkeys end to end: the registry's counter publishes an offer on registry.portal, the
hub side (the registrar) turns it into a registration the portal believes, and a real
browser (headless Chromium with a CDP virtual authenticator) registers a passkey on
/register, logs out, logs in with the passkey and sees its own history. The passkey is on
portal.credentials, so another portal process (or this one restarted) knows it too."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from hub_stream.worker import load_hub_keys
from renkei.audit.reader import read_topic
from renkei.auditchain import load_or_create_signer
from renkei.portal import Authenticator, CitizenRegistry, PortalIndex, TrailVerifier, create_app
from renkei.portal.passkeys import PasskeyConfig, Passkeys
from renkei.portal.registrar import Registrar, publish_offer, run_registrar
from renkei.topics import Topics
from tests.integration.hub_env import HubEnv, eventually, hub_env
from tests.integration.test_audit import CODEC, HUB_SETTINGS, populate
from tests.integration.test_portal import Browser, all_verified, chromium, free_port, pinned

SECRET = bytes(range(32))


@pytest.fixture
async def env(kafka_bootstrap: str, topics: Topics, tmp_path: Path) -> Any:
    async with hub_env(kafka_bootstrap, topics, tmp_path / "keys", **HUB_SETTINGS) as running:
        yield running


@asynccontextmanager
async def serving_on(app: Any, port: int) -> AsyncIterator[None]:
    """The portal on 127.0.0.1:``port`` (the browser calls it localhost: the RP id)."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the portal did not start"
            await asyncio.sleep(0.05)
        yield
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def registrar_running(env: HubEnv) -> AsyncIterator[Registrar]:
    """The hub side of registration, as `renkei portal registrar` runs it."""
    from hub_stream.sealed_state import persons_table

    keyring, _ = load_hub_keys(env.settings)
    signer = load_or_create_signer(env.settings.key_dir)
    registry_key = env.keys("registry").signing.public_bytes
    work = Registrar(persons_table(keyring, env.topics.state("persons")), keyring, signer,
                     registry_key)  # fmt: skip
    task = asyncio.create_task(
        run_registrar(env.kafka, env.topics, keyring, signer, registry_key, registrar=work)
    )
    try:
        yield work
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def virtual_authenticator(browser: Browser) -> None:
    """A platform authenticator that holds passkeys and verifies the user (CDP WebAuthn)."""
    await browser.call("POST", "/goog/cdp/execute", {"cmd": "WebAuthn.enable", "params": {}})
    options = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
               "hasUserVerification": True, "isUserVerified": True}  # fmt: skip
    await browser.call(
        "POST", "/goog/cdp/execute",
        {"cmd": "WebAuthn.addVirtualAuthenticator", "params": {"options": options}},
    )  # fmt: skip


async def test_register_a_passkey_from_a_registry_offer_and_log_in(
    env: HubEnv, tmp_path: Path
) -> None:
    done = await populate(env)
    alice = done.people[0]
    trust = pinned(env)
    port = free_port()
    base = f"http://localhost:{port}"
    index = PortalIndex(TrailVerifier(trust.audit_keys, CODEC))
    auth = Authenticator(CitizenRegistry(tmp_path / "citizens.json"), secret=SECRET)
    passkeys = Passkeys(auth, PasskeyConfig(origins=(base,)), trust.audit_keys)
    app = create_app(index, auth, kafka=env.kafka, topics=env.topics, codec=CODEC,
                     trust=trust, passkeys=passkeys)  # fmt: skip
    async with registrar_running(env) as registrar, serving_on(app, port):
        # At the counter: the registry signs an offer; the citizen gets the code on paper.
        registry = env.keys("registry").signing
        offer, code = await publish_offer(env.kafka, env.topics, registry, alice.resident_code)
        forged, _ = await publish_offer(
            env.kafka, env.topics, env.keys("jps").signing, done.people[1].resident_code
        )  # signed by an agency, not by the registry: the registrar drops it

        async def learned() -> bool:
            held = passkeys.registrations.get(alice.resident_code)
            return held is not None and held.offer_id == offer.offer_id and registrar.refused == 1

        await eventually(learned, timeout_s=30)
        assert done.people[1].resident_code not in passkeys.registrations
        await all_verified(index)

        async with chromium(tmp_path) as browser:
            await virtual_authenticator(browser)
            await browser.open(base + "/register")
            await browser.type("#resident_code", alice.resident_code)
            typed = "-".join(code[i : i + 4] for i in range(0, 24, 4))  # as printed
            await browser.type("#registration_code", typed)
            await browser.click("#register_submit")
            await browser.wait_for("#logout")  # registered, and logged in: the history page
            text = await browser.body_text()
            assert "あなたの情報の提供等記録" in text
            assert "品川区が日本年金機構に、あなたの年金の支給状況を照会しました" in text
            assert "全国健康保険協会" not in text  # the other citizen's exchange
            (credential,) = passkeys.credentials.values()
            assert credential.resident_code == alice.resident_code

            await browser.click("#logout")
            await browser.wait_for("#passkey_login")
            await browser.click("#passkey_login")  # the virtual authenticator answers
            await browser.wait_for("#logout")
            assert "品川区が日本年金機構に" in await browser.body_text()

            # The same code again: used.
            await browser.click("#logout")
            await browser.wait_for("#passkey_login")  # the logout has landed
            await browser.open(base + "/register")
            await browser.type("#resident_code", alice.resident_code)
            await browser.type("#registration_code", code)
            await browser.click("#register_submit")
            await browser.wait_for("#passkey_error:not([hidden])")
            assert "登録できませんでした" in await browser.text("#passkey_error")

        # Another process of the portal learns the passkey and its count from the topic.
        restarted = Authenticator(CitizenRegistry(tmp_path / "citizens.json"), secret=SECRET)
        other = Passkeys(restarted, PasskeyConfig(), trust.audit_keys)
        async for batch in read_topic(env.kafka, env.topics.portal_credentials):
            for raw in batch:
                other.learn_credential(raw.value)
        held = passkeys.credentials[credential.credential_id]
        assert held.sign_count > credential.sign_count  # the login's count, kept
        assert other.credentials[credential.credential_id] == held
        assert other.rejected == 0
        assert forged.offer_id not in {r.offer_id for r in passkeys.registrations.values()}
