"""The hub puts a keyed record where any Kafka client would: murmur2 of the key."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from tests.unit.loops import offline_loop


async def test_keyed_records_land_where_the_default_partitioner_puts_them() -> None:
    loop = offline_loop(pattern="^x$")
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
