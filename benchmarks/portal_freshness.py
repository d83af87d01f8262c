"""How soon a record the hub writes is on the citizen's portal, beside Kafka's own latency.

    .venv/bin/python -m benchmarks.portal_freshness [--exchanges 200] [--moves 20]
        [--rate 10]

On the local broker (``RENKEI_BOOTSTRAP``, else a node started here): a ``renkei hub``
process (checkpoints every 10⁶ records or an hour, so only its tree heads can make a
record visible) and, in this process, a provider answering at once, one person enrolled
at two agencies and registered with the portal, and the portal following ``hub.audit``,
served by uvicorn. A requester offers ``--exchanges`` exchanges about the person at
``--rate`` a second, then the registry publishes ``--moves`` moves (each fanned out to
both agencies as NOTIFIED records). Meanwhile a logged-in client polls ``GET
/api/history`` every 50 ms; a record's **freshness** is the time from its ``occurred_at``
(set by the hub as it writes it) to the first answer that contains it — it must be
within 2 s. The answer grows with the history (every record with its proof), so the
polling is part of the portal's load.

Baselines, same run, same clock:

- **hub.audit read_committed**: a consumer of ``hub.audit`` in this process, from a
  record's ``occurred_at`` to its arrival — what Kafka and the hub's transaction cost
  before the portal sees anything;
- **bare Kafka**: a transactional producer writes one message per transaction at the
  same rate to a fresh topic and a read_committed consumer receives it, from send to
  arrival.

Prints p50, p99 and max of each. Loopback only; bounded in time and count.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.common import broker, prefix
from consumers.provider import ProviderService
from hub_stream.worker import load_hub_keys
from producers.agency_client import AgencyClient
from producers.population import Person, generate_population
from producers.registry_publisher import RegistryPublisher
from renkei.audit.rebuild import audit_key_of_resident
from renkei.auditchain import TRUST_FILE, TrustedKeys
from renkei.crypto import SigningKey
from renkei.errors import ExchangeError
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
from renkei.readers import committed_reader, topic_partitions
from renkei.topics import Topics, TopicSpec, ensure_topics
from schemas.codec import default_codec
from schemas.models import AuditRecord, ForwardedRequest
from tests.integration.hub_env import HubEnv, hub_env
from tests.integration.test_exchange import basic4_of
from tests.integration.test_portal import serving

__all__ = ["Fresh", "fresh_portal", "main"]

CODEC = default_codec()
REQUESTER, PROVIDER = "city-shinagawa", "jps"
NO_CHECKPOINTS: dict[str, Any] = {
    "audit_checkpoint_records": 1_000_000,
    "audit_checkpoint_ms": 3_600_000,
}
POLL_S = 0.05


async def _answer(request: ForwardedRequest) -> dict[str, Any]:
    return dict.fromkeys(request.items, "42")


@dataclass
class Fresh:
    """A hub, a provider, one enrolled person and a portal with that person logged in."""

    env: HubEnv
    person: Person
    requester: AgencyClient
    link_code: str
    registry: RegistryPublisher
    portal: httpx.AsyncClient  # logged in as the person
    index: PortalIndex

    async def history(self) -> list[dict[str, Any]]:
        answer = await self.portal.get("/api/history")
        answer.raise_for_status()
        records: list[dict[str, Any]] = answer.json()["records"]
        return records

    async def exchange(self, request_id: str) -> None:
        await self.requester.request(
            link_code=self.link_code, provider=PROVIDER, scenario_id="S003",
            items=("pension.benefit_status",), request_id=request_id,
        )  # fmt: skip

    async def move(self, n: int) -> None:
        await self.registry.move(
            self.person.resident_code, f"東京都品川区東五反田二丁目{n}番1号",
            self.person.birth_date,
        )  # fmt: skip


@asynccontextmanager
async def fresh_portal(bootstrap: str, tmp: Path) -> AsyncIterator[Fresh]:
    """Everything :class:`Fresh` holds, under a fresh topic prefix; stopped on exit."""
    topics = Topics(prefix())
    async with AsyncExitStack() as stack:
        env = await stack.enter_async_context(
            hub_env(bootstrap, topics, tmp / "keys", **NO_CHECKPOINTS)
        )
        (person,) = generate_population(1, seed=13)
        registry = await stack.enter_async_context(
            RegistryPublisher(env.keys("registry"), env.kafka, topics)
        )
        await registry.register(
            person.resident_code, person.my_number, basic4_of(person), person.birth_date
        )
        clients = {}
        for agency in (REQUESTER, PROVIDER):
            clients[agency] = await stack.enter_async_context(AgencyClient(
                agency, env.keys(agency), env.kafka, topics, grace_s=5,
                hub_public_key=env.hub_key,
            ))  # fmt: skip
        await stack.enter_async_context(ProviderService(
            PROVIDER, env.keys(PROVIDER), env.kafka, topics, _answer, hub_public_key=env.hub_key
        ))  # fmt: skip
        codes = {}
        for agency, client in clients.items():
            result = await client.enrol(f"{agency}-1", my_number=person.my_number)
            assert result.link_code, result
            codes[agency] = result.link_code
        keyring, _ = load_hub_keys(env.settings)
        audit_key = await audit_key_of_resident(env.kafka, topics, keyring, person.resident_code)
        assert audit_key is not None
        key = SigningKey.generate()
        citizens = tmp / "citizens.json"
        register_citizen(citizens, person.resident_code, key.public_bytes, audit_key)
        trust = PortalTrust(TrustedKeys.load(env.settings.key_dir / TRUST_FILE),
                            env.keys("operator").signing.public_bytes)  # fmt: skip
        index = PortalIndex(TrailVerifier(trust.audit_keys, CODEC))
        app = create_app(index, Authenticator(CitizenRegistry(citizens)), kafka=env.kafka,
                         topics=topics, codec=CODEC, trust=trust)  # fmt: skip
        base = await stack.enter_async_context(serving(app))
        portal = await stack.enter_async_context(httpx.AsyncClient(base_url=base))
        challenge = (await portal.get("/api/challenge")).json()["challenge"]
        signature = key.sign(login_message("renkei-portal", challenge, person.resident_code))
        login = await portal.post("/api/login", json={
            "resident_code": person.resident_code, "challenge": challenge,
            "signature": base64.b64encode(signature).decode(),
        })  # fmt: skip
        login.raise_for_status()
        portal.headers["Authorization"] = f"Bearer {login.json()['token']}"
        portal.cookies.clear()
        yield Fresh(env, person, clients[REQUESTER], codes[REQUESTER], registry, portal, index)


@asynccontextmanager
async def hub_process(fresh: Fresh) -> AsyncIterator[None]:
    """The hub worker moved to a process of its own, with the same settings: the portal
    and the poller here do not take its event loop."""
    await fresh.env.hub.stop()
    settings = fresh.env.settings
    env = {**os.environ, "RENKEI_BOOTSTRAP": fresh.env.kafka["bootstrap_servers"],
           "RENKEI_HUB_TOPIC_PREFIX": settings.topic_prefix,
           "RENKEI_HUB_KEY_DIR": str(settings.key_dir), "RENKEI_HUB_POLL_MS": "10",
           "RENKEI_HUB_AUDIT_CHECKPOINT_RECORDS": str(settings.audit_checkpoint_records),
           "RENKEI_HUB_AUDIT_CHECKPOINT_MS": str(settings.audit_checkpoint_ms)}  # fmt: skip
    hub = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "renkei", "hub", "--loglevel", "error", env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        hub.send_signal(signal.SIGTERM)
        await asyncio.wait_for(hub.wait(), 30)


async def warm_up(fresh: Fresh) -> None:
    """Until an exchange is answered (the hub process restores its state first) and the
    portal shows it."""
    for attempt in range(10):
        try:
            await fresh.exchange(f"warm-up-{attempt}")
            break
        except ExchangeError:  # refused: the request's deadline passed while it started
            continue
    else:
        raise SystemExit("the hub process never answered (run `renkei hub` to see why)")
    while not any(r["step"] == "ANSWERED" for r in await fresh.history()):  # noqa: ASYNC110
        await asyncio.sleep(0.1)


# -- the measurements ------------------------------------------------------------------------


async def _poll_portal(fresh: Fresh, seen: dict[str, float], stop: asyncio.Event) -> None:
    """Each record's delay from ``occurred_at`` to the first /api/history that shows it."""
    while not stop.is_set():
        records = await fresh.history()
        now_ms = time.time() * 1000
        for r in records:
            key = f"{r['partition']}:{r['position']}"
            if key not in seen:
                seen[key] = (now_ms - r["occurred_at_ms"]) / 1000
        await asyncio.sleep(POLL_S)


async def _consume_trail(fresh: Fresh, seen: dict[str, float], stop: asyncio.Event) -> None:
    """Each AuditRecord's delay from ``occurred_at`` to a read_committed consumer."""
    consumer = committed_reader(fresh.env.kafka, group_id=None)
    await consumer.start()
    try:
        topic = fresh.env.topics.audit
        tps = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100)
            now_ms = time.time() * 1000
            for records in batch.values():
                for r in records:
                    message = CODEC.decode(r.value) if r.value else None
                    if isinstance(message, AuditRecord):
                        occurred = message.occurred_at.timestamp() * 1000
                        seen[f"{r.partition}:{r.offset}"] = (now_ms - occurred) / 1000
    finally:
        await consumer.stop()


async def bare_kafka(bootstrap: str, count: int, rate: float) -> list[float]:
    """Send → read_committed arrival, one message per transaction, at ``rate`` a second."""
    topic = f"{prefix()}bare"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await ensure_topics(admin, [TopicSpec(topic, 1)])
    await admin.close()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", fetch_max_wait_ms=100
    )
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    await consumer.seek_to_end(tp)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"{topic}-tx")
    await producer.start()
    delays: list[float] = []
    try:
        for _ in range(count):
            sent = time.time()
            async with producer.transaction():
                await producer.send(topic, str(sent).encode())
            for _ in range(30):  # at most 30 s for one message
                got = await consumer.getmany(tp, timeout_ms=1000)
                if got.get(tp):
                    delays.append(time.time() - float(got[tp][-1].value or b"0"))
                    break
            await asyncio.sleep(max(0.0, 1 / rate - (time.time() - sent)))
    finally:
        await producer.stop()
        await consumer.stop()
    return delays


def _summary(name: str, delays: list[float]) -> str:
    if not delays:
        return f"{name:32s} no samples"
    ordered = sorted(delays)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"{name:32s} n={len(ordered):4d}  p50 {statistics.median(ordered) * 1000:7.1f} ms"
            f"  p99 {p99 * 1000:7.1f} ms  max {ordered[-1] * 1000:7.1f} ms")  # fmt: skip


async def main(exchanges: int, moves: int, rate: float) -> None:
    with tempfile.TemporaryDirectory(prefix="renkei-fresh-") as tmp:
        async with broker(Path(tmp) / "kafka") as bootstrap:
            print(f"bare Kafka: {exchanges} transactions at {rate}/s", flush=True)
            bare = await bare_kafka(bootstrap, exchanges, rate)
            async with fresh_portal(bootstrap, Path(tmp)) as fresh, hub_process(fresh):
                await warm_up(fresh)
                portal: dict[str, float] = {}
                trail: dict[str, float] = {}
                stop = asyncio.Event()
                for r in await fresh.history():  # the set-up's records: not measured
                    portal[f"{r['partition']}:{r['position']}"] = float("nan")
                before = set(portal)
                tasks = [asyncio.create_task(_poll_portal(fresh, portal, stop)),
                         asyncio.create_task(_consume_trail(fresh, trail, stop))]  # fmt: skip
                await asyncio.sleep(0.5)  # the consumer at the end before the first exchange
                print(f"portal: {exchanges} exchanges at {rate}/s, then {moves} moves", flush=True)
                started = time.perf_counter()
                pending = []
                for n in range(exchanges):
                    pending.append(asyncio.create_task(fresh.exchange(f"fresh-{n}")))
                    await asyncio.sleep(max(0.0, (n + 1) / rate - (time.perf_counter() - started)))
                await asyncio.gather(*pending)
                for n in range(moves):
                    await fresh.move(n)
                    await asyncio.sleep(1 / rate)
                expected = len(before) + 2 * exchanges + 3 * moves  # FORWARDED, ANSWERED;
                deadline = time.perf_counter() + 30  # REGISTRY_APPLIED and two NOTIFIED
                while len(portal) < expected and time.perf_counter() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
                stop.set()
                await asyncio.gather(*tasks)
                shown = [d for k, d in portal.items() if k not in before]
                health = fresh.index.health()
                print(f"records shown {len(shown)} of {expected - len(before)} expected; "
                      f"portal {health['status']}, unverified {health['unverified']}")  # fmt: skip
                print(_summary("bare Kafka (transactional)", bare))
                print(_summary("hub.audit read_committed", list(trail.values())))
                print(_summary("portal /api/history", shown))
                late = [d for d in shown if d > 2.0]
                print(f"over 2 s: {len(late)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exchanges", type=int, default=200)
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--rate", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(main(args.exchanges, args.moves, args.rate))
