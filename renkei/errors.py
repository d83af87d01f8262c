"""Every error Renkei raises.

One root, :class:`RenkeiError`. ``retriable`` says whether trying the same thing again
may succeed (a broker that is still starting) or never will (a forged link code)::

    RenkeiError
    ├── ConfigurationError          settings missing or inconsistent
    │   └── AiokafkaInternalsError  the installed aiokafka lacks an internal Renkei patches
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
    ├── CryptoError                 a key, code, seal or signature failed
    │   ├── InvalidLinkCodeError    forged, truncated or another agency's link code
    │   ├── ExpiredLinkCodeError    a link code of a retired key version
    │   ├── SignatureError          a message signature does not verify
    │   ├── SealingError            a sealed payload could not be sealed or opened
    │   └── WitnessAlarm            the hub's signed tree heads split, roll back or hide one
    ├── HubHaltedError              the hub stopped itself rather than risk data
    │   ├── ClusterChangedError     the broker answering is another cluster than at start
    │   └── UnwritableOutputError   Kafka refuses even the stand-in for a refused record
    └── ExchangeError               an agency's call through the hub got no usable answer
        ├── HubRefusedError         the hub answered with a typed HubError (``code``)
        ├── ProviderDeclinedError   the provider answered NO_DATA or REFUSED (``status``)
        ├── RequestTimeoutError     no answer arrived in time
        └── PublishError            a message could not be written to Kafka
    AuditError                      the audit trail could not be read, replayed or shown
    └── AuthenticationError         a citizen's signed challenge was not accepted
        ├── ThrottledError          too many login attempts: try again later
        └── RegistrationError       a passkey registration refused (code, offer, ceremony)
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AiokafkaInternalsError",
    "AuditError",
    "AuthenticationError",
    "BadMagicError",
    "ClusterChangedError",
    "ConfigurationError",
    "ContractError",
    "CryptoError",
    "DecodeError",
    "EncodeError",
    "ExchangeError",
    "ExpiredLinkCodeError",
    "HubHaltedError",
    "HubRefusedError",
    "InvalidLinkCodeError",
    "InvalidMyNumberError",
    "KafkaLaunchError",
    "PortInUseError",
    "ProviderDeclinedError",
    "PublishError",
    "RegistrationError",
    "RenkeiError",
    "RequestTimeoutError",
    "SealingError",
    "SignatureError",
    "StartTimeoutError",
    "ThrottledError",
    "ToolMissingError",
    "TruncatedError",
    "UnknownSchemaError",
    "UnwritableOutputError",
    "WitnessAlarm",
]


class RenkeiError(Exception):
    """Root of every error Renkei raises."""

    retriable: bool = False


class ConfigurationError(RenkeiError):
    """Settings are missing or inconsistent."""


class AiokafkaInternalsError(ConfigurationError):
    """The installed aiokafka moved or renamed an internal Renkei relies on."""


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


class WitnessAlarm(CryptoError):
    """A witness (:mod:`renkei.witness`) caught the hub's signed tree heads lying.

    ``kind`` is ``split-view`` (two heads of one size with different roots, or a larger
    head whose consistency proof does not verify from the head kept), ``rollback`` (a
    smaller head after a larger one, or the heads' topic ending before where the witness
    had read), ``gap`` (a head that follows another than the last one seen: a head was
    hidden) or ``bad-signature`` (not a head signed by a pinned audit key).

    :param kind: the alarm's kind (:class:`renkei.witness.AlarmKind`, typed as its base
        here so the errors stay below the witness).
    :param partition: the ``hub.audit`` partition.
    :param message: what was seen, with the sizes and roots.
    :param kept_size: the size of the head the witness kept (``None``: none yet).
    :param kept_root: its root hash.
    :param head_size: the size of the head refused (``None``: no head, e.g. a truncated topic).
    :param head_root: its root hash.
    :param previous_size: the size the refused head says it follows.
    """

    def __init__(
        self,
        kind: StrEnum,
        partition: int,
        message: str,
        *,
        kept_size: int | None = None,
        kept_root: bytes | None = None,
        head_size: int | None = None,
        head_root: bytes | None = None,
        previous_size: int | None = None,
    ) -> None:
        super().__init__(f"witness alarm ({kind}), partition {partition}: {message}")
        self.kind = kind
        self.partition = partition
        self.kept_size = kept_size
        self.kept_root = kept_root
        self.head_size = head_size
        self.head_root = head_root
        self.previous_size = previous_size


class HubHaltedError(RenkeiError):
    """The hub stopped itself: going on could lose or mix up data."""


class ClusterChangedError(HubHaltedError):
    """The brokers now answer with another cluster id than when the hub started."""


class UnwritableOutputError(HubHaltedError):
    """Kafka refuses a record and even the small stand-in that would replace it."""


class ExchangeError(RenkeiError):
    """An agency's call through the hub (enrol, request, publish) got no usable answer."""


class HubRefusedError(ExchangeError):
    """The hub answered with a typed :class:`~schemas.models.HubError`.

    :param code: the hub's :class:`~schemas.models.ErrorCode` (typed as its base here, so
        the errors sit below the contract), the same one its audit record and metric carry.
    :param detail: the hub's explanation (metadata only, never attribute values).
    :param retriable: the hub's own verdict: whether asking again may succeed.
    """

    def __init__(self, code: StrEnum, detail: str, *, retriable: bool = False) -> None:
        super().__init__(f"hub refused: {code}: {detail}")
        self.code = code
        self.detail = detail
        self.retriable = retriable


class ProviderDeclinedError(ExchangeError):
    """The provider answered without values: ``status`` is NO_DATA or REFUSED.

    :param status: the provider's :class:`~schemas.models.ResponseStatus`.
    :param detail: the provider's short explanation.
    """

    def __init__(self, status: StrEnum, detail: str) -> None:
        super().__init__(f"provider answered {status}: {detail}")
        self.status = status
        self.detail = detail


class RequestTimeoutError(ExchangeError):
    """No answer, not even the hub's TIMEOUT, arrived before the deadline plus a grace."""

    retriable = True


class PublishError(ExchangeError):
    """Kafka did not acknowledge a message we wrote."""

    retriable = True


class AuditError(RenkeiError):
    """The audit trail could not be read, replayed or shown (not: it was tampered with;
    that is a finding of ``renkei audit verify``, not an error)."""


class AuthenticationError(AuditError):
    """A citizen's signed challenge was not accepted by the portal (the reason stays
    server-side: a caller learns only that it failed)."""


class ThrottledError(AuthenticationError):
    """Too many login attempts from one address or for one resident code (HTTP 429)."""

    retriable = True


class RegistrationError(AuthenticationError):
    """A passkey registration was refused: a wrong, used or expired registration code, an
    offer or registration not signed by the pinned key, or a ceremony that does not verify
    (the portal answers only "authentication failed"; the reason is for logs and tests)."""
