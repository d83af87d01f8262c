"""The signed things on ``hub.audit`` the portal anchors its trust in: checkpoints and tree
heads, each checked against a pinned audit key and reduced to what :mod:`.trail` needs —
how many records of the chain it covers and the hash of the last one."""

from __future__ import annotations

from dataclasses import dataclass

from renkei.auditchain import TrustedKeys
from renkei.envelope import verify_bytes
from renkei.errors import SignatureError
from renkei.treehead import SignedHead
from schemas.codec import Codec
from schemas.models import AuditCheckpoint

__all__ = ["Anchor", "anchor_of_checkpoint", "anchor_of_head"]


@dataclass(frozen=True, slots=True)
class Anchor:
    """A verified signature over the first ``size`` records of a partition's chain."""

    kind: str  # "checkpoint" or "tree head", for the log
    size: int  # records covered: the chain position after the last one
    chain_hash: bytes  # chain hash of the record at ``size - 1`` (genesis for none)
    head: SignedHead | None  # the tree head, which also signs the Merkle root


def anchor_of_checkpoint(data: bytes, trusted: TrustedKeys, codec: Codec, partition: int) -> Anchor:
    """A checkpoint of ``partition`` that verifies with a pinned key.

    :raises ContractError: it does not decode.
    :raises SignatureError: an unpinned key, another partition's, or a bad signature.
    """
    checkpoint = codec.decode_as(data, AuditCheckpoint)
    public = trusted.get(checkpoint.key_id)
    if public is None:
        raise SignatureError(f"signed by {checkpoint.key_id}, which is not pinned")
    if checkpoint.partition != partition:
        raise SignatureError(f"a checkpoint of partition {checkpoint.partition}")
    verify_bytes(data, public, codec)  # as written, whatever its version
    return Anchor("checkpoint", checkpoint.last_offset + 1, checkpoint.chain_hash, None)


def anchor_of_head(data: bytes, trusted: TrustedKeys, codec: Codec, partition: int) -> Anchor:
    """A tree head of ``partition`` that verifies with a pinned key.

    :raises ContractError: it does not decode.
    :raises SignatureError: an unpinned key, another partition's, or a bad signature.
    """
    head = SignedHead.parse(data, codec)
    head.check(trusted, codec)
    if head.partition != partition:
        raise SignatureError(f"a tree head of partition {head.partition}")
    if head.size < 0:
        raise SignatureError(f"a tree head of {head.size} records")
    return Anchor("tree head", head.size, head.head.chain_hash, head)
