"""Private key files: one JSON file per agency (or registry, operators), plus the hub's own.

Each party keeps its own folder; ``renkei keys init`` puts them all in one for the demo
and the tests. Layout (the folder mode 0700; private files mode 0600, never overwritten;
public bundles, :mod:`renkei.crypto.bundles`, mode 0644 beside them)::

    <dir>/agency-<agency id>.json          an agency's signing key and sealing key pair
    <dir>/agency-<agency id>.public.json   its public bundle: what it hands the operators
    <dir>/hub.json                         the hub's signing key
    <dir>/hub.public.json                  the hub's public bundle

An agency file::

    {"format": "renkei-agency-keys/1", "agency_id": "nta",
     "signing_key": <base64, 32 bytes>, "signing_public_key": <base64, 32 bytes>,
     "sealing_suite": "X25519", "sealing_private_key": <base64>,
     "sealing_public_key": <base64>}

The public keys are stored too, so an operator can read them off without code; loading
checks that they match the private keys. Private files are read only by their owner's
own processes; the operators and the hub get :class:`AgencyPublicKeys` from bundles.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from renkei.crypto._files import InsecurePermissionsWarning, read_secret_file, write_secret_file
from renkei.crypto.bundles import HUB_ID, AgencyPublicKeys
from renkei.crypto.bundles import Base64Key as _Base64Key
from renkei.crypto.keyring import check_agency_id
from renkei.crypto.sealing import DEFAULT_SUITE, SealingKeyPair, SuiteName
from renkei.crypto.signing import SigningKey
from renkei.errors import ConfigurationError, CryptoError

__all__ = [
    "AgencyKeys",
    "AgencyPublicKeys",
    "InsecurePermissionsWarning",
    "agency_key_path",
    "create",
    "create_hub_signing_key",
    "hub_key_path",
    "hub_public_keys",
    "load",
    "load_hub_signing_key",
]

_AGENCY_FORMAT = "renkei-agency-keys/1"
_HUB_FORMAT = "renkei-hub-key/1"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class AgencyKeys:
    """One agency's private keys: a signing key and a sealing key pair.

    :param agency_id: the agency.
    :param signing: its Ed25519 signing key.
    :param sealing: its HPKE key pair.
    """

    __slots__ = ("agency_id", "sealing", "signing")

    def __init__(self, agency_id: str, signing: SigningKey, sealing: SealingKeyPair) -> None:
        self.agency_id = check_agency_id(agency_id)
        self.signing = signing
        self.sealing = sealing

    def public(self) -> AgencyPublicKeys:
        """The public keys, for the directory."""
        return AgencyPublicKeys(
            agency_id=self.agency_id,
            signing_public_key=self.signing.public_bytes,
            sealing_suite=self.sealing.suite,
            sealing_public_key=self.sealing.public_bytes,
        )

    def __repr__(self) -> str:
        return f"AgencyKeys({self.agency_id!r}, signing={self.signing!r}, sealing={self.sealing!r})"


class _AgencyKeyFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["renkei-agency-keys/1"]
    agency_id: str
    signing_key: _Base64Key = Field(repr=False)
    signing_public_key: _Base64Key
    sealing_suite: SuiteName
    sealing_private_key: _Base64Key = Field(repr=False)
    sealing_public_key: _Base64Key


class _HubKeyFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["renkei-hub-key/1"]
    signing_key: _Base64Key = Field(repr=False)
    signing_public_key: _Base64Key


def agency_key_path(directory: str | os.PathLike[str], agency_id: str) -> Path:
    """Where ``agency_id``'s key file lives under ``directory``."""
    return Path(directory) / f"agency-{check_agency_id(agency_id)}.json"


def hub_key_path(directory: str | os.PathLike[str]) -> Path:
    """Where the hub's key file lives under ``directory``."""
    return Path(directory) / "hub.json"


def create(
    directory: str | os.PathLike[str], agency_id: str, suite: SuiteName = DEFAULT_SUITE
) -> AgencyKeys:
    """Generate keys for ``agency_id`` and save them under ``directory``.

    :raises ConfigurationError: the agency already has a key file (it is never replaced),
        or ``agency_id`` is ``hub`` (the hub's key is :func:`create_hub_signing_key`'s).
    """
    if agency_id == HUB_ID:
        raise ConfigurationError(f"{HUB_ID!r} is the hub's own id, not an agency's")
    keys = AgencyKeys(agency_id, SigningKey.generate(), SealingKeyPair.generate(suite))
    document = {
        "format": _AGENCY_FORMAT,
        "agency_id": agency_id,
        "signing_key": _b64(keys.signing.to_bytes()),
        "signing_public_key": _b64(keys.signing.public_bytes),
        "sealing_suite": keys.sealing.suite,
        "sealing_private_key": _b64(keys.sealing.private_bytes()),
        "sealing_public_key": _b64(keys.sealing.public_bytes),
    }
    _write_json(agency_key_path(directory, agency_id), document)
    return keys


def load(directory: str | os.PathLike[str], agency_id: str) -> AgencyKeys:
    """Load ``agency_id``'s keys from ``directory``.

    :raises ConfigurationError: the file is missing, malformed, for another agency, or its
        public keys do not match its private keys.
    """
    path = agency_key_path(directory, agency_id)
    record = _parse(path, _AgencyKeyFile)
    if record.agency_id != agency_id:
        raise ConfigurationError(f"{path} holds keys of agency {record.agency_id!r}")
    try:
        keys = AgencyKeys(
            agency_id,
            SigningKey.from_bytes(record.signing_key),
            SealingKeyPair.from_private_bytes(record.sealing_suite, record.sealing_private_key),
        )
    except CryptoError as exc:
        raise ConfigurationError(f"{path}: {exc}") from exc
    if (
        keys.signing.public_bytes != record.signing_public_key
        or keys.sealing.public_bytes != record.sealing_public_key
    ):
        raise ConfigurationError(f"{path}: public keys do not match the private keys")
    return keys


def hub_public_keys(key: SigningKey) -> AgencyPublicKeys:
    """The hub's public keys, for its bundle and its directory entry: no sealing key."""
    return AgencyPublicKeys(agency_id=HUB_ID, signing_public_key=key.public_bytes)


def create_hub_signing_key(directory: str | os.PathLike[str]) -> SigningKey:
    """Generate the hub's signing key and save it under ``directory``.

    :raises ConfigurationError: the hub already has a key file.
    """
    key = SigningKey.generate()
    document = {
        "format": _HUB_FORMAT,
        "signing_key": _b64(key.to_bytes()),
        "signing_public_key": _b64(key.public_bytes),
    }
    _write_json(hub_key_path(directory), document)
    return key


def load_hub_signing_key(directory: str | os.PathLike[str]) -> SigningKey:
    """Load the hub's signing key from ``directory``.

    :raises ConfigurationError: the file is missing or malformed.
    """
    path = hub_key_path(directory)
    record = _parse(path, _HubKeyFile)
    try:
        key = SigningKey.from_bytes(record.signing_key)
    except CryptoError as exc:
        raise ConfigurationError(f"{path}: {exc}") from exc
    if key.public_bytes != record.signing_public_key:
        raise ConfigurationError(f"{path}: public key does not match the private key")
    return key


def _write_json(path: Path, document: dict[str, str]) -> None:
    write_secret_file(path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))


_Model = TypeVar("_Model", bound=BaseModel)


def _parse(path: Path, model: type[_Model]) -> _Model:
    data = read_secret_file(path)
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        # Only the locations and kinds of the errors: the default message quotes the input,
        # which here is key material.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '<file>'}: {error['type']}"
            for error in exc.errors(include_input=False)
        )
        raise ConfigurationError(f"{path} is not a valid key file ({problems})") from None
