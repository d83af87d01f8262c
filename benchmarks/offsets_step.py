"""The offsets step of a transaction, alone: one or two transactional producers committing
consumer offsets to one group, as the hub loop does with one or two transactions in flight.

Run: ``.venv/bin/python -m benchmarks.offsets_step [--producers N] [--seconds S]``
against ``RENKEI_BOOTSTRAP`` (else a fresh single node). Each producer loops: begin, send
one record, ``send_offsets_to_transaction`` (``AddOffsetsToTxn`` + ``TxnOffsetCommit``,
which the group coordinator writes with its append linger,
``group.coordinator.append.linger.ms``), commit. Prints transactions/s and the p50 / p99
of the offsets step and of the whole transaction, so a broker setting that changes how
the coordinator batches its writes shows itself without the hub's own CPU in the way.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchmarks.common import broker, prefix

__all__ = ["main"]


async def _producer(
    bootstrap: str, tid: str, topic: str, group: str, until: float, steps: list[list[float]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=tid, linger_ms=0)
    await producer.start()
    offsets, transactions = steps
    offset = 0
    try:
        while time.monotonic() < until:
            began = time.monotonic()
            async with producer.transaction():
                await producer.send_and_wait(topic, b"x", partition=0)
                sent = time.monotonic()
                await producer.send_offsets_to_transaction(
                    {TopicPartition(topic, 0): offset}, group
                )
                offsets.append((time.monotonic() - sent) * 1000)
            transactions.append((time.monotonic() - began) * 1000)
            offset += 1
    finally:
        await producer.stop()


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def run(producers: int, seconds: float) -> str:
    """Measure and return the line printed."""
    with tempfile.TemporaryDirectory() as home:
        async with broker(Path(home)) as bootstrap:
            name = prefix()
            topic, group = f"{name}offsets", f"{name}group"
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
            await admin.start()
            try:
                await admin.create_topics([NewTopic(topic, 1, 1)])
            finally:
                await admin.close()
            steps: list[list[float]] = [[], []]
            until = time.monotonic() + seconds
            await asyncio.gather(*(
                _producer(bootstrap, f"{topic}-t{i}", topic, group, until, steps)
                for i in range(producers)
            ))  # fmt: skip
    offsets, transactions = steps
    return (
        f"{producers} producer(s), {seconds:g} s: "
        f"{len(transactions) / seconds:.0f} transactions/s; "
        f"offsets step p50 {statistics.median(offsets):.1f} / p99 {_p(offsets, 99):.1f} ms; "
        f"transaction p50 {statistics.median(transactions):.1f} / p99 {_p(transactions, 99):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    print(asyncio.run(run(args.producers, args.seconds)))


if __name__ == "__main__":
    main()
