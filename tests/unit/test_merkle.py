"""RFC 9162 Merkle trees: the reference vectors, and every proof for small trees."""

from __future__ import annotations

import pytest

from renkei.merkle import (
    EMPTY_ROOT,
    Frontier,
    MerkleTree,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

# The leaves and roots used by Certificate Transparency's reference implementations
# (RFC 6962 / 9162 hashing): the tree over the first n leaves has root ROOTS[n - 1].
LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]  # fmt: skip
ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]  # fmt: skip


def test_empty_tree_is_the_hash_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert Frontier().root() == MerkleTree().root() == EMPTY_ROOT


@pytest.mark.parametrize("n", range(1, 9))
def test_roots_match_the_reference_vectors(n: int) -> None:
    leaves = [leaf_hash(x) for x in LEAVES[:n]]
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    assert frontier.root() == ROOTS[n - 1]
    assert MerkleTree(leaves).root() == ROOTS[n - 1]


def test_reference_inclusion_and_consistency_proofs() -> None:
    tree = MerkleTree(leaf_hash(x) for x in LEAVES)
    # RFC 6962 §2.1.3's example tree of 7 leaves: PATH(d0) = [b, h, l] (leaf 1, [2,4), [4,7)).
    assert tree.inclusion_proof(0, 7) == [tree.leaf(1), tree.subtree(2, 4), tree.subtree(4, 7)]
    # and PROOF(3, D[7]) = [c, d, g, l].
    assert tree.consistency_proof(3, 7) == [
        tree.leaf(2), tree.leaf(3), tree.subtree(0, 2), tree.subtree(4, 7)
    ]  # fmt: skip
    assert tree.consistency_proof(4, 7) == [tree.subtree(4, 7)]
    assert tree.consistency_proof(6, 7) == [
        tree.subtree(4, 6), tree.leaf(6), tree.subtree(0, 4)
    ]  # fmt: skip


def _tree(n: int) -> MerkleTree:
    return MerkleTree(leaf_hash(i.to_bytes(4, "big")) for i in range(n))


@pytest.mark.parametrize("size", range(1, 34))
def test_every_inclusion_proof_verifies_and_a_wrong_one_does_not(size: int) -> None:
    tree = _tree(size)
    root = tree.root()
    for i in range(size):
        proof = tree.inclusion_proof(i)
        assert verify_inclusion(tree.leaf(i), i, size, proof, root)
        assert not verify_inclusion(
            tree.leaf(i), i, size, proof, tree.root(size - 1) if size > 1 else EMPTY_ROOT
        )
        assert not verify_inclusion(leaf_hash(b"forged"), i, size, proof, root)
        if size > 1:
            assert not verify_inclusion(tree.leaf(i), (i + 1) % size, size, proof, root)
            assert not verify_inclusion(tree.leaf(i), i, size, proof[:-1], root)
            bent = [*proof[:-1], node_hash(proof[-1], proof[-1])]
            assert not verify_inclusion(tree.leaf(i), i, size, bent, root)


@pytest.mark.parametrize("new", range(1, 34))
def test_every_consistency_proof_verifies_and_a_fork_does_not(new: int) -> None:
    tree = _tree(new)
    for old in range(new + 1):
        proof = tree.consistency_proof(old, new)
        assert verify_consistency(old, new, tree.root(old), tree.root(new), proof)
        if 0 < old < new:
            fork = MerkleTree([*(tree.leaf(i) for i in range(old - 1)), leaf_hash(b"other")])
            assert not verify_consistency(old, new, fork.root(), tree.root(new), proof)
            assert not verify_consistency(old, new, tree.root(old), fork.root(), proof)
            assert not verify_consistency(old, new, tree.root(old), tree.root(new), proof[1:])
            assert not verify_consistency(old - 1, new, tree.root(old), tree.root(new), proof)


@pytest.mark.parametrize(
    ("old", "added"),
    [(0, 1), (0, 9), (1, 1), (5, 3), (6, 1), (6, 2), (7, 25), (8, 8), (13, 100), (64, 1), (100, 0)],
)
def test_the_frontier_extends_with_the_proof_the_full_tree_gives(old: int, added: int) -> None:
    tree = _tree(old + added)
    frontier = Frontier()
    for i in range(old):
        frontier.append(tree.leaf(i))
    new, proof = frontier.extend([tree.leaf(i) for i in range(old, old + added)])
    assert new.size == old + added
    assert new.root() == tree.root()
    assert proof == tree.consistency_proof(old, old + added)
    assert frontier.size == old  # extend leaves the old frontier as it was
    assert Frontier(new.size, new.nodes).root() == tree.root()


def test_a_frontier_with_the_wrong_number_of_subtrees_is_refused() -> None:
    with pytest.raises(ValueError, match="3 subtree roots"):
        Frontier(7, [EMPTY_ROOT])


def test_proofs_outside_the_tree_are_refused() -> None:
    tree = _tree(5)
    with pytest.raises(ValueError, match="not in a tree of 5"):
        tree.inclusion_proof(5)
    with pytest.raises(ValueError, match="from 6 to 5"):
        tree.consistency_proof(6, 5)
    assert not verify_inclusion(tree.leaf(0), 5, 5, [], tree.root())
    assert not verify_consistency(6, 5, tree.root(), tree.root(), [])
