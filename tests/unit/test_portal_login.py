"""Login hardening without Kafka: malformed input is a 4xx, logins are throttled,
challenges are stateless, single-use and short-lived, sessions are signed and shared by
every portal process holding the secret, and every answer carries the security headers."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from limits.storage import MemoryStorage

from renkei.crypto import SigningKey
from renkei.portal import (
    Authenticator,
    CitizenRegistry,
    LoginLimits,
    PortalIndex,
    create_app,
    login_message,
    register_citizen,
)

ALICE = "10000000001"
SECRET = bytes(range(32))


class Clock:
    def __init__(self) -> None:
        self.now = 1_775_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def citizens(tmp_path: Path) -> tuple[Path, SigningKey]:
    path = tmp_path / "citizens.json"
    key = SigningKey.generate()
    register_citizen(path, ALICE, key.public_bytes, "a" * 32)
    return path, key


Make = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def make(citizens: tuple[Path, SigningKey]) -> AsyncIterator[Make]:
    """Portal processes on one citizen list: ``make(secret=…, store=…, ip=…)``."""
    clients: list[httpx.AsyncClient] = []

    def build(
        secret: bytes = SECRET, store: MemoryStorage | None = None, ip: str = "192.0.2.1",
        clock: Clock | None = None, tls: bool = False, per_ip: str = "60/minute",
    ) -> httpx.AsyncClient:  # fmt: skip
        auth = Authenticator(CitizenRegistry(citizens[0]), secret=secret, store=store,
                             clock=clock or Clock())  # fmt: skip
        app = create_app(PortalIndex(), auth, limits=LoginLimits(per_ip=per_ip), tls=tls)
        transport = httpx.ASGITransport(app=app, client=(ip, 4000))
        client = httpx.AsyncClient(transport=transport, base_url="http://portal")
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


def signed(key: SigningKey, challenge: str, code: str = ALICE) -> dict[str, str]:
    signature = base64.b64encode(key.sign(login_message("renkei-portal", challenge, code)))
    return {"resident_code": code, "challenge": challenge, "signature": signature.decode()}


async def challenge_of(client: httpx.AsyncClient) -> str:
    value: str = (await client.get("/api/challenge")).json()["challenge"]
    return value


# -- malformed input ----------------------------------------------------------------------

JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
BAD_BODIES: dict[str, tuple[str, dict[str, str], bytes, int]] = {
    "bad json": ("/api/login", JSON, b'{"resident_code": ', 422),
    "deep json": ("/api/login", JSON, b"[" * 100_000 + b"]" * 100_000, 413),
    "deep json, small": ("/api/login", JSON, b"[" * 5_000 + b"]" * 5_000, 400),
    "not an object": ("/api/login", JSON, b'["10000000001"]', 422),
    "extra field": (
        "/api/login",
        JSON,
        b'{"resident_code": "10000000001", "challenge": "c", "signature": "s", "admin": true}',
        422,
    ),
    "json not utf-8": ("/api/login", JSON, b'{"resident_code": "\xff\xfe"}', 400),
    "text/plain": ("/api/login", {"content-type": "text/plain"}, b"{}", 415),
    "no content type": ("/api/login", {}, b"{}", 415),
    "form to the api": ("/api/login", FORM, b"resident_code=1", 415),
    "form not utf-8": ("/login", FORM, b"resident_code=%ff%fe&challenge=c&signature=s", 422),
    "raw bytes form": ("/login", FORM, b"resident_code=\xff\xfe&challenge=\x80&signature=s", 422),
    "json to the form": ("/login", JSON, b'{"resident_code": "10000000001"}', 415),
    "form missing fields": ("/login", FORM, b"resident_code=10000000001", 422),
    "multipart form": (
        "/login",
        {"content-type": "multipart/form-data; boundary=x"},
        b"--x--\r\n",
        415,
    ),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
async def test_malformed_input_is_a_4xx_that_echoes_nothing(make: Make, case: str) -> None:
    path, headers, body, status = BAD_BODIES[case]
    response = await make().post(path, content=body, headers=headers)
    assert response.status_code == status, response.text[:300]
    assert "\\xff" not in response.text
    assert 'resident_code": "' not in response.text
    if path.startswith("/api/"):
        assert "error" in response.json()
    else:
        assert 'id="error"' in response.text  # the login page again, with a message


async def test_a_chunked_body_must_say_its_length(make: Make) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"resident_code": "10000000001",'
        yield b' "challenge": "c", "signature": "s"}'

    response = await make().post("/api/login", content=chunks(), headers=JSON)
    assert response.status_code == 411


async def test_a_malformed_resident_code_is_refused_before_any_work(make: Make) -> None:
    client = make()
    body = {"resident_code": "1; DROP TABLE", "challenge": "c", "signature": "s"}
    response = await client.post("/api/login", json=body)
    assert response.status_code == 422
    assert response.json() == {"error": "invalid request", "fields": ["resident_code"]}


# -- rate limits ------------------------------------------------------------------------


async def test_a_thousand_failed_logins_are_throttled(make: Make) -> None:
    client = make(per_ip="60/minute")
    statuses = []
    for n in range(1000):
        wrong = {"resident_code": f"{20_000_000_000 + n}", "challenge": "made-up",
                 "signature": "AAAA"}  # fmt: skip
        statuses.append((await client.post("/api/login", json=wrong)).status_code)
    assert statuses[:60] == [401] * 60
    assert statuses[60:] == [429] * 940
    page = await client.post("/login", data={"resident_code": ALICE, "challenge": "c",
                                              "signature": "s"})  # fmt: skip
    assert page.status_code == 429  # the form shares the limit
    assert "Too many attempts" in page.text


async def test_failures_for_one_resident_code_are_throttled_from_any_address(
    make: Make, citizens: tuple[Path, SigningKey]
) -> None:
    store = MemoryStorage()
    statuses = []
    for n in range(12):  # twelve addresses, one attempt each
        client = make(store=store, ip=f"198.51.100.{n}")
        bad = signed(SigningKey.generate(), await challenge_of(client))
        statuses.append((await client.post("/api/login", json=bad)).status_code)
    assert statuses == [401] * 10 + [429] * 2
    client = make(store=store, ip="203.0.113.9")
    good = signed(citizens[1], await challenge_of(client))
    assert (await client.post("/api/login", json=good)).status_code == 429
    other = make(store=store, ip="203.0.113.9")  # another code is not affected
    fine = signed(SigningKey.generate(), await challenge_of(other), "10000000002")
    assert (await other.post("/api/login", json=fine)).status_code == 401


async def test_known_and_unknown_codes_take_the_same_path(
    make: Make, citizens: tuple[Path, SigningKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    from renkei.crypto import verify

    checked: list[bytes] = []

    def counting(public_key: bytes, message: bytes, signature: bytes) -> None:
        checked.append(message)
        verify(public_key, message, signature)

    monkeypatch.setattr("renkei.portal.auth.verify", counting)
    client = make()
    for code in (ALICE, "19999999999"):
        bad = signed(SigningKey.generate(), await challenge_of(client), code)
        response = await client.post("/api/login", json=bad)
        assert (response.status_code, response.json()) == (401, {"error": "authentication failed"})
    assert [m.split(b"\n")[-1] for m in checked] == [ALICE.encode(), b"19999999999"]


# -- challenges and sessions ------------------------------------------------------------


async def test_a_challenge_works_once(make: Make, citizens: tuple[Path, SigningKey]) -> None:
    client = make()
    body = signed(citizens[1], await challenge_of(client))
    assert (await client.post("/api/login", json=body)).status_code == 200
    assert (await client.post("/api/login", json=body)).status_code == 401


async def test_a_challenge_works_once_on_every_process_sharing_the_store(
    make: Make, citizens: tuple[Path, SigningKey]
) -> None:
    store = MemoryStorage()
    a, b = make(store=store), make(store=store)
    body = signed(citizens[1], await challenge_of(a))
    assert (await b.post("/api/login", json=body)).status_code == 200  # stateless: B takes A's
    assert (await a.post("/api/login", json=body)).status_code == 401


async def test_a_challenge_expires(make: Make, citizens: tuple[Path, SigningKey]) -> None:
    clock = Clock()
    client = make(clock=clock)
    late = signed(citizens[1], await challenge_of(client))
    clock.now += 121
    assert (await client.post("/api/login", json=late)).status_code == 401
    in_time = signed(citizens[1], await challenge_of(client))
    clock.now += 119
    assert (await client.post("/api/login", json=in_time)).status_code == 200


async def test_a_challenge_of_another_secret_is_refused(
    make: Make, citizens: tuple[Path, SigningKey]
) -> None:
    other = make(secret=b"\x01" * 32)
    body = signed(citizens[1], await challenge_of(other))
    assert (await make().post("/api/login", json=body)).status_code == 401


async def login(client: httpx.AsyncClient, key: SigningKey) -> str:
    response = await client.post("/api/login", json=signed(key, await challenge_of(client)))
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


async def history_status(client: httpx.AsyncClient, token: str) -> int:
    response = await client.get("/api/history", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def test_a_session_of_process_a_is_accepted_by_process_b(
    make: Make, citizens: tuple[Path, SigningKey]
) -> None:
    token = await login(make(), citizens[1])
    assert await history_status(make(), token) == 200  # B, or A after a restart
    assert await history_status(make(secret=b"\x02" * 32), token) == 401  # another portal
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert await history_status(make(), tampered) == 401


async def test_a_session_expires(make: Make, citizens: tuple[Path, SigningKey]) -> None:
    clock = Clock()
    client = make(clock=clock)
    token = await login(client, citizens[1])
    clock.now += 899
    assert await history_status(client, token) == 200
    clock.now += 2
    assert await history_status(client, token) == 401


async def test_logout_and_a_new_key_end_sessions(
    make: Make, citizens: tuple[Path, SigningKey]
) -> None:
    store = MemoryStorage()
    a, b = make(store=store), make(store=store)
    token = await login(a, citizens[1])
    await a.post("/api/logout", headers={"Authorization": f"Bearer {token}"})
    assert await history_status(b, token) == 401  # logged out everywhere sharing the store
    token = await login(a, citizens[1])
    register_citizen(citizens[0], ALICE, SigningKey.generate().public_bytes, "a" * 32)
    fresh = make(store=store)  # reads the citizen list anew
    assert await history_status(fresh, token) == 401  # the card was replaced


# -- headers ----------------------------------------------------------------------------

PERSONAL = ["/", "/api/challenge", "/history", "/api/history", "/healthz", "/metrics", "/nowhere"]


@pytest.mark.parametrize("path", PERSONAL)
async def test_security_headers_on_every_answer(
    make: Make, citizens: tuple[Path, SigningKey], path: str
) -> None:
    client = make()
    token = await login(client, citizens[1])
    response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    headers = response.headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in headers  # plain HTTP: HSTS means nothing


async def test_hsts_and_secure_cookies_over_tls(
    make: Make, citizens: tuple[Path, SigningKey]
) -> None:
    client = make(tls=True)
    response = await client.post("/api/login", json=signed(citizens[1], await challenge_of(client)))
    assert response.headers["strict-transport-security"].startswith("max-age=")
    cookie = response.headers["set-cookie"].lower()
    assert "secure" in cookie
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    refused = await client.post("/api/login", content=b"{", headers=JSON)
    assert "strict-transport-security" in refused.headers  # errors too


async def test_metrics_serve_the_witness_alarms_and_nothing_personal(
    make: Make, citizens: tuple[Path, SigningKey]
) -> None:
    client = make()
    await login(client, citizens[1])
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'renkei_witness_alarms_total{kind="rollback"}' in response.text
    assert ALICE not in response.text
