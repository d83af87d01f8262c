"""Forged tree-head histories for the witness tests: an honest log, its forks, its rewrites.

A :class:`History` is one partition's log as a hub would sign it: leaves appended, a
signed head per commit with the consistency proof from the previous head. Forking it
(:meth:`History.fork`) copies the leaves so far, so the fork and the original share a
prefix and differ after it: a hub showing two histories, signed with the same key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from renkei.auditchain import GENESIS, AuditSigner, TrustedKeys, chain_hash
from renkei.crypto import SigningKey
from renkei.merkle import MerkleTree, leaf_hash
from renkei.treehead import build_head
from schemas.codec import Codec, default_codec

__all__ = ["History", "new_signer", "trust_of"]


def new_signer() -> AuditSigner:
    return AuditSigner(SigningKey.generate())


def trust_of(*signers: AuditSigner) -> TrustedKeys:
    return TrustedKeys({s.key_id: s.key.public_bytes for s in signers})


@dataclass
class History:
    """One partition's records and the heads signed over them."""

    signer: AuditSigner
    partition: int = 0
    tag: bytes = b"honest"
    codec: Codec = field(default_factory=default_codec)
    tree: MerkleTree = field(default_factory=MerkleTree)
    records: list[bytes] = field(default_factory=list)
    last_size: int = 0

    def append(self, n: int) -> None:
        for _ in range(n):
            record = b"%s record %d" % (self.tag, len(self.records))
            self.records.append(record)
            self.tree.append(leaf_hash(record))

    def head(self, *, previous: int | None = None, proof_from: int | None = None) -> bytes:
        """The signed head of the records so far, following the last head (or ``previous``).

        :param proof_from: build the proof from this size while claiming ``previous``
            (a proof that does not fit its claim).
        """
        size = self.tree.size
        prev = self.last_size if previous is None else previous
        start = prev if proof_from is None else proof_from
        data = build_head(
            self.signer,
            self.codec,
            partition=self.partition,
            tree_size=size,
            root_hash=self.tree.root(size),
            chain_hash=chain_hash(self.records[-1]) if self.records else GENESIS,
            previous_size=prev,
            consistency=self.tree.consistency_proof(start, size) if start else [],
            now_ms=1_700_000_000_000 + size,
            message_id=hashlib.sha256(b"%d %d %s" % (self.partition, size, self.tag)).hexdigest()[
                :32
            ],
        )
        self.last_size = size
        return data

    def commit(self, n: int) -> bytes:
        """Append ``n`` records and sign the head over them."""
        self.append(n)
        return self.head()

    def fork(self, tag: bytes, keep: int | None = None) -> History:
        """Another history sharing the first ``keep`` records (all so far by default)."""
        keep = len(self.records) if keep is None else keep
        other = History(self.signer, self.partition, tag, self.codec)
        other.records = list(self.records[:keep])
        for record in other.records:
            other.tree.append(leaf_hash(record))
        other.last_size = min(self.last_size, keep)
        return other
