"""The hub's pinned roots of trust: the operators' and the registry's public keys.

Both come from the worker's own configuration (:class:`~.settings.HubSettings`: a public
bundle file, or a base64 key in the environment), never from Kafka. Everything on a
privileged topic is checked against them, in every signature mode (``trust-acl``
included):

* every ``hub.directory`` entry (agencies, their keys, the scenario table, the hub's own
  verification key) must be signed by the operators (:func:`admit_entry`);
* every ``hub.control`` command must be signed by the operators (:mod:`.rotation`);
* every ``registry.events`` event must be signed by the registry (:func:`check_signed`).

The directory's own ``operator`` and ``registry`` entries are informative only: an entry
there, even one the operators signed, never changes what the hub trusts. Rotating a root
means changing the configuration and restarting the worker.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path

from renkei.crypto import AgencyPublicKeys, SuiteName
from renkei.crypto.bundles import bundle_path, read_bundle
from renkei.envelope import verify_bytes
from renkei.errors import ConfigurationError, DecodeError, SignatureError
from schemas.codec import Codec
from schemas.models import AgencyEntry, ErrorCode, Message, ScenarioEntry

from .directory import DirectoryEntry, entry_key
from .redact import describe_decode_error
from .settings import HubSettings

__all__ = [
    "OPERATOR_ID",
    "REGISTRY_ID",
    "PinnedRoots",
    "Untrusted",
    "admit_entry",
    "check_signed",
    "load_roots",
]

OPERATOR_ID = "operator"
"""The sender id of directory entries and control commands."""
REGISTRY_ID = "registry"
"""The sender id of registry events."""


class Untrusted(Exception):  # a verdict, turned into a dead letter by the caller
    """Input on a privileged topic that the hub will not apply.

    :param code: ``MALFORMED_MESSAGE`` (undecodable, or not what belongs on the topic) or
        ``BAD_SIGNATURE`` (unsigned, wrongly signed, or from the wrong sender).
    :param detail: why, without any value from the input.
    """

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class PinnedRoots:
    """The keys the hub trusts without asking Kafka.

    :param operator: the operators' Ed25519 public key.
    :param registry: the registry's Ed25519 public key.
    :param operator_sealing: the operators' HPKE suite and public key, which dead letters
        are sealed to; ``None`` when only the signing key was configured (dead letters
        then keep no value).
    """

    operator: bytes
    registry: bytes
    operator_sealing: tuple[SuiteName, bytes] | None = None

    @classmethod
    def of(cls, operator: AgencyPublicKeys, registry: AgencyPublicKeys) -> PinnedRoots:
        """Roots from the two parties' public keys (bundles)."""
        sealing = None
        if operator.sealing_suite is not None:
            sealing = (operator.sealing_suite, operator.sealing_public_key)
        return cls(operator.signing_public_key, registry.signing_public_key, sealing)


def load_roots(settings: HubSettings) -> PinnedRoots:
    """The roots the settings name (their default: the bundles in ``key_dir``).

    :raises ConfigurationError: a root is missing, named twice, unreadable or not a key.
    """
    operator = _load_root(
        OPERATOR_ID, settings.operator_public_key_file, settings.operator_public_key, settings
    )
    registry = _load_root(
        REGISTRY_ID, settings.registry_public_key_file, settings.registry_public_key, settings
    )
    return PinnedRoots.of(operator, registry)


def _load_root(
    party: str, file: Path | None, inline: str | None, settings: HubSettings
) -> AgencyPublicKeys:
    variable = f"RENKEI_HUB_{party.upper()}_PUBLIC_KEY"
    if inline is not None and file is not None:
        raise ConfigurationError(f"set {variable} or {variable}_FILE, not both")
    if inline is not None:
        try:
            key = base64.b64decode(inline.strip(), validate=True)
            return AgencyPublicKeys(agency_id=party, signing_public_key=key)
        except (binascii.Error, ValueError):
            raise ConfigurationError(
                f"{variable} is not a base64 Ed25519 public key (32 bytes)"
            ) from None
    path = file if file is not None else bundle_path(settings.key_dir, party)
    if file is None and not path.exists():
        raise ConfigurationError(
            f"no pinned {party} key: set {variable}_FILE to the {party}'s public bundle (or "
            f"{variable} to its base64 key), or put it at {path} (`renkei keys init` does)"
        )
    keys = read_bundle(path)
    if keys.agency_id != party:
        raise ConfigurationError(f"{path} is the bundle of {keys.agency_id!r}, not of {party!r}")
    return keys


def check_signed(
    message: Message, data: bytes, sender: str, public_key: bytes, codec: Codec
) -> None:
    """Refuse ``message`` unless ``sender`` sent it and ``public_key`` signed ``data``.

    :param data: the bytes as they arrived, which ``message`` was decoded from.
    :raises Untrusted: ``BAD_SIGNATURE``.
    """
    if message.header.sender != sender:
        raise Untrusted(
            ErrorCode.BAD_SIGNATURE, f"sent by {message.header.sender!r}, not by {sender!r}"
        )
    try:
        verify_bytes(data, public_key, codec)
    except SignatureError as exc:
        raise Untrusted(ErrorCode.BAD_SIGNATURE, f"not signed by the pinned {sender} key") from exc


def admit_entry(
    codec: Codec, roots: PinnedRoots, key: bytes | None, value: bytes
) -> DirectoryEntry:
    """The directory entry in a ``hub.directory`` record, if the operators signed it.

    :raises Untrusted: undecodable, not a directory entry, filed under another key than its
        own (``agency/<id>``, ``scenario/<id>``), or not signed by the pinned operators' key.
    """
    try:
        entry = codec.decode(value)
    except DecodeError as exc:
        raise Untrusted(ErrorCode.MALFORMED_MESSAGE, describe_decode_error(exc)) from None
    if not isinstance(entry, AgencyEntry | ScenarioEntry):
        raise Untrusted(ErrorCode.MALFORMED_MESSAGE, f"a {type(entry).__name__} is no entry")
    check_signed(entry, value, OPERATOR_ID, roots.operator, codec)
    if key != entry_key(entry):
        raise Untrusted(
            ErrorCode.MALFORMED_MESSAGE,
            f"the entry {entry_key(entry).decode()} is filed under another key",
        )
    return entry
