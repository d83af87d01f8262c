"""Strict mode's signature checks of a batch, started in threads before the hub needs them.

The hub handles a batch's records one by one, in order (:mod:`.hub`), and in ``strict``
mode each agency message's Ed25519 signature must verify before it is dispatched: about
60 µs of libsodium per message, more than everything else the hub does for it. The
verdict depends on nothing but the bytes and the sender's key, so it can be computed
ahead: when a batch arrives, :meth:`PreVerifier.start` splits the signature off every
agency record and hands the checks, in chunks, to a small thread pool; libsodium releases
the GIL, so the threads verify on the other core while this one handles the records
before them. When the hub reaches a record it asks :meth:`Ahead.accepted` and waits only
if that record's chunk is not done yet.

Nothing about what the hub decides changes. A check done ahead only ever says "libsodium
accepted these bytes under this key"; for anything else — a signature it rejected, a
record that was not checked ahead, a key that changed — the hub verifies inline exactly as
before (:func:`renkei.envelope.verify_bytes`, with the reference verdicts of
:mod:`renkei.crypto.sodium`). Small batches are checked inline: a thread is not worth it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from aiokafka import ConsumerRecord

from renkei.crypto.sodium import sodium_accepts
from renkei.errors import DecodeError
from schemas.codec import Codec

__all__ = ["Ahead", "PreVerifier"]

log = logging.getLogger(__name__)

_Check = tuple[bytes, bytes, bytes]  # public key, signed bytes, signature


_pools: dict[int, ThreadPoolExecutor] = {}  # one per thread count, shared by every hub


def _pool(threads: int) -> ThreadPoolExecutor:
    # Shared: a process running many hubs (tests, one per bucket) keeps a few threads, not
    # a few per hub. Idle threads cost nothing; they end with the process.
    if threads not in _pools:
        _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="hub-verify")
    return _pools[threads]


def _verify_chunk(checks: Sequence[_Check]) -> list[bool]:
    return [sodium_accepts(key, signed, signature) for key, signed, signature in checks]


class Ahead:
    """The checks started for one batch: which values libsodium accepted, and under which key."""

    def __init__(self) -> None:
        self._where: dict[int, tuple[int, int, bytes]] = {}  # id(value) → chunk, index, key
        self._chunks: list[Future[list[bool]]] = []
        self._values: list[bytes] = []  # keeps the values alive, so their ids stay theirs

    def accepted(self, value: bytes, public_key: bytes) -> bool:
        """Whether libsodium accepted ``value``'s signature under ``public_key`` (waits for
        the check if it is still running); ``False`` also when it was not checked ahead."""
        where = self._where.pop(id(value), None)
        if where is None or where[2] != public_key:
            return False
        chunk, index, _ = where
        return self._chunks[chunk].result()[index]


class PreVerifier:
    """Starts a batch's signature checks in a thread pool.

    :param codec: finds the signature in the bytes (:meth:`~schemas.codec.Codec.split_signature`).
    :param threads: verifying threads (the machine's other cores); the pool of that size is
        shared by every verifier of the process.
    :param chunk: checks per task: fewer tasks cost less, smaller ones let the hub start sooner.
    :param minimum: batches with fewer agency records are verified inline.
    """

    def __init__(self, codec: Codec, threads: int = 2, chunk: int = 32, minimum: int = 16) -> None:
        self._codec = codec
        self._threads = threads
        self._chunk = chunk
        self._minimum = minimum

    def start(
        self,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        key_of: Callable[[str], bytes | None],
    ) -> Ahead:
        """Start checking every record whose topic's agency has a key (``key_of(topic)``)."""
        ahead = Ahead()
        pending: list[tuple[int, bytes, _Check]] = []
        for record in records:
            value = record.value
            if value is None or (key := key_of(record.topic)) is None:
                continue
            try:
                signed, signature = self._codec.split_signature(value)
            except DecodeError:
                continue  # the hub refuses it inline, with the reason
            pending.append((id(value), value, (key, signed, signature)))
        if len(pending) < self._minimum:
            return ahead
        pool = _pool(self._threads)
        for start in range(0, len(pending), self._chunk):
            part = pending[start : start + self._chunk]
            number = len(ahead._chunks)
            for index, (ident, value, check) in enumerate(part):
                ahead._where[ident] = (number, index, check[0])
                ahead._values.append(value)
            ahead._chunks.append(pool.submit(_verify_chunk, [c for _, _, c in part]))
        return ahead
