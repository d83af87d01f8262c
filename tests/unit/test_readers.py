"""``renkei.readers.read_batches`` refuses what it cannot do before it touches Kafka."""

from __future__ import annotations

from typing import cast

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from renkei.readers import read_batches


async def test_offsets_of_partitions_not_read_are_refused() -> None:
    untouched = cast(AIOKafkaConsumer, object())  # any use of it would raise AttributeError
    mine = [TopicPartition("a", 0)]
    with pytest.raises(ValueError, match=r"offsets for partitions not read: .*'b'"):
        async for _ in read_batches(untouched, mine, {TopicPartition("b", 0): 5}):
            pass
