"""The cryptography of Renkei: key ring, link codes, sealed attributes, signatures, key files.

See ``docs/security.md`` for the key hierarchy, the link code format and the threat model.
``sealing.open`` is exported as :func:`open_sealed` so that ``from renkei.crypto import *``
never shadows the builtin ``open``.
"""

from __future__ import annotations

from renkei.crypto import keystore
from renkei.crypto.keyring import (
    AUDIT_KEY_INFO,
    ID_CODE_INFO,
    LINK_CODE_INFO_PREFIX,
    MASTER_KEY_ENV,
    MAX_KEY_VERSION,
    AgencyKeyState,
    KeyRing,
    KeyRingState,
    MasterSecret,
    check_agency_id,
    link_code_info,
)
from renkei.crypto.keystore import AgencyKeys, AgencyPublicKeys
from renkei.crypto.linkcodes import (
    ID_CODE_LENGTH,
    LINK_CODE_LENGTH,
    IdCode,
    LinkCodes,
    audit_key,
    new_id_code,
)
from renkei.crypto.sealing import (
    ATTRIBUTES_INFO,
    DEFAULT_SUITE,
    SUITES,
    SealingKeyPair,
    SuiteName,
    check_public_key,
    decode_attributes,
    encode_attributes,
    exchange_aad,
    seal,
)
from renkei.crypto.sealing import open as open_sealed
from renkei.crypto.signing import SigningKey, verify

__all__ = [
    "ATTRIBUTES_INFO",
    "AUDIT_KEY_INFO",
    "DEFAULT_SUITE",
    "ID_CODE_INFO",
    "ID_CODE_LENGTH",
    "LINK_CODE_INFO_PREFIX",
    "LINK_CODE_LENGTH",
    "MASTER_KEY_ENV",
    "MAX_KEY_VERSION",
    "SUITES",
    "AgencyKeyState",
    "AgencyKeys",
    "AgencyPublicKeys",
    "IdCode",
    "KeyRing",
    "KeyRingState",
    "LinkCodes",
    "MasterSecret",
    "SealingKeyPair",
    "SigningKey",
    "SuiteName",
    "audit_key",
    "check_agency_id",
    "check_public_key",
    "decode_attributes",
    "encode_attributes",
    "exchange_aad",
    "keystore",
    "link_code_info",
    "new_id_code",
    "open_sealed",
    "seal",
    "verify",
]
