"""Messages of enrolment (紐付け) and of the attribute exchange."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import model_validator

from schemas.models._base import TimestampMs
from schemas.models.enums import EnrolmentOutcome, HpkeSuite, ResponseStatus
from schemas.models.records import Basic4, Message, SealedPayload

__all__ = [
    "AttributeRequest",
    "AttributeResponse",
    "DeenrolmentRequest",
    "EnrolmentRequest",
    "EnrolmentResult",
    "ForwardedRequest",
    "ProviderResponse",
]


def _check_sealed(status: ResponseStatus, sealed: SealedPayload | None) -> None:
    # UNKNOWN is a newer writer's status; whether it carries values is not ours to say
    if status is not ResponseStatus.UNKNOWN and (status is ResponseStatus.PROVIDED) != (
        sealed is not None
    ):
        raise ValueError("sealed must be set exactly when status is PROVIDED")


class EnrolmentRequest(Message):
    """An agency asks to link its record to a person, by My Number or basic-4.

    Deliberately loose: a request without identifiers or with a bad check digit is
    well-formed on the wire, and the hub answers it with outcome INVALID.
    """

    avro_name: ClassVar[str] = "jp.renkei.EnrolmentRequest"

    record_ref: str
    my_number: str | None = None
    basic4: Basic4 | None = None
    capacity: str


class EnrolmentResult(Message):
    """The hub's answer to an :class:`EnrolmentRequest` (and to a :class:`DeenrolmentRequest`)."""

    avro_name: ClassVar[str] = "jp.renkei.EnrolmentResult"

    record_ref: str
    outcome: EnrolmentOutcome
    link_code: str | None = None
    detail: str

    @model_validator(mode="after")
    def _check(self) -> Self:
        # not the converse: a de-enrolment acknowledgement echoes the ended link code
        if self.outcome is EnrolmentOutcome.LINKED and self.link_code is None:
            raise ValueError("link_code must be set when outcome is LINKED")
        return self


class DeenrolmentRequest(Message):
    """An agency no longer holds a record: drop it from the reference directory."""

    avro_name: ClassVar[str] = "jp.renkei.DeenrolmentRequest"

    link_code: str
    record_ref: str


class AttributeRequest(Message):
    """A requester asks, through the hub, for a provider's attributes about a person."""

    avro_name: ClassVar[str] = "jp.renkei.AttributeRequest"

    request_id: str
    requester_link_code: str
    provider: str
    scenario_id: str
    items: tuple[str, ...]
    reply_public_key: bytes
    hpke_suite: HpkeSuite
    deadline: TimestampMs


class ForwardedRequest(Message):
    """An allowed request, forwarded to the provider under the provider's link code."""

    avro_name: ClassVar[str] = "jp.renkei.ForwardedRequest"

    hub_request_id: str
    provider_link_code: str
    requester: str
    scenario_id: str
    legal_basis: str
    items: tuple[str, ...]
    reply_public_key: bytes
    hpke_suite: HpkeSuite
    deadline: TimestampMs
    request_id: str = ""
    """The requester's ``AttributeRequest.request_id``: the sealed answer is bound to it."""


class ProviderResponse(Message):
    """The provider's answer to a :class:`ForwardedRequest`."""

    avro_name: ClassVar[str] = "jp.renkei.ProviderResponse"

    hub_request_id: str
    provider_link_code: str
    status: ResponseStatus
    sealed: SealedPayload | None = None
    detail: str

    @model_validator(mode="after")
    def _check(self) -> Self:
        _check_sealed(self.status, self.sealed)
        return self


class AttributeResponse(Message):
    """A provider's answer, routed back to the requester under its request id."""

    avro_name: ClassVar[str] = "jp.renkei.AttributeResponse"

    request_id: str
    requester_link_code: str
    provider: str
    scenario_id: str
    status: ResponseStatus
    sealed: SealedPayload | None = None
    detail: str

    @model_validator(mode="after")
    def _check(self) -> Self:
        _check_sealed(self.status, self.sealed)
        return self
