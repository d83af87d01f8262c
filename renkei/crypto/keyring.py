"""The master secret and the key ring derived from it.

Every symmetric key of the hub comes from one master secret through HKDF-SHA256 (RFC 5869,
no salt: the master secret is already uniformly random), each with its own ``info`` label,
so no key can stand in for another::

    master secret (≥ 32 random bytes, outside Kafka)
    ├── renkei/v1/link-code/<agency id>/<version>   64 bytes  AES-SIV key of one agency's codes
    ├── renkei/v1/audit-key                          32 bytes  HMAC key: ID code → audit key
    ├── renkei/v1/id-code                            32 bytes  HMAC key: registration → ID code
    └── renkei/v1/hub-state                          32 bytes  AES-256-GCM key of the hub's
                                                               person rows on Kafka

``<version>`` is the version number in ASCII decimal (``1``, ``2``, …). Keys are derived on
first use and cached. The key ring also holds each agency's *key state* — which version is
current and which older version is still accepted until when — as a small pydantic model
that carries no key bytes, so the hub can publish it to Kafka.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn, Self

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from renkei.crypto._files import read_secret_file, write_secret_file
from renkei.errors import ConfigurationError

__all__ = [
    "AUDIT_KEY_INFO",
    "ID_CODE_INFO",
    "LINK_CODE_INFO_PREFIX",
    "MASTER_KEY_ENV",
    "MAX_KEY_VERSION",
    "STATE_KEY_INFO",
    "AgencyKeyState",
    "KeyRing",
    "KeyRingState",
    "MasterSecret",
    "check_agency_id",
    "link_code_info",
]

logger = logging.getLogger(__name__)

LINK_CODE_INFO_PREFIX = b"renkei/v1/link-code/"
"""HKDF ``info`` of a link-code key is this, the agency id, ``/`` and the version."""
AUDIT_KEY_INFO = b"renkei/v1/audit-key"
"""HKDF ``info`` of the HMAC key that turns an ID code into an audit key."""
ID_CODE_INFO = b"renkei/v1/id-code"
"""HKDF ``info`` of the HMAC key that turns a registration event id into an ID code."""
STATE_KEY_INFO = b"renkei/v1/hub-state"
"""HKDF ``info`` of the AES-256-GCM key that seals the hub's person rows at rest."""

MASTER_KEY_ENV = "RENKEI_MASTER_KEY"
"""Environment variable holding the base64 master secret."""
MAX_KEY_VERSION = 255
"""Link codes carry the version in one byte; version 0 is never used."""

_LINK_CODE_KEY_LENGTH = 64  # AES-SIV with two AES-256 keys
_HMAC_KEY_LENGTH = 32
_MIN_MASTER_LENGTH = 32
_AGENCY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_BASE64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}")


def check_agency_id(agency_id: str) -> str:
    """Return ``agency_id`` if it is a valid agency id, else raise :class:`ValueError`.

    An agency id is 1–64 ASCII letters, digits, ``-`` or ``_``, starting with a letter or
    digit. It appears in topic names (``agency.<id>.in``) and in HKDF labels, so dots and
    slashes, which would make either ambiguous, are not allowed.
    """
    if not isinstance(agency_id, str) or _AGENCY_ID.fullmatch(agency_id) is None:
        raise ValueError(f"invalid agency id {agency_id!r}")
    return agency_id


def link_code_info(agency_id: str, version: int) -> bytes:
    """The HKDF ``info`` label of one agency's link-code key at one version."""
    check_agency_id(agency_id)
    _check_version(version)
    return LINK_CODE_INFO_PREFIX + agency_id.encode("ascii") + b"/" + str(version).encode()


def _check_version(version: int) -> None:
    if not 1 <= version <= MAX_KEY_VERSION:
        raise ValueError(f"key version must be 1..{MAX_KEY_VERSION}, got {version}")


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")


class MasterSecret:
    """The root secret of the key ring: at least 32 random bytes.

    ``repr()`` and ``str()`` show only the length; pickling is refused so the value cannot
    leak into a state store or a log by accident. Use :meth:`get_secret_value` to read it.

    :param value: the secret bytes (at least 32).
    :raises ConfigurationError: ``value`` is shorter than 32 bytes.
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray):
            raise TypeError("a master secret is bytes")
        if len(value) < _MIN_MASTER_LENGTH:
            raise ConfigurationError(
                f"a master secret needs at least {_MIN_MASTER_LENGTH} bytes, got {len(value)}"
            )
        self._value = bytes(value)

    @classmethod
    def generate(cls) -> Self:
        """A fresh random 32-byte secret (for tests and first installs)."""
        return cls(os.urandom(_MIN_MASTER_LENGTH))

    @classmethod
    def from_base64(cls, text: str | bytes) -> Self:
        """Parse standard base64 (surrounding whitespace allowed).

        :raises ConfigurationError: not base64, or shorter than 32 bytes once decoded.
        """
        raw = text.encode("ascii", "replace") if isinstance(text, str) else text
        try:
            value = base64.b64decode(raw.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            # The message names the problem, never the text: it may be most of a secret.
            raise ConfigurationError("the master secret is not valid base64") from exc
        return cls(value)

    @classmethod
    def from_env(cls, name: str = MASTER_KEY_ENV) -> Self:
        """Read a base64 secret from the environment variable ``name``.

        :raises ConfigurationError: the variable is unset, empty or not a valid secret.
        """
        text = os.environ.get(name)
        if not text:
            raise ConfigurationError(f"environment variable {name} is not set")
        try:
            return cls.from_base64(text)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{name}: {exc}") from exc

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Self:
        """Read a secret file holding either base64 text or the raw bytes.

        The content is base64 when, stripped of whitespace, it is entirely standard base64
        (random raw bytes look like that with probability below 2**-64); otherwise the
        file's bytes are the secret. Either way it must come to at least 32 bytes.

        :raises ConfigurationError: the file is missing, unreadable or too short.
        """
        path = Path(path)
        data = read_secret_file(path)
        stripped = data.strip()
        if _BASE64.fullmatch(stripped) is not None and len(stripped) % 4 == 0:
            data = base64.b64decode(stripped)
        try:
            return cls(data)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{path}: {exc}") from exc

    @classmethod
    def generate_file(cls, path: str | os.PathLike[str]) -> Self:
        """Create ``path`` (mode 0600) holding a new random secret in base64; return it.

        :raises ConfigurationError: the file already exists (it is never overwritten: the
            old secret would be lost and every link code with it) or cannot be written.
        """
        secret = cls.generate()
        write_secret_file(Path(path), base64.b64encode(secret._value) + b"\n")
        logger.info("wrote a new master secret to %s", path)
        return secret

    def get_secret_value(self) -> bytes:
        """The secret bytes. Never log or print them."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"MasterSecret(<{len(self._value)} bytes hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MasterSecret):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("a MasterSecret cannot be pickled or copied")


class AgencyKeyState(BaseModel):
    """Which link-code key versions of one agency the hub mints and accepts.

    New codes are minted under ``current_version``. After a rotation, codes of
    ``previous_version`` are still accepted until ``previous_valid_until`` (exclusive);
    every older version is retired. Holds no key bytes: safe to publish.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    current_version: int = Field(default=1, ge=1, le=MAX_KEY_VERSION)
    """Version of newly minted codes."""
    previous_version: int | None = Field(default=None, ge=1, le=MAX_KEY_VERSION)
    """Version still accepted during the grace period, if any."""
    previous_valid_until: AwareDatetime | None = None
    """End of the grace period (exclusive)."""
    rotated_at: AwareDatetime | None = None
    """When ``current_version`` became current (``None`` for the first version)."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.previous_version is None) != (self.previous_valid_until is None):
            raise ValueError("previous_version and previous_valid_until go together")
        if self.previous_version is not None and self.previous_version >= self.current_version:
            raise ValueError("previous_version must be lower than current_version")
        return self

    def accepts(self, version: int, now: datetime) -> bool:
        """Whether a code of ``version`` opens at ``now``."""
        if version == self.current_version:
            return True
        _require_aware(now)
        return (
            version == self.previous_version
            and self.previous_valid_until is not None
            and now < self.previous_valid_until
        )

    def is_retired(self, version: int, now: datetime) -> bool:
        """Whether ``version`` was once issued but is no longer accepted at ``now``."""
        return 1 <= version < self.current_version and not self.accepts(version, now)


_INITIAL_STATE = AgencyKeyState()


class KeyRingState(BaseModel):
    """The key state of every agency that has one: the part of the key ring to publish."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agencies: dict[str, AgencyKeyState] = Field(default_factory=dict)
    """Key state by agency id; an agency not listed is at version 1."""

    @field_validator("agencies")
    @classmethod
    def _valid_ids(cls, agencies: dict[str, AgencyKeyState]) -> dict[str, AgencyKeyState]:
        for agency_id in agencies:
            check_agency_id(agency_id)
        return agencies


class KeyRing:
    """All keys the hub derives from its master secret, and each agency's key state.

    Keys are derived on first use and cached for the life of the key ring: a link-code key
    of one version never changes, so a rotation only moves the current version.

    :param master: the master secret.
    :param versions: key state by agency id, e.g. as read back from Kafka; agencies not
        listed start at version 1.
    """

    def __init__(
        self, master: MasterSecret, versions: Mapping[str, AgencyKeyState] | None = None
    ) -> None:
        self._master = master
        self._states: dict[str, AgencyKeyState] = {}
        for agency_id, state in (versions or {}).items():
            self._states[check_agency_id(agency_id)] = state
        self._link_ciphers: dict[tuple[str, int], AESSIV] = {}

    def __repr__(self) -> str:
        return f"KeyRing(agencies_with_state={len(self._states)})"

    def _derive(self, info: bytes, length: int) -> bytes:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info)
        return hkdf.derive(self._master.get_secret_value())

    # -- keys ---------------------------------------------------------------------------

    def link_code_key(self, agency_id: str, version: int) -> bytes:
        """The 64-byte AES-SIV key of ``agency_id``'s link codes at ``version``."""
        return self._derive(link_code_info(agency_id, version), _LINK_CODE_KEY_LENGTH)

    def link_code_cipher(self, agency_id: str, version: int) -> AESSIV:
        """The (cached) AES-SIV cipher for ``agency_id``'s link codes at ``version``."""
        cipher = self._link_ciphers.get((agency_id, version))
        if cipher is None:
            cipher = AESSIV(self.link_code_key(agency_id, version))
            self._link_ciphers[(agency_id, version)] = cipher
        return cipher

    @cached_property
    def audit_hmac_key(self) -> bytes:
        """HMAC-SHA256 key that turns an ID code into its audit key."""
        return self._derive(AUDIT_KEY_INFO, _HMAC_KEY_LENGTH)

    @cached_property
    def id_code_key(self) -> bytes:
        """HMAC-SHA256 key that turns a registration event id into an ID code."""
        return self._derive(ID_CODE_INFO, _HMAC_KEY_LENGTH)

    @cached_property
    def state_key(self) -> bytes:
        """AES-256-GCM key of the hub's state rows that hold personal data (persons)."""
        return self._derive(STATE_KEY_INFO, _HMAC_KEY_LENGTH)

    # -- versions -----------------------------------------------------------------------

    def state_of(self, agency_id: str) -> AgencyKeyState:
        """The key state of ``agency_id`` (version 1 if it never rotated)."""
        return self._states.get(agency_id, _INITIAL_STATE)

    def current_version(self, agency_id: str) -> int:
        """The version under which ``agency_id``'s codes are minted now."""
        return self._states.get(agency_id, _INITIAL_STATE).current_version

    def rotate(self, agency_id: str, grace: timedelta, now: datetime) -> int:
        """Move ``agency_id`` to a new key version; return it.

        Codes of the version that was current stay valid for ``grace`` after ``now``;
        codes of any older version stop opening at once (a second rotation inside a grace
        period cuts the first one short). Other agencies are untouched.

        :raises ConfigurationError: the agency has used all 255 versions.
        """
        check_agency_id(agency_id)
        _require_aware(now)
        if grace < timedelta(0):
            raise ValueError("grace must not be negative")
        old = self.state_of(agency_id)
        if old.current_version >= MAX_KEY_VERSION:
            raise ConfigurationError(f"agency {agency_id} has used all {MAX_KEY_VERSION} versions")
        if old.previous_valid_until is not None and now < old.previous_valid_until:
            logger.warning(
                "agency %s: rotating again ends the grace period of version %s early",
                agency_id,
                old.previous_version,
            )
        new = AgencyKeyState(
            current_version=old.current_version + 1,
            previous_version=old.current_version,
            previous_valid_until=now + grace,
            rotated_at=now,
        )
        self._states[agency_id] = new
        logger.info(
            "agency %s: link-code key rotated to version %s; version %s accepted until %s",
            agency_id,
            new.current_version,
            new.previous_version,
            new.previous_valid_until,
        )
        return new.current_version

    def set_state(self, agency_id: str, state: AgencyKeyState) -> None:
        """Adopt a key state published by another hub worker.

        :raises ConfigurationError: ``state`` would move the current version backwards
            (codes minted under the newer version would stop opening).
        """
        check_agency_id(agency_id)
        if state.current_version < self.current_version(agency_id):
            raise ConfigurationError(
                f"agency {agency_id}: refusing to go back from version "
                f"{self.current_version(agency_id)} to {state.current_version}"
            )
        self._states[agency_id] = state

    def export_state(self) -> KeyRingState:
        """The key state of every agency that rotated: versions and deadlines, no keys."""
        return KeyRingState(agencies=dict(self._states))

    @classmethod
    def from_state(cls, master: MasterSecret, state: KeyRingState) -> KeyRing:
        """A key ring with ``state`` (e.g. parsed from the JSON that was published)."""
        return cls(master, state.agencies)
