"""The operators' side of ``hub.deadletter``: list the letters, open a sealed one.

The hub seals every parked input to the operators' sealing key
(:mod:`hub_stream.deadletters`), so a letter shows where an input came from and why it was
refused, and only the holder of the operators' private key sees what it said. Listing
needs read access to the topic; opening needs the operators' key file as well.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from hub_stream.deadletters import MAGIC, OpenedLetter, open_letter
from renkei.crypto import SealingKeyPair
from renkei.errors import ConfigurationError, ContractError, RequestTimeoutError
from renkei.readers import committed_reader, topic_partitions
from renkei.topics import Topics
from schemas.codec import Codec
from schemas.models import DeadLetter

__all__ = ["Letter", "open_at", "read_letters"]


@dataclass(frozen=True, slots=True)
class Letter:
    """One record of ``hub.deadletter``: its offset and the letter (``None``: not one)."""

    offset: int
    letter: DeadLetter | None

    @property
    def sealed(self) -> bool:
        """Whether the letter carries a sealed input (else it was dropped)."""
        return self.letter is not None and self.letter.value.startswith(MAGIC)


async def read_letters(
    kafka: dict[str, Any], topics: Topics, codec: Codec, timeout_s: float = 30
) -> AsyncIterator[Letter]:
    """Every record of ``hub.deadletter`` from the beginning to its end as of the call.

    :raises RequestTimeoutError: the topic could not be read to its end in ``timeout_s``.
    """
    consumer = committed_reader(kafka, group_id=None)
    await consumer.start()
    try:
        try:
            async with asyncio.timeout(timeout_s):
                partitions = await topic_partitions(consumer, topics.deadletter)
                tps = [TopicPartition(topics.deadletter, p) for p in partitions]
                if not tps:
                    return
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                end = await consumer.end_offsets(tps)
                remaining = {tp for tp in tps if end[tp] > 0}
                while remaining:
                    batch = await consumer.getmany(*remaining, timeout_ms=500)
                    for records in batch.values():
                        for record in records:
                            yield Letter(record.offset, _decoded(codec, record.value))
                    for tp in list(remaining):
                        # Transaction markers take offsets too: compare positions.
                        if await consumer.position(tp) >= end[tp]:
                            remaining.discard(tp)
        except TimeoutError:
            raise RequestTimeoutError(
                f"could not read {topics.deadletter} within {timeout_s:g} s"
            ) from None
    finally:
        await consumer.stop()


async def open_at(
    kafka: dict[str, Any], topics: Topics, codec: Codec, offset: int, operators: SealingKeyPair
) -> tuple[DeadLetter, OpenedLetter]:
    """The letter at ``offset`` and the input it sealed.

    :raises ConfigurationError: no letter at that offset.
    :raises SealingError: it holds no sealed input, or the key does not open it.
    """
    async for found in read_letters(kafka, topics, codec):
        if found.offset == offset:
            if found.letter is None:
                raise ConfigurationError(f"the record at offset {offset} is not a DeadLetter")
            return found.letter, open_letter(found.letter, operators)
    raise ConfigurationError(f"{topics.deadletter} has no record at offset {offset}")


def _decoded(codec: Codec, value: bytes | None) -> DeadLetter | None:
    if value is None:
        return None
    try:
        return codec.decode_as(value, DeadLetter)
    except ContractError:
        return None
