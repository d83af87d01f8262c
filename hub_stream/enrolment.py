"""Enrolment (紐付け): an agency ties its record to a person and gets its link code.

The person is resolved by My Number, else by the normalised basic-4; an ambiguous or
unmatched record gets a typed answer and is never guessed. A link writes the reference
directory (the ``holdings`` table): which agency holds whom, since when, as what.

Reads the person index and ``holdings``; stages ``holdings``; emits the result to the
agency and an audit record.
"""

from __future__ import annotations

from renkei.crypto import audit_key
from renkei.errors import CryptoError, ExpiredLinkCodeError
from schemas.models import (
    AuditStep,
    DeenrolmentRequest,
    EnrolmentOutcome,
    EnrolmentRequest,
    EnrolmentResult,
    ErrorCode,
    Header,
)

from .context import FlowContext
from .ids import derive_id
from .outputs import Output
from .records import Holding
from .refusals import Refusal

__all__ = ["deenrol", "enrol", "hold"]


def enrol(ctx: FlowContext, agency: str, request: EnrolmentRequest) -> list[Output]:
    """Resolve the record to a person; answer with a link code or a typed outcome."""
    cause = request.header.message_id
    if request.my_number is None and request.basic4 is None:
        raise Refusal(ErrorCode.MALFORMED_MESSAGE, "an enrolment needs a My Number or basic-4")
    match = ctx.indexes.resolve(request.my_number, request.basic4)
    link_code: str | None = None
    key: str | None = None
    if match.outcome == "LINKED" and match.person_id is not None:
        since_ms = int(request.header.sent_at.timestamp() * 1000)
        link_code, key = hold(
            ctx, agency, match.person_id, request.record_ref, request.capacity, since_ms
        )
    ctx.metrics[f"enrolment.{match.outcome}"] += 1
    result = EnrolmentResult(
        header=Header.new("hub", cause, message_id=derive_id("enrol", cause)),
        record_ref=request.record_ref,
        outcome=EnrolmentOutcome(match.outcome),
        link_code=link_code,
        detail=match.detail,
    )
    step = AuditStep.ENROLLED if link_code else AuditStep.NOT_ENROLLED
    return [
        ctx.send(ctx.topics.agency_in(agency), link_code or request.record_ref, result),
        ctx.audit.record(
            step, cause=cause, actor=agency, audit_key=key, requester=agency,
            error_code=None if link_code else match.outcome,
        ),
    ]  # fmt: skip


def hold(
    ctx: FlowContext, agency: str, person_id: bytes, record_ref: str, capacity: str, since_ms: int
) -> tuple[str, str]:
    """``agency`` holds the person from now on: their link code for it, and audit key.

    The reference directory gains the holding unless the agency holds the person already
    (the first record and date stay); the code is the same either way, since it is derived
    from the agency and the person alone. Shared by an agency's own enrolment and bulk
    linkage (:mod:`.bulk_enrolment`).
    """
    link_code = ctx.links.mint(agency, person_id)
    key = audit_key(ctx.keyring, person_id)
    holding_key = f"{key}|{agency}"
    if ctx.holdings.get(holding_key) is None:
        holding = Holding(
            agency=agency, record_ref=record_ref, capacity=capacity, since_ms=since_ms
        )
        ctx.holdings.put(holding_key, holding)  # fan-out sees it for the rest of the batch
    return link_code, key


def deenrol(ctx: FlowContext, agency: str, request: DeenrolmentRequest) -> list[Output]:
    """The agency stops holding the person: no more notices about them."""
    cause = request.header.message_id
    try:
        id_code = ctx.links.open(agency, request.link_code, ctx.now())
    except ExpiredLinkCodeError as exc:
        raise Refusal(ErrorCode.EXPIRED_LINK_CODE, str(exc)) from exc
    except CryptoError as exc:
        raise Refusal(ErrorCode.INVALID_LINK_CODE, str(exc)) from exc
    key = audit_key(ctx.keyring, id_code)
    if ctx.holdings.get(f"{key}|{agency}") is None:
        raise Refusal(ErrorCode.NOT_ENROLLED, "the agency does not hold this person")
    ctx.holdings.delete(f"{key}|{agency}")
    result = EnrolmentResult(
        header=Header.new("hub", cause, message_id=derive_id("deenrol", cause)),
        record_ref=request.record_ref,
        outcome=EnrolmentOutcome.NO_MATCH,
        link_code=request.link_code,
        detail="holding ended: no further notices for this person",
    )
    return [
        ctx.send(ctx.topics.agency_in(agency), request.link_code, result),
        ctx.audit.record(AuditStep.DEENROLLED, cause=cause, actor=agency, audit_key=key),
    ]
