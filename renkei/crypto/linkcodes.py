"""Link codes, ID codes and audit keys.

A person has one hub-internal **ID code** (16 random-looking bytes) and, at each agency, a
**link code** that only the hub can make or read::

    link code (33 bytes) = version (1 byte)
                         ‖ AES-SIV(K[agency, version], plaintext = ID code, AD = [agency id])
                           = synthetic IV (16 bytes) ‖ encrypted ID code (16 bytes)
    text                 = lowercase RFC 4648 base32 of the 33 bytes, no padding (53 chars)

AES-SIV is deterministic, so one person has one code per agency and version, and agencies
can key their records by it; translating between agencies needs no table, only the keys.
A code of another agency, or any altered byte, fails authentication.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import NewType

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from renkei.crypto import _base32
from renkei.crypto.keyring import KeyRing
from renkei.errors import ExpiredLinkCodeError, InvalidLinkCodeError

__all__ = [
    "ID_CODE_LENGTH",
    "LINK_CODE_LENGTH",
    "IdCode",
    "LinkCodes",
    "audit_key",
    "new_id_code",
]

IdCode = NewType("IdCode", bytes)
"""A person's 16-byte hub-internal ID code. It never leaves the hub."""

ID_CODE_LENGTH = 16
LINK_CODE_LENGTH = _base32.TEXT_LENGTH
"""Characters in a link code's text form (53)."""

_AUDIT_KEY_BYTES = 16
_MALFORMED = "not a link code: wrong length or characters"
_VERSION_BYTE = [bytes([version]) for version in range(256)]


def new_id_code(keyring: KeyRing, registration_event_id: str) -> IdCode:
    """The ID code of the person whose registration is ``registration_event_id``.

    ``HMAC-SHA256(id-code key, event id)[:16]``: unpredictable to anyone without the master
    secret, like a random number, yet the same every time the hub replays the registry, so
    a rebuilt person table gives every person the ID code their link codes already hold.
    A freshly drawn random code would differ on each replay and orphan every link code.
    """
    if not registration_event_id:
        raise ValueError("a registration event id is required")
    mac = hmac.digest(keyring.id_code_key, registration_event_id.encode("utf-8"), "sha256")
    return IdCode(mac[:ID_CODE_LENGTH])


def audit_key(keyring: KeyRing, id_code: bytes) -> str:
    """The audit key of a person: hex of ``HMAC-SHA256(audit key, ID code)[:16]``.

    It keys the person's audit records and the hub's per-person state without revealing
    the ID code, and cannot be computed without the master secret.
    """
    if len(id_code) != ID_CODE_LENGTH:
        raise ValueError(f"an ID code has {ID_CODE_LENGTH} bytes, got {len(id_code)}")
    return hmac.digest(keyring.audit_hmac_key, id_code, "sha256")[:_AUDIT_KEY_BYTES].hex()


def _decode(code: str) -> bytes:
    raw = _base32.decode(code) if isinstance(code, str) else None
    if raw is None:
        raise InvalidLinkCodeError(_MALFORMED)
    return raw


class LinkCodes:
    """Mints, opens and translates link codes with the keys of a :class:`KeyRing`.

    Safe to share: it keeps only a cache of ciphers, which never go stale (a rotation adds
    a version, it never changes the key of one).

    :param keyring: where keys and each agency's current version come from.
    """

    def __init__(self, keyring: KeyRing) -> None:
        self._keyring = keyring
        self._entries: dict[tuple[str, int], tuple[AESSIV, list[bytes]]] = {}

    def __repr__(self) -> str:
        return f"LinkCodes({self._keyring!r})"

    def _entry(self, agency_id: str, version: int) -> tuple[AESSIV, list[bytes]]:
        entry = self._entries.get((agency_id, version))
        if entry is None:
            cipher = self._keyring.link_code_cipher(agency_id, version)  # validates the id
            entry = (cipher, [agency_id.encode("ascii")])
            self._entries[(agency_id, version)] = entry
        return entry

    def mint(self, agency_id: str, id_code: bytes) -> str:
        """The link code of ``id_code`` at ``agency_id``, under its current key version."""
        if len(id_code) != ID_CODE_LENGTH:
            raise ValueError(f"an ID code has {ID_CODE_LENGTH} bytes, got {len(id_code)}")
        version = self._keyring.current_version(agency_id)
        entry = self._entries.get((agency_id, version)) or self._entry(agency_id, version)
        return _base32.encode(_VERSION_BYTE[version] + entry[0].encrypt(id_code, entry[1]))

    def open(self, agency_id: str, code: str, now: datetime) -> IdCode:
        """The ID code inside ``code``, a link code that ``agency_id`` presented at ``now``.

        :raises InvalidLinkCodeError: the code is malformed, forged, altered, truncated,
            another agency's, or of a version that was never issued.
        :raises ExpiredLinkCodeError: the code is genuine but its key version is retired
            (past the grace period of a rotation).
        """
        if now.tzinfo is None:
            raise ValueError("a timezone-aware datetime is required")
        raw = _base32.decode(code) if isinstance(code, str) else None
        if raw is None:
            raise InvalidLinkCodeError(_MALFORMED)
        version = raw[0]
        state = self._keyring.state_of(agency_id)
        expired = False
        if version != state.current_version and not state.accepts(version, now):
            if not state.is_retired(version, now):
                raise InvalidLinkCodeError(f"agency {agency_id} never issued key version {version}")
            # Authenticate first: only a genuine code is "expired"; a forged one stays invalid.
            expired = True
        entry = self._entries.get((agency_id, version)) or self._entry(agency_id, version)
        try:
            id_code = entry[0].decrypt(raw[1:], entry[1])
        except InvalidTag as exc:
            raise InvalidLinkCodeError(
                f"link code does not authenticate for agency {agency_id}"
            ) from exc
        if expired:
            raise ExpiredLinkCodeError(
                f"agency {agency_id}: key version {version} is retired; the agency must use "
                f"the code reissued under version {state.current_version}"
            )
        return IdCode(id_code)

    def open_claimed(self, agency_id: str, code: str) -> IdCode:
        """The ID code inside ``code`` under the key version it claims, whatever the key
        state says of that version: for placing an input with its person only (the
        partitioned hub's router, which may not yet know of a rotation). Whoever acts on
        the code opens it with :meth:`open`, which applies the key state.

        :raises InvalidLinkCodeError: the code is malformed, forged, altered or another
            agency's.
        """
        raw = _base32.decode(code) if isinstance(code, str) else None
        if raw is None or raw[0] == 0:
            raise InvalidLinkCodeError(_MALFORMED)
        entry = self._entries.get((agency_id, raw[0])) or self._entry(agency_id, raw[0])
        try:
            return IdCode(entry[0].decrypt(raw[1:], entry[1]))
        except InvalidTag as exc:
            raise InvalidLinkCodeError(
                f"link code does not authenticate for agency {agency_id}"
            ) from exc

    def translate(self, from_agency: str, code: str, to_agency: str, now: datetime) -> str:
        """``from_agency``'s ``code`` for a person, as ``to_agency``'s code for them.

        With ``to_agency == from_agency`` this reissues a code under the current version.
        Raises what :meth:`open` raises.
        """
        return self.mint(to_agency, self.open(from_agency, code, now))

    @staticmethod
    def version_of(code: str) -> int:
        """The key version a link code claims (not authenticated).

        :raises InvalidLinkCodeError: ``code`` is not shaped like a link code.
        """
        return _decode(code)[0]
