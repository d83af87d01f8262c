"""A record Kafka refuses is replaced by a small stand-in, never lost; the rest of its batch
is written exactly once (issue 8: a dead letter just over ``max.message.bytes`` vanished
while its transaction committed)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hub_stream.deadletters import open_letter
from hub_stream.limits import DEFAULT_MAX_REQUEST_SIZE
from hub_stream.outputs import Output
from hub_stream.pipeline import TransactionalLoop
from hub_stream.unwritable import StandIns
from renkei.crypto import keystore
from renkei.readers import committed_reader, topic_partitions
from renkei.topics import Topics
from schemas.codec import default_codec
from schemas.models import (
    AuditRecord,
    AuditStep,
    DeadLetter,
    ErrorCode,
    Header,
    HubError,
    Message,
)
from tests.integration.hub_env import hub_env, read_topic

LIMIT = 2000  # the small topic's max.message.bytes


async def create_topic(kafka: dict[str, Any], name: str, **config: str) -> None:
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1, topic_configs=config)])
    finally:
        await admin.close()


async def read_all(kafka: dict[str, Any], topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record of ``topic`` up to its current end."""
    consumer = committed_reader(kafka, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        got: list[ConsumerRecord[bytes, bytes]] = []
        behind = set(tps)
        while behind:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                got += records
            behind = {tp for tp in behind if await consumer.position(tp) < end[tp]}
        return got
    finally:
        await consumer.stop()


async def decoded(kafka: dict[str, Any], topic: str) -> list[Any]:
    return [default_codec().decode(r.value) for r in await read_all(kafka, topic)]


async def test_an_oversize_dead_letter_is_parked_without_its_value(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    kafka = {"bootstrap_servers": kafka_bootstrap}
    await create_topic(kafka, topics.deadletter, **{"max.message.bytes": str(LIMIT)})
    small, big = b"not avro at all", b"\xc3\x01" + b"x" * 3000
    async with hub_env(kafka_bootstrap, topics, tmp_path / "keys") as env:
        producer = AIOKafkaProducer(**kafka, linger_ms=50)
        await producer.start()
        try:  # one key: one partition, so both usually arrive in one poll
            sent = [
                await producer.send(topics.agency_out("jps"), value, key=b"k")
                for value in (small, big)
            ]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()

        def both_audited(got: list[Message]) -> bool:
            steps = [m for m in got if isinstance(m, AuditRecord)]
            return sum(m.step is AuditStep.DEAD_LETTERED for m in steps) >= 2

        await read_topic(kafka, topics.audit, both_audited)
        letters = await decoded(kafka, topics.deadletter)
        errors = await decoded(kafka, topics.agency_in("jps"))
        stats = env.hub.loop_runner.stats if env.hub.loop_runner else None
    assert all(isinstance(m, DeadLetter) for m in letters)
    operators = keystore.load(tmp_path / "keys", "operator").sealing  # letters are sealed
    opened = [open_letter(m, operators).value if m.value else b"" for m in letters]
    assert opened == [small, b""], "each input parked once, in order"
    first, stand_in = letters
    assert stand_in.source_topic == first.source_topic == topics.agency_out("jps")
    assert stand_in.source_partition == first.source_partition
    assert stand_in.source_offset == first.source_offset + 1, "it names the input it parks"
    assert stand_in.reason is ErrorCode.MALFORMED_MESSAGE
    dropped = re.search(r"its (\d+)-byte value was dropped", stand_in.detail)
    assert dropped is not None
    assert int(dropped.group(1)) > len(big)  # the input, sealed
    assert [type(m) for m in errors] == [HubError, HubError]  # the agency heard of both
    assert stats is not None
    assert stats.replaced == 1


class _Handler:
    """Answers its one input with a small and an oversize dead letter and one other record."""

    def __init__(self, topics: Topics, other: str) -> None:
        codec = default_codec()
        self.topics = topics
        self.outputs = [
            Output(topics.deadletter, b"a", codec.encode(_letter("a", b"A" * 100))),
            Output(topics.deadletter, b"b", codec.encode(_letter("b", b"B" * 5000))),
            Output(other, b"c", b"C" * 100),
        ]
        self.commits = 0
        self.rollbacks = 0
        self.committed = asyncio.Event()

    def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Output]:
        return list(self.outputs)

    def tick(self, now_ms: int) -> list[Output]:
        return []

    def commit(self) -> None:
        self.commits += 1
        self.committed.set()

    def rollback(self) -> None:
        self.rollbacks += 1


def _letter(name: str, value: bytes) -> DeadLetter:
    return DeadLetter(
        header=Header.new("hub", message_id=name * 32),
        source_topic="in", source_partition=0, source_offset=7,
        reason=ErrorCode.MALFORMED_MESSAGE, detail="bad", key=None, value=value,
    )  # fmt: skip


@pytest.mark.parametrize("knows_limit", ["stale", "blind"])
async def test_a_refused_batch_aborts_and_is_written_once_with_a_stand_in(
    kafka_bootstrap: str, topics: Topics, knows_limit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop believes the topic takes 1 MiB: the broker's refusal must be caught."""
    kafka = {"bootstrap_servers": kafka_bootstrap}
    inputs, other = f"{topics.prefix}in", f"{topics.prefix}other"
    await create_topic(kafka, topics.deadletter, **{"max.message.bytes": str(LIMIT)})
    await create_topic(kafka, inputs)
    await create_topic(kafka, other)
    handler = _Handler(topics, other)
    loop = TransactionalLoop(
        kafka=kafka, group_id=f"{topics.prefix}g", transactional_id=f"{topics.prefix}t",
        pattern=f"^{inputs}$", handler=handler, replace=StandIns(topics, default_codec(), _same),
        poll_ms=10,
    )  # fmt: skip
    limits = loop.writer.limits
    if knows_limit == "stale":  # read before someone lowered the topic's limit
        limits.known(topics.deadletter, DEFAULT_MAX_REQUEST_SIZE)
    else:  # the broker's configuration cannot be read at all

        async def unreadable(topic: str) -> int:
            return DEFAULT_MAX_REQUEST_SIZE

        monkeypatch.setattr(limits, "_read", unreadable)
    await loop.start()
    producer = AIOKafkaProducer(**kafka)
    await producer.start()
    try:
        await producer.send_and_wait(inputs, b"go")
        running = asyncio.create_task(loop.run())
        await asyncio.wait([running, asyncio.create_task(handler.committed.wait())],
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        if running.done():
            running.result()  # the loop died: show why
    finally:
        await producer.stop()
        await loop.stop()
        await asyncio.gather(running, return_exceptions=True)
    letters = await decoded(kafka, topics.deadletter)
    others = await read_all(kafka, other)
    assert [m.header.message_id for m in letters] == ["a" * 32, "b" * 32]
    assert [m.value for m in letters] == [b"A" * 100, b""], "the oversize one lost its value only"
    assert "5000-byte value was dropped" in letters[1].detail
    assert (letters[1].source_topic, letters[1].source_offset) == ("in", 7)
    assert [r.value for r in others] == [b"C" * 100], "the rest of the batch, exactly once"
    assert (handler.commits, handler.rollbacks) == (1, 0), "retried in place, not re-handled"
    assert loop.stats.replaced == 1
    assert loop.stats.aborted == (1 if knows_limit == "stale" else 2)
    committed = await _committed_offset(kafka, f"{topics.prefix}g", TopicPartition(inputs, 0))
    assert committed == 1


def _same(message: Message) -> Message:
    return message


async def _committed_offset(kafka: dict[str, Any], group: str, tp: TopicPartition) -> int | None:
    consumer = committed_reader(kafka, group_id=group)
    await consumer.start()
    try:
        offset: int | None = await consumer.committed(tp)
        return offset
    finally:
        await consumer.stop()
