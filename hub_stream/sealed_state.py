"""State rows that hold personal data are sealed before they reach Kafka.

The person table is the hub's copy of the registry for matching: each row holds a My
Number and a basic-4 (name, kana, birth date, address), and a few events that changed
them. The hub needs them in memory; nobody who can read ``hub.state.persons`` — a
backup, a broker operator, a mis-scoped ACL — needs them in clear. So a row is written as
``"RKS1" | nonce (12 bytes) | AES-256-GCM(key, row JSON, aad = topic name)``, under the
key ring's ``state_key`` (HKDF from the master secret, ``renkei/v1/hub-state``). Only a
holder of the master secret reads it back.

Rows written before sealing existed (plain JSON, starting with ``{``) are still read, and
are sealed the next time they change.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Generic, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from renkei.crypto import KeyRing
from renkei.errors import CryptoError

from .records import PersonState
from .state import Table
from .store import StoreFactory

__all__ = ["MAGIC", "SealedRows", "persons_table"]

MAGIC = b"RKS1"
"""The first bytes of a sealed state row."""

V = TypeVar("V")
_NONCE = 12


class SealedRows(Generic[V]):
    """The encode/decode pair of a :class:`~.state.Table` whose rows are sealed.

    :param key: the 32-byte AES-256-GCM key (``KeyRing.state_key``).
    :param topic: the table's topic, bound to every row as associated data.
    :param encode: row → its JSON bytes.
    :param decode: JSON bytes → row.
    """

    def __init__(
        self,
        key: bytes,
        topic: str,
        encode: Callable[[V], bytes],
        decode: Callable[[bytes], V],
    ) -> None:
        self._aead = AESGCM(key)
        self._aad = topic.encode()
        self._encode = encode
        self._decode = decode

    def encode(self, row: V) -> bytes:
        """The sealed bytes of ``row``."""
        nonce = os.urandom(_NONCE)
        return MAGIC + nonce + self._aead.encrypt(nonce, self._encode(row), self._aad)

    def decode(self, data: bytes) -> V:
        """The row in sealed (or pre-sealing plain JSON) bytes.

        :raises CryptoError: sealed under another key or topic, or altered.
        """
        if not data.startswith(MAGIC):
            return self._decode(data)
        nonce = data[len(MAGIC) : len(MAGIC) + _NONCE]
        try:
            plain = self._aead.decrypt(nonce, data[len(MAGIC) + _NONCE :], self._aad)
        except InvalidTag as exc:
            raise CryptoError("a sealed state row does not open with this master secret") from exc
        return self._decode(plain)


def persons_table(
    keyring: KeyRing,
    topic: str,
    on_change: Callable[[str, PersonState | None, PersonState | None], None] | None = None,
    store: StoreFactory | None = None,
) -> Table[PersonState]:
    """The person table on ``topic``, its rows sealed under ``keyring.state_key``.

    What the hub keeps, and what the operators' tools read back (``renkei audit rebuild``).
    ``store`` keeps its committed rows (:mod:`.store`; a dict by default).
    """
    rows = SealedRows(keyring.state_key, topic, PersonState.to_bytes, PersonState.from_bytes)
    return Table(topic, rows.encode, rows.decode, on_change, store)
