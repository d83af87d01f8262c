"""Audit records: one per step of every flow, metadata only, hash-chained per partition.

The hub picks each record's partition itself (from the audit key), so it knows the
previous record of that partition: ``prev_hash`` is the SHA-256 of that record's bytes.
The chain heads live in a state table written in the same transaction as the records,
so a crashed batch leaves neither records nor a moved head behind.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable

from schemas.codec import Codec
from schemas.models import AuditRecord, AuditStep, Header, now_ms

from .ids import derive_id
from .pipeline import Output
from .state import Table

__all__ = ["GENESIS", "AuditTrail", "chain_hash"]

GENESIS = bytes(32)
"""``prev_hash`` of the first record of a partition."""


def chain_hash(record_bytes: bytes) -> bytes:
    """What the next record of the partition carries as ``prev_hash``."""
    return hashlib.sha256(record_bytes).digest()


class AuditTrail:
    """Builds audit records as outputs of the current batch.

    :param topic: ``hub.audit``.
    :param partitions: its partition count.
    :param heads: state table partition → hex hash of the last record written there.
    """

    def __init__(self, topic: str, partitions: int, codec: Codec, heads: Table[str]) -> None:
        self.topic = topic
        self.partitions = partitions
        self._codec = codec
        self._heads = heads

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
    ) -> Output:
        """One audit record. ``cause`` is the id of the message (or event) that caused it."""
        partition = self.partition_of(audit_key, actor)
        head = self._heads.get(str(partition))
        now = now_ms()
        record = AuditRecord(
            header=Header.new(
                "hub", cause, message_id=derive_id("audit", step, cause), sent_at=now
            ),
            audit_key=audit_key,
            step=step,
            actor=actor,
            requester=requester,
            provider=provider,
            scenario_id=scenario_id,
            legal_basis=legal_basis,
            items=tuple(items),
            request_id=request_id,
            hub_request_id=hub_request_id,
            error_code=error_code,
            disclosable=disclosable,
            occurred_at=now,
            prev_hash=bytes.fromhex(head) if head else GENESIS,
        )
        data = self._codec.encode(record)
        self._heads.put(str(partition), chain_hash(data).hex())
        key = (audit_key or actor).encode()
        return Output(self.topic, key, data, partition)
