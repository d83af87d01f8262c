"""RFC 9162 Merkle trees: hashes, tree heads, inclusion and consistency proofs.

The audit trail's tree per ``hub.audit`` partition (``docs/audit.md``, "Tree heads") uses
exactly RFC 9162 §2.1 with SHA-256: a leaf is ``SHA-256(0x00 || record bytes)``, a node
``SHA-256(0x01 || left || right)``, the tree over ``n`` leaves splits at the largest power
of two below ``n``, and the empty tree's hash is ``SHA-256("")``.

Three shapes of the same tree, for three users:

- :class:`Frontier` — the roots of the perfect subtrees that make up ``[0, n)`` (at most 64
  hashes). The hub keeps only this: appending a leaf and computing the root cost O(1)
  amortised and O(log n); :meth:`Frontier.extend` also proves the new tree consistent
  with the old one without any earlier leaf.
- :class:`MerkleTree` — every level of the tree, packed 32 bytes a node, for the tools
  that read a whole partition (``renkei audit prove`` / ``verify``, the portal): any
  inclusion or consistency proof in O(log n).
- :func:`verify_inclusion`, :func:`verify_consistency` — RFC 9162 §2.1.3.2 and §2.1.4.2,
  for anyone holding only a tree head (witnesses, the portal page's script).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Final

__all__ = [
    "EMPTY_ROOT",
    "Frontier",
    "MerkleTree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256

EMPTY_ROOT: Final = _sha256(b"").digest()
"""The hash of the empty tree (RFC 9162 §2.1.1)."""


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: a leaf of the tree (a record's single-object bytes)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: an interior node."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n`` > 1): where RFC 9162 splits."""
    return 1 << ((n - 1).bit_length() - 1)


# -- proofs over any source of subtree hashes ----------------------------------------------
#
# ``mth(a, b)`` returns MTH(D[a:b]) for the ranges RFC 9162's recursion asks for; each
# source (the full tree, the hub's frontier) answers them its own way.

Subtrees = Callable[[int, int], bytes]


def inclusion_proof(mth: Subtrees, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, leaf-side first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    a, b = 0, size
    while b - a > 1:
        k = _split(b - a)
        if index < a + k:
            path.append(mth(a + k, b))
            b = a + k
        else:
            path.append(mth(a, a + k))
            a += k
    path.reverse()
    return path


def consistency_proof(mth: Subtrees, old: int, new: int) -> list[bytes]:
    """PROOF(old, D[0:new]) of RFC 9162 §2.1.4.1; empty when ``old`` is 0 or ``new``."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from {old} to {new}")
    if old in (0, new):
        return []
    proof: list[bytes] = []
    a, b, whole = 0, new, True  # SUBPROOF(m, D[a:b], whole)
    m = old
    while True:
        n = b - a
        if m == n:
            if not whole:
                proof.append(mth(a, b))
            break
        k = _split(n)
        if m <= k:
            proof.append(mth(a + k, b))
            b = a + k
        else:
            proof.append(mth(a, a + k))
            a, m, whole = a + k, m - k, False
    proof.reverse()
    return proof


# -- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -----------------------------------------


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows the leaf hash ``leaf`` at ``index`` of the tree ``root``."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree ``new_root`` (``new`` leaves) extends ``old_root``."""
    if not 0 <= old <= new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof  # the empty tree is a prefix of every tree
    path = list(proof)
    if old & (old - 1) == 0:  # old is a power of two: its root is the first node
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


# -- the hub's compact tree ------------------------------------------------------------------


class Frontier:
    """The tree over ``[0, size)`` as the roots of its perfect subtrees, largest first.

    Their sizes are the binary digits of ``size``: 13 leaves are kept as the roots of
    ``[0, 8)``, ``[8, 12)`` and ``[12, 13)``. That is all the hub stores per partition.
    """

    __slots__ = ("nodes", "size")

    def __init__(self, size: int = 0, nodes: Iterable[bytes] = ()) -> None:
        self.size = size
        self.nodes = list(nodes)
        if len(self.nodes) != size.bit_count():
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} subtree roots")

    def copy(self) -> Frontier:
        return Frontier(self.size, self.nodes)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash: merge equal-sized subtrees, as a binary counter carries."""
        node, size = leaf, self.size
        while size & 1:
            node = node_hash(self.nodes.pop(), node)
            size >>= 1
        self.nodes.append(node)
        self.size += 1

    def root(self) -> bytes:
        """MTH(D[0:size]): the subtree roots folded from the right."""
        if not self.nodes:
            return EMPTY_ROOT
        r = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            r = node_hash(node, r)
        return r

    def extend(self, leaves: Sequence[bytes]) -> tuple[Frontier, list[bytes]]:
        """The frontier after appending ``leaves`` and the consistency proof from this one,
        at about one hash a new leaf besides the proof's own (this frontier is unchanged).

        Every hash a consistency proof from ``size`` needs is either one of this
        frontier's subtree roots or lies wholly among the new leaves (RFC 9162's recursion
        only descends along the old tree's right edge), so no earlier leaf is needed. The
        new leaves' perfect subtrees are built aligned to the *whole tree's* positions,
        where every subtree the proof names starts, so each is a lookup.
        """
        old, size = self.size, self.size + len(leaves)
        if not leaves:
            return self.copy(), []
        spans, start = {}, 0
        for node, bit in zip(self.nodes, _bits_high_to_low(old), strict=True):
            spans[(start, start + bit)] = node
            start += bit
        # levels[h][j]: the perfect subtree of positions [(first[h] + j) << h, ... + 1 << h).
        levels, first = [list(leaves)], [old]
        while len(levels[-1]) > 1:
            below, f = levels[-1], first[-1]
            skip = f & 1  # a subtree starting at an odd index pairs with one before the batch
            above = [node_hash(below[i], below[i + 1]) for i in range(skip, len(below) - 1, 2)]
            if not above:
                break
            levels.append(above)
            first.append((f + skip) >> 1)

        def mth(a: int, b: int) -> bytes:
            node = spans.get((a, b))
            if node is not None:
                return node
            n = b - a
            if a >= old and n & (n - 1) == 0 and a % n == 0:
                h = n.bit_length() - 1
                if h < len(levels):
                    j = (a >> h) - first[h]
                    if 0 <= j < len(levels[h]):
                        return levels[h][j]
            if n == 1:
                raise AssertionError(f"leaf {a} is neither new nor a frontier subtree")
            k = _split(n)  # straddles the old edge, or is not perfect: RFC 9162's split
            return node_hash(mth(a, a + k), mth(a + k, b))

        # The new frontier's subtrees, from the same lookups (the old edge: O(log n) hashes).
        nodes, start = [], 0
        for bit in _bits_high_to_low(size):
            nodes.append(mth(start, start + bit))
            start += bit
        return Frontier(size, nodes), consistency_proof(mth, old, size)


def _bits_high_to_low(n: int) -> list[int]:
    return [1 << i for i in range(n.bit_length() - 1, -1, -1) if n >> i & 1]


# -- the readers' full tree ------------------------------------------------------------------


class MerkleTree:
    """Every level of the tree over a sequence of leaf hashes, 32 bytes a node.

    Level ``h`` holds the roots of the aligned perfect subtrees of ``2**h`` leaves, so any
    subtree hash is a lookup or O(log n) of them. Memory: about 64 bytes per leaf.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        for leaf in leaves:
            self.append(leaf)

    @classmethod
    def from_leaf_bytes(cls, leaves: bytes | bytearray) -> MerkleTree:
        """The tree over leaf hashes packed 32 bytes each: what :meth:`append` builds one
        at a time, level by level in bulk (one hash a node, no per-leaf bookkeeping: the
        verifier builds trees of millions of leaves)."""
        if len(leaves) % 32:
            raise ValueError("leaf hashes are 32 bytes each")
        tree = cls()
        below = bytes(leaves)
        tree._levels = [bytearray(below)]
        while len(below) >= 64:
            pairs = len(below) // 64 * 64
            below = b"".join(
                [_sha256(b"\x01" + below[i : i + 64]).digest() for i in range(0, pairs, 64)]
            )
            tree._levels.append(bytearray(below))
        return tree

    @property
    def size(self) -> int:
        return len(self._levels[0]) // 32

    def append(self, leaf: bytes) -> None:
        """Add a leaf hash; completes the perfect subtrees it closes."""
        levels = self._levels
        levels[0] += leaf
        node, h = leaf, 0
        while (len(levels[h]) // 32) % 2 == 0:
            at = len(levels[h])
            node = node_hash(bytes(levels[h][at - 64 : at - 32]), node)
            h += 1
            if h == len(levels):
                levels.append(bytearray())
            levels[h] += node

    def leaf(self, index: int) -> bytes:
        return bytes(self._levels[0][index * 32 : index * 32 + 32])

    def subtree(self, a: int, b: int) -> bytes:
        """MTH(D[a:b]) for any ``0 <= a <= b <= size``."""
        if not 0 <= a <= b <= self.size:
            raise ValueError(f"[{a}, {b}) is not in a tree of {self.size}")
        n = b - a
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and a % n == 0:
            h = n.bit_length() - 1
            i = a >> h
            return bytes(self._levels[h][i * 32 : i * 32 + 32])
        k = _split(n)
        return node_hash(self.subtree(a, a + k), self.subtree(a + k, b))

    def root(self, size: int | None = None) -> bytes:
        """MTH(D[0:size]), the whole tree by default."""
        return self.subtree(0, self.size if size is None else size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(self.subtree, index, self.size if size is None else size)

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        return consistency_proof(self.subtree, old, self.size if new is None else new)


def root_of(records: Iterable[bytes]) -> bytes:
    """MTH over the records' bytes (hashes them as leaves)."""
    frontier = Frontier()
    for data in records:
        frontier.append(leaf_hash(data))
    return frontier.root()
