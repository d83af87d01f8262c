"""Every error Renkei raises.

One root, :class:`RenkeiError`. ``retriable`` says whether trying the same thing again
may succeed (a broker that is still starting) or never will (a forged link code)::

    RenkeiError
    ├── ConfigurationError          settings missing or inconsistent
    ├── KafkaLaunchError            `renkei kafka up` could not bring a broker up
    │   ├── ToolMissingError        java or mvn is not installed
    │   ├── PortInUseError          a port the broker needs is taken
    │   └── StartTimeoutError       the broker did not answer in time
    ├── ContractError               bytes or values that break the message contract
    │   ├── DecodeError             bytes that are not a message we know
    │   │   ├── BadMagicError       no C3 01 single-object marker
    │   │   ├── TruncatedError      the header or the body ends early
    │   │   └── UnknownSchemaError  the fingerprint names no schema we hold
    │   ├── EncodeError             a value that does not fit its schema
    │   └── InvalidMyNumberError    not 12 digits, or the check digit is wrong
    └── CryptoError                 a key, code, seal or signature failed
        ├── InvalidLinkCodeError    forged, truncated or another agency's link code
        ├── ExpiredLinkCodeError    a link code of a retired key version
        ├── SignatureError          a message signature does not verify
        └── SealingError            a sealed payload could not be sealed or opened
"""

from __future__ import annotations

__all__ = [
    "BadMagicError",
    "ConfigurationError",
    "ContractError",
    "CryptoError",
    "DecodeError",
    "EncodeError",
    "ExpiredLinkCodeError",
    "InvalidLinkCodeError",
    "InvalidMyNumberError",
    "KafkaLaunchError",
    "PortInUseError",
    "RenkeiError",
    "SealingError",
    "SignatureError",
    "StartTimeoutError",
    "ToolMissingError",
    "TruncatedError",
    "UnknownSchemaError",
]


class RenkeiError(Exception):
    """Root of every error Renkei raises."""

    retriable: bool = False


class ConfigurationError(RenkeiError):
    """Settings are missing or inconsistent."""


class KafkaLaunchError(RenkeiError):
    """`renkei kafka up` could not bring a broker up."""


class ToolMissingError(KafkaLaunchError):
    """java or mvn is not installed or not on PATH."""


class PortInUseError(KafkaLaunchError):
    """A port the broker needs is already taken by another process."""


class StartTimeoutError(KafkaLaunchError):
    """The broker did not answer a metadata request in time."""

    retriable = True


class ContractError(RenkeiError):
    """Bytes or values that break the message contract."""


class DecodeError(ContractError):
    """Bytes that are not a message of the contract."""


class BadMagicError(DecodeError):
    """The bytes do not start with the Avro single-object marker C3 01."""


class TruncatedError(DecodeError):
    """The header or the body ends before the message does."""


class UnknownSchemaError(DecodeError):
    """The fingerprint names no schema this codec holds."""


class EncodeError(ContractError):
    """A value does not fit its schema."""


class InvalidMyNumberError(ContractError):
    """A My Number that is not 12 digits or whose check digit is wrong."""


class CryptoError(RenkeiError):
    """A key, link code, sealed payload or signature failed."""


class InvalidLinkCodeError(CryptoError):
    """A link code that is forged, truncated or belongs to another agency."""


class ExpiredLinkCodeError(CryptoError):
    """A link code minted under a key version that is past its grace period."""


class SignatureError(CryptoError):
    """A message signature does not verify against the sender's key."""


class SealingError(CryptoError):
    """A sealed payload could not be sealed or opened."""
