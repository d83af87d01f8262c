"""The signature verifier stage: 1 and 2 workers beside a bare aiokafka pass-through.

Run: ``.venv/bin/python -m benchmarks.verifier [messages] [--partitions 6] [--cores C]``
(``RENKEI_BOOTSTRAP``: the shared broker, else a single node started here)

For each step (1 verifier, then 2): fresh topics, the directory published, ``messages``
signed attribute requests written to one agency's ``.out`` topic (``--partitions``
partitions) before any verifier runs; then that many ``renkei hub`` processes with
``RENKEI_HUB_ROLE=verifier`` start, and the clock runs from the first verdict on
``hub.audit.signatures`` until the verdicts have checked every message. Printed beside
it: the bare pass-through of the same number of messages in the same run (the
denominator), the verifiers' CPU a message (their processes, from ``/proc``), and the
speed-up of two verifiers over one. ``--cores C`` (root) caps each verifier with a cgroup
CPU quota, as ``benchmarks.scaleout`` caps hub workers, so that the verifiers rather than
the machine's two cores are the limit. Every verdict must report no failure: the requests
are genuine, so a failure would mean the benchmark measured another path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.cgroups import CpuCap
from benchmarks.common import broker, passthrough
from benchmarks.cpu_meter import CpuMeter
from renkei.crypto import SealingKeyPair, keystore
from renkei.envelope import encode_signed
from renkei.operator.directory_file import load_directory_file
from renkei.operator.publish import init_keys, publish
from renkei.readers import committed_reader
from renkei.settings import KafkaSettings
from renkei.topics import Topics, TopicSpec, ensure_topics
from schemas.codec import default_codec
from schemas.models import AttributeRequest, Header, HpkeSuite, SignatureVerdict

__all__ = ["main"]

REQUESTER, PROVIDER = "city-shinagawa", "jps"


async def _write_requests(bootstrap: str, topics: Topics, key_dir: Path, count: int) -> None:
    """``count`` genuine signed requests on the requester's ``.out`` topic."""
    codec = default_codec()
    city = keystore.load(key_dir, REQUESTER)
    scenario = next(s for s in load_directory_file().scenarios
                    if s.requester == REQUESTER and s.provider == PROVIDER)  # fmt: skip
    reply = SealingKeyPair.generate().public_bytes
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        for i in range(count):
            header = Header.new(REQUESTER)
            request = AttributeRequest(
                header=header, request_id=f"r{i}", requester_link_code=f"code-{i}",
                provider=PROVIDER, scenario_id=scenario.scenario_id, items=scenario.items[:1],
                reply_public_key=reply, hpke_suite=HpkeSuite.X25519,
                deadline=header.sent_at + timedelta(hours=1),
            )  # fmt: skip
            value = encode_signed(request, city.signing, codec)
            await producer.send(topics.agency_out(REQUESTER), value, key=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _time_verdicts(bootstrap: str, topics: Topics, count: int) -> tuple[float, int]:
    """Seconds from the first verdict to the one that completes ``count`` checks, and the
    failures reported (read_committed)."""
    codec = default_codec()
    consumer = committed_reader({"bootstrap_servers": bootstrap}, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topics.audit_signatures, p) for p in range(topics.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        checked = failures = 0
        first = 0.0
        while checked < count:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    verdict = codec.decode(r.value)
                    assert isinstance(verdict, SignatureVerdict)
                    first = first or time.perf_counter()
                    checked += verdict.checked
                    failures += len(verdict.failures)
        return time.perf_counter() - first, failures
    finally:
        await consumer.stop()


async def one_step(
    bootstrap: str, count: int, workers: int, partitions: int, cores: float | None
) -> dict[str, float]:
    topics = Topics(f"v{uuid.uuid4().hex[:6]}.", partitions)
    with tempfile.TemporaryDirectory() as tmp:
        key_dir = Path(tmp)
        init_keys(key_dir)
        settings = KafkaSettings(bootstrap=bootstrap)
        # The input and the verdicts at --partitions (publish would make the input at 3).
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await ensure_topics(admin, [
                TopicSpec(topics.agency_out(REQUESTER), partitions),
                TopicSpec(topics.audit_signatures, partitions),
            ])  # fmt: skip
        finally:
            await admin.close()
        await publish(settings, topics.prefix, key_dir, None)
        await _write_requests(bootstrap, topics, key_dir, count)
        env = {**os.environ, "RENKEI_BOOTSTRAP": bootstrap,
               "RENKEI_HUB_TOPIC_PREFIX": topics.prefix, "RENKEI_HUB_PARTITIONS": str(partitions),
               "RENKEI_HUB_KEY_DIR": str(key_dir), "RENKEI_HUB_ROLE": "verifier",
               "RENKEI_HUB_SIGNATURES": "trust-acl"}  # fmt: skip
        processes = [_verifier(env, f"verifier-{i}") for i in range(workers)]
        caps = []
        if cores is not None:  # each verifier in a cgroup of its own (benchmarks.cgroups)
            for i, process in enumerate(processes):
                cap = CpuCap(f"renkei-bench-verifier-{topics.prefix}{i}", cores).__enter__()
                cap.add(process.pid)
                caps.append(cap)
        meter = CpuMeter({"verifiers": [p.pid for p in processes]})
        try:
            meter.start()
            seconds, failures = await _time_verdicts(bootstrap, topics, count)
            meter.stop()
        finally:
            for p in processes:
                p.send_signal(signal.SIGTERM)
            for p in processes:
                await asyncio.to_thread(p.wait, 60)
            for cap in caps:
                cap.__exit__(None, None, None)
    if failures:
        raise SystemExit(f"{failures} genuine requests failed the check: another path measured")
    # The meter ran from the workers' start: their start-up is in the CPU, not the clock.
    used = meter.cores()
    return {"per_s": count / seconds, "seconds": seconds,
            "cpu_us": 1e6 * meter.used_s["verifiers"] / count,
            "machine": used["machine"], "verifiers": used["verifiers"]}  # fmt: skip


def _verifier(env: dict[str, str], worker_id: str) -> subprocess.Popen[bytes]:
    """A ``renkei hub`` verifier process (started before the clock runs)."""
    return subprocess.Popen(
        [sys.executable, "-m", "renkei", "hub", "--loglevel", "error"],
        env={**env, "RENKEI_HUB_WORKER_ID": worker_id},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def run(count: int, partitions: int, cores: float | None) -> None:
    async with broker(Path(os.environ.get("RENKEI_HOME", ".renkei"))) as bootstrap:
        base = await passthrough(bootstrap, count, 600, partitions)
        steps = [await one_step(bootstrap, count, k, partitions, cores) for k in (1, 2)]
    capped = f", each verifier capped at {cores} of a core" if cores is not None else ""
    print(f"{count:,} signed requests on {partitions} partitions{capped}; bare aiokafka "
          f"pass-through {base:,.0f} msg/s (same run, uncapped)")  # fmt: skip
    print("| verifiers | messages/s | × the pass-through | seconds | verifiers' CPU µs a "
          "message (start-up included) | cores: machine (of 2) / verifiers |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for k, step in zip((1, 2), steps, strict=True):
        print(f"| {k} | {step['per_s']:,.0f} | {step['per_s'] / base:.2f} | "
              f"{step['seconds']:.2f} | {step['cpu_us']:.0f} | "
              f"{step['machine']:.2f} / {step['verifiers']:.2f} |")  # fmt: skip
    print(f"two verifiers: {steps[1]['per_s'] / steps[0]['per_s']:.2f} × one")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.verifier")
    parser.add_argument("messages", nargs="?", type=int, default=20000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--cores", type=float, help="cap each verifier at this share of a core (root: cgroups)"
    )
    args = parser.parse_args(argv)
    asyncio.run(run(args.messages, args.partitions, args.cores))


if __name__ == "__main__":
    main()
