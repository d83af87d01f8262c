"""A loop over exactly one partition parks its fetches long; any other keeps them short.

Why one partition cannot stall behind a parked fetch: ``renkei.settings``
(``ONE_PARTITION_FETCH_MAX_WAIT_MS``).
"""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from renkei.settings import FETCH_MAX_WAIT_MS, ONE_PARTITION_FETCH_MAX_WAIT_MS
from tests.unit.loops import offline_loop


@pytest.mark.parametrize(
    ("partitions", "pattern", "wait_ms"),
    [
        ([TopicPartition("hub.route", 3)], "", ONE_PARTITION_FETCH_MAX_WAIT_MS),
        ([TopicPartition("hub.route", 3), TopicPartition("hub.route", 4)], "", FETCH_MAX_WAIT_MS),
        ([], "^agency\\..*\\.out$", FETCH_MAX_WAIT_MS),
    ],
)
async def test_fetch_wait_follows_the_number_of_partitions(
    partitions: list[TopicPartition], pattern: str, wait_ms: int
) -> None:
    assert ONE_PARTITION_FETCH_MAX_WAIT_MS > FETCH_MAX_WAIT_MS  # else the test shows nothing
    loop = offline_loop(pattern=pattern, partitions=partitions)
    try:
        assert loop._consumer._fetch_max_wait_ms == wait_ms
    finally:
        await loop.stop()
