"""A bucket's watermarks on a real broker: they prove a task's own writes, and they move
when anyone else wrote the bucket while the task was paused.

Three producers share the bucket's transactional id, as three owners of a bucket do:
the task (which records its watermarks at revocation), a worker that briefly owns the
bucket, and the task again when the bucket comes back.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import ProducerFenced

from hub_stream.outputs import Output
from hub_stream.watermarks import WatermarkReader, why_restore
from hub_stream.writer import TransactionWriter
from renkei.readers import committed_reader

BUCKET = 1


def _no_stand_ins(output: Output, partition: int, reason: str) -> list[Output]:
    raise AssertionError(f"nothing here is refused: {reason}")


class _Bucket:
    """The topics of a two-bucket deployment, and writers of bucket 1's id."""

    def __init__(self, kafka: dict[str, Any], prefix: str) -> None:
        self.kafka = kafka
        self.group = f"{prefix}hub-tasks"
        self.state = f"{prefix}hub.state.persons"
        self.audit = f"{prefix}hub.audit"
        self.route = f"{prefix}hub.route"
        self.watched = [TopicPartition(self.state, BUCKET), TopicPartition(self.audit, BUCKET)]

    async def create(self) -> None:
        admin = AIOKafkaAdminClient(**self.kafka)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(t, 2, 1) for t in (self.state, self.audit, self.route)]
            )
        finally:
            await admin.close()

    async def writer(self) -> TransactionWriter:
        """A started producer of the bucket's id: it fences every earlier one."""
        writer = TransactionWriter(self.kafka, f"{self.group}-1", _no_stand_ins)
        await writer.start()
        return writer

    async def write(self, writer: TransactionWriter, route_offset: int) -> None:
        """One batch: a state row, an audit record, the input offset."""
        await writer.write(
            [
                Output(self.state, b"person", b"row", partition=BUCKET),
                Output(self.audit, b"key", b"audit", partition=BUCKET),
            ],
            {TopicPartition(self.route, BUCKET): route_offset},
            self.group,
        )


@pytest.fixture
async def bucket(kafka_bootstrap: str, topic_prefix: str) -> _Bucket:
    made = _Bucket({"bootstrap_servers": kafka_bootstrap}, topic_prefix)
    await made.create()
    return made


async def _reader(bucket: _Bucket) -> WatermarkReader:
    reader = WatermarkReader(
        committed_reader(bucket.kafka, group_id=bucket.group), bucket.group, bucket.route
    )
    await reader.start()
    return reader


async def test_nobody_wrote_meanwhile_so_the_task_is_kept(bucket: _Bucket) -> None:
    reader = await _reader(bucket)
    task = await bucket.writer()
    try:
        await bucket.write(task, route_offset=4)
        left = await reader.record(BUCKET, bucket.watched, task)
        assert left.position == 4
        assert all(end > 0 for end in left.ends.values())
        await task.stop()
        task = await bucket.writer()  # given back: fence first, then compare
        assert why_restore(left, await reader.read(BUCKET, bucket.watched)) is None
    finally:
        await task.stop()
        await reader.stop()


async def test_a_brief_owner_who_wrote_makes_the_task_restore(bucket: _Bucket) -> None:
    reader = await _reader(bucket)
    task = await bucket.writer()
    try:
        await bucket.write(task, route_offset=4)
        left = await reader.record(BUCKET, bucket.watched, task)
        await task.stop()
        other = await bucket.writer()  # another worker is given the bucket for a while
        await bucket.write(other, route_offset=5)
        await other.stop()
        task = await bucket.writer()
        why = why_restore(left, await reader.read(BUCKET, bucket.watched))
        assert why is not None
    finally:
        await task.stop()
        await reader.stop()


async def test_a_task_fenced_before_it_let_go_records_nothing(bucket: _Bucket) -> None:
    """It lost the group unnoticed; the bucket's new owner wrote, then the group revoked
    the bucket from the old task: its offsets would hold the new owner's writes."""
    reader = await _reader(bucket)
    task = await bucket.writer()
    other = await bucket.writer()  # fences the task
    try:
        await bucket.write(other, route_offset=7)
        with pytest.raises(ProducerFenced):
            await reader.record(BUCKET, bucket.watched, task)
    finally:
        await other.stop()
        await task.stop()
        await reader.stop()
