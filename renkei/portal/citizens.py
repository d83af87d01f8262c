"""The citizen key list (``citizens.json``): resident code → public key and audit key.

The registry's counter writes it (``renkei portal register-citizen``, on the hub side,
where the master secret computes the audit key); the portal only reads it, re-reading it
when it changes, so the portal itself holds no master secret.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from renkei.errors import ConfigurationError

__all__ = ["CITIZEN_KEY_FORMAT", "CitizenRegistry", "register_citizen", "write_citizen_key"]

CITIZEN_KEY_FORMAT = "renkei-citizen-key/1"
"""The ``format`` of a citizen's key file (``renkei portal citizen-key``)."""


def write_citizen_key(out: Path) -> bytes:
    """Make a citizen's Ed25519 key pair (it stands in for the card) in a file of mode 0600.

    :returns: the public key, what the registry's counter registers.
    """
    from renkei.crypto import SigningKey
    from renkei.crypto._files import write_secret_file

    key = SigningKey.generate()
    document = {
        "format": CITIZEN_KEY_FORMAT,
        "signing_key": base64.b64encode(key.to_bytes()).decode(),
        "public_key": base64.b64encode(key.public_bytes).decode(),
    }
    write_secret_file(out, (json.dumps(document) + "\n").encode())
    return key.public_bytes


class _Citizen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    resident_code: str
    public_key: str  # standard base64, 32 bytes
    audit_key: str
    registered_at: str


class _CitizenFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["renkei-citizens/1"] = "renkei-citizens/1"
    citizens: tuple[_Citizen, ...] = ()


class CitizenRegistry:
    """The citizen key list, re-read when the file changes.

    :param path: ``citizens.json``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: float | None = None
        self._checked = 0.0
        self._citizens: dict[str, tuple[bytes, str]] = {}

    def lookup(self, resident_code: str) -> tuple[bytes, str] | None:
        """(public key, audit key) of a registered citizen."""
        now = time.monotonic()
        if now - self._checked > 1.0:
            self._checked = now
            self._reload()
        return self._citizens.get(resident_code)

    def _reload(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._citizens = {}
            return
        if mtime == self._mtime:
            return
        parsed = _read(self.path)
        self._citizens = {
            c.resident_code: (base64.b64decode(c.public_key), c.audit_key) for c in parsed.citizens
        }
        self._mtime = mtime


def _read(path: Path) -> _CitizenFile:
    try:
        return _CitizenFile.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return _CitizenFile()
    except ValidationError as exc:
        raise ConfigurationError(f"{path} is not a citizen key list: {exc}") from exc


def register_citizen(path: Path, resident_code: str, public_key: bytes, audit_key: str) -> None:
    """Add (or replace, after a card reissue) a citizen's public key."""
    from datetime import UTC, datetime

    if len(public_key) != 32:
        raise ConfigurationError("a citizen key is a 32-byte Ed25519 public key")
    current = [c for c in _read(path).citizens if c.resident_code != resident_code]
    current.append(
        _Citizen(
            resident_code=resident_code,
            public_key=base64.b64encode(public_key).decode(),
            audit_key=audit_key,
            registered_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
    )
    document = _CitizenFile(citizens=tuple(current)).model_dump(mode="json")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(document, indent=1) + "\n")
    tmp.replace(path)
