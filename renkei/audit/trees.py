"""verify's tree heads: each partition's signed AuditTreeHeads against the Merkle tree of its chain.

:mod:`.verify` links the records into a chain and numbers them; this module then builds
the RFC 9162 tree over the chain (leaf *i* = the record at chain position *i*,
:mod:`renkei.merkle`) and holds every tree head with a valid signature to it:

- a head that signs more records than the chain has → **truncated** (the first missing
  position named);
- a head whose root (or chain hash) differs from the tree at its size → **tree-mismatch**,
  naming the head and the first position that differs, as closely as the head's own
  consistency proof and the heads before it allow;
- a record after the last head of its partition → **after-last-head**: the hub writes a
  head in the same transaction as every record, so a committed record that no head covers
  is a forgery.

Differences the chain already explains (an edited or removed record) are not reported a
second time here.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import NamedTuple

from renkei.auditchain import TrustedKeys
from renkei.errors import ContractError, SignatureError
from renkei.merkle import EMPTY_ROOT, MerkleTree, consistency_proof
from renkei.treehead import SignedHead
from schemas.codec import Codec

__all__ = ["ChainTree", "HeadLog", "TreeFinding", "judge_tree", "narrow", "proof_ranges"]


class TreeFinding(NamedTuple):
    """A finding of this module, before :mod:`.verify` makes it a ``Finding``."""

    kind: str
    offset: int
    position: int | None
    detail: str


@dataclass(slots=True)
class _Head:
    offset: int
    head: SignedHead


class HeadLog:
    """One partition's tree heads as read, in offset order; only valid ones are kept.

    :param partition: the partition they were read from (a head of another is a finding).
    :param trusted: the pinned audit keys.
    """

    def __init__(self, partition: int, trusted: TrustedKeys, codec: Codec) -> None:
        self.partition = partition
        self._trusted = trusted
        self._codec = codec
        self.count = 0
        self.valid: list[_Head] = []

    def add(self, offset: int, data: bytes) -> TreeFinding | None:
        """Read a head; a finding when it cannot be believed, else None (and it is kept)."""
        self.count += 1
        try:
            signed = SignedHead.parse(data, self._codec)
        except ContractError as exc:
            return TreeFinding("edited", offset, None, f"tree head does not decode ({exc})")
        try:
            signed.check(self._trusted, self._codec)
        except SignatureError:
            if self._trusted.get(signed.head.key_id) is None:
                detail = f"tree head signed by unknown {signed.head.key_id}"
                return TreeFinding("unknown-key", offset, None, detail)
            return TreeFinding("bad-signature", offset, None, "tree head signature does not verify")
        if signed.partition != self.partition:
            detail = f"a tree head of partition {signed.partition} in partition {self.partition}"
            return TreeFinding("tree-mismatch", offset, None, detail)
        self.valid.append(_Head(offset, signed))
        return None

    @property
    def latest(self) -> SignedHead | None:
        """The valid head that signs the most records (the last one read among equals)."""
        best: SignedHead | None = None
        for h in self.valid:
            if best is None or h.head.size >= best.size:
                best = h.head
        return best

    def last_positions(self) -> dict[bytes, int]:
        """Chain hash → the chain position each valid head names (``tree_size - 1``)."""
        return {h.head.head.chain_hash: h.head.size - 1 for h in self.valid if h.head.size}


@dataclass
class ChainTree:
    """A partition's chain as the tree sees it: what ``heads``, ``prove`` and ``--against`` use.

    ``offsets[i]`` is the Kafka offset of the record at chain position ``i``; ``tree`` holds
    the leaves of positions ``0 .. tree.size - 1`` (up to the first missing one).
    """

    partition: int
    tree: MerkleTree
    offsets: list[int]
    latest: SignedHead | None
    end_offset: int  # one past the last offset read in the partition
    findings: list[TreeFinding] = field(default_factory=list)

    def position_of(self, offset: int) -> int | None:
        """The chain position of the record at ``offset`` (None: not in the chain)."""
        i = bisect.bisect_left(self.offsets, offset)
        if i < len(self.offsets) and self.offsets[i] == offset:
            return i
        try:  # a reordered chain's offsets are not sorted
            return self.offsets.index(offset)
        except ValueError:
            return None


def proof_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The leaf range ``[a, b)`` whose hash each node of PROOF(old, new) is, in proof order."""
    asked: list[tuple[int, int]] = []

    def record(a: int, b: int) -> bytes:
        asked.append((a, b))
        return b""

    consistency_proof(record, old, new)
    asked.reverse()  # consistency_proof returns its nodes in reverse order of asking
    return asked


def judge_tree(
    heads: HeadLog,
    at_position: list[int | None],
    leaves: bytes | bytearray,
    hashes: list[bytes],
    offsets: list[int],
    *,
    explained: set[int],
    anchor_pos: int,
    heads_expected: bool,
    end_offset: int,
) -> ChainTree:
    """Hold every valid head of a partition to the tree over its chain.

    :param at_position: record index (into ``leaves``/``hashes``/``offsets``) at each chain
        position from ``anchor_pos``; None where the chain lacks it (removed or edited).
    :param leaves: the records' leaf hashes, 32 bytes each, in read order.
    :param explained: positions the chain's findings already name (edited, removed).
    :param anchor_pos: the chain position of ``at_position[0]``; roots are checked only
        from 0 (a verification started mid-trail has no earlier leaves).
    :param heads_expected: every record must be covered by a head (verify: the partition
        has a valid one; a partition written before tree heads has none, and then no
        record is "after the last head").
    """
    chain_len = anchor_pos + len(at_position)
    contiguous = 0
    while contiguous < len(at_position) and at_position[contiguous] is not None:
        contiguous += 1
    tree = MerkleTree()
    chain_offsets: list[int] = []
    if anchor_pos == 0 and heads.valid:  # without a head there is no root to hold it to
        order = [i for i in at_position[:contiguous] if i is not None]
        if order == list(range(contiguous)):
            tree = MerkleTree.from_leaf_bytes(leaves[: contiguous * 32])  # the usual case
        else:
            tree = MerkleTree.from_leaf_bytes(b"".join(leaves[i * 32 : i * 32 + 32] for i in order))
        chain_offsets = [offsets[i] for i in order]
    out = ChainTree(heads.partition, tree, chain_offsets, heads.latest, end_offset)
    last_chained = max((i for i in at_position if i is not None), default=None)
    after = offsets[last_chained] + 1 if last_chained is not None else end_offset
    found = out.findings
    truncated = next((h for h in heads.valid if h.head.size > chain_len), None)
    if truncated is not None:
        n = truncated.head.size
        found.append(TreeFinding(
            "truncated", after, chain_len,
            f"the tree head at offset {truncated.offset} signs {n} records, the chain has "
            f"{chain_len}: positions {chain_len}..{n - 1} are missing (from offset {after})",
        ))  # fmt: skip
    good = 0  # positions below this agree with a head whose root matched
    failing: list[_Head] = []
    for h in heads.valid:
        size = h.head.size
        if size > chain_len or (anchor_pos == 0 and size > contiguous + anchor_pos):
            continue  # truncated, or past a gap the chain reports already
        if size == 0:
            ok = h.head.root == EMPTY_ROOT
        else:
            p = size - 1 - anchor_pos
            i = at_position[p] if p >= 0 else None
            ok = i is None or hashes[i] == h.head.head.chain_hash
            if anchor_pos == 0:
                ok = ok and tree.root(size) == h.head.root
        if ok:
            good = max(good, size)
        else:
            failing.append(h)
    if failing and anchor_pos == 0:
        first = failing[0]
        lo, hi = narrow(first.head, tree, good)
        if not explained.intersection(range(lo, hi + 1)):
            where = f"position {lo}" if lo == hi else f"one of positions {lo}..{hi}"
            others = f"; {len(failing) - 1} later head(s) disagree too" if len(failing) > 1 else ""
            found.append(TreeFinding(
                "tree-mismatch", chain_offsets[lo], lo,
                f"the tree head at offset {first.offset} (size {first.head.size}) signs a "
                f"different history: the first record that differs is at {where} "
                f"(offset {chain_offsets[lo]}){others}",
            ))  # fmt: skip
    signed_to = max((h.head.size for h in heads.valid), default=0)
    if heads_expected:
        for p, i in enumerate(at_position):
            if i is None or anchor_pos + p < signed_to:
                continue
            why = "no tree head covers it" if heads.valid else "the partition has no tree head"
            found.append(TreeFinding(
                "after-last-head", offsets[i], anchor_pos + p,
                f"record at position {anchor_pos + p} after the last tree head (size "
                f"{signed_to}): {why}, and the hub signs every commit",
            ))  # fmt: skip
    return out


def narrow(signed: SignedHead, tree: MerkleTree, good: int) -> tuple[int, int]:
    """The span of positions where the first difference between ``tree`` and ``signed``
    lies: at or after ``good`` (a matching earlier head), inside the first node of the
    head's own consistency proof that differs, and before the record its chain hash names.
    """
    head = signed.head
    lo, hi = good, head.tree_size - 1
    old = head.previous_size
    if 0 < old < head.tree_size and len(head.consistency) == len(
        ranges := proof_ranges(old, head.tree_size)
    ):
        spans = sorted(zip(ranges, head.consistency, strict=True))
        for (a, b), node in spans:
            if b <= lo:
                continue
            if tree.subtree(a, b) == node:
                if a <= lo:
                    lo = b  # a node the tree agrees with covers the start
            else:
                hi = min(hi, b - 1)
                break
    return min(lo, hi), hi
