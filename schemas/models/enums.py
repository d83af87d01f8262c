"""Avro enums as :class:`enum.StrEnum`, symbol for symbol and in the schema's order.

Each class is named like its Avro type (``jp.renkei.<ClassName>``). Symbols that exist so a
newer writer's symbols have somewhere to land (``UNKNOWN``) are the enum's Avro ``default``;
code that meets them should treat them as "cannot act on this", never as a real value.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "RETRIABLE_CODES",
    "AuditStep",
    "EnrolmentOutcome",
    "ErrorCode",
    "EventAction",
    "EventKind",
    "HpkeSuite",
    "ResponseStatus",
    "Sex",
]


class Sex(StrEnum):
    """Sex as the resident register records it (性別)."""

    MALE = "MALE"
    FEMALE = "FEMALE"
    UNSPECIFIED = "UNSPECIFIED"


class EventKind(StrEnum):
    """Kind of resident-register life event."""

    REGISTERED = "REGISTERED"
    MOVED = "MOVED"
    RENAMED = "RENAMED"
    DIED = "DIED"
    NUMBER_REISSUED = "NUMBER_REISSUED"
    UNKNOWN = "UNKNOWN"


class EventAction(StrEnum):
    """New event, correction of an earlier one, or its annulment (a closed set)."""

    ORIGINAL = "ORIGINAL"
    CORRECTION = "CORRECTION"
    ANNULMENT = "ANNULMENT"


class EnrolmentOutcome(StrEnum):
    """Result of an enrolment (紐付け)."""

    LINKED = "LINKED"
    NO_MATCH = "NO_MATCH"
    AMBIGUOUS = "AMBIGUOUS"
    INVALID = "INVALID"
    UNKNOWN = "UNKNOWN"


class HpkeSuite(StrEnum):
    """HPKE (RFC 9180) suite a payload is sealed with."""

    X25519 = "X25519"
    MLKEM768_X25519 = "MLKEM768_X25519"
    UNKNOWN = "UNKNOWN"


class ResponseStatus(StrEnum):
    """A provider's answer to a forwarded request."""

    PROVIDED = "PROVIDED"
    NO_DATA = "NO_DATA"
    REFUSED = "REFUSED"
    UNKNOWN = "UNKNOWN"


class ErrorCode(StrEnum):
    """Why the hub refused or failed something; ``docs/contract.md`` says which are retriable."""

    MALFORMED_MESSAGE = "MALFORMED_MESSAGE"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    UNKNOWN_AGENCY = "UNKNOWN_AGENCY"
    INVALID_LINK_CODE = "INVALID_LINK_CODE"
    EXPIRED_LINK_CODE = "EXPIRED_LINK_CODE"
    UNKNOWN_SCENARIO = "UNKNOWN_SCENARIO"
    SCENARIO_MISMATCH = "SCENARIO_MISMATCH"
    ITEM_NOT_PERMITTED = "ITEM_NOT_PERMITTED"
    PROVIDER_DOES_NOT_HOLD = "PROVIDER_DOES_NOT_HOLD"
    NOT_ENROLLED = "NOT_ENROLLED"
    DEADLINE_INVALID = "DEADLINE_INVALID"
    TIMEOUT = "TIMEOUT"
    INTERNAL = "INTERNAL"
    UNKNOWN = "UNKNOWN"
    # Added after v1, after UNKNOWN: no released symbol moves.
    DUPLICATE = "DUPLICATE"


class AuditStep(StrEnum):
    """A step the hub records in the audit trail."""

    RECEIVED = "RECEIVED"
    REFUSED = "REFUSED"
    FORWARDED = "FORWARDED"
    ANSWERED = "ANSWERED"
    TIMED_OUT = "TIMED_OUT"
    LATE_ANSWER = "LATE_ANSWER"
    NOTIFIED = "NOTIFIED"
    ENROLLED = "ENROLLED"
    NOT_ENROLLED = "NOT_ENROLLED"
    DEENROLLED = "DEENROLLED"
    REGISTRY_APPLIED = "REGISTRY_APPLIED"
    KEY_ROTATED = "KEY_ROTATED"
    DEAD_LETTERED = "DEAD_LETTERED"
    UNKNOWN = "UNKNOWN"


RETRIABLE_CODES: frozenset[ErrorCode] = frozenset({ErrorCode.TIMEOUT, ErrorCode.INTERNAL})
"""Codes for which asking again (a new message, fresh header and deadline) may succeed.

Every other code describes the request itself (a forged code, a scenario that does not
allow it): repeating it gets the same answer. ``HubError.retriable`` carries this flag.
"""
