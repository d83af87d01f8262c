"""Passkeys without Kafka or a browser: registering with the registry's code, logging in,
and every way it is refused — a wrong, used or expired code, an offer or registration
nobody pinned signed, a replayed assertion, a cloned authenticator's sign count, an
unknown or revoked passkey — each the same 401 (and the typed error underneath)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from limits.storage import MemoryStorage
from typer.testing import CliRunner

from renkei.auditchain import AuditSigner, TrustedKeys
from renkei.cli import app
from renkei.crypto import KeyRing, MasterSecret, SigningKey, audit_key
from renkei.errors import AuthenticationError, RegistrationError, SignatureError
from renkei.portal import (
    Authenticator,
    CitizenRegistry,
    LoginLimits,
    PortalIndex,
    Session,
    create_app,
)
from renkei.portal.offers import make_offer, read_offer, sign_registration
from renkei.portal.passkeys import PasskeyConfig, Passkeys
from renkei.portal.registrar import Registrar
from tests.soft_passkey import SoftPasskey

ALICE, BOB = "10000000001", "10000000002"
SECRET = bytes(range(32))
ORIGIN = "http://localhost:8080"


class Clock:
    def __init__(self) -> None:
        self.now = 1_775_000_000.0

    def __call__(self) -> float:
        return self.now


class World:
    """A registry, a hub side (audit signer) and portal processes sharing one secret."""

    def __init__(self, tmp_path: Path) -> None:
        self.registry = SigningKey.generate()
        self.signer = AuditSigner(SigningKey.generate())
        self.trusted = TrustedKeys({self.signer.key_id: self.signer.key.public_bytes})
        self.clock = Clock()
        self.store = MemoryStorage()
        self.citizens = tmp_path / "citizens.json"
        self.topic: list[tuple[str, bytes]] = []  # portal.credentials, as written

    def portal(self) -> Passkeys:
        auth = Authenticator(CitizenRegistry(self.citizens), secret=SECRET, store=self.store,
                             clock=self.clock)  # fmt: skip
        passkeys = Passkeys(auth, PasskeyConfig(origins=(ORIGIN,)), self.trusted, self.clock)

        async def write(key: str, value: bytes) -> None:
            self.topic.append((key, value))

        passkeys.writer = write
        return passkeys

    def offer(self, passkeys: Passkeys, resident: str = ALICE, ttl_s: int = 3600) -> str:
        """The registry's counter and the hub side: the code the citizen is handed."""
        offer, code = make_offer(self.registry, resident, ttl_s=ttl_s,
                                 now_ms=int(self.clock() * 1000))  # fmt: skip
        registration = sign_registration(self.signer, offer, "a" * 32 if resident == ALICE
                                         else "b" * 32)  # fmt: skip
        passkeys.learn_registration(registration.model_dump_json().encode())
        return code


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


async def register(
    passkeys: Passkeys, device: SoftPasskey, code: str, resident: str = ALICE
) -> tuple[str, Session]:
    options = passkeys.registration_options(resident, code)
    return await passkeys.register(options["challenge"], device.create(options["publicKey"]))


async def login(passkeys: Passkeys, device: SoftPasskey) -> tuple[str, Session]:
    options = passkeys.login_options()
    return await passkeys.login(options["challenge"], device.get(options["publicKey"]))


async def test_register_then_log_in(world: World) -> None:
    passkeys, device = world.portal(), SoftPasskey(ORIGIN)
    token, session = await register(passkeys, device, world.offer(passkeys))
    assert session.audit_key == "a" * 32
    assert passkeys.auth.session(token) == session  # a passkey session, like any other
    token, session = await login(passkeys, device)
    assert (session.resident_code, session.audit_key) == (ALICE, "a" * 32)
    assert passkeys.auth.session(token) is not None
    (stored,) = passkeys.credentials.values()
    assert stored.sign_count == 1  # the login's count is kept
    assert len(world.topic) == 2  # the registration, then the new count


async def test_the_code_is_typed_as_people_type(world: World) -> None:
    passkeys = world.portal()
    code = world.offer(passkeys)
    typed = "-".join(code[i : i + 4] for i in range(0, 24, 4)).lower()
    await register(passkeys, SoftPasskey(ORIGIN), typed)


async def test_a_wrong_code_is_refused_and_counted(world: World) -> None:
    passkeys = world.portal()
    code = world.offer(passkeys)
    wrong = ("A" if code[0] != "A" else "B") + code[1:]
    with pytest.raises(RegistrationError):
        passkeys.registration_options(ALICE, wrong)
    with pytest.raises(RegistrationError):
        passkeys.registration_options(BOB, code)  # no offer for Bob
    for _ in range(9):
        with pytest.raises(RegistrationError):
            passkeys.registration_options(ALICE, wrong)
    with pytest.raises(AuthenticationError, match="too many"):  # throttled, even the right one
        passkeys.registration_options(ALICE, code)


async def test_a_code_registers_one_passkey_once(world: World) -> None:
    passkeys = world.portal()
    code = world.offer(passkeys)
    first, second = SoftPasskey(ORIGIN), SoftPasskey(ORIGIN)
    early = passkeys.registration_options(ALICE, code)  # both started before either finished
    await register(passkeys, first, code)
    with pytest.raises(RegistrationError, match="used"):
        passkeys.registration_options(ALICE, code)
    with pytest.raises(RegistrationError, match="used"):
        await passkeys.register(early["challenge"], second.create(early["publicKey"]))
    # Another process that shares the store but has not read the topic yet: still once.
    other = world.portal()
    other.registrations = dict(passkeys.registrations)
    with pytest.raises(RegistrationError, match="used"):
        other.registration_options(ALICE, code)


async def test_an_expired_offer_registers_nothing(world: World) -> None:
    passkeys = world.portal()
    code = world.offer(passkeys, ttl_s=60)
    options = passkeys.registration_options(ALICE, code)
    world.clock.now += 61
    with pytest.raises(RegistrationError, match="expired"):
        passkeys.registration_options(ALICE, code)
    with pytest.raises(RegistrationError):
        await passkeys.register(
            options["challenge"], SoftPasskey(ORIGIN).create(options["publicKey"])
        )


async def test_a_ceremony_that_does_not_verify_registers_nothing(world: World) -> None:
    passkeys = world.portal()
    code = world.offer(passkeys)
    for device in (SoftPasskey("http://evil.example:8080"), SoftPasskey(ORIGIN, verified=False)):
        options = passkeys.registration_options(ALICE, code)
        with pytest.raises(RegistrationError, match="does not verify"):
            await passkeys.register(options["challenge"], device.create(options["publicKey"]))
    options = passkeys.registration_options(ALICE, code)
    answer = SoftPasskey(ORIGIN).create(options["publicKey"])
    await passkeys.register(options["challenge"], answer)
    with pytest.raises(RegistrationError, match="challenge was used"):
        await passkeys.register(options["challenge"], answer)  # replayed
    assert len(passkeys.credentials) == 1


def test_an_offer_the_registry_did_not_sign_is_dropped(world: World) -> None:
    forger = SigningKey.generate()
    offer, _ = make_offer(forger, ALICE, now_ms=1000)
    with pytest.raises(SignatureError):
        read_offer(offer.model_dump_json().encode(), world.registry.public_bytes, 2000)
    altered = make_offer(world.registry, ALICE, now_ms=1000)[0].model_copy(
        update={"resident_code": BOB}
    )
    with pytest.raises(SignatureError):
        read_offer(altered.model_dump_json().encode(), world.registry.public_bytes, 2000)
    expired, _ = make_offer(world.registry, ALICE, ttl_s=1, now_ms=1000)
    with pytest.raises(RegistrationError, match="expired"):
        read_offer(expired.model_dump_json().encode(), world.registry.public_bytes, 2000)


async def test_a_registration_no_pinned_key_signed_is_ignored(world: World) -> None:
    passkeys = world.portal()
    offer, code = make_offer(world.registry, ALICE)
    stranger = AuditSigner(SigningKey.generate())
    passkeys.learn_registration(sign_registration(stranger, offer, "e" * 32)
                                .model_dump_json().encode())  # fmt: skip
    forged = sign_registration(world.signer, offer, "a" * 32).model_copy(
        update={"audit_key": "e" * 32}
    )  # someone else's history
    passkeys.learn_registration(forged.model_dump_json().encode())
    passkeys.learn_registration(b"{not json")
    assert passkeys.rejected == 3
    assert passkeys.registrations == {}
    with pytest.raises(RegistrationError):
        passkeys.registration_options(ALICE, code)


async def test_a_replayed_assertion_or_a_cloned_count_is_refused(world: World) -> None:
    passkeys, device = world.portal(), SoftPasskey(ORIGIN)
    await register(passkeys, device, world.offer(passkeys))
    options = passkeys.login_options()
    assertion = device.get(options["publicKey"])
    await passkeys.login(options["challenge"], assertion)
    with pytest.raises(AuthenticationError):
        await passkeys.login(options["challenge"], assertion)  # the same again
    device.sign_count = 0  # a clone made before that login: it answers 1, as held
    with pytest.raises(AuthenticationError):
        await login(passkeys, device)
    device.sign_count = -1  # it answers 0: lower than held
    with pytest.raises(AuthenticationError):
        await login(passkeys, device)
    device.sign_count = 5
    await login(passkeys, device)  # the genuine authenticator, further on


async def test_a_challenge_works_once_and_not_for_long(world: World) -> None:
    """A passkey that does not count (a synced one answers 0 each time): only the
    challenge stops a replay."""
    passkeys, device = world.portal(), SoftPasskey(ORIGIN, counting=False)
    await register(passkeys, device, world.offer(passkeys))
    options = passkeys.login_options()
    assertion = device.get(options["publicKey"])
    await passkeys.login(options["challenge"], assertion)
    with pytest.raises(AuthenticationError):
        await passkeys.login(options["challenge"], assertion)
    options = passkeys.login_options()
    world.clock.now += passkeys.auth.challenge_ttl_s + 1
    with pytest.raises(AuthenticationError):
        await passkeys.login(options["challenge"], device.get(options["publicKey"]))
    await login(passkeys, device)


async def test_an_unknown_or_unverified_passkey_is_refused(world: World) -> None:
    passkeys, device = world.portal(), SoftPasskey(ORIGIN)
    await register(passkeys, device, world.offer(passkeys))
    with pytest.raises(AuthenticationError):
        await login(passkeys, SoftPasskey(ORIGIN))  # never registered
    device.verified = False
    with pytest.raises(AuthenticationError):
        await login(passkeys, device)  # no PIN or fingerprint
    device.verified, device.origin = True, "http://localhost:9999"
    with pytest.raises(AuthenticationError):
        await login(passkeys, device)  # another origin


async def test_a_new_offer_revokes_the_passkey_and_its_sessions(world: World) -> None:
    passkeys, device = world.portal(), SoftPasskey(ORIGIN)
    token, _ = await register(passkeys, device, world.offer(passkeys))
    world.clock.now += 1
    world.offer(passkeys)  # a lost phone: the counter hands out a new code
    assert passkeys.auth.session(token) is None
    with pytest.raises(AuthenticationError):
        await login(passkeys, device)


async def test_an_older_registration_read_again_changes_nothing(world: World) -> None:
    """A registrar restarted re-publishes what has not expired: the newest offer stays."""
    passkeys = world.portal()
    now_ms = int(world.clock() * 1000)
    old, _ = make_offer(world.registry, ALICE, now_ms=now_ms - 1000)
    new, code = make_offer(world.registry, ALICE, now_ms=now_ms)
    for offer in (new, old):
        registration = sign_registration(world.signer, offer, "a" * 32)
        passkeys.learn_registration(registration.model_dump_json().encode())
    assert passkeys.registrations[ALICE].offer_id == new.offer_id
    await register(passkeys, SoftPasskey(ORIGIN), code)


async def test_another_process_learns_passkeys_from_the_topic(world: World) -> None:
    first, device = world.portal(), SoftPasskey(ORIGIN)
    code = world.offer(first)
    await register(first, device, code)
    await login(first, device)
    second = world.portal()  # or the first after a restart
    second.registrations = dict(first.registrations)
    for _, value in world.topic:
        second.learn_credential(value)
    second.learn_credential(b"forged")
    other = Authenticator(CitizenRegistry(world.citizens), secret=bytes(32))
    stranger = Passkeys(other, PasskeyConfig(), world.trusted)  # another secret
    second.learn_credential(stranger.record(next(iter(first.credentials.values()))))
    assert second.rejected == 2
    assert next(iter(second.credentials.values())).sign_count == 1
    with pytest.raises(RegistrationError, match="used"):
        second.registration_options(ALICE, code)
    device.sign_count = 0  # a clone answers 1: the count the topic says was used
    with pytest.raises(AuthenticationError):
        await login(second, device)
    await login(second, device)  # 2


async def test_a_passkey_the_topic_did_not_take_is_not_registered(world: World) -> None:
    passkeys, device = world.portal(), SoftPasskey(ORIGIN)
    code = world.offer(passkeys)

    async def broken(key: str, value: bytes) -> None:
        raise ConnectionError("broker gone")

    working, passkeys.writer = passkeys.writer, broken
    with pytest.raises(RegistrationError, match=r"portal\.credentials"):
        await register(passkeys, device, code)
    assert passkeys.credentials == {}
    passkeys.writer, passkeys.durable = None, True  # following Kafka, not connected now
    with pytest.raises(RegistrationError, match="not reachable"):
        await register(passkeys, device, code)
    passkeys.writer = working  # connected again: the code still works
    await register(passkeys, device, code)
    assert len(world.topic) == 1


def test_the_offer_as_the_contract_specifies_it(world: World) -> None:
    """docs/contract.md, "Passkey registration offers", with plain Ed25519 and JSON."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    offer_id, code = "0123456789abcdef0123456789abcdef", "ABCDEFGHIJKLMNOPQRSTUVWX"
    code_hash = hashlib.sha256(f"renkei-portal-code/1\n{offer_id}\n{code}".encode()).hexdigest()
    message = (f"renkei-portal-offer/1\n{offer_id}\n{ALICE}\n{code_hash}\n"
               f"1775000000000\n1775604800000").encode()  # fmt: skip
    value = json.dumps({
        "expires_at_ms": 1775604800000, "issued_at_ms": 1775000000000, "code_hash": code_hash,
        "resident_code": ALICE, "offer_id": offer_id, "format": "renkei-portal-offer/1",
        "signature": base64.b64encode(key.sign(message)).decode(),
    }).encode()  # fmt: skip
    offer = read_offer(value, public, 1775000000001)
    assert offer.matches(code)
    assert offer.matches("abcd-efgh ijkl-mnop-qrst-uvwx")


def test_the_registrar_waits_for_the_person_then_signs(world: World) -> None:
    keyring = KeyRing(MasterSecret(bytes(32)))
    persons: dict[str, Any] = {}

    class Persons:
        def get(self, code: str) -> Any:
            return persons.get(code)

    registrar = Registrar(cast(Any, Persons()), keyring, world.signer,
                          world.registry.public_bytes, clock=lambda: 2000)  # fmt: skip
    offer, code = make_offer(world.registry, ALICE, now_ms=1000)
    registrar.offer(offer.model_dump_json().encode())
    registrar.offer(make_offer(SigningKey.generate(), BOB, now_ms=1000)[0]
                    .model_dump_json().encode())  # fmt: skip
    registrar.offer(b"garbage")
    assert registrar.refused == 2
    assert registrar.ready() == []  # the registry's REGISTERED not applied yet
    id_code = "ab" * 16

    class Person:
        pass

    person = Person()
    person.id_code = id_code  # type: ignore[attr-defined]
    persons[ALICE] = person
    (registration,) = registrar.ready()
    assert registration.audit_key == audit_key(keyring, bytes.fromhex(id_code))
    passkeys = world.portal()
    passkeys.learn_registration(registration.model_dump_json().encode())
    assert passkeys.registrations[ALICE].matches(code)
    assert registrar.ready() == []


@pytest.fixture
async def api(world: World) -> AsyncIterator[tuple[httpx.AsyncClient, Passkeys]]:
    passkeys = world.portal()
    app = create_app(PortalIndex(), passkeys.auth, passkeys=passkeys)
    transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 4000))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
        yield client, passkeys


async def test_the_api_answers_401_for_every_refusal(
    api: tuple[httpx.AsyncClient, Passkeys], world: World
) -> None:
    client, passkeys = api
    code, device = world.offer(passkeys), SoftPasskey(ORIGIN)
    wrong = await client.post(
        "/api/passkey/register/options",
        json={"resident_code": ALICE, "registration_code": "A" * 24},
    )
    assert (wrong.status_code, wrong.json()) == (401, {"error": "authentication failed"})
    started = (
        await client.post(
            "/api/passkey/register/options",
            json={"resident_code": ALICE, "registration_code": code},
        )
    ).json()
    body = {"challenge": started["challenge"], "credential": device.create(started["publicKey"])}
    done = await client.post("/api/passkey/register", json=body)
    assert done.status_code == 200
    assert "renkei_session" in done.cookies
    assert (await client.get("/api/history")).status_code == 200
    again = await client.post("/api/passkey/register", json=body)
    assert (again.status_code, again.json()) == (401, {"error": "authentication failed"})
    await client.post("/api/logout")
    assert (await client.get("/api/history")).status_code == 401

    options = (await client.get("/api/passkey/login/options")).json()
    body = {"challenge": options["challenge"], "credential": device.get(options["publicKey"])}
    assert (await client.post("/api/passkey/login", json=body)).status_code == 200
    replayed = await client.post("/api/passkey/login", json=body)
    assert (replayed.status_code, replayed.json()) == (401, {"error": "authentication failed"})
    unknown = SoftPasskey(ORIGIN).get(options["publicKey"])
    stranger = await client.post(
        "/api/passkey/login", json={"challenge": options["challenge"], "credential": unknown}
    )
    assert stranger.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"resident_code": ALICE},
        {"resident_code": "1234", "registration_code": "A" * 24},
        {"resident_code": ALICE, "registration_code": "A" * 24, "more": 1},
        {"resident_code": ALICE, "registration_code": "<script>" * 4},
    ],
)
async def test_malformed_bodies_are_422_without_echo(
    api: tuple[httpx.AsyncClient, Passkeys], body: dict[str, Any]
) -> None:
    client, _ = api
    answer = await client.post("/api/passkey/register/options", json=body)
    assert answer.status_code == 422
    assert "<script>" not in answer.text


async def test_a_credential_out_of_bounds_is_422(api: tuple[httpx.AsyncClient, Passkeys]) -> None:
    client, _passkeys = api
    options = (await client.get("/api/passkey/login/options")).json()
    assertion = SoftPasskey(ORIGIN).get(options["publicKey"])
    for change in ({"type": "password"}, {"id": "not base64url!"}, {"extra": True}):
        bad = {**assertion, **change}
        answer = await client.post(
            "/api/passkey/login", json={"challenge": options["challenge"], "credential": bad}
        )
        assert answer.status_code == 422, change
    huge = {**assertion, "response": {**assertion["response"], "signature": "A" * 5000}}
    answer = await client.post(
        "/api/passkey/login", json={"challenge": options["challenge"], "credential": huge}
    )
    assert answer.status_code == 422
    form = await client.post("/api/passkey/login", data={"challenge": "x"})
    assert form.status_code == 415


async def test_the_pages_load_their_script(api: tuple[httpx.AsyncClient, Passkeys]) -> None:
    client, _ = api
    register_page = await client.get("/register")
    assert register_page.status_code == 200
    assert 'src="/static/passkey.js"' in register_page.text
    assert "<script>" not in register_page.text  # nothing inline: CSP script-src 'self'
    login_page = await client.get("/")
    assert 'id="passkey_login"' in login_page.text
    assert 'src="/static/passkey.js"' in login_page.text
    script = await client.get("/static/passkey.js")
    assert script.status_code == 200
    assert "navigator.credentials.create" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert "script-src 'self'" in script.headers["content-security-policy"]


async def test_the_passkey_posts_count_against_the_address_limit(world: World) -> None:
    passkeys = world.portal()
    app = create_app(PortalIndex(), passkeys.auth, passkeys=passkeys,
                     limits=LoginLimits(per_ip="3/minute"))  # fmt: skip
    transport = httpx.ASGITransport(app=app, client=("192.0.2.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
        body = {"resident_code": ALICE, "registration_code": "A" * 24}
        options = passkeys.login_options()
        stranger = {"challenge": options["challenge"],
                    "credential": SoftPasskey(ORIGIN).get(options["publicKey"])}  # fmt: skip
        card = {"resident_code": ALICE, "challenge": "x", "signature": "AAAA"}
        statuses = [
            (await client.post("/api/passkey/register/options", json=body)).status_code,
            (await client.post("/api/passkey/login", json=stranger)).status_code,
            (await client.post("/api/login", json=card)).status_code,
            (await client.post("/api/passkey/register/options", json=body)).status_code,
        ]
    assert statuses == [401, 401, 401, 429]  # one count for every way in


def test_the_counter_refuses_a_malformed_resident_code(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["portal", "offer", "--resident-code", "12345", "--key-dir", str(tmp_path)],
        env={"RENKEI_BOOTSTRAP": "127.0.0.1:9"},
    )  # fmt: skip
    assert result.exit_code == 2
    assert "11 digits" in result.output
