"""Signed tree heads: at the end of every batch, the Merkle tree of each audit partition
that got records, signed.

Per ``hub.audit`` partition the leaves are the AuditRecords in chain order: leaf *i* is
``leaf_hash`` of the bytes of the record at chain position *i* (checkpoints and tree
heads are not leaves). :class:`.audit.AuditTrail` collects the batch's leaves as it
writes the records; :meth:`TreeHeads.due` extends each partition's tree
(:class:`~renkei.merkle.Frontier`, kept in its :class:`.ChainHead`) by them and writes one
``AuditTreeHead`` — size, root, chain hash, time, the consistency proof from the previous
head — signed with the audit key, to that partition of ``hub.audit`` (after the records)
and of ``hub.audit.heads`` (for witnesses), in the batch's transaction. The moved head is
staged in the same table as the chain, so a rolled-back record takes its leaf with it and
an aborted batch leaves neither records, head nor tree behind.

A chain head written by a hub older than tree heads has no tree: :func:`rebuild_trees`
reads the partition (``read_committed``) at start and rebuilds it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from contextlib import aclosing
from dataclasses import replace
from typing import Any

from aiokafka import TopicPartition

from renkei.auditchain import AuditSigner, chain_hash
from renkei.crypto.sodium import SodiumSigningKey
from renkei.merkle import Frontier, leaf_hash
from renkei.readers import committed_reader, read_batches
from schemas.codec import Codec
from schemas.models import AuditRecord, AuditTreeHead

from .checkpoints import ChainHead
from .ids import derive_id
from .outputs import Output
from .state import Table

__all__ = ["TreeHeads", "rebuild_trees"]

log = logging.getLogger(__name__)

_SIGNATURE = b"\x80\x01"  # the Avro length of a 64-byte Ed25519 signature


class TreeHeads:
    """Builds each partition's signed tree head from the leaves its batch added.

    :param topic: ``hub.audit``.
    :param heads_topic: ``hub.audit.heads``.
    :param signer: the audit signing key (the checkpoints' key).
    :param codec: the hub's codec (the signature is over the head's encoding).
    """

    def __init__(self, topic: str, heads_topic: str, signer: AuditSigner, codec: Codec) -> None:
        self.topic = topic
        self.heads_topic = heads_topic
        self.signer = signer
        self._writer = codec.writer(AuditTreeHead)
        # libsodium's Ed25519: the same signatures (deterministic), in half the time.
        self._sign = SodiumSigningKey.of(signer.key).sign
        self._warned: set[int] = set()

    def due(
        self, heads: Table[ChainHead], leaves: dict[int, list[bytes]], now_ms: int
    ) -> list[Output]:
        """A head for every partition with leaves; stages the moved chain heads and empties
        ``leaves``.

        A partition's leaves past its chain's count are of records rolled back (their
        input failed): they are dropped, so the tree is the chain exactly.
        """
        outputs: list[Output] = []
        for partition in sorted(leaves):
            pending = leaves[partition]
            if not pending:
                continue
            name = str(partition)
            head = heads.get(name)
            behind = _behind(head)
            if behind is not None and len(pending) > behind:
                del pending[behind:]  # records rolled back since
            if head is None or behind is None or len(pending) < behind:
                self.unknown(partition)
                pending.clear()
                continue
            if pending:
                outputs += self._head(partition, head, pending, now_ms, heads)
                pending.clear()
        return outputs

    def _head(
        self,
        partition: int,
        head: ChainHead,
        pending: list[bytes],
        now_ms: int,
        heads: Table[ChainHead],
    ) -> list[Output]:
        frontier = head.frontier
        assert frontier is not None  # _behind said so
        tree, proof = frontier.extend(pending)
        # The previous head is the one of the old size, unless none was written there (a
        # tree rebuilt at start): then this is the partition's first head.
        previous = frontier.size if head.tree_ms else 0
        header = {"message_id": derive_id("audit-tree-head", str(partition), str(tree.size)),
                  "correlation_id": None, "sender": "hub", "sent_at": now_ms}  # fmt: skip
        # The bytes renkei.treehead.build_head makes, from the compiled writer: signed
        # over the encoding with the signature empty, the signature then spliced in.
        start, tail = self._writer.write(
            header, partition=partition, tree_size=tree.size, root_hash=tree.root(),
            chain_hash=head.hash, previous_size=previous,
            consistency=proof if previous else (), key_id=self.signer.key_id,
        )  # fmt: skip
        value = start + _SIGNATURE + self._sign(start + b"\x00" + tail) + tail
        heads.put(str(partition), ChainHead(
            head.hash, head.count, head.checkpointed, head.checkpoint_ms,
            tree.size, tuple(tree.nodes), now_ms,
        ))  # fmt: skip
        return [
            Output(self.topic, b"hub", value, partition),
            Output(self.heads_topic, b"hub", value, partition),
        ]

    def unknown(self, partition: int) -> None:
        """The partition's tree is not known: say so once, write no heads for it."""
        if partition not in self._warned:
            self._warned.add(partition)
            log.warning(
                "audit partition %d: its Merkle tree is not known (a chain head without a "
                "tree that was not rebuilt): no tree heads for it until the hub restarts",
                partition,
            )


def _behind(head: ChainHead | None) -> int | None:
    """Records of the chain not yet in its tree; None when the tree is unknown."""
    if head is None or head.count is None or head.tree_size is None:
        return None
    return head.count - head.tree_size


def _needs_tree(head: ChainHead) -> bool:
    """A committed chain head whose tree the hub does not know: written before tree heads,
    or by a trail that kept none (a committed tree always ends where the chain does)."""
    return head.count is not None and head.count > 0 and head.tree_size != head.count


async def rebuild_trees(
    kafka: dict[str, Any],
    topic: str,
    heads: Table[ChainHead],
    codec: Codec,
    only: Collection[int] | None = None,
) -> list[int]:
    """Rebuild the tree of every partition whose committed chain head has none (or one
    that ends before the chain), from the partition's AuditRecords (``read_committed``,
    in offset order, which is chain order).

    Call after the chain table is restored and before any batch. The rebuilt head is
    loaded as committed (no change staged): the next head written for the partition
    stores it. A partition whose records do not end at its chain head's hash and count
    keeps no tree (the hub then writes no heads for it and warns); ``renkei audit verify``
    says what is wrong with it.

    :returns: the partitions rebuilt.
    """
    wanted = {
        int(name): head
        for name, head in heads.items()
        if _needs_tree(head) and (only is None or int(name) in only)
    }
    if not wanted:
        return []
    trees = {p: Frontier() for p in wanted}
    last: dict[int, bytes] = {}
    consumer = committed_reader(kafka, group_id=None)
    await consumer.start()
    try:
        batches = read_batches(consumer, [TopicPartition(topic, p) for p in sorted(wanted)])
        async with aclosing(batches):
            async for tp, records in batches:
                tree = trees[tp.partition]
                for record in records:
                    value = record.value
                    if value is None:
                        continue
                    kind = codec.fingerprints.get(bytes(value[2:10]))
                    if kind is not None and issubclass(kind, AuditRecord):
                        tree.append(leaf_hash(value))
                        last[tp.partition] = value
    finally:
        await consumer.stop()
    rebuilt: list[int] = []
    for partition, head in sorted(wanted.items()):
        tree = trees[partition]
        tail = last.get(partition)
        if tree.size != head.count or tail is None or chain_hash(tail) != head.hash:
            log.warning(
                "audit partition %d: %d records read, its chain head says %s: tree not "
                "rebuilt, no tree heads for it", partition, tree.size, head.count,
            )  # fmt: skip
            continue
        fixed = replace(head, tree_size=tree.size, tree_nodes=tuple(tree.nodes), tree_ms=0)
        heads.load(str(partition).encode(), fixed.to_bytes())
        rebuilt.append(partition)
        log.info("audit partition %d: Merkle tree of %d records rebuilt", partition, tree.size)
    return rebuilt
