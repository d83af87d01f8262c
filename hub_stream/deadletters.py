"""Dead letters keep the input sealed to the operators, never in clear.

What the hub parks in ``hub.deadletter`` is what it could not or would not handle: an
``EnrolmentRequest`` that broke a rule holds a My Number or a basic-4, a registry event
holds a person's facts. So :class:`~schemas.models.DeadLetter` carries the input's Kafka
key and value **sealed** (HPKE, :mod:`renkei.crypto.sealing`) to the operators' sealing
key — the one in their pinned public bundle (:mod:`.trust`). Only the operators' private
key opens it (``renkei deadletter open``); everyone who may read the topic sees where the
input came from, why it was refused, and opaque bytes. ``DeadLetter.key`` is left null.

``DeadLetter.value`` of a sealed letter, byte for byte::

    "RKDL" | 0x01 (format) | suite (0x01 X25519, 0x02 MLKEM768_X25519) | enc | ciphertext

    plaintext = key length (4 bytes, big-endian; 0xFFFFFFFF: no key) | key | value
    HPKE info = "renkei/dead-letter/v1"
    aad       = exchange_aad(letter message id, source topic, source partition, source offset)

The ``aad`` binds the sealed bytes to their letter: moved onto another letter they do not
open. A hub configured with the operators' signing key alone (no bundle) has nobody to
seal to and keeps no value (``b""``), as it does for outputs Kafka refused
(:mod:`.unwritable`).
"""

from __future__ import annotations

from dataclasses import dataclass

from renkei.crypto import SealingKeyPair, SuiteName, exchange_aad, open_sealed, seal
from renkei.errors import SealingError
from schemas.models import DeadLetter

__all__ = ["DEAD_LETTER_INFO", "MAGIC", "LetterSealer", "OpenedLetter", "open_letter"]

DEAD_LETTER_INFO = b"renkei/dead-letter/v1"
"""HPKE ``info`` label of a sealed dead letter."""
MAGIC = b"RKDL\x01"
"""The first bytes of a sealed ``DeadLetter.value``."""

_SUITES: dict[SuiteName, int] = {"X25519": 1, "MLKEM768_X25519": 2}
_BY_BYTE: dict[int, SuiteName] = {v: k for k, v in _SUITES.items()}
_ENC = {"X25519": 32, "MLKEM768_X25519": 1120}
_NO_KEY = 0xFFFFFFFF


def _aad(message_id: str, topic: str, partition: int, offset: int) -> bytes:
    return exchange_aad(message_id, topic, str(partition), str(offset))


class LetterSealer:
    """Seals a dead letter's key and value to the operators.

    :param recipient: the operators' HPKE suite and public key; ``None`` drops the value.
    """

    def __init__(self, recipient: tuple[SuiteName, bytes] | None) -> None:
        self.recipient = recipient

    def __call__(
        self, message_id: str, topic: str, partition: int, offset: int,
        key: bytes | None, value: bytes | None,
    ) -> bytes:  # fmt: skip
        """``DeadLetter.value`` for an input with this ``key`` and ``value``."""
        if self.recipient is None:
            return b""
        suite, public_key = self.recipient
        length = _NO_KEY if key is None else len(key)
        plaintext = length.to_bytes(4, "big") + (key or b"") + (value or b"")
        enc, ciphertext = seal(
            suite, public_key, plaintext,
            aad=_aad(message_id, topic, partition, offset), info=DEAD_LETTER_INFO,
        )  # fmt: skip
        return MAGIC + bytes([_SUITES[suite]]) + enc + ciphertext


@dataclass(frozen=True, slots=True)
class OpenedLetter:
    """The input a dead letter sealed: its Kafka key and value, as the hub read them."""

    key: bytes | None
    value: bytes


def open_letter(letter: DeadLetter, operators: SealingKeyPair) -> OpenedLetter:
    """Open a sealed dead letter with the operators' sealing key pair.

    :raises SealingError: the letter holds no sealed value (dropped, or written by a hub
        that kept values in clear), another key sealed it, or its bytes were altered or
        moved from another letter.
    """
    data = letter.value
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 1:
        raise SealingError("this dead letter holds no sealed value")
    suite = _BY_BYTE.get(data[len(MAGIC)])
    if suite is None:
        raise SealingError(f"unknown sealing suite byte {data[len(MAGIC)]}")
    body = data[len(MAGIC) + 1 :]
    enc, ciphertext = body[: _ENC[suite]], body[_ENC[suite] :]
    aad = _aad(
        letter.header.message_id, letter.source_topic, letter.source_partition,
        letter.source_offset,
    )  # fmt: skip
    plaintext = open_sealed(suite, operators, enc, ciphertext, aad=aad, info=DEAD_LETTER_INFO)
    length = int.from_bytes(plaintext[:4], "big")
    if length == _NO_KEY:
        return OpenedLetter(None, plaintext[4:])
    if len(plaintext) < 4 + length:
        raise SealingError("the sealed dead letter is malformed")
    return OpenedLetter(plaintext[4 : 4 + length], plaintext[4 + length :])
