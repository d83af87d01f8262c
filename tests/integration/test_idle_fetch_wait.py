"""A committed reader parks its fetches long while idle and keeps them short while busy.

Why a fetch that names every partition may park, and one sent while a partition is
buffered may not: ``renkei.settings`` (``FETCH_MAX_WAIT_MS``, ``IDLE_FETCH_MAX_WAIT_MS``).
Each test records the fetch requests the reader really sends to the broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.protocol.fetch import FetchRequest

from renkei.readers import CommittedReader, committed_reader
from renkei.settings import FETCH_MAX_WAIT_MS, IDLE_FETCH_MAX_WAIT_MS
from tests.integration.test_read_batches import create_topic

Fetch = tuple[int, set[int]]
"""A fetch as sent: its max wait (ms) and the partitions it names."""


async def two_partitions(bootstrap: str, name: str) -> tuple[dict[str, Any], str]:
    """A fresh topic of two partitions, and how to reach its broker."""
    kafka = {"bootstrap_servers": bootstrap}
    await create_topic(kafka, name, 2)
    return kafka, name


@asynccontextmanager
async def recorded(
    kafka: dict[str, Any], topic: str
) -> AsyncIterator[tuple[CommittedReader, list[Fetch]]]:
    """A started reader assigned both partitions of ``topic``, and the fetches it sends."""
    consumer = committed_reader(kafka, group_id=None)
    await consumer.start()
    sent: list[Fetch] = []
    client = consumer._client
    send = client.send

    def recording(node_id: int, request: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(request, FetchRequest):
            named = {p for _, partitions in request.topics for p, *_ in partitions}
            sent.append((request._max_wait_ms, named))
        return send(node_id, request, *args, **kwargs)

    client.send = recording
    try:
        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        yield consumer, sent
    finally:
        await consumer.stop()


async def test_an_idle_reader_parks_its_fetches_long(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    assert IDLE_FETCH_MAX_WAIT_MS > 10 * FETCH_MAX_WAIT_MS  # else the test shows nothing
    kafka, topic = await two_partitions(kafka_bootstrap, f"{topic_prefix}idle")
    async with recorded(kafka, topic) as (consumer, sent):
        assert await consumer.getmany(timeout_ms=1_500) == {}
    # Every fetch named both partitions and parked long: a reader at the short wait sends
    # one about every 10 ms (over 100 in this time).
    assert sent, "the reader sent no fetch at all"
    assert all(fetch == (IDLE_FETCH_MAX_WAIT_MS, {0, 1}) for fetch in sent), sent
    assert len(sent) <= 1_500 // IDLE_FETCH_MAX_WAIT_MS + 2


async def test_a_fetch_sent_while_a_partition_is_buffered_waits_briefly(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    kafka, topic = await two_partitions(kafka_bootstrap, f"{topic_prefix}busy")
    producer = AIOKafkaProducer(**kafka)
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(topic, b"v%d" % n, partition=0)
    finally:
        await producer.stop()
    async with recorded(kafka, topic) as (consumer, sent):
        first = await consumer.getmany(timeout_ms=5_000, max_records=1)
        assert sum(map(len, first.values())) == 1  # two records of partition 0 stay buffered
        # Past aiokafka's prefetch backoff (100 ms) it fetches the other partition alone:
        # that fetch is the one that would hold partition 0 back once drained.
        await asyncio.sleep(0.5)
        rest = await consumer.getmany(timeout_ms=1_000)
    assert sum(map(len, rest.values())) == 2
    without_0 = [wait for wait, named in sent if 0 not in named]
    assert without_0, f"no fetch left the buffered partition out: {sent}"
    assert set(without_0) == {FETCH_MAX_WAIT_MS}, sent
