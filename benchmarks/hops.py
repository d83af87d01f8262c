"""Where an exchange's latency goes, hop by hop, at a fixed offered rate.

Run: ``.venv/bin/python -m benchmarks.hops [--rate R ...] [--seconds S] [--signatures MODE]
[--agents sdk|lean] [--in-flight N] [--fetch-wait-ms MS]`` (``--rate 0``: one exchange at
a time, several rates: in turn on one hub; ``--in-flight``: the hub's transactions in
flight; ``--fetch-wait-ms``: every reader's ``fetch_max_wait_ms``; ``--profile-hub
FILE``: the hub process's CPU profile)

A hub worker in a process of its own (``HubService``, as ``renkei hub`` runs it, which
reports each committed batch and its CPU time), a provider answering at once and a
requester. ``--agents sdk`` runs them with the agency SDK (``AgencyClient``,
``ProviderService``: verify, de-duplicate, seal, sign, in this one process); ``lean``
with bare aiokafka clients that write pre-built (and, strict, pre-signed) requests and
answer each forwarded request with a pre-sealed payload — what the hub is offered, without
the agencies' own CPU on the same two cores. Every exchange is stamped at each hop with
``time.monotonic()``, one clock for every process of the machine:

    send    the requester starts writing the request
    acked   Kafka acknowledged it                     (requester → agency.A.out)
    hub1    the hub's poll returned it
    done1   its transaction committed (the forwarded request is readable)
    prov    the provider read the forwarded request
    packed  Kafka acknowledged the answer             (provider → agency.B.out)
    hub2    the hub's poll returned the answer
    done2   its transaction committed
    answer  the requester read the answer

and the profile prints each gap's p50 / p99 (ms) and the CPU each process used per
exchange, so a hop that dominates shows itself.
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
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import agency_trust, broker
from benchmarks.exchange import PEOPLE, REQUESTER, fresh_topics, setup
from benchmarks.hop_agents import Agents, lean_agents, sdk_agents
from hub_stream.batch_handler import BatchTrace
from hub_stream.settings import HubSettings
from renkei.demo import Connections
from renkei.operator.principals import HUB
from renkei.settings import KafkaSettings

__all__ = ["HOPS", "Profile", "profile"]

HOPS = ("send", "acked", "hub1", "done1", "prov", "packed", "hub2", "done2", "answer")


@dataclass
class Profile:
    """One run: each gap's p50 / p99 (ms), and what was measured."""

    gaps: dict[str, tuple[float, float]]
    complete: int
    """Exchanges with every hop stamped."""
    unanswered: int
    offered_per_s: float
    cpu_us: dict[str, float] = field(default_factory=dict)
    """CPU per exchange (µs) of the hub process and of the agencies' process."""
    batches_per_exchange: float = 0.0
    """The hub's transactions per exchange (2 inbound messages)."""


def fetch_wait(ms: int | None) -> None:
    """Every ``read_committed`` reader of this process waits ``ms`` for data (an experiment:
    the default is :data:`renkei.settings.FETCH_MAX_WAIT_MS`)."""
    if ms is not None:
        import renkei.readers

        vars(renkei.readers)["FETCH_MAX_WAIT_MS"] = ms  # read at each committed_reader()


def _serve_hub(trace_path: str) -> None:
    """The hub worker of a profile run: report every committed batch to ``trace_path``."""
    from hub_stream.worker import HubService

    wait = os.environ.get("RENKEI_BENCH_FETCH_WAIT_MS")
    fetch_wait(int(wait) if wait else None)

    async def run() -> None:
        lines: list[str] = []  # kept in memory: a write per batch would be timed too

        def committed(trace: BatchTrace) -> None:
            lines.append(json.dumps([trace.polled_s, trace.committed_s, time.process_time(),
                                     trace.records]))  # fmt: skip

        service = HubService(KafkaSettings().kafka_kwargs(), HubSettings(), on_committed=committed)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await service.start()
        await stop.wait()
        await service.stop()
        await asyncio.to_thread(Path(trace_path).write_text, "\n".join(lines), "utf-8")

    if not (profile_to := os.environ.get("RENKEI_BENCH_PROFILE_HUB")):
        asyncio.run(run())
        return
    import cProfile

    profiler = cProfile.Profile(time.process_time)  # CPU, not time spent waiting
    profiler.runcall(asyncio.run, run())
    profiler.dump_stats(profile_to)


def _join(agents: Agents, trace: Path, window: tuple[float, float]) -> tuple[float, int]:
    """Put the hub's poll and commit times of each exchange's two records into the stamps;
    return the hub's CPU seconds and its batches committed within ``window``."""
    cpu: list[float] = []
    for line in trace.read_text(encoding="utf-8").splitlines():
        polled, committed, cpu_s, coordinates = json.loads(line)
        if window[0] <= committed <= window[1]:
            cpu.append(cpu_s)
        for topic, partition, offset in coordinates:
            request_id = agents.records.get((topic, partition, offset))
            if request_id not in agents.stamps:
                continue  # the warm-up's
            hop = "1" if topic.endswith(f"{REQUESTER}.out") else "2"
            agents.stamps[request_id][f"hub{hop}"] = polled
            agents.stamps[request_id][f"done{hop}"] = committed
    return (cpu[-1] - cpu[0] if len(cpu) > 1 else 0.0), len(cpu)


def summarise(stamps: dict[str, dict[str, float]]) -> dict[str, tuple[float, float]]:
    """p50 / p99 (ms) of each gap between consecutive hops and of the whole exchange."""
    complete = [s for s in stamps.values() if all(h in s for h in HOPS)]
    gaps: dict[str, tuple[float, float]] = {}
    for a, b in [*itertools.pairwise(HOPS), ("send", "answer")]:
        values = sorted((s[b] - s[a]) * 1000 for s in complete)
        if values:
            gaps[f"{a} → {b}"] = (statistics.median(values), values[int(len(values) * 0.99)])
    return gaps


async def profile(
    conn: Connections, rates: list[int], seconds: float, signatures: str, *,
    agents: str = "lean", env: dict[str, str] | None = None,
) -> list[Profile]:  # fmt: skip
    """One hub on fresh topics, offered each of ``rates`` in turn (a pause between)."""
    topics = await fresh_topics(conn)
    results: list[Profile] = []
    with tempfile.TemporaryDirectory() as tmp:
        key_dir = Path(tmp)
        city_codes, _ = await setup(conn, key_dir, topics)
        trace = key_dir / "hub-trace.jsonl"
        hub_env = {
            **os.environ, **conn.environment(HUB), "RENKEI_HUB_POLL_MS": "5", **(env or {}),
            "RENKEI_HUB_TOPIC_PREFIX": topics.prefix, "RENKEI_HUB_KEY_DIR": str(key_dir),
            "RENKEI_HUB_SIGNATURES": signatures,
        }  # fmt: skip
        # Started once, before the clock runs: blocking here is fine.
        hub = subprocess.Popen(  # noqa: ASYNC220, S603 - our own module, our own arguments
            [sys.executable, "-m", "benchmarks.hops", "--serve-hub", str(trace)], env=hub_env
        )
        rounds: list[tuple[dict[str, dict[str, float]], float, float, int, float]] = []
        try:
            trust = agency_trust(key_dir, signatures)
            make = lean_agents if agents == "lean" else sdk_agents
            async with make(conn, topics, key_dir, signatures, trust) as offered:
                await offered.one(city_codes[0], -1)  # warm-up: the hub is ready
                for rate in rates:
                    await asyncio.sleep(2)  # the previous round's commits and checkpoints
                    offered.stamps = {}
                    cpu0, wall0 = time.process_time(), time.monotonic()
                    await offered.offer(city_codes[:PEOPLE], rate, seconds)
                    cpu = time.process_time() - cpu0
                    rounds.append((offered.stamps, wall0, time.monotonic(), offered.unanswered,
                                   offered.offered_per_s))  # fmt: skip
                    results.append(Profile({}, 0, 0, 0.0, {"agencies": cpu}))
        finally:
            hub.send_signal(signal.SIGTERM)
            await asyncio.to_thread(hub.wait, 30)
        for result, (stamps, wall0, wall1, unanswered, offered_per_s) in zip(
            results, rounds, strict=True
        ):
            offered.stamps = stamps
            hub_cpu, batches = _join(offered, trace, (wall0, wall1))
            n = max(1, len(stamps))
            result.gaps = summarise(stamps)
            result.complete = sum(1 for s in stamps.values() if all(h in s for h in HOPS))
            result.unanswered, result.offered_per_s = unanswered, offered_per_s
            result.cpu_us = {
                "hub": hub_cpu / n * 1e6,
                "agencies": result.cpu_us["agencies"] / n * 1e6,
            }
            result.batches_per_exchange = batches / n
    return results


def print_profile(title: str, result: Profile) -> None:
    cpu = result.cpu_us
    print(f"{title}: {result.complete} exchanges profiled at {result.offered_per_s:,.0f}/s "
          f"offered, {result.unanswered} unanswered; CPU per exchange: hub "
          f"{cpu['hub']:.0f} µs, agencies {cpu['agencies']:.0f} µs; hub transactions per "
          f"exchange {result.batches_per_exchange:.2f}")  # fmt: skip
    print("| hop | p50 ms | p99 ms |\n|---|---|---|")
    for name, (p50, p99) in result.gaps.items():
        print(f"| {name} | {p50:.1f} | {p99:.1f} |")


async def main(args: argparse.Namespace) -> None:
    env: dict[str, str] = {}
    if args.in_flight is not None:
        env["RENKEI_HUB_TRANSACTIONS_IN_FLIGHT"] = str(args.in_flight)
    if args.profile_hub is not None:
        env["RENKEI_BENCH_PROFILE_HUB"] = str(args.profile_hub.resolve())
    if args.fetch_wait_ms is not None:
        env["RENKEI_BENCH_FETCH_WAIT_MS"] = str(args.fetch_wait_ms)
        fetch_wait(args.fetch_wait_ms)
    with tempfile.TemporaryDirectory() as home:
        async with broker(Path(home) / "plain") as bootstrap:
            conn = Connections.shared(KafkaSettings(bootstrap=bootstrap))
            results = await profile(conn, args.rate, args.seconds, args.signatures,
                                    agents=args.agents, env=env)  # fmt: skip
    for rate, result in zip(args.rate, results, strict=True):
        offered = "one at a time" if rate == 0 else f"{rate}/s"
        print_profile(f"signatures={args.signatures}, {offered}, {args.seconds:g} s, "
                      f"{args.agents} agents, hub {env or 'defaults'}", result)  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, nargs="+", default=[500],
                        help="exchanges/s (0: one at a time); several: in turn")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--signatures", choices=["strict", "trust-acl"], default="trust-acl")
    parser.add_argument("--agents", choices=["sdk", "lean"], default="lean")
    parser.add_argument("--in-flight", type=int, help="the hub's transactions in flight")
    parser.add_argument("--fetch-wait-ms", type=int, help="every reader's fetch_max_wait_ms")
    parser.add_argument("--profile-hub", type=Path, help="write the hub's cProfile (CPU) here")
    parser.add_argument("--serve-hub", metavar="TRACE", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.serve_hub:
        _serve_hub(parsed.serve_hub)
    else:
        asyncio.run(main(parsed))
