"""Audit records: one per step of every flow, metadata only, hash-chained per partition.

The hub picks each record's partition itself (from the audit key), so it knows the
previous record of that partition: ``prev_hash`` is the SHA-256 of that record's bytes.
The chain heads (hash, position, last checkpoint) live in a state table written in the
same transaction as the records, so a crashed batch leaves neither records nor a moved
head behind. :mod:`.checkpoints` signs where each chain stands and :mod:`.treeheads`
the Merkle tree over it; ``docs/audit.md`` says what a verifier can prove from them.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable

from renkei.auditchain import GENESIS, chain_hash
from renkei.merkle import leaf_hash
from schemas.codec import Codec
from schemas.models import AuditRecord, AuditStep

from .checkpoints import ChainHead, Checkpointer
from .ids import derive_id
from .outputs import Output
from .state import Table
from .treeheads import TreeHeads

__all__ = ["GENESIS", "AuditTrail", "chain_hash"]


class AuditTrail:
    """Builds audit records as outputs of the current batch.

    :param topic: ``hub.audit``.
    :param partitions: its partition count.
    :param heads: state table partition → :class:`.ChainHead` of that partition.
    :param checkpointer: signs checkpoints when due; None writes none (tests of the chain).
    :param tree_heads: signs each batch's tree heads; None writes none and keeps no tree.
    :param withheld_scenarios: records of exchanges under these scenarios are written with
        ``disclosable = false``: the citizen portal hides them until an operator releases
        them (investigations; ``docs/audit.md``).
    """

    def __init__(
        self,
        topic: str,
        partitions: int,
        codec: Codec,
        heads: Table[ChainHead],
        checkpointer: Checkpointer | None = None,
        withheld_scenarios: Iterable[str] = (),
        tree_heads: TreeHeads | None = None,
    ) -> None:
        self.topic = topic
        self.partitions = partitions
        self._codec = codec
        self._writer = codec.writer(AuditRecord)
        self._heads = heads
        self._checkpointer = checkpointer
        self._withheld = frozenset(withheld_scenarios)
        self._tree_heads = tree_heads
        # Per partition, the leaves of the batch's records so far (TreeHeads.due takes them).
        self._leaves: dict[int, list[bytes]] = {}
        self._begun = 0
        self._names = tuple(map(str, range(partitions)))  # the heads' keys, made once

    def partition_of(self, audit_key: str | None, actor: str) -> int:
        return zlib.crc32((audit_key or actor).encode()) % self.partitions

    def record(
        self,
        step: AuditStep,
        *,
        cause: str,
        actor: str,
        audit_key: str | None = None,
        requester: str | None = None,
        provider: str | None = None,
        scenario_id: str | None = None,
        legal_basis: str | None = None,
        items: Iterable[str] = (),
        request_id: str | None = None,
        hub_request_id: str | None = None,
        error_code: str | None = None,
        disclosable: bool = True,
        linkage_run: str | None = None,
        linkage_score: float | None = None,
        reviewed_by: str | None = None,
    ) -> Output:
        """One audit record. ``cause`` is the id of the message (or event) that caused it.

        ``linkage_run``, ``linkage_score`` and ``reviewed_by`` only for bulk linkage
        (:mod:`.bulk_enrolment`).
        """
        partition = self.partition_of(audit_key, actor)
        names = self._names
        name = names[partition] if partition < len(names) else str(partition)
        head = self._heads.get(name)
        now = time.time_ns() // 1_000_000  # what schemas.models.now_ms() gives, as an int
        header = {"message_id": derive_id("audit", step, cause), "correlation_id": cause,
                  "sender": "hub", "sent_at": now}  # fmt: skip
        # Written straight from the values (schemas.compiled): the same bytes as encoding
        # an AuditRecord model, the contract's limits checked, at a fraction of the cost.
        start, tail = self._writer.write(
            header, audit_key=audit_key, step=step, actor=actor, requester=requester,
            provider=provider, scenario_id=scenario_id, legal_basis=legal_basis,
            items=items if isinstance(items, tuple | list) else tuple(items),
            request_id=request_id, hub_request_id=hub_request_id, error_code=error_code,
            disclosable=disclosable and scenario_id not in self._withheld, occurred_at=now,
            linkage_run=linkage_run, linkage_score=linkage_score, reviewed_by=reviewed_by,
            prev_hash=head.hash if head is not None else GENESIS,
        )  # fmt: skip
        data = start + b"\x00" + tail  # audit records are chained, not signed
        if head is None:
            head = ChainHead(chain_hash(data), 1, tree_size=0 if self._tree_heads else None)
        else:
            count = None if head.count is None else head.count + 1
            head = ChainHead(
                chain_hash(data), count, head.checkpointed, head.checkpoint_ms,
                head.tree_size, head.tree_nodes, head.tree_ms,
            )  # fmt: skip
        self._heads.put(name, head)
        if self._tree_heads is not None:
            if head.tree_size is not None and head.count:
                self._leaf(partition, head.count - 1 - head.tree_size, data)
            else:
                self._tree_heads.unknown(partition)  # a chain head from before tree heads
        key = (audit_key or actor).encode()
        return Output(self.topic, key, data, partition)

    def _leaf(self, partition: int, before: int, data: bytes) -> None:
        """Collect the record's leaf; ``before`` leaves of the chain precede it in the batch.

        More are collected when records were rolled back since (an input that failed, a
        savepoint): theirs go. Fewer means the tree lacks leaves it cannot get back (a
        chain head whose tree ends before it): none is collected, and no head written.
        """
        pending = self._leaves.get(partition)
        if pending is None:
            pending = self._leaves[partition] = []
        if len(pending) > before:
            del pending[before:]
        if len(pending) == before:
            pending.append(leaf_hash(data))
        elif self._tree_heads is not None:
            self._tree_heads.unknown(partition)

    # -- one input at a time -------------------------------------------------------------

    def begin(self) -> None:
        """Start one input record's worth of audit records (see :meth:`abort`)."""
        self._begun = self._heads.savepoint()

    def abort(self) -> None:
        """Forget the chain moves since :meth:`begin`: their records will not be written.

        Whoever drops a failed input's outputs must drop its chain moves too; otherwise the
        head would point at a record that never reaches Kafka and ``verify`` would report
        a removed record. (The hub rolls the chain table back to its per-record savepoint
        with every other table, which does the same.) Their leaves go with them: the
        batch's leaves of a partition are cut to its chain's count when next used.
        """
        self._heads.rollback_to(self._begun)

    # -- checkpoints and tree heads ----------------------------------------------------

    def checkpoints(self, now_ms: int) -> list[Output]:
        """Signed checkpoints of the partitions that are due, then a signed tree head of
        every partition that got records since the last call; call after the batch's
        records, in the transaction that writes them (each head covers exactly them)."""
        outputs = [] if self._checkpointer is None else self._checkpointer.due(self._heads, now_ms)
        if self._tree_heads is not None and self._leaves:
            outputs += self._tree_heads.due(self._heads, self._leaves, now_ms)
        return outputs
