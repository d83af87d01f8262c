"""Where an exchange's latency goes, hop by hop, at a fixed offered rate.

Run: ``.venv/bin/python -m benchmarks.hops [--rate R] [--seconds S] [--signatures MODE]``
(``--rate 0``: one exchange at a time)

A hub worker in a process of its own (``HubService``, as ``renkei hub`` runs it, which
reports each committed batch), a provider answering at once and a requester, as
``benchmarks.exchange``'s latency part. Every exchange is stamped at each hop with
``time.monotonic()``, one clock for every process of the machine:

    send    the requester starts writing the request
    acked   Kafka acknowledged it                     (requester → agency.A.out)
    hub1    the hub's poll returned it
    done1   its transaction committed (the forwarded request is readable)
    prov    the provider's handler got the forwarded request (poll, decode, verify)
    packed  Kafka acknowledged the answer             (provider → agency.B.out)
    hub2    the hub's poll returned the answer
    done2   its transaction committed
    answer  the requester's reader matched the answer to the call

and the profile prints each gap's p50 / p99 (ms), so a hop that dominates shows itself.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import agency_trust, broker
from benchmarks.exchange import PEOPLE, PROVIDER, REQUESTER, fresh_topics, setup
from consumers.provider import ProviderService
from hub_stream.ids import derive_id
from hub_stream.pipeline import BatchTrace
from hub_stream.settings import HubSettings
from producers.agency_client import AgencyClient
from renkei.crypto import keystore
from renkei.demo import Connections
from renkei.errors import ExchangeError
from renkei.operator.directory_file import load_directory_file
from renkei.operator.principals import HUB
from renkei.settings import KafkaSettings
from schemas.models import AttributeRequest, AttributeResponse, Message, ProviderResponse

__all__ = ["HOPS", "profile"]

HOPS = ("send", "acked", "hub1", "done1", "prov", "packed", "hub2", "done2", "answer")


def _capture_publish(service: Any, on_acked: Callable[[Message, Any, float], None]) -> None:
    """Make ``service._publish`` report each acknowledged message's coordinates."""

    async def publish(message: Message, key: str) -> None:
        value = service.reader.codec.encode(message)
        meta = await service._producer.send_and_wait(
            service.topics.agency_out(service.agency_id), value, key=key.encode()
        )
        on_acked(message, meta, time.monotonic())

    service._publish = publish


async def offer(
    client: AgencyClient, provider: ProviderService, codes: list[str], rate: int, seconds: float
) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, int, int], str], int]:
    """Offer ``rate`` exchanges/s (0: one at a time) for ``seconds``; stamps by request id.

    :returns: stamps by request id, which request id each written record belongs to (for
        the hub's batch reports), and how many went unanswered.
    """
    scenario = next(s for s in load_directory_file().scenarios
                    if s.requester == REQUESTER and s.provider == PROVIDER)  # fmt: skip
    stamps: dict[str, dict[str, Any]] = {}
    by_hub_request: dict[str, str] = {}
    records: dict[tuple[str, int, int], str] = {}

    def requested(message: Message, meta: Any, now: float) -> None:
        if isinstance(message, AttributeRequest) and message.request_id in stamps:
            stamps[message.request_id]["acked"] = now
            records[(meta.topic, meta.partition, meta.offset)] = message.request_id
            hub_id = derive_id("hub-request", REQUESTER, message.header.message_id)
            by_hub_request[hub_id] = message.request_id

    def answered(message: Message, meta: Any, now: float) -> None:
        if isinstance(message, ProviderResponse):
            request_id = by_hub_request.get(message.hub_request_id)
            if request_id is not None:
                stamps[request_id]["packed"] = now
                records[(meta.topic, meta.partition, meta.offset)] = request_id

    _capture_publish(client, requested)
    _capture_publish(provider, answered)
    match = client._match

    def matched(message: Message) -> bool:
        if isinstance(message, AttributeResponse) and message.request_id in stamps:
            stamps[message.request_id]["answer"] = time.monotonic()
        return match(message)

    client._match = matched  # type: ignore[method-assign]
    failed = 0

    async def one(i: int) -> None:
        nonlocal failed
        request_id = f"h{i}"
        stamps[request_id] = {"send": time.monotonic()}
        try:
            await client.request(
                link_code=codes[i % PEOPLE], provider=PROVIDER, scenario_id=scenario.scenario_id,
                items=scenario.items[:1], deadline_s=60, request_id=request_id,
            )  # fmt: skip
        except ExchangeError:
            failed += 1

    provider_forwarded = provider.answer

    async def stamped_answer(request: Any) -> Any:
        request_id = by_hub_request.get(request.hub_request_id)
        if request_id is not None:
            stamps[request_id]["prov"] = time.monotonic()
        return await provider_forwarded(request)

    provider.answer = stamped_answer  # type: ignore[method-assign]
    await one(-1)  # warm-up: the hub is ready once one exchange goes through
    stamps.clear()
    started = time.perf_counter()
    if rate == 0:
        i = 0
        while time.perf_counter() - started < seconds:
            await one(i)
            i += 1
    else:
        tasks = []
        tick = 0.01
        for step in range(int(seconds * 100)):
            for j in range(rate // 100):
                tasks.append(asyncio.create_task(one(step * 1000 + j)))
            await asyncio.sleep(max(0.0, started + (step + 1) * tick - time.perf_counter()))
        await asyncio.gather(*tasks)
    return stamps, records, failed


def _serve_hub(trace_path: str) -> None:
    """The hub worker of a profile run: report every committed batch to ``trace_path``."""
    from hub_stream.worker import HubService

    async def run() -> None:
        lines: list[str] = []  # kept in memory: a write per batch would be timed too

        def committed(trace: BatchTrace) -> None:
            lines.append(json.dumps([trace.polled_s, trace.handled_s, trace.committed_s,
                                     trace.records]))  # fmt: skip

        service = HubService(KafkaSettings().kafka_kwargs(), HubSettings(), on_committed=committed)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await service.start()
        await stop.wait()
        await service.stop()
        await asyncio.to_thread(Path(trace_path).write_text, "\n".join(lines), "utf-8")

    asyncio.run(run())


def _join(
    stamps: dict[str, dict[str, Any]], records: dict[tuple[str, int, int], str], trace: Path
) -> None:
    """Put the hub's poll and commit times of each exchange's two records into ``stamps``."""
    for line in trace.read_text(encoding="utf-8").splitlines():
        polled, _, committed, coordinates = json.loads(line)
        for topic, partition, offset in coordinates:
            request_id = records.get((topic, partition, offset))
            if request_id not in stamps:
                continue  # the warm-up's
            hop = "1" if topic.endswith(f"{REQUESTER}.out") else "2"
            stamps[request_id][f"hub{hop}"] = polled
            stamps[request_id][f"done{hop}"] = committed


def summarise(stamps: dict[str, dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """p50 / p99 (ms) of each gap between consecutive hops and of the whole exchange."""
    complete = [s for s in stamps.values() if all(h in s for h in HOPS)]
    gaps: dict[str, tuple[float, float]] = {}
    for a, b in [*itertools.pairwise(HOPS), ("send", "answer")]:
        values = sorted((s[b] - s[a]) * 1000 for s in complete)
        if values:
            gaps[f"{a} → {b}"] = (statistics.median(values), values[int(len(values) * 0.99)])
    return gaps


async def profile(
    conn: Connections, rate: int, seconds: float, signatures: str, env: dict[str, str]
) -> tuple[dict[str, tuple[float, float]], int, int]:
    """One profile run; returns the gaps, exchanges complete and unanswered."""
    topics = await fresh_topics(conn)
    with tempfile.TemporaryDirectory() as tmp:
        key_dir = Path(tmp)
        city_codes, _ = await setup(conn, key_dir, topics)
        trace = key_dir / "hub-trace.jsonl"
        hub_env = {**os.environ, **conn.environment(HUB), **env,
                   "RENKEI_HUB_TOPIC_PREFIX": topics.prefix, "RENKEI_HUB_KEY_DIR": str(key_dir),
                   "RENKEI_HUB_SIGNATURES": signatures}  # fmt: skip
        # Started once, before the clock runs: blocking here is fine.
        hub = subprocess.Popen(  # noqa: ASYNC220, S603 - our own module, our own arguments
            [sys.executable, "-m", "benchmarks.hops", "--serve-hub", str(trace)], env=hub_env
        )
        trust = agency_trust(key_dir, signatures)

        async def handler(request: Any) -> dict[str, Any]:
            return dict.fromkeys(request.items, "ok")

        provider = ProviderService(PROVIDER, keystore.load(key_dir, PROVIDER),
                                   conn.agency(PROVIDER), topics, handler, **trust)  # fmt: skip
        client = AgencyClient(REQUESTER, keystore.load(key_dir, REQUESTER),
                              conn.agency(REQUESTER), topics, **trust)  # fmt: skip
        try:
            async with provider, client:
                stamps, records, failed = await offer(client, provider, city_codes, rate, seconds)
        finally:
            hub.send_signal(signal.SIGTERM)
            await asyncio.to_thread(hub.wait, 30)
        _join(stamps, records, trace)
    complete = sum(1 for s in stamps.values() if all(h in s for h in HOPS))
    return summarise(stamps), complete, failed


async def main(rate: int, seconds: float, signatures: str) -> None:
    with tempfile.TemporaryDirectory() as home:
        async with broker(Path(home) / "plain") as bootstrap:
            conn = Connections.shared(KafkaSettings(bootstrap=bootstrap))
            gaps, complete, failed = await profile(conn, rate, seconds, signatures, {})
    offered = "one at a time" if rate == 0 else f"{rate}/s offered"
    print(f"signatures={signatures}, {offered}, {seconds:g} s: {complete} exchanges "
          f"profiled, {failed} unanswered")  # fmt: skip
    print("| hop | p50 ms | p99 ms |\n|---|---|---|")
    for name, (p50, p99) in gaps.items():
        print(f"| {name} | {p50:.1f} | {p99:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--signatures", choices=["strict", "trust-acl"], default="trust-acl")
    parser.add_argument("--serve-hub", metavar="TRACE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_hub:
        _serve_hub(args.serve_hub)
    else:
        asyncio.run(main(args.rate, args.seconds, args.signatures))
