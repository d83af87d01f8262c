"""Signed audit checkpoints: the hub's statement of where each partition's chain stands.

Every ``audit_checkpoint_records`` records of a partition, or every
``audit_checkpoint_ms`` when at least one record is unsigned, the hub writes an
``AuditCheckpoint`` into that partition, after the records it covers and in the same
transaction. The chain head, its position and the last checkpointed position live in
``hub.state.audit-chain`` (also in that transaction), so a restarted worker continues the
count exactly. What is signed is defined in :mod:`renkei.auditchain`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from renkei.auditchain import AuditSigner
from renkei.merkle import Frontier
from schemas.codec import Codec
from schemas.models import AuditCheckpoint, Header

from .ids import derive_id
from .outputs import Output
from .state import Table

__all__ = ["ChainHead", "Checkpointer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChainHead:
    """One partition's chain: last record's hash, records since genesis, last checkpoint,
    and the Merkle tree as of the last tree head (:mod:`.treeheads`).

    ``count`` is None for a head written before checkpoints existed (the hex hash alone):
    the hub then cannot number records and signs no checkpoint for that partition.

    ``tree_size`` and ``tree_nodes`` are the :class:`~renkei.merkle.Frontier` of the
    records at positions ``0 .. tree_size - 1`` (the last tree head's tree); ``tree_ms`` is
    that head's time, 0 when no head of that size was written (a tree rebuilt from the
    partition at start). ``tree_size`` is None for a head written before tree heads
    existed: the hub rebuilds its tree from ``hub.audit`` when it starts
    (:func:`.treeheads.rebuild_trees`).
    """

    hash: bytes
    count: int | None = 0
    checkpointed: int = 0
    checkpoint_ms: int = 0
    tree_size: int | None = None
    tree_nodes: tuple[bytes, ...] = ()
    tree_ms: int = 0

    @property
    def frontier(self) -> Frontier | None:
        """The last tree head's tree (None: unknown, see above)."""
        return None if self.tree_size is None else Frontier(self.tree_size, self.tree_nodes)

    def to_bytes(self) -> bytes:
        doc: dict[str, object] = {
            "h": self.hash.hex(),
            "n": self.count,
            "c": self.checkpointed,
            "t": self.checkpoint_ms,
        }
        if self.tree_size is not None:  # absent keys: a row an older hub also reads
            doc |= {"s": self.tree_size, "f": [n.hex() for n in self.tree_nodes],
                    "ht": self.tree_ms}  # fmt: skip
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> ChainHead:
        if not data.startswith(b"{"):
            return cls(bytes.fromhex(data.decode()), None)  # legacy: the hash alone
        doc = json.loads(data)
        head = cls(bytes.fromhex(doc["h"]), doc["n"], doc["c"], doc["t"])
        if "s" not in doc:
            return head  # written before tree heads
        nodes = tuple(bytes.fromhex(n) for n in doc["f"])
        Frontier(doc["s"], nodes)  # raises on a malformed row: its sizes must agree
        return replace(head, tree_size=doc["s"], tree_nodes=nodes, tree_ms=doc["ht"])


class Checkpointer:
    """Decides when a partition is due and builds its signed checkpoint.

    :param topic: ``hub.audit``.
    :param partitions: its partition count.
    :param signer: the audit signing key.
    :param codec: the hub's codec (the signature is over the checkpoint's encoding).
    :param every_records: sign once this many records are unsigned.
    :param every_ms: sign at least this often while any record is unsigned.
    """

    def __init__(
        self,
        topic: str,
        partitions: int,
        signer: AuditSigner,
        codec: Codec,
        every_records: int,
        every_ms: int,
    ) -> None:
        self.topic = topic
        self.partitions = partitions
        self.signer = signer
        self._codec = codec
        self.every_records = max(1, every_records)
        self.every_ms = every_ms
        self._warned: set[int] = set()

    def due(self, heads: Table[ChainHead], now_ms: int) -> list[Output]:
        """Checkpoints for every partition that is due; stages the moved heads."""
        outputs: list[Output] = []
        for partition in range(self.partitions):
            head = heads.get(str(partition))
            if head is None:
                continue
            if head.count is None:
                if partition not in self._warned:
                    self._warned.add(partition)
                    log.warning(
                        "audit partition %d has a legacy chain head: no checkpoints", partition
                    )
                continue
            unsigned = head.count - head.checkpointed
            if unsigned <= 0:
                continue
            if unsigned < self.every_records and now_ms - head.checkpoint_ms < self.every_ms:
                continue
            outputs.append(self._checkpoint(partition, head, now_ms))
            heads.put(str(partition), replace(head, checkpointed=head.count, checkpoint_ms=now_ms))
        return outputs

    def _checkpoint(self, partition: int, head: ChainHead, now_ms: int) -> Output:
        assert head.count is not None
        first, last = head.checkpointed, head.count - 1
        checkpoint = AuditCheckpoint(
            header=Header.new(
                "hub",
                message_id=derive_id("audit-checkpoint", str(partition), str(last)),
                sent_at=datetime.fromtimestamp(now_ms // 1000, UTC).replace(
                    microsecond=now_ms % 1000 * 1000
                ),
            ),
            partition=partition,
            first_offset=first,
            last_offset=last,
            record_count=last - first + 1,
            chain_hash=head.hash,
            key_id=self.signer.key_id,
        )
        # Signed as written: the encoding with the signature empty, the signature spliced
        # in; verifiers splice it out of the bytes they read (renkei.envelope).
        unsigned = self._codec.encode(checkpoint)
        value = self._codec.join_signature(unsigned, self.signer.sign(unsigned))
        return Output(self.topic, b"hub", value, partition)
