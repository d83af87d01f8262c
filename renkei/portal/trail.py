"""What the portal believes of ``hub.audit``: only records a signed checkpoint vouches for.

Per partition the portal keeps the verified chain head (hash and position, from the
genesis hash at position 0) and the records read since, waiting. A record joins the
waiting set only if its ``prev_hash`` names the head or a waiting record; anything else —
garbage, a copy, a forgery with a made-up ``prev_hash`` — is rejected at once. A checkpoint
whose signature verifies with a pinned audit key releases the waiting records on the one
path from its ``chain_hash`` back to the head, if that path is exactly as long as the
positions it claims; waiting records off that path (a forgery that named a genuine
predecessor: a fork) are rejected. A checkpoint that names no such path (records edited
or removed since the head) re-anchors the chain at it: the unverifiable records are
dropped and counted as a gap, and what follows is verified from there.

Nothing here reads Kafka (:mod:`.follow` feeds it), so a test can forge at will.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from renkei.auditchain import GENESIS, TrustedKeys, chain_hash, prev_hash_of
from renkei.envelope import verify_bytes
from renkei.errors import ContractError, SignatureError
from schemas.codec import Codec
from schemas.models import AuditCheckpoint, AuditRecord

__all__ = ["TrailStats", "TrailVerifier"]

log = logging.getLogger(__name__)


@dataclass
class TrailStats:
    """Counts since the portal started, for ``/healthz``."""

    verified: int = 0  # records a checkpoint covered (indexed, unless about nobody)
    rejected: int = 0  # records never shown: unlinked, off the signed path, or overflow
    undecodable: int = 0  # verified records the portal cannot decode (skipped)
    bad_checkpoints: int = 0  # checkpoints that do not decode or verify
    gaps: int = 0  # re-anchors: a checkpoint the chain read so far does not reach


@dataclass(slots=True)
class _Waiting:
    prev: bytes | None
    record: AuditRecord | None  # None: linked by its bytes, but it does not decode
    offset: int
    timestamp_ms: int


@dataclass
class _Partition:
    head: bytes = GENESIS
    position: int = 0  # records verified so far = chain position of the next one
    waiting: dict[bytes, _Waiting] = field(default_factory=dict)


class TrailVerifier:
    """Feeds on the trail's raw values, partition by partition, in offset order; returns
    the records that became verified.

    :param trusted: the pinned audit signing keys.
    :param codec: decodes records and checkpoints.
    :param max_waiting: most records one partition holds unverified; more are rejected
        (the hub signs every 1,000 records or 60 s, so only a flood gets there).
    """

    def __init__(self, trusted: TrustedKeys, codec: Codec, max_waiting: int = 200_000) -> None:
        self._trusted = trusted
        self._codec = codec
        # every version's: a checkpoint written before a schema change is still one
        self._checkpoint_fps = frozenset(
            fp for fp, kind in codec.fingerprints.items() if issubclass(kind, AuditCheckpoint)
        )
        self._max_waiting = max_waiting
        self._partitions: dict[int, _Partition] = {}
        self.stats = TrailStats()

    @property
    def waiting(self) -> int:
        """Records read and linked that no checkpoint covers yet."""
        return sum(len(p.waiting) for p in self._partitions.values())

    def oldest_waiting_ms(self) -> int | None:
        """Kafka timestamp of the first record still waiting for a checkpoint (the waiting
        sets keep the order records were read in, so it is each set's first)."""
        firsts = [next(iter(p.waiting.values())).timestamp_ms for p in self._partitions.values()
                  if p.waiting]  # fmt: skip
        return min(firsts, default=None)

    def add(
        self, partition: int, offset: int, timestamp_ms: int, value: bytes | None
    ) -> list[AuditRecord]:
        """The next value of ``partition``; the records it verified, in chain order."""
        state = self._partitions.setdefault(partition, _Partition())
        data = value or b""
        if data[2:10] in self._checkpoint_fps:
            return self._checkpoint(partition, state, offset, data)
        digest = chain_hash(data)
        record: AuditRecord | None = None
        try:
            message = self._codec.decode(data)
        except ContractError:
            prev = prev_hash_of(data)  # an unknown schema still links by its last field
        else:
            if not isinstance(message, AuditRecord):
                return self._reject(partition, offset, f"a {type(message).__name__}")
            record, prev = message, message.prev_hash
        if digest == state.head or digest in state.waiting:
            return self._reject(partition, offset, "a copy of a record already read")
        if prev is None or (prev != state.head and prev not in state.waiting):
            return self._reject(partition, offset, "its prev_hash names no record of the chain")
        if len(state.waiting) >= self._max_waiting:
            return self._reject(partition, offset, "too many records wait for a checkpoint")
        state.waiting[digest] = _Waiting(prev, record, offset, timestamp_ms)
        return []

    def _reject(self, partition: int, offset: int, why: str) -> list[AuditRecord]:
        self.stats.rejected += 1
        log.warning("hub.audit %d:%d not shown: %s", partition, offset, why)
        return []

    def _checkpoint(
        self, partition: int, state: _Partition, offset: int, data: bytes
    ) -> list[AuditRecord]:
        try:
            checkpoint = self._codec.decode_as(data, AuditCheckpoint)
            public = self._trusted.get(checkpoint.key_id)
            if public is None:
                raise SignatureError(f"signed by {checkpoint.key_id}, which is not pinned")
            if checkpoint.partition != partition:
                raise SignatureError(f"a checkpoint of partition {checkpoint.partition}")
            verify_bytes(data, public, self._codec)  # as written, whatever its version
        except (ContractError, SignatureError) as exc:
            self.stats.bad_checkpoints += 1
            log.warning("hub.audit %d:%d: checkpoint ignored: %s", partition, offset, exc)
            return []
        if checkpoint.last_offset < state.position:
            return []  # covers what is verified already
        need = checkpoint.last_offset - state.position + 1
        path: list[bytes] = []
        cursor: bytes | None = checkpoint.chain_hash
        while cursor is not None and cursor != state.head and len(path) < need:
            if cursor not in state.waiting:
                break
            path.append(cursor)
            cursor = state.waiting[cursor].prev
        verified: list[AuditRecord] = []
        consumed: set[bytes] = set()
        if len(path) == need and cursor == state.head:
            consumed.update(path)
            for digest in reversed(path):
                link = state.waiting[digest]
                if link.record is None:
                    self.stats.undecodable += 1
                    log.warning("hub.audit %d:%d verified but undecodable", partition, link.offset)
                else:
                    verified.append(link.record)
            self.stats.verified += need
        else:
            self.stats.gaps += 1
            log.error(
                "hub.audit %d: the checkpoint at offset %d signs position %d, which the "
                "records read do not reach: positions %d..%d cannot be shown",
                partition, offset, checkpoint.last_offset, state.position,
                checkpoint.last_offset,
            )  # fmt: skip
        keep = _descendants(state.waiting, checkpoint.chain_hash)
        for digest, link in state.waiting.items():
            if digest not in keep and digest not in consumed:
                self._reject(partition, link.offset, "not on the chain the checkpoint signs")
        state.waiting = keep
        state.head = checkpoint.chain_hash
        state.position = checkpoint.last_offset + 1
        return verified


def _descendants(waiting: dict[bytes, _Waiting], root: bytes) -> dict[bytes, _Waiting]:
    """The waiting records that link, directly or not, to ``root``, in the order read."""
    children: dict[bytes, list[bytes]] = {}
    for digest, link in waiting.items():
        if link.prev is not None:
            children.setdefault(link.prev, []).append(digest)
    reached: set[bytes] = set()
    stack = list(children.get(root, ()))
    while stack:
        digest = stack.pop()
        if digest not in reached:
            reached.add(digest)
            stack.extend(children.get(digest, ()))
    return {d: link for d, link in waiting.items() if d in reached}
