"""Signed tree heads of the audit trail: built by the hub, checked by everyone else.

Per ``hub.audit`` partition the hub keeps an RFC 9162 Merkle tree (:mod:`renkei.merkle`)
over the partition's AuditRecords in chain order — leaf *i* is the record at chain
position *i* — and, on every commit that adds records to the partition, writes an
``AuditTreeHead`` (size, root, chain hash, time, the consistency proof from the previous
head) signed with the audit signing key (:mod:`renkei.auditchain`), to that partition of
``hub.audit`` and of ``hub.audit.heads``, in the same transaction as the records.

:class:`SignedHead` is one head with the bytes it was read from; :meth:`SignedHead.check`
is what every verifier runs before believing it. ``to_json`` / ``from_json`` is the
export a witness keeps and ``renkei audit verify --against`` reads: the head's bytes,
base64, plus its fields for people to read (the bytes decide).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from renkei.auditchain import AuditSigner, TrustedKeys
from renkei.envelope import verify_bytes
from renkei.errors import ContractError, SignatureError
from renkei.merkle import verify_consistency
from schemas.codec import Codec
from schemas.models import AuditTreeHead, Header

__all__ = ["EXPORT_FORMAT", "SignedHead", "build_head", "is_tree_head"]

EXPORT_FORMAT: Final = "renkei-tree-head/1"


def build_head(
    signer: AuditSigner,
    codec: Codec,
    *,
    partition: int,
    tree_size: int,
    root_hash: bytes,
    chain_hash: bytes,
    previous_size: int,
    consistency: Sequence[bytes],
    now_ms: int,
    message_id: str,
) -> bytes:
    """A signed tree head's bytes: the single-object encoding, signed as every message is
    (Ed25519 over the encoding with the signature empty, then spliced in).

    :param message_id: derived by the hub from (partition, tree size), so a retried batch
        writes the same head.
    """
    head = AuditTreeHead(
        header=Header.new(
            "hub",
            message_id=message_id,
            sent_at=datetime.fromtimestamp(now_ms / 1000, UTC),
        ),
        partition=partition,
        tree_size=tree_size,
        root_hash=root_hash,
        chain_hash=chain_hash,
        previous_size=previous_size,
        consistency=tuple(consistency),
        key_id=signer.key_id,
    )
    unsigned = codec.encode(head)
    return codec.join_signature(unsigned, signer.sign(unsigned))


def is_tree_head(data: bytes, codec: Codec) -> bool:
    """Whether ``data`` carries an AuditTreeHead's fingerprint (any released version)."""
    kind = codec.fingerprints.get(bytes(data[2:10]))
    return kind is not None and issubclass(kind, AuditTreeHead)


@dataclass(frozen=True, slots=True)
class SignedHead:
    """One tree head and the exact bytes it was read from."""

    head: AuditTreeHead
    data: bytes

    @property
    def partition(self) -> int:
        return self.head.partition

    @property
    def size(self) -> int:
        return self.head.tree_size

    @property
    def root(self) -> bytes:
        return self.head.root_hash

    @property
    def time_ms(self) -> int:
        return int(self.head.header.sent_at.timestamp() * 1000)

    @classmethod
    def parse(cls, data: bytes, codec: Codec) -> SignedHead:
        """Decode a tree head; :raises ContractError: not one, or malformed."""
        return cls(codec.decode_as(data, AuditTreeHead), data)

    def check(self, trusted: TrustedKeys, codec: Codec) -> None:
        """Verify the signature (over the bytes as read) with a pinned audit key.

        :raises SignatureError: an unknown key or a signature that does not verify.
        """
        public = trusted.get(self.head.key_id)
        if public is None:
            raise SignatureError(f"tree head signed by {self.head.key_id}, which is not pinned")
        verify_bytes(self.data, public, codec)

    def extends(self, earlier: SignedHead) -> bool:
        """Whether this head's own consistency proof shows it extends ``earlier``
        (which must be the head of ``previous_size``; the same head counts)."""
        if self.partition != earlier.partition:
            return False
        if self.size == earlier.size:
            return self.root == earlier.root
        return self.head.previous_size == earlier.size and verify_consistency(
            earlier.size, self.size, earlier.root, self.root, self.head.consistency
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": EXPORT_FORMAT,
            "partition": self.partition,
            "tree_size": self.size,
            "root_hash": self.root.hex(),
            "time": self.head.header.sent_at.isoformat(timespec="milliseconds"),
            "key_id": self.head.key_id,
            "bytes": base64.b64encode(self.data).decode(),
        }

    @classmethod
    def from_json(cls, doc: Any, codec: Codec) -> SignedHead:
        """Read an export back; the bytes decide, the readable fields must agree.

        :raises ContractError: not an export of a tree head, or fields that disagree.
        """
        if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
            raise ContractError(f"not a tree head export (format {EXPORT_FORMAT})")
        try:
            head = cls.parse(base64.b64decode(doc["bytes"], validate=True), codec)
        except (KeyError, TypeError, ValueError) as exc:
            raise ContractError(f"a tree head export without readable bytes: {exc}") from exc
        if (doc.get("partition"), doc.get("tree_size"), doc.get("root_hash")) != (
            head.partition, head.size, head.root.hex()
        ):  # fmt: skip
            raise ContractError("the tree head export's fields disagree with its bytes")
        return head

    @classmethod
    def load_all(cls, text: str, codec: Codec) -> list[SignedHead]:
        """Every head in a file: one export, a JSON list of them, or one per line.

        :raises ContractError: anything else.
        """
        text = text.strip()
        try:
            docs: Any = json.loads(text)
        except json.JSONDecodeError:
            try:
                docs = [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError as exc:
                raise ContractError(f"not JSON: {exc}") from exc
        if isinstance(docs, dict):
            docs = [docs]
        if not isinstance(docs, list) or not docs:
            raise ContractError("no tree head in the file")
        return [cls.from_json(doc, codec) for doc in docs]
