"""Public key bundles: what an agency, the registry, the operators or the hub hand over.

Onboarding never needs anyone's private key. Each party generates its keys itself and
gives the operators a bundle, ``agency-<id>.public.json`` (``hub.public.json`` for the hub),
mode 0644::

    {"format": "renkei-public-keys/1", "agency_id": "nta",
     "signing_public_key": <base64, 32 bytes>,
     "sealing_suite": "X25519", "sealing_public_key": <base64>}

The hub's bundle has ``"agency_id": "hub"`` and no sealing key (``"sealing_suite": null,
"sealing_public_key": ""``): nobody seals anything to the hub. Reading a bundle checks the
keys (a 32-byte Ed25519 key; an HPKE key that can be sealed to) and refuses any other
field, so a private key file handed over by mistake is refused, with a message saying so
and without quoting it. :meth:`AgencyPublicKeys.fingerprint` is what the two sides read
to each other over the phone before the operators publish a bundle.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from renkei.crypto._files import write_public_file
from renkei.crypto.keyring import check_agency_id
from renkei.crypto.sealing import SuiteName, check_public_key
from renkei.errors import ConfigurationError, CryptoError

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_SUFFIX",
    "HUB_ID",
    "MAX_BUNDLE_BYTES",
    "AgencyPublicKeys",
    "bundle_path",
    "parse_bundle",
    "read_bundle",
    "read_bundles",
    "write_bundle",
]

BUNDLE_FORMAT = "renkei-public-keys/1"
"""The ``format`` field of a bundle."""
BUNDLE_SUFFIX = ".public.json"
"""How a bundle's file name ends; :func:`read_bundles` reads only such files."""
HUB_ID = "hub"
"""The id under which the hub's own key is published in the directory."""
MAX_BUNDLE_BYTES = 16 * 1024
"""Largest bundle read (a hybrid key is about 1.6 kB of base64): bundles come from outside."""

_PRIVATE_FORMATS = (
    "renkei-agency-keys/1",
    "renkei-hub-key/1",
    "renkei-audit-signing-key/1",
    "renkei-citizen-key/1",
)
_PRIVATE_FIELDS = ("signing_key", "sealing_private_key")


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


Base64Key = Annotated[
    bytes, BeforeValidator(_from_b64), PlainSerializer(_b64, return_type=str, when_used="json")
]
"""Key bytes: raw bytes in Python, standard base64 in JSON."""


class AgencyPublicKeys(BaseModel):
    """The public half of one party's keys: what the directory publishes, nothing more."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agency_id: str
    """The agency (or ``hub``, ``registry``, ``operator``)."""
    signing_public_key: Base64Key
    """Ed25519 key that verifies the party's messages (base64 in JSON)."""
    sealing_suite: SuiteName | None = None
    """HPKE suite of ``sealing_public_key``; ``None`` when there is no sealing key."""
    sealing_public_key: Base64Key = b""
    """HPKE key providers seal attribute values to (base64 in JSON); empty for the hub."""

    @field_validator("agency_id")
    @classmethod
    def _valid_id(cls, agency_id: str) -> str:
        return check_agency_id(agency_id)

    @field_validator("signing_public_key")
    @classmethod
    def _valid_signing_key(cls, key: bytes) -> bytes:
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(key)
        except ValueError:
            raise ValueError(f"not an Ed25519 public key ({len(key)} bytes)") from None
        return key

    @model_validator(mode="after")
    def _valid_sealing_key(self) -> Self:
        if self.sealing_suite is None:
            if self.sealing_public_key:
                raise ValueError("sealing_public_key needs a sealing_suite")
            return self
        try:
            check_public_key(self.sealing_suite, self.sealing_public_key)
        except CryptoError as exc:
            raise ValueError(str(exc)) from None
        return self

    def fingerprint(self) -> str:
        """128 bits of SHA-256 over the id and keys, 8 groups of 4 hex digits, to read aloud.

        Someone who wants a bundle of theirs to pass for this one must find a second
        preimage of these 128 bits: out of reach, and still short enough to compare.
        """
        digest = hashlib.sha256()
        for part in (
            BUNDLE_FORMAT.encode(),
            self.agency_id.encode(),
            self.signing_public_key,
            (self.sealing_suite or "").encode(),
            self.sealing_public_key,
        ):
            digest.update(len(part).to_bytes(4, "big") + part)
        text = digest.hexdigest()[:32]
        return " ".join(text[i : i + 4] for i in range(0, len(text), 4))

    def to_bundle(self) -> bytes:
        """The bundle file's bytes."""
        document = {"format": BUNDLE_FORMAT, **self.model_dump(mode="json")}
        return (json.dumps(document, indent=2) + "\n").encode("utf-8")


class _Bundle(AgencyPublicKeys):
    format: Literal["renkei-public-keys/1"]


def bundle_path(directory: str | os.PathLike[str], agency_id: str) -> Path:
    """Where ``agency_id``'s bundle goes under ``directory`` (beside its private key file)."""
    if check_agency_id(agency_id) == HUB_ID:
        return Path(directory) / f"{HUB_ID}{BUNDLE_SUFFIX}"
    return Path(directory) / f"agency-{agency_id}{BUNDLE_SUFFIX}"


def parse_bundle(data: bytes | str, *, source: str = "<bundle>") -> AgencyPublicKeys:
    """Parse and check a bundle.

    :param source: where the bytes came from, for error messages.
    :raises ConfigurationError: not a bundle, a private key file, or a key that is unusable.
    """
    try:
        document = json.loads(data)
    except ValueError:
        raise ConfigurationError(f"{source} is not JSON") from None
    if isinstance(document, dict) and (
        document.get("format") in _PRIVATE_FORMATS or any(f in document for f in _PRIVATE_FIELDS)
    ):
        raise ConfigurationError(
            f"{source} holds a PRIVATE key; hand over only the public bundle "
            "(`renkei keys export-public`), and treat this key as exposed"
        )
    try:
        bundle = _Bundle.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '<file>'}: {error['msg']}"
            for error in exc.errors(include_input=False)
        )
        raise ConfigurationError(f"{source} is not a public key bundle ({problems})") from None
    return AgencyPublicKeys.model_validate(bundle.model_dump(exclude={"format"}))


def read_bundle(path: str | os.PathLike[str]) -> AgencyPublicKeys:
    """Read and check the bundle at ``path``.

    :raises ConfigurationError: unreadable, too large, or not a valid bundle.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) > MAX_BUNDLE_BYTES:
        raise ConfigurationError(f"{path} is larger than {MAX_BUNDLE_BYTES} bytes")
    return parse_bundle(data, source=str(path))


def read_bundles(directory: str | os.PathLike[str]) -> dict[str, AgencyPublicKeys]:
    """Every bundle (``*.public.json``) in ``directory``, by agency id; nothing else is read.

    :raises ConfigurationError: the folder cannot be read, a bundle is invalid, or two
        bundles name the same agency.
    """
    folder = Path(directory)
    try:
        paths = sorted(p for p in folder.iterdir() if p.name.endswith(BUNDLE_SUFFIX))
    except OSError as exc:
        raise ConfigurationError(f"cannot read the folder {folder}: {exc.strerror}") from exc
    found: dict[str, tuple[Path, AgencyPublicKeys]] = {}
    for path in paths:
        keys = read_bundle(path)
        if keys.agency_id in found:
            other = found[keys.agency_id][0]
            raise ConfigurationError(
                f"{other.name} and {path.name} are both bundles of {keys.agency_id!r}; keep one"
            )
        found[keys.agency_id] = (path, keys)
    return {agency_id: keys for agency_id, (_, keys) in found.items()}


def write_bundle(directory: str | os.PathLike[str], keys: AgencyPublicKeys) -> Path:
    """Write ``keys`` as a bundle into ``directory``; return its path.

    Writing the same bundle again is harmless; a different one is refused.

    :raises ConfigurationError: another bundle of that agency is there, or the write failed.
    """
    path = bundle_path(directory, keys.agency_id)
    write_public_file(path, keys.to_bundle())
    return path
