"""What :mod:`.trail` keeps per ``hub.audit`` partition, and the two walks it needs: the
waiting records that descend from a chain hash, and the compact form of a Merkle tree."""

from __future__ import annotations

from dataclasses import dataclass, field

from renkei.auditchain import GENESIS
from renkei.merkle import Frontier, MerkleTree
from renkei.treehead import SignedHead
from schemas.models import AuditRecord

__all__ = ["Partition", "Waiting", "descendants", "frontier"]


@dataclass(slots=True)
class Waiting:
    """A record read and linked, not yet covered by a head or checkpoint."""

    prev: bytes | None
    record: AuditRecord | None  # None: linked by its bytes, but it does not decode
    offset: int
    timestamp_ms: int
    data: bytes


@dataclass
class Partition:
    """One partition's verified head, tree, latest tree head and waiting records."""

    head: bytes = GENESIS
    position: int = 0  # records verified so far = chain position of the next one
    waiting: dict[bytes, Waiting] = field(default_factory=dict)
    tree: MerkleTree | None = field(default_factory=MerkleTree)  # None after a gap
    latest: SignedHead | None = None  # the latest tree head that verified
    proofs: dict[int, list[bytes]] = field(default_factory=dict)  # against ``latest``


def frontier(tree: MerkleTree) -> Frontier:
    """The compact form of ``tree``: the roots of its perfect subtrees, largest first."""
    nodes, start = [], 0
    for i in range(tree.size.bit_length() - 1, -1, -1):
        if tree.size >> i & 1:
            nodes.append(tree.subtree(start, start + (1 << i)))
            start += 1 << i
    return Frontier(tree.size, nodes)


def descendants(waiting: dict[bytes, Waiting], root: bytes) -> dict[bytes, Waiting]:
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
