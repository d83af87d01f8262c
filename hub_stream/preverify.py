"""Strict mode's signatures of a batch, checked and made in threads beside the hub.

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

The other way round, the hub signs every message it forwards (≈ 35 µs of libsodium each on
this machine). Ed25519 signatures are deterministic: one depends on nothing but the key
and the bytes, so :class:`Signing` computes them in the same pool while the hub goes on
with the next record, and splices each into its message when the batch is done — the
bytes are the ones signing inline would have written (``tests/unit/test_signing_ahead.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from aiokafka import ConsumerRecord

from renkei.crypto.sodium import sodium_accepts
from renkei.errors import DecodeError
from schemas.codec import Codec
from schemas.compiled import MessageWriter

from .outputs import Output

__all__ = ["Ahead", "PreVerifier", "Signing"]

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


def _sign_chunk(sign: Callable[[bytes], bytes], payloads: Sequence[bytes]) -> list[bytes]:
    return [sign(payload) for payload in payloads]


class Signing:
    """The hub's signatures over one batch's outbound messages, made in the pool.

    Between :meth:`begin` and :meth:`finish`, :meth:`later` takes a message's encoding
    split at its signature (a compiled writer's ``head``, ``tail``) and returns a
    placeholder :class:`.Output` (empty value) at once; :meth:`finish` waits for the
    signatures and returns the batch's outputs with each placeholder replaced by its
    message, signature spliced in. Outside a batch, or for a small one, :attr:`active` is
    false and the caller signs inline.

    :param threads: the pool (shared with :class:`PreVerifier`: the same size, the same one).
    :param chunk: signatures per task; a task costs a few µs of the hub's thread to submit.
    :param minimum: batches of fewer records are signed inline (a thread's hand-off would
        add more latency than it saves).
    """

    def __init__(self, threads: int = 2, chunk: int = 32, minimum: int = 16) -> None:
        self._threads = threads
        self._chunk = chunk
        self._minimum = minimum
        self.active = False
        self._sign: Callable[[bytes], bytes] | None = None
        self._payloads: list[bytes] = []
        self._chunks: list[Future[list[bytes]]] = []
        self._later: dict[int, tuple[Output, bytes, bytes]] = {}  # id(placeholder) → parts

    def begin(self, sign: Callable[[bytes], bytes], records: int) -> None:
        """Open a batch of ``records`` inputs whose messages ``sign`` signs."""
        self.discard()
        self._sign = sign
        self.active = records >= self._minimum

    def later(self, topic: str, key: bytes | None, head: bytes, tail: bytes) -> Output:
        """A placeholder for the message ``head + signature + tail``, signed in the pool."""
        assert self.active, "later() outside a batch"
        placeholder = Output(topic, key, b"")
        self._later[id(placeholder)] = (placeholder, head, tail)  # keeps it (and its id) alive
        self._payloads.append(head + b"\x00" + tail)  # what the signature covers
        if len(self._payloads) >= self._chunk:
            self._submit()
        return placeholder

    def finish(self, outputs: list[Output]) -> list[Output]:
        """``outputs`` with every placeholder still among them signed and spliced in (the
        placeholders of a record the hub rolled back are no longer there: dropped)."""
        if not self._later:
            self.discard()
            return outputs
        self._submit()
        signatures = [s for chunk in self._chunks for s in chunk.result()]
        spliced: dict[int, Output] = {}
        for signature, (placeholder, head, tail) in zip(
            signatures, self._later.values(), strict=True
        ):
            value = MessageWriter.join(head, tail, signature)
            spliced[id(placeholder)] = Output(placeholder.topic, placeholder.key, value)
        self.discard()
        get = spliced.get
        return [get(id(output), output) for output in outputs]

    def discard(self) -> None:
        """Close the batch and forget its signatures (:meth:`finish` does it too)."""
        self.active = False
        self._payloads, self._chunks, self._later = [], [], {}

    def _submit(self) -> None:
        if self._payloads:
            assert self._sign is not None
            task = _pool(self._threads).submit(_sign_chunk, self._sign, self._payloads)
            self._chunks.append(task)
            self._payloads = []
