"""Life-event fan-out through one hub worker, beside a bare aiokafka pass-through.

Run: ``.venv/bin/python -m benchmarks.fanout [events] [--people N] [--signatures MODE]``

1. Baseline: aiokafka consume → produce of as many messages as the hub will write
   notices (at most ``--baseline-max``), same broker, same run
   (``benchmarks.common.passthrough``), and the same exactly-once (``read_committed``, a
   transaction per poll: ``benchmarks.common.passthrough_transactional``).
2. Setup (not timed): ``--people`` persons registered and enrolled at five agencies that
   are all entitled to moves.
3. Fan-out: N signed MOVED events (round-robin over the people) are written while the hub
   is stopped; the hub starts and the clock runs from its first batch to its last. Each
   event becomes five ``LifeEventNotice`` messages, five ``NOTIFIED`` audit records, a
   ``REGISTRY_APPLIED`` audit record and a person-row update, all in the batch's
   transaction. ``notices/s`` = notices written / that time.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.common import (
    agency_trust,
    broker,
    passthrough,
    passthrough_transactional,
    prefix,
)
from hub_stream.settings import HubSettings
from hub_stream.worker import HubService
from producers.agency_client import AgencyClient
from producers.population import generate_population
from producers.registry_publisher import RegistryPublisher
from renkei.crypto import keystore
from renkei.operator.publish import init_keys, publish
from renkei.settings import KafkaSettings
from renkei.topics import Topics
from schemas.models import Basic4, Sex

_TODAY = date(2026, 4, 1)
HOLDERS = ("jps", "city-shinagawa", "city-osaka", "pref-tokyo", "kyokai-kenpo")
"""Five agencies of the sample directory, all entitled to MOVED."""


def hub_settings(topics: Topics, key_dir: Path, signatures: str) -> HubSettings:
    return HubSettings(
        topic_prefix=topics.prefix, partitions=topics.partitions, key_dir=key_dir,
        group_id=f"{topics.prefix}hub", signatures=signatures,  # type: ignore[arg-type]
    )  # fmt: skip


async def setup(
    kafka: dict[str, Any], topics: Topics, key_dir: Path, people: int, signatures: str
) -> list[str]:
    """Register ``people`` and enrol each at every holder; their resident codes."""
    init_keys(key_dir)
    await publish(KafkaSettings(bootstrap=kafka["bootstrap_servers"]), topics.prefix, key_dir, None)
    service = HubService(kafka, hub_settings(topics, key_dir, signatures))
    await service.start()
    population = generate_population(people, seed=3)
    async with RegistryPublisher(keystore.load(key_dir, "registry"), kafka, topics) as registry:
        for p in population:
            b4 = Basic4(name=p.name, name_kana=p.name_kana, birth_date=p.birth_date,
                        sex=Sex(p.sex), address=p.address)  # fmt: skip
            await registry.register(p.resident_code, p.my_number, b4, p.birth_date)
    while len(service.hub.persons) < people:  # noqa: ASYNC110 - waiting on the hub's table
        await asyncio.sleep(0.1)
    for agency in HOLDERS:
        async with AgencyClient(agency, keystore.load(key_dir, agency), kafka, topics,
                                **agency_trust(key_dir, signatures)) as client:  # fmt: skip
            for start in range(0, people, 5_000):
                chunk = population[start : start + 5_000]
                results = await asyncio.gather(
                    *(client.enrol(p.resident_code, my_number=p.my_number, timeout_s=300)
                      for p in chunk)
                )  # fmt: skip
                assert all(r.link_code for r in results), "an enrolment did not link"
    await service.stop()
    return [p.resident_code for p in population]


async def preload(
    kafka: dict[str, Any], topics: Topics, key_dir: Path, residents: list[str], events: int
) -> float:
    """Write ``events`` signed moves while the hub is stopped; seconds it took."""
    started = time.perf_counter()
    registry = RegistryPublisher(keystore.load(key_dir, "registry"), kafka, topics)
    async with registry:
        for i in range(events):
            who = residents[i % len(residents)]
            await registry.move(who, f"東京都千代田区霞が関一丁目{i}番", _TODAY)
    return time.perf_counter() - started


async def timed_fanout(
    kafka: dict[str, Any], settings: HubSettings, events: int
) -> tuple[float, int, float]:
    """Start the hub; seconds from its first to its last of ``events`` records, the notices
    it wrote, and its restore time."""
    began = time.perf_counter()
    service = HubService(kafka, settings)
    await service.start()
    assert service.loop_runner is not None
    restored = time.perf_counter() - began
    stats = service.loop_runner.stats
    while stats.records_in == 0:  # noqa: ASYNC110 - polling a counter is the measurement
        await asyncio.sleep(0.001)
    started = time.perf_counter()
    while stats.records_in < events:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - started
    notices = service.hub.metrics["notices"]
    await service.stop()
    return elapsed, notices, restored


async def main(events: int, people: int, signatures: str, baseline_max: int) -> None:
    with tempfile.TemporaryDirectory() as home:
        async with broker(Path(home)) as bootstrap:
            kafka: dict[str, Any] = {"bootstrap_servers": bootstrap}
            baseline_count = min(events * len(HOLDERS), baseline_max)
            base = await passthrough(bootstrap, baseline_count, 300)
            tx = await passthrough_transactional(bootstrap, baseline_count, 300)
            topics = Topics(prefix())
            key_dir = Path(home) / "keys"
            began = time.perf_counter()
            residents = await setup(kafka, topics, key_dir, people, signatures)
            print(f"setup: {people:,} people enrolled at {len(HOLDERS)} agencies "
                  f"in {time.perf_counter() - began:.0f} s")  # fmt: skip
            wrote = await preload(kafka, topics, key_dir, residents, events)
            print(f"preload: {events:,} signed registry events in {wrote:.0f} s")
            settings = hub_settings(topics, key_dir, signatures)
            elapsed, notices, restored = await timed_fanout(kafka, settings, events)
            print(f"signatures={signatures}")
            print(f"baseline aiokafka pass-through: {base:,.0f} msg/s ({baseline_count:,} msgs); "
                  f"transactional (a transaction per poll): {tx:,.0f} msg/s")  # fmt: skip
            print(f"hub: {events:,} registry events -> {notices:,} notices in {elapsed:.1f} s "
                  f"(state restored in {restored:.1f} s before)")  # fmt: skip
            print(f"hub: {notices / elapsed:,.0f} notices/s, {events / elapsed:,.0f} events/s "
                  f"(target >= 50,000 notices/s)")  # fmt: skip
            print(f"ratio notices/s : pass-through msg/s = {notices / elapsed / base:.2f}; "
                  f": transactional = {notices / elapsed / tx:.2f}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", nargs="?", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--signatures", choices=["strict", "trust-acl"], default="strict")
    parser.add_argument("--baseline-max", type=int, default=1_000_000)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.people, args.signatures, args.baseline_max))
