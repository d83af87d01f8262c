"""The audit chain's definitions, shared by the hub that writes it and the tools that check it.

Per ``hub.audit`` partition, every ``AuditRecord`` carries ``prev_hash`` = SHA-256 of the
complete value bytes (single-object encoding) of the previous ``AuditRecord`` of that
partition, :data:`GENESIS` for the first. ``AuditCheckpoint`` values sit in the same
partition but are not links of the chain.

A checkpoint states, signed, where the chain stood (``docs/audit.md``):

============  ====================================================================
field         meaning
============  ====================================================================
partition     the partition covered
first_offset  *chain position* of the first record covered: the number of
              AuditRecords of the partition before it (0 = the first record ever);
              equal to the previous checkpoint's ``last_offset + 1``
last_offset   chain position of the last record covered
record_count  ``last_offset - first_offset + 1``
chain_hash    SHA-256 of the bytes of the record at ``last_offset``: the next
              record's ``prev_hash``
key_id        :func:`key_id` of the audit signing key
============  ====================================================================

The hub cannot know Kafka offsets of the records it writes inside a transaction, so a
checkpoint counts records instead; ``renkei audit verify`` maps positions to offsets.
``header.signature`` is Ed25519 over the checkpoint's single-object encoding with the
signature empty (as every message's), by the *audit signing key*, which is not the hub's
message key and never enters Kafka.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from renkei.crypto import SigningKey
from renkei.crypto._files import read_secret_file, write_secret_file
from renkei.errors import ConfigurationError, CryptoError

__all__ = [
    "AUDIT_RECORD_TAIL",
    "GENESIS",
    "TRUST_FILE",
    "AuditSigner",
    "TrustedKeys",
    "chain_hash",
    "key_id",
    "load_or_create_signer",
    "prev_hash_of",
]

GENESIS: Final = bytes(32)
"""``prev_hash`` of the first record of a partition."""

AUDIT_RECORD_TAIL: Final = 33
"""``prev_hash`` is the last field of AuditRecord: a length byte (0x40, zig-zag 32) and 32
bytes end every record written with the current schema."""

SIGNING_FILE: Final = "audit-signing.json"
TRUST_FILE: Final = "audit-trust.json"
_SIGNING_FORMAT: Final = "renkei-audit-signing-key/1"
_TRUST_FORMAT: Final = "renkei-audit-trust/1"


def chain_hash(record_bytes: bytes) -> bytes:
    """What the next record of the partition carries as ``prev_hash``."""
    return hashlib.sha256(record_bytes).digest()


def prev_hash_of(value: bytes) -> bytes | None:
    """``prev_hash`` read off the end of an AuditRecord's bytes (current schema), or None.

    Reading the tail instead of decoding the record is what lets ``verify`` run at Kafka's
    speed; a record whose tail is not a 32-byte field is decoded properly instead.
    """
    if len(value) < 10 + AUDIT_RECORD_TAIL or value[-AUDIT_RECORD_TAIL] != 0x40:
        return None
    return value[-32:]


def key_id(public_key: bytes) -> str:
    """The id a checkpoint names its signing key by: ``audit-`` + 16 hex of SHA-256."""
    return "audit-" + hashlib.sha256(public_key).hexdigest()[:16]


class AuditSigner:
    """The audit signing key and its id.

    :param key: the Ed25519 key; kept in ``<key dir>/audit-signing.json``, never in Kafka.
    """

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self.key_id = key_id(key.public_bytes)

    def sign(self, payload: bytes) -> bytes:
        return self.key.sign(payload)

    def __repr__(self) -> str:
        return f"AuditSigner({self.key_id})"


class _SigningFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["renkei-audit-signing-key/1"]
    key_id: str
    signing_key: str
    public_key: str


class TrustedKey(BaseModel):
    """One public audit key verifiers accept, and since when it exists."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str
    public_key: str  # standard base64 of the 32-byte Ed25519 public key
    created_at: str


class _TrustFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["renkei-audit-trust/1"]
    keys: tuple[TrustedKey, ...]


class TrustedKeys:
    """The public audit keys a verifier trusts, by key id (``audit-trust.json``).

    The file is public: operators copy it out of band (with the key dir's backup, to the
    auditors) so that someone who can write to Kafka cannot also swap the keys.

    :param keys: key id → 32-byte Ed25519 public key.
    """

    def __init__(self, keys: dict[str, bytes]) -> None:
        self.keys = dict(keys)

    @classmethod
    def load(cls, path: Path) -> TrustedKeys:
        """Read a trust file.

        :raises ConfigurationError: missing or malformed, or a key id that does not match
            its key.
        """
        try:
            parsed = _TrustFile.model_validate_json(path.read_bytes())
        except OSError as exc:
            raise ConfigurationError(f"cannot read the audit trust file {path}: {exc}") from exc
        except ValidationError as exc:
            raise ConfigurationError(f"{path} is not an audit trust file: {exc}") from exc
        keys: dict[str, bytes] = {}
        for entry in parsed.keys:
            public = base64.b64decode(entry.public_key)
            if key_id(public) != entry.key_id:
                raise ConfigurationError(f"{path}: key id {entry.key_id} does not match its key")
            keys[entry.key_id] = public
        return cls(keys)

    def get(self, kid: str) -> bytes | None:
        return self.keys.get(kid)


def load_or_create_signer(key_dir: Path) -> AuditSigner:
    """The audit signing key of ``key_dir``, created (and added to the trust file) if missing.

    :raises ConfigurationError: the key file exists but is malformed or inconsistent.
    """
    path = key_dir / SIGNING_FILE
    if not path.exists():
        key = SigningKey.generate()
        signer = AuditSigner(key)
        document = {
            "format": _SIGNING_FORMAT,
            "key_id": signer.key_id,
            "signing_key": base64.b64encode(key.to_bytes()).decode(),
            "public_key": base64.b64encode(key.public_bytes).decode(),
        }
        try:
            write_secret_file(path, (json.dumps(document, indent=2) + "\n").encode())
        except ConfigurationError:
            if not path.exists():
                raise
            return load_or_create_signer(key_dir)  # another process made it first
        _trust(key_dir / TRUST_FILE, signer)
        return signer
    try:
        record = _SigningFile.model_validate_json(read_secret_file(path))
        key = SigningKey.from_bytes(base64.b64decode(record.signing_key))
    except (ValidationError, CryptoError, ValueError) as exc:
        # Never quote the file: it holds the key.
        raise ConfigurationError(f"{path} is not a valid audit signing key file") from exc
    signer = AuditSigner(key)
    if signer.key_id != record.key_id:
        raise ConfigurationError(f"{path}: the key id does not match the key")
    trust = key_dir / TRUST_FILE
    if not trust.exists() or TrustedKeys.load(trust).get(signer.key_id) is None:
        _trust(trust, signer)
    return signer


def _trust(path: Path, signer: AuditSigner) -> None:
    """Add ``signer``'s public key to the trust file (kept: old keys verify old checkpoints)."""
    keys: list[TrustedKey] = []
    if path.exists():
        keys = list(_TrustFile.model_validate_json(path.read_bytes()).keys)
    keys.append(
        TrustedKey(
            key_id=signer.key_id,
            public_key=base64.b64encode(signer.key.public_bytes).decode(),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
    )
    document = _TrustFile(format=_TRUST_FORMAT, keys=tuple(keys)).model_dump_json(indent=2)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(document + "\n")
    tmp.chmod(0o644)  # public by design
    tmp.replace(path)
