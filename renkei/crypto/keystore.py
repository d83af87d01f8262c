"""Key files for the demo and the tests: one JSON file per agency, plus the hub's own.

Layout of a key directory (mode 0700; every file mode 0600, never overwritten)::

    <dir>/agency-<agency id>.json   an agency's signing key and sealing key pair
    <dir>/hub.json                  the hub's signing key

An agency file::

    {"format": "renkei-agency-keys/1", "agency_id": "nta",
     "signing_key": <base64, 32 bytes>, "signing_public_key": <base64, 32 bytes>,
     "sealing_suite": "X25519", "sealing_private_key": <base64>,
     "sealing_public_key": <base64>}

The public keys are stored too, so an operator can read them off without code; loading
checks that they match the private keys. In production the private keys live in the
agency's own systems (or an HSM) and only :class:`AgencyPublicKeys` reaches the hub.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
)

from renkei.crypto._files import read_secret_file, write_secret_file
from renkei.crypto.keyring import check_agency_id
from renkei.crypto.sealing import DEFAULT_SUITE, SealingKeyPair, SuiteName
from renkei.crypto.signing import SigningKey
from renkei.errors import ConfigurationError, CryptoError

__all__ = [
    "AgencyKeys",
    "AgencyPublicKeys",
    "agency_key_path",
    "create",
    "create_hub_signing_key",
    "hub_key_path",
    "load",
    "load_hub_signing_key",
]

_AGENCY_FORMAT = "renkei-agency-keys/1"
_HUB_FORMAT = "renkei-hub-key/1"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _from_b64(value: Any) -> Any:
    # Strict, unlike pydantic's Base64Bytes, which reads "!!!" as b"".
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("not standard base64") from exc
    return value


_Base64Key = Annotated[
    bytes, BeforeValidator(_from_b64), PlainSerializer(_b64, return_type=str, when_used="json")
]
"""Key bytes: raw bytes in Python, standard base64 in JSON."""


class AgencyPublicKeys(BaseModel):
    """The public half of an agency's keys: what the directory publishes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agency_id: str
    """The agency."""
    signing_public_key: _Base64Key
    """Ed25519 key that verifies the agency's messages (base64 in JSON)."""
    sealing_suite: SuiteName
    """HPKE suite of ``sealing_public_key``."""
    sealing_public_key: _Base64Key
    """HPKE key providers seal attribute values to (base64 in JSON)."""

    @field_validator("agency_id")
    @classmethod
    def _valid_id(cls, agency_id: str) -> str:
        return check_agency_id(agency_id)


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

    :raises ConfigurationError: the agency already has a key file (it is never replaced).
    """
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
