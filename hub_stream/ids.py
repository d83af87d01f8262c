"""Deterministic ids: every id the hub writes is derived from what it read.

A worker that crashes after writing but before committing is replaced by one that
re-reads the same input and so writes the same ids; the agency side drops what it has
already seen by message id. Random ids here would turn a retry into a new message.
"""

from __future__ import annotations

import hashlib

__all__ = ["derive_id"]


def derive_id(*parts: str) -> str:
    """32 lowercase hex characters that depend on every part, in order."""
    digest = hashlib.blake2b(digest_size=16, person=b"renkei-ids-v1")
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\x1f")  # unit separator: ("ab", "c") and ("a", "bc") differ
    return digest.hexdigest()
