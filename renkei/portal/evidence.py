"""What the page's script needs to check a record by itself: its bytes, its inclusion proof
against the latest signed tree head of its partition, the head, the pinned audit keys,
and the Avro schemas to read the bytes with.

The script (``static/verify.js``) recomputes the leaf hash ``SHA-256(0x00 || bytes)``,
walks the RFC 9162 proof up to the head's root, verifies the head's Ed25519 signature
with a pinned key, and decodes the bytes to check that the row shows what they say. None
of this adds trust in the portal: the keys and the script come from the portal too (see
``docs/audit.md``, "What the browser checks").
"""

from __future__ import annotations

import base64
import functools
import json
from typing import Any

from renkei.auditchain import TrustedKeys
from renkei.treehead import SignedHead
from schemas.loader import RELEASED_DIR, SCHEMA_DIR, load_schema_dir, released_versions, resolve
from schemas.loader import fingerprint as schema_fingerprint

from .index import Row
from .trail import TrailVerifier

__all__ = [
    "SCHEMA_NAMES",
    "evidence_json",
    "heads_json",
    "keys_json",
    "place_json",
    "proof_json",
    "schemas_json",
]

SCHEMA_NAMES = ("jp.renkei.AuditRecord", "jp.renkei.AuditTreeHead")
"""What the script decodes: the records and the heads."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def evidence_json(trail: TrailVerifier | None, row: Row) -> dict[str, Any]:
    """The fields ``/api/history`` adds to a record so that a browser can prove it:
    :func:`place_json` and :func:`proof_json`."""
    return place_json(row) | proof_json(trail, row)


def place_json(row: Row) -> dict[str, Any]:
    """Where the record is and its bytes: what never changes once it is verified."""
    placed = row.partition >= 0
    return {
        "partition": row.partition if placed else None,
        "offset": row.offset if placed else None,
        "position": row.position if placed else None,
        "leaf_index": row.position if placed else None,
        "bytes": _b64(row.data) if row.data else None,
    }


def proof_json(trail: TrailVerifier | None, row: Row) -> dict[str, Any]:
    """The inclusion proof against the latest head of the record's partition, and which
    head that is (partition, size, root, key id; its bytes are in the answer's ``heads``,
    :func:`heads_json`, once per partition); both ``null`` when no verified tree head
    covers the record (a trail from before tree heads, released by a checkpoint; or after
    a gap)."""
    found = None if trail is None or row.partition < 0 else trail.proof(row.partition, row.position)
    if found is None:
        return {"proof": None, "head": None}
    head, proof = found
    return {"proof": [node.hex() for node in proof], "head": _head_json(head)}


def _head_json(head: SignedHead) -> dict[str, Any]:
    return {"partition": head.partition, "tree_size": head.size, "root_hash": head.root.hex(),
            "key_id": head.head.key_id}  # fmt: skip


def heads_json(trail: TrailVerifier | None, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The signed tree heads the ``records`` are proven against, by partition, with their
    bytes (base64): what the browser verifies the signature of."""
    heads: dict[str, Any] = {}
    for record in records:
        partition = record.get("partition")
        if record.get("head") is None or trail is None or not isinstance(partition, int):
            continue
        if str(partition) in heads:
            continue
        head = trail.latest_head(partition)
        if head is not None:
            heads[str(partition)] = _head_json(head) | {"bytes": _b64(head.data)}
    return heads


def keys_json(trusted: TrustedKeys | None) -> str:
    """The pinned audit public keys as the page carries them: ``{key id: base64}``."""
    keys = {} if trusted is None else trusted.keys
    return json.dumps({key_id: _b64(public) for key_id, public in sorted(keys.items())})


@functools.cache
def schemas_json() -> dict[str, Any]:
    """Every schema, current and released, a record or a head may be written with, by the
    hex of its fingerprint (the bytes after ``C3 01``), fully resolved."""
    found: dict[str, Any] = {}
    folders = [SCHEMA_DIR, *(folder for _, folder in released_versions(RELEASED_DIR))]
    for folder in folders:
        named = load_schema_dir(folder)
        for name in SCHEMA_NAMES:
            if name in named:
                resolved = resolve(name, named)
                found.setdefault(schema_fingerprint(resolved).hex(), resolved)
    return found
