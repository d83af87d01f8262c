"""The hub puts a keyed record where any Kafka client would: murmur2 of the key."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from hub_stream.pipeline import TransactionalLoop


class _NoHandler:
    def handle(self, records: object) -> list[object]:
        return []

    def tick(self, now_ms: int) -> list[object]:
        return []

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


async def test_keyed_records_land_where_the_default_partitioner_puts_them() -> None:
    loop = TransactionalLoop(
        kafka={"bootstrap_servers": "127.0.0.1:1"},  # never connected in this test
        group_id="g", transactional_id="t", pattern="^x$", handler=_NoHandler(),  # type: ignore[arg-type]
        replace=lambda output, partition, reason: [],
    )  # fmt: skip
    try:
        loop.writer._partitions["agency.jps.in"] = [0, 1, 2, 3, 4]
        keys = [f"code-{i}".encode() for i in range(500)]
        for _ in range(2):  # the second pass answers from the cache
            ours = [await loop.writer.partition_of("agency.jps.in", k) for k in keys]
            theirs = [DefaultPartitioner()(k, [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]) for k in keys]
            assert ours == theirs
        assert len(set(ours)) == 5
    finally:
        await loop.stop()
