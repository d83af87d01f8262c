"""What the portal believes of ``hub.audit``: only records a signed tree head or checkpoint
vouches for.

Per partition the portal keeps the verified chain head (hash and position, from the
genesis hash at position 0), the Merkle tree (:class:`renkei.merkle.MerkleTree`) of the
leaf hashes of every verified record, the latest tree head, and the records read since,
waiting. A record joins the waiting set only if its ``prev_hash`` names the head or a
waiting record; anything else — garbage, a copy, a forgery with a made-up ``prev_hash`` —
is rejected at once.

A tree head (``AuditTreeHead``, written by the hub after each commit's records) or a
checkpoint (every 1,000 records or 60 s) whose signature verifies with a pinned audit key
releases the waiting records on the one path from its ``chain_hash`` back to the head, if
that path is exactly as long as the positions it claims; a tree head also needs the root
of the verified tree extended with them to be its ``root_hash``, or it releases nothing
(``bad_heads``). Waiting records off that path (a forgery that named a genuine
predecessor: a fork) are rejected. One that names no such path (records edited or removed
since the head) re-anchors the chain at it: the unverifiable records are dropped and
counted as a gap, and what follows is verified from there by checkpoints only (the
dropped leaves are gone, so no later root can be checked nor any proof given).

Nothing here reads Kafka (:mod:`.follow` feeds it), so a test can forge at will.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NamedTuple

from renkei.auditchain import TrustedKeys, chain_hash, prev_hash_of
from renkei.errors import ContractError, SignatureError, WitnessAlarm
from renkei.merkle import leaf_hash
from renkei.treehead import SignedHead, is_tree_head
from renkei.witness import Witness
from schemas.codec import Codec
from schemas.models import AuditCheckpoint, AuditRecord

from .partitions import Partition, Waiting, descendants, frontier
from .signed import Anchor, anchor_of_checkpoint, anchor_of_head

__all__ = ["TrailStats", "TrailVerifier", "Verified"]

log = logging.getLogger(__name__)

_PROOFS_KEPT = 50_000  # proofs kept per partition until its next head (about 50 MB at most)


@dataclass
class TrailStats:
    """Counts since the portal started, for ``/healthz``."""

    verified: int = 0  # records a head or checkpoint covered (indexed, unless about nobody)
    rejected: int = 0  # records never shown: unlinked, off the signed path, or overflow
    undecodable: int = 0  # verified records the portal cannot decode (skipped)
    bad_checkpoints: int = 0  # checkpoints and tree heads that do not decode or verify
    bad_heads: int = 0  # signed tree heads whose root is not the tree of their records
    gaps: int = 0  # re-anchors: a head or checkpoint the chain read so far does not reach
    witness_alarms: int = 0  # heads the witness refused (split view, rollback, gap)


class Verified(NamedTuple):
    """A record that became verified, and where it sits."""

    record: AuditRecord
    partition: int
    position: int  # chain position = leaf index in the partition's tree
    offset: int  # Kafka offset
    data: bytes  # the value as read: what the leaf hash is of


class TrailVerifier:
    """Feeds on the trail's raw values, partition by partition, in offset order; returns
    the records that became verified.

    :param trusted: the pinned audit signing keys.
    :param codec: decodes records, checkpoints and tree heads.
    :param max_waiting: most records one partition holds unverified; more are rejected.
    :param witness: sees every tree head read (:mod:`renkei.witness`); one kept in memory
        by default, one with a state file remembers the heads across restarts. A head it
        raises an alarm on releases nothing.
    """

    def __init__(
        self,
        trusted: TrustedKeys,
        codec: Codec,
        max_waiting: int = 200_000,
        *,
        witness: Witness | None = None,
    ) -> None:
        self.trusted = trusted
        self.witness = witness if witness is not None else Witness(trusted, codec)
        self._codec = codec
        # every version's: a checkpoint written before a schema change is still one
        self._checkpoint_fps = frozenset(
            fp for fp, kind in codec.fingerprints.items() if issubclass(kind, AuditCheckpoint)
        )
        self._max_waiting = max_waiting
        self._partitions: dict[int, Partition] = {}
        self._largest_head: dict[int, int] = {}  # per partition, of the heads read (signed)
        self.stats = TrailStats()
        self.heads_kept = 0  # changes whenever a partition's latest head does (proofs too)

    @property
    def waiting(self) -> int:
        """Records read and linked that no head or checkpoint covers yet."""
        return sum(len(p.waiting) for p in self._partitions.values())

    def oldest_waiting_ms(self) -> int | None:
        """Kafka timestamp of the first record still waiting (the waiting sets keep the
        order records were read in, so it is each set's first)."""
        firsts = [next(iter(p.waiting.values())).timestamp_ms for p in self._partitions.values()
                  if p.waiting]  # fmt: skip
        return min(firsts, default=None)

    def latest_head(self, partition: int) -> SignedHead | None:
        """The latest tree head of ``partition`` that verified, if any."""
        state = self._partitions.get(partition)
        return None if state is None else state.latest

    def proof(self, partition: int, position: int) -> tuple[SignedHead, list[bytes]] | None:
        """The inclusion proof of the record at ``position`` against the latest head of its
        partition; ``None`` when no verified head covers it (or a gap lost the tree)."""
        state = self._partitions.get(partition)
        if state is None or state.tree is None or state.latest is None:
            return None
        if not 0 <= position < state.latest.size <= state.tree.size:
            return None
        proof = state.proofs.get(position)
        if proof is None:  # a page asked again before the next head: the same proof
            if len(state.proofs) >= _PROOFS_KEPT:
                state.proofs = {}
            proof = state.proofs[position] = state.tree.inclusion_proof(position, state.latest.size)
        return state.latest, proof

    def add(
        self, partition: int, offset: int, timestamp_ms: int, value: bytes | None
    ) -> list[AuditRecord]:
        """The next value of ``partition``; the records it verified, in chain order."""
        return [v.record for v in self.add_verified(partition, offset, timestamp_ms, value)]

    def add_verified(
        self, partition: int, offset: int, timestamp_ms: int, value: bytes | None
    ) -> list[Verified]:
        """As :meth:`add`, with each record's position and bytes."""
        state = self._partitions.setdefault(partition, Partition())
        data = value or b""
        if data[2:10] in self._checkpoint_fps or is_tree_head(data, self._codec):
            return self._signed(partition, state, offset, data)
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
            return self._reject(partition, offset, "too many records wait to be signed")
        state.waiting[digest] = Waiting(prev, record, offset, timestamp_ms, data)
        return []

    def _reject(self, partition: int, offset: int, why: str) -> list[Verified]:
        self.stats.rejected += 1
        log.warning("hub.audit %d:%d not shown: %s", partition, offset, why)
        return []

    def _signed(self, partition: int, state: Partition, offset: int, data: bytes) -> list[Verified]:
        head = is_tree_head(data, self._codec)
        try:
            anchor = (anchor_of_head if head else anchor_of_checkpoint)(
                data, self.trusted, self._codec, partition
            )
        except (ContractError, SignatureError) as exc:
            self.stats.bad_checkpoints += 1
            kind = "tree head" if head else "checkpoint"
            log.warning("hub.audit %d:%d: %s ignored: %s", partition, offset, kind, exc)
            return []
        if anchor.head is not None and not self._witnessed(partition, anchor.head, offset):
            return []
        if anchor.size <= state.position:  # covers what is verified already
            if anchor.head is not None and self._root_agrees(state, anchor, []):
                self._keep(state, anchor.head)
            return []
        need = anchor.size - state.position
        path: list[bytes] = []
        cursor: bytes | None = anchor.chain_hash
        while cursor is not None and cursor != state.head and len(path) < need:
            if cursor not in state.waiting:
                break
            path.append(cursor)
            cursor = state.waiting[cursor].prev
        if len(path) == need and cursor == state.head:
            links = [state.waiting[digest] for digest in reversed(path)]
            if anchor.head is not None and not self._root_agrees(state, anchor, links):
                return []  # the records wait on: a checkpoint may still vouch for them
            verified = self._release(partition, state, links)
            consumed = set(path)
        else:
            verified, consumed = [], set()
            self.stats.gaps += 1
            state.tree = None  # the leaves in the gap are gone: no root checks, no proofs
            log.error(
                "hub.audit %d: the %s at offset %d signs %d records, which the records "
                "read do not reach: positions %d..%d cannot be shown",
                partition, anchor.kind, offset, anchor.size, state.position, anchor.size - 1,
            )  # fmt: skip
        keep = descendants(state.waiting, anchor.chain_hash)
        for digest, link in state.waiting.items():
            if digest not in keep and digest not in consumed:
                self._reject(partition, link.offset, f"not on the chain the {anchor.kind} signs")
        state.waiting = keep
        state.head = anchor.chain_hash
        state.position = anchor.size
        if anchor.head is not None:
            self._keep(state, anchor.head)
        return verified

    def _witnessed(self, partition: int, head: SignedHead, offset: int) -> bool:
        """Whether the witness accepts ``head``. Heads older than the one it keeps (a
        replay after a restart) it has nothing to say about: the chain and the tree judge
        them. From its size on, it must be the same head, and each later one follow it."""
        self._largest_head[partition] = max(self._largest_head.get(partition, 0), head.size)
        kept = self.witness.latest.get(partition)
        if kept is not None and head.size < kept.size:
            return True  # ... and check_replayed makes sure the replay reaches it again
        try:
            self.witness.observe(head.data, partition=partition)
        except WitnessAlarm as alarm:
            self.stats.witness_alarms += 1
            log.error("hub.audit %d:%d: tree head not believed: %s", partition, offset, alarm)
            return False
        self.witness.save()
        return True

    def check_replayed(self) -> None:
        """Call once the replay has read every partition to the end it had at start: every
        head the witness kept (from its state file: an earlier run) must have been reached
        again, or the trail was rewritten shorter (a ``rollback`` alarm, counted)."""
        for partition in sorted(self.witness.latest):
            try:
                self.witness.check_reached(partition, self._largest_head.get(partition))
            except WitnessAlarm as alarm:
                self.stats.witness_alarms += 1
                log.error("hub.audit %d: %s", partition, alarm)
        self.witness.save()

    def _keep(self, state: Partition, head: SignedHead) -> None:
        """Make ``head`` the partition's latest, if a tree backs it and it is no older."""
        if state.tree is not None and (state.latest is None or head.size >= state.latest.size):
            if state.latest is None or head.size != state.latest.size:
                state.proofs = {}
            state.latest = head
            self.heads_kept += 1

    def _root_agrees(self, state: Partition, anchor: Anchor, links: list[Waiting]) -> bool:
        """Whether the head's root is the tree of the verified records plus ``links``."""
        if state.tree is None:
            return True  # after a gap nothing to check it against: it counts as a checkpoint
        assert anchor.head is not None
        if not links:
            agrees = state.tree.root(anchor.size) == anchor.head.root
        else:
            extended = frontier(state.tree)
            for link in links:
                extended.append(leaf_hash(link.data))
            agrees = extended.root() == anchor.head.root
        if not agrees:
            self.stats.bad_heads += 1
            log.error(
                "hub.audit %d: a signed tree head of %d records has root %s, but the tree of "
                "those records is not that: not believed",
                anchor.head.partition, anchor.size, anchor.head.root.hex(),
            )  # fmt: skip
        return agrees

    def _release(self, partition: int, state: Partition, links: list[Waiting]) -> list[Verified]:
        verified: list[Verified] = []
        for n, link in enumerate(links):
            if state.tree is not None:
                state.tree.append(leaf_hash(link.data))
            if link.record is None:
                self.stats.undecodable += 1
                log.warning("hub.audit %d:%d verified but undecodable", partition, link.offset)
            else:
                position = state.position + n
                verified.append(Verified(link.record, partition, position, link.offset, link.data))
        self.stats.verified += len(links)
        return verified
