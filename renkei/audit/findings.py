"""What ``renkei audit verify`` reports: each finding at its partition and offset, each
partition's counts, and the whole trail's verdict (:mod:`.verify` finds them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .trees import ChainTree

__all__ = ["Finding", "Kind", "PartitionResult", "VerifyReport"]

Kind = Literal[
    "edited",
    "removed",
    "reordered",
    "inserted",
    "broken",
    "bad-signature",
    "unknown-key",
    "checkpoint-mismatch",
    "checkpoint-missing",
    "truncated",
    "tree-mismatch",
    "forked",
    "after-last-head",
    "rewritten",
]


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong with the trail, where it is."""

    kind: Kind
    partition: int
    offset: int
    detail: str
    position: int | None = None  # the chain position, where the finding names one


@dataclass
class PartitionResult:
    """What verification found in one partition."""

    partition: int
    records: int = 0
    checkpoints: int = 0
    first_offset: int | None = None
    last_offset: int | None = None
    tree_heads: int = 0
    signed_through: int | None = None  # offset of the last record a valid signature covers
    unsigned_records: int = 0  # chained records after the last checkpoint or tree head
    skipped: int = 0  # records before the anchor (verification started mid-trail)
    findings: list[Finding] = field(default_factory=list)
    chain: ChainTree | None = field(default=None, repr=False)  # tree, positions, latest head

    @property
    def tree_size(self) -> int | None:
        """Records the latest valid tree head signs (None: no head)."""
        latest = self.chain.latest if self.chain is not None else None
        return None if latest is None else latest.size


@dataclass
class VerifyReport:
    """The whole trail's result."""

    topic: str
    partitions: list[PartitionResult]

    @property
    def findings(self) -> list[Finding]:
        return [f for p in self.partitions for f in p.findings]

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def records(self) -> int:
        return sum(p.records for p in self.partitions)
