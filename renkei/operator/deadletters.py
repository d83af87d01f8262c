"""The operators' side of ``hub.deadletter``: list the letters, open a sealed one.

The hub seals every parked input to the operators' sealing key
(:mod:`hub_stream.deadletters`), so a letter shows where an input came from and why it was
refused, and only the holder of the operators' private key sees what it said. Listing
needs read access to the topic; opening needs the operators' key file as well.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from hub_stream.deadletters import MAGIC, OpenedLetter, open_letter
from renkei.crypto import SealingKeyPair
from renkei.errors import ConfigurationError, ContractError
from renkei.readers import read_to_end
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
    async for record in read_to_end(kafka, topics.deadletter, timeout_s):
        yield Letter(record.offset, _decoded(codec, record.value))


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
