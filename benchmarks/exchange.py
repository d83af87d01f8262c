"""Attribute exchanges through one hub worker, beside a bare aiokafka pass-through.

Run: ``.venv/bin/python -m benchmarks.exchange [exchanges] [--signatures MODE] [--secure]``
(MODE: ``strict`` or ``trust-acl``)

1. Baselines: aiokafka consume → produce of the same number of messages, same broker,
   same run (``benchmarks.common.passthrough``), and the same done exactly-once —
   ``read_committed``, one transaction per poll of ≤ 1,000 records written as record
   batches (``benchmarks.common.passthrough_transactional``).
2. Throughput: N signed attribute requests are written while the hub is stopped; the hub
   starts and the clock runs from its first batch to its last. Then the providers' N
   sealed answers are written and timed the same way. An exchange is those two inbound
   messages; ``hub messages/s`` counts inbound messages, like the baseline.
3. Latency: a `renkei hub` process, a provider answering at once and a requester; the
   requester offers a fixed rate (``--rate``, 2,000 exchanges/s) for 10 s and times each
   request to its answer. ``--agents lean`` (default) writes requests built before the
   clock and answers with a payload sealed once; ``--agents sdk`` runs both through the
   agency SDK in this process (``benchmarks.hop_agents``; ``benchmarks.hops`` profiles
   each hop).

``--secure`` then runs all three again on a secure single node started here (TLS +
SASL/SCRAM-SHA-512, ACLs synced for each run's prefix), every actor as its own principal
— the baseline too, as ``hub`` on names its ACLs allow — and prints both transports side
by side. Every actor connects through :class:`renkei.demo.Connections`, as the demo does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from benchmarks.common import (
    agency_trust,
    broker,
    passthrough,
    passthrough_transactional,
    prefix,
)
from hub_stream.ids import derive_id
from hub_stream.settings import HubSettings
from hub_stream.worker import HubService
from infra.kafka import LocalCluster
from producers.agency_client import AgencyClient
from producers.population import generate_population
from producers.registry_publisher import RegistryPublisher
from renkei.crypto import SealingKeyPair, keystore, seal
from renkei.demo import Connections
from renkei.envelope import sign_message
from renkei.operator.acl import sync_acls
from renkei.operator.directory_file import load_directory_file
from renkei.operator.principals import ADMIN, HUB, OPERATOR, REGISTRY, principal_names
from renkei.operator.publish import init_keys, publish
from renkei.settings import KafkaSettings
from renkei.topics import Topics
from schemas.codec import default_codec
from schemas.models import (
    AttributeRequest,
    Basic4,
    Header,
    HpkeSuite,
    ProviderResponse,
    ResponseStatus,
    SealedPayload,
    Sex,
)

REQUESTER, PROVIDER = "city-shinagawa", "jps"
PEOPLE = 500
SECURE_PORT = 29192  # benchmarks.common.broker's plaintext node listens on 29092


async def fresh_topics(conn: Connections) -> Topics:
    """A new prefix; on a secure cluster its ACLs first, as `renkei acl sync --prefix`."""
    topics = Topics(prefix())
    if conn.is_secure:
        await sync_acls(conn.kafka(ADMIN), load_directory_file(), topics)
    return topics


async def setup(conn: Connections, key_dir: Path, topics: Topics) -> tuple[list[str], list[str]]:
    """Keys, directory, a population enrolled at both agencies; their link codes."""
    init_keys(key_dir)
    await publish(conn.settings(OPERATOR), topics.prefix, key_dir, None)
    service = HubService(conn.kafka(HUB), hub_settings(topics, key_dir, "strict"))
    await service.start()
    people = generate_population(PEOPLE, seed=5)
    registry_keys = keystore.load(key_dir, "registry")
    async with RegistryPublisher(registry_keys, conn.kafka(REGISTRY), topics) as registry:
        for p in people:
            b4 = Basic4(name=p.name, name_kana=p.name_kana, birth_date=p.birth_date,
                        sex=Sex(p.sex), address=p.address)  # fmt: skip
            await registry.register(p.resident_code, p.my_number, b4, p.birth_date)
    while len(service.hub.persons) < len(people):  # noqa: ASYNC110 - registrations applied
        await asyncio.sleep(0.05)
    codes: dict[str, list[str]] = {}
    for agency in (REQUESTER, PROVIDER):
        async with AgencyClient(agency, keystore.load(key_dir, agency), conn.agency(agency),
                                topics, **agency_trust(key_dir, "strict")) as client:  # fmt: skip
            results = await asyncio.gather(
                *(client.enrol(p.resident_code, my_number=p.my_number) for p in people)
            )
        codes[agency] = [r.link_code or "" for r in results]
    await service.stop()
    return codes[REQUESTER], codes[PROVIDER]


def hub_settings(topics: Topics, key_dir: Path, signatures: str) -> HubSettings:
    # The default group, <prefix>hub, is the one the hub principal's ACLs allow.
    return HubSettings(
        topic_prefix=topics.prefix, partitions=topics.partitions, key_dir=key_dir,
        signatures=signatures,  # type: ignore[arg-type]
    )  # fmt: skip


async def timed_hub_pass(kafka: dict[str, Any], settings: HubSettings, expect: int) -> float:
    """Start the hub, time its first to its last record of ``expect`` new ones."""
    service = HubService(kafka, settings)
    await service.start()
    assert service.loop_runner is not None
    stats = service.loop_runner.stats
    base = stats.records_in
    while stats.records_in == base:  # noqa: ASYNC110 - polling a counter is the measurement
        await asyncio.sleep(0.001)
    started = time.perf_counter()
    while stats.records_in - base < expect:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - started
    await service.stop()
    return elapsed


async def throughput(conn: Connections, count: int, signatures: str) -> dict[str, float]:
    topics = await fresh_topics(conn)
    with tempfile.TemporaryDirectory() as tmp:
        key_dir = Path(tmp)
        city_codes, jps_codes = await setup(conn, key_dir, topics)
        settings = hub_settings(topics, key_dir, signatures)
        codec = default_codec()
        scenario = next(s for s in load_directory_file().scenarios
                        if s.requester == REQUESTER and s.provider == PROVIDER)  # fmt: skip
        city, jps = keystore.load(key_dir, REQUESTER), keystore.load(key_dir, PROVIDER)
        reply = SealingKeyPair.generate()
        # Each agency writes its own topic (on a secure cluster, the only one it may).
        producer = await _producer(conn.agency(REQUESTER))
        requests = []
        for i in range(count):
            header = Header.new(REQUESTER)
            req = AttributeRequest(
                header=header, request_id=f"r{i}", requester_link_code=city_codes[i % PEOPLE],
                provider=PROVIDER, scenario_id=scenario.scenario_id, items=scenario.items[:1],
                reply_public_key=reply.public_bytes, hpke_suite=HpkeSuite.X25519,
                deadline=header.sent_at + timedelta(hours=1),
            )  # fmt: skip
            req = sign_message(req, city.signing, codec)
            requests.append(req)
            await producer.send(
                topics.agency_out(REQUESTER), codec.encode(req), req.requester_link_code.encode()
            )
        await producer.flush()
        await producer.stop()
        t_requests = await timed_hub_pass(conn.kafka(HUB), settings, count)
        enc, ciphertext = seal("X25519", reply.public_bytes, b'{"v":1}', aad=b"bench")
        sealed = SealedPayload(suite=HpkeSuite.X25519, enc=enc, ciphertext=ciphertext)
        producer = await _producer(conn.agency(PROVIDER))
        for i, req in enumerate(requests):
            resp = ProviderResponse(
                header=Header.new(PROVIDER),
                hub_request_id=derive_id("hub-request", REQUESTER, req.header.message_id),
                provider_link_code=jps_codes[i % PEOPLE], status=ResponseStatus.PROVIDED,
                sealed=sealed, detail="",
            )  # fmt: skip
            resp = sign_message(resp, jps.signing, codec)
            await producer.send(
                topics.agency_out(PROVIDER), codec.encode(resp), resp.provider_link_code.encode()
            )
        await producer.flush()
        await producer.stop()
        t_responses = await timed_hub_pass(conn.kafka(HUB), settings, count)
    elapsed = t_requests + t_responses
    return {"exchanges_per_s": count / elapsed, "messages_per_s": 2 * count / elapsed,
            "requests_s": t_requests, "responses_s": t_responses}  # fmt: skip


async def _producer(kafka: dict[str, Any]) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(**kafka, linger_ms=5, acks="all", enable_idempotence=True)
    await producer.start()
    return producer


async def latency(
    conn: Connections, rate: int, seconds: int, signatures: str, agents: str = "lean"
) -> dict[str, float]:
    """A ``renkei hub`` process, a provider answering at once and a requester offering
    ``rate`` exchanges/s (0: one at a time) for ``seconds``; request-to-answer latency.

    ``agents`` (``benchmarks.hop_agents``): ``lean`` writes requests built and signed
    before the clock runs and answers with a payload sealed once, so the agencies' own
    CPU does not compete with the hub for the two cores; ``sdk`` runs both through the
    agency SDK in this process.
    """
    from benchmarks.hop_agents import lean_agents, sdk_agents  # it imports this module

    topics = await fresh_topics(conn)
    with tempfile.TemporaryDirectory() as tmp:
        key_dir = Path(tmp)
        city_codes, _ = await setup(conn, key_dir, topics)
        env = {**os.environ, **conn.environment(HUB),
               "RENKEI_HUB_TOPIC_PREFIX": topics.prefix, "RENKEI_HUB_KEY_DIR": str(key_dir),
               "RENKEI_HUB_SIGNATURES": signatures, "RENKEI_HUB_POLL_MS": "5"}  # fmt: skip
        # Started once, before the clock runs: blocking here is fine.
        hub = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "renkei", "hub", "--loglevel", "error"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip  # noqa: E501
        make = lean_agents if agents == "lean" else sdk_agents
        try:
            async with make(conn, topics, key_dir, signatures,
                            agency_trust(key_dir, signatures)) as offered:  # fmt: skip
                await offered.one(city_codes[0], -1)  # warm-up: the hub is ready
                offered.stamps.clear()
                await offered.offer(city_codes[:PEOPLE], rate, seconds)
        finally:
            hub.send_signal(signal.SIGTERM)
            await asyncio.to_thread(hub.wait, 30)
    latencies = sorted(s["answer"] - s["send"] for s in offered.stamps.values() if "answer" in s)
    if not latencies:
        latencies = [float("nan")]
    return {"offered_per_s": offered.offered_per_s, "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "max_ms": latencies[-1] * 1000, "failed": offered.unanswered}  # fmt: skip


async def measure(
    conn: Connections, count: int, signatures: str, rate: int, agents: str = "lean"
) -> dict[str, float]:
    """Baseline, hub throughput and latency on one cluster, each actor as ``conn`` says."""
    # The baseline connects like the hub: as `hub` on names its ACLs allow when secure.
    p = prefix()
    if conn.is_secure:
        await sync_acls(conn.kafka(ADMIN), load_directory_file(), Topics(p))
    names = (f"{p}hub.state.pass-in", f"{p}hub.state.pass-out", f"{p}hub-pass")
    base = await passthrough("", 2 * count, 300, kafka=conn.kafka(HUB), names=names)
    # The second baseline: the same, exactly-once (read_committed, a transaction a poll).
    names = (f"{p}hub.state.pass-tx-in", f"{p}hub.state.pass-tx-out", f"{p}hub-pass-tx")
    tx = await passthrough_transactional("", 2 * count, 300, kafka=conn.kafka(HUB), names=names)
    hub = await throughput(conn, count, signatures)
    if not rate:  # --rate 0: throughput only
        nan = float("nan")
        return {"base": base, "tx": tx, **hub, "offered_per_s": nan, "p50_ms": nan,
                "p99_ms": nan, "max_ms": nan, "failed": nan}  # fmt: skip
    lat = await latency(conn, rate, 10, signatures, agents)
    return {"base": base, "tx": tx, **hub, **lat}


def report(name: str, r: dict[str, float], count: int) -> None:
    print(f"[{name}] baseline aiokafka pass-through: {r['base']:,.0f} msg/s; transactional "
          f"(read_committed, a transaction per poll of <= 1,000): {r['tx']:,.0f} msg/s "
          f"= {r['tx'] / r['base']:.2f} of it")  # fmt: skip
    print(f"[{name}] hub: {r['messages_per_s']:,.0f} msg/s = {r['exchanges_per_s']:,.0f} "
          f"exchanges/s (requests {r['requests_s']:.2f} s, answers "
          f"{r['responses_s']:.2f} s for {count:,})")  # fmt: skip
    print(f"[{name}] ratio hub/pass-through: {r['messages_per_s'] / r['base']:.2f} "
          f"(target >= 0.5 trust-acl, >= 0.25 strict); hub/transactional pass-through: "
          f"{r['messages_per_s'] / r['tx']:.2f}")  # fmt: skip
    print(f"[{name}] latency at {r['offered_per_s']:,.0f} exchanges/s offered: "
          f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms, "
          f"{r['failed']:.0f} unanswered (target p99 <= 25 ms)")  # fmt: skip


def compare(plain: dict[str, float], secure: dict[str, float]) -> None:
    print("\n| transport | pass-through msg/s | transactional msg/s | hub msg/s | exchanges/s "
          "| ratio | offered/s | p50 ms | p99 ms |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in (("plaintext", plain), ("TLS + SASL/SCRAM, ACLs", secure)):
        print(f"| {name} | {r['base']:,.0f} | {r['tx']:,.0f} | {r['messages_per_s']:,.0f} | "
              f"{r['exchanges_per_s']:,.0f} | {r['messages_per_s'] / r['base']:.2f} | "
              f"{r['offered_per_s']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")  # fmt: skip
    print(f"secure / plaintext: pass-through {secure['base'] / plain['base']:.2f}, "
          f"hub {secure['messages_per_s'] / plain['messages_per_s']:.2f}, "
          f"p50 {secure['p50_ms'] / plain['p50_ms']:.2f}, "
          f"p99 {secure['p99_ms'] / plain['p99_ms']:.2f}")  # fmt: skip


async def main(count: int, signatures: str, rate: int, secure: bool, agents: str) -> None:
    print(f"signatures={signatures}")
    with tempfile.TemporaryDirectory() as home:
        async with broker(Path(home) / "plain") as bootstrap:
            plain = await measure(
                Connections.shared(KafkaSettings(bootstrap=bootstrap)),
                count,
                signatures,
                rate,
                agents,
            )
        report("plaintext", plain, count)
        if not secure:
            return
        # One node like the plaintext one, on its own ports, stopped afterwards.
        principals = principal_names(load_directory_file())
        cluster = LocalCluster(Path(home) / "secure" / "kafka", base_port=SECURE_PORT,
                               secure=True, principals=principals)  # fmt: skip
        await asyncio.to_thread(cluster.up, 120)
        try:
            tls = await measure(
                Connections.secure(Path(home) / "secure"), count, signatures, rate, agents
            )
        finally:
            await asyncio.to_thread(cluster.down)
        report("secure", tls, count)
        compare(plain, tls)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=20_000)
    parser.add_argument("--signatures", choices=["strict", "trust-acl"], default="strict")
    parser.add_argument(
        "--rate", type=int, default=2000, help="exchanges/s offered; 0: no latency run"
    )
    parser.add_argument(
        "--agents", choices=["lean", "sdk"], default="lean",
        help="the latency run's requester and provider (benchmarks.hop_agents)",
    )  # fmt: skip
    parser.add_argument(
        "--secure", action="store_true",
        help="also on a secure node (TLS + SASL/SCRAM, ACLs), every actor its own principal",
    )  # fmt: skip
    args = parser.parse_args()
    asyncio.run(main(args.count, args.signatures, args.rate, args.secure, args.agents))
