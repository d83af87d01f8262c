"""Portal requests/s and latency over 1,000,000 audit records, load from a second process.

    .venv/bin/python -m benchmarks.portal [--records 1000000] [--persons 100000]
        [--citizens 2000] [--connections 32] [--seconds 20]

The server process fills the portal's in-memory index directly with synthetic records
(``--records`` over ``--persons``: ten per person by default) instead of replaying them
from Kafka, registers ``--citizens`` of those persons, and serves with uvicorn on
127.0.0.1. This process logs every citizen in (signed challenges, as a browser would),
then keeps ``--connections`` keep-alive connections busy with ``GET /api/history`` for a
random logged-in citizen, for ``--seconds`` (and at most 1,000,000 requests), and prints
requests/s and latency percentiles. Loopback only; bounded in time and count.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from renkei.crypto import SigningKey

STEPS = ("FORWARDED", "ANSWERED", "NOTIFIED", "ENROLLED", "REGISTRY_APPLIED")
LEGAL = "番号法第19条第8号 主務省令第2条の表 第26項"


def citizen_key(i: int) -> SigningKey:
    return SigningKey.from_bytes(hashlib.sha256(f"bench-citizen-{i}".encode()).digest())


def resident_code(i: int) -> str:
    return f"{10_000_000_000 + i}"


def audit_key(person: int) -> str:
    return f"{person:032x}"


# -- the server process ----------------------------------------------------------------


def serve(port: int, records: int, persons: int, citizens_file: Path) -> None:
    import uvicorn

    from renkei.portal import (
        Authenticator,
        CitizenRegistry,
        LoginLimits,
        PortalIndex,
        Row,
        create_app,
    )
    from renkei.portal.labels import Names

    started = time.perf_counter()
    index = PortalIndex()
    index.names = Names(
        {
            "city-shinagawa": ("品川区", "Shinagawa City"),
            "jps": ("日本年金機構", "Japan Pension Service"),
        },
        {"S003": ("生活保護法による保護の決定及び実施に関する事務", "public assistance")},
    )
    items = ("pension.benefit_status", "pension.annual_amount")
    base = 1_764_000_000_000
    for n in range(records):
        step = STEPS[n % len(STEPS)]
        index.add_row(
            audit_key(n % persons),
            Row(base + n * 1000, step, "city-shinagawa", "city-shinagawa", "jps", "S003", LEGAL,
                items, None, n % 97 != 0, f"{n:032x}"),
        )  # fmt: skip
    index.caught_up.set()
    print(f"index: {records:,} records, {index.persons:,} persons in "
          f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
    # Every citizen logs in from this one address: lift the per-address login limit.
    limits = LoginLimits(per_ip="10000000/minute")
    app = create_app(index, Authenticator(CitizenRegistry(citizens_file)), limits=limits)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- the load process ------------------------------------------------------------------


async def http(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


def get(path: str, token: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: portal\r\nAuthorization: Bearer {token}\r\n\r\n".encode()


def post(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: portal\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def login_all(port: int, citizens: int) -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    tokens = []
    for i in range(citizens):
        _, body = await http(reader, writer, get("/api/challenge", ""))
        challenge = json.loads(body)["challenge"]
        message = f"renkei-portal-login/v1\nrenkei-portal\n{challenge}\n{resident_code(i)}"
        signature = base64.b64encode(citizen_key(i).sign(message.encode())).decode()
        payload = json.dumps({"resident_code": resident_code(i), "challenge": challenge,
                              "signature": signature}).encode()  # fmt: skip
        status, body = await http(reader, writer, post("/api/login", payload))
        assert status == 200, body
        tokens.append(json.loads(body)["token"])
    writer.close()
    return tokens


async def hammer(
    port: int, tokens: list[str], seconds: float, limit: int, latencies: list[float]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    deadline = time.perf_counter() + seconds
    rng = random.Random()
    while time.perf_counter() < deadline and len(latencies) < limit:
        request = get("/api/history", rng.choice(tokens))
        started = time.perf_counter()
        status, body = await http(reader, writer, request)
        latencies.append(time.perf_counter() - started)
        assert status == 200, body[:200]
    writer.close()


async def load(args: argparse.Namespace, port: int) -> None:
    started = time.perf_counter()
    tokens = await login_all(port, args.citizens)
    took = time.perf_counter() - started
    print(
        f"logins : {len(tokens):,} in {took:.1f} s = {len(tokens) / took:,.0f}/s (one connection)"
    )
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(
        hammer(port, tokens, args.seconds, 1_000_000, latencies) for _ in range(args.connections)
    ))  # fmt: skip
    took = time.perf_counter() - started
    latencies.sort()
    n = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(n - 1, int(n * p))] * 1000

    print(f"history: {n:,} requests in {took:.1f} s = {n / took:,.0f} requests/s, "
          f"{args.connections} connections; latency p50 {pct(0.5):.1f} ms, "
          f"p99 {pct(0.99):.1f} ms, max {latencies[-1] * 1000:.1f} ms")  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--citizens", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--citizens-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.records, args.persons, args.citizens_file)
        return
    from renkei.portal import register_citizen

    with tempfile.TemporaryDirectory() as tmp:
        citizens_file = Path(tmp) / "citizens.json"
        for i in range(args.citizens):
            register_citizen(citizens_file, resident_code(i), citizen_key(i).public_bytes,
                             audit_key(i))  # fmt: skip
        port = free_port()
        server = subprocess.Popen(  # noqa: S603 - this very module, with our own arguments
            [sys.executable, "-m", "benchmarks.portal", "--serve", str(port),
             "--records", str(args.records), "--persons", str(args.persons),
             "--citizens-file", str(citizens_file)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            print(server.stdout.readline().strip())
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            asyncio.run(load(args, port))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
