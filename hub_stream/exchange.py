"""Attribute exchange: A asks B about a person each knows only by its own link code.

``request``: scenario check → A's code → ID code → does B hold the person? → forward to B
under B's code with a hub request id, and remember who waits until when. ``respond``: B's
sealed answer goes back to A under A's own request id. ``time_out``: a deadline that
passes ends as a typed TIMEOUT to A. The hub never opens the sealed payload.

Reads the scenario table, ``holdings`` and ``pending``; stages ``pending`` (the hub's
deadlines follow it); emits the forwarded request, the answer or the timeout, and an
audit record for each.
"""

from __future__ import annotations

from renkei.crypto import audit_key
from renkei.errors import ExpiredLinkCodeError, InvalidLinkCodeError
from schemas.models import (
    AttributeRequest,
    AttributeResponse,
    AuditStep,
    ErrorCode,
    ForwardedRequest,
    HubError,
    ProviderResponse,
)
from schemas.trusted import trusted

from .context import FlowContext
from .ids import derive_id
from .outputs import Output
from .records import Pending
from .refusals import Refusal

__all__ = ["request", "respond", "time_out"]


def request(ctx: FlowContext, requester: str, req: AttributeRequest) -> list[Output]:
    """Check, translate and forward one attribute request."""
    scenario = ctx.directory.scenario(req.scenario_id)
    if scenario is None:
        raise Refusal(ErrorCode.UNKNOWN_SCENARIO, f"no active scenario {req.scenario_id}")
    if scenario.requester != requester or scenario.provider != req.provider:
        raise Refusal(
            ErrorCode.SCENARIO_MISMATCH,
            f"scenario {scenario.scenario_id} lets {scenario.requester} ask "
            f"{scenario.provider}, not {requester} ask {req.provider}",
        )
    items = req.items
    if not items or not set(scenario.items).issuperset(items):  # which: only when refused
        not_permitted = sorted(set(items) - set(scenario.items))
        raise Refusal(
            ErrorCode.ITEM_NOT_PERMITTED,
            f"scenario {scenario.scenario_id} does not permit {not_permitted or 'no items'}",
        )
    now = ctx.now()
    now_ms = int(now.timestamp() * 1000)
    deadline_ms = int(req.deadline.timestamp() * 1000)
    if not now_ms < deadline_ms <= now_ms + ctx.max_deadline_ms:
        raise Refusal(ErrorCode.DEADLINE_INVALID, "the deadline must lie ahead, within 24 hours")
    if ctx.directory.agency(req.provider) is None:
        raise Refusal(ErrorCode.UNKNOWN_AGENCY, f"provider {req.provider} is not in the directory")
    try:
        id_code = ctx.links.open(requester, req.requester_link_code, now)
    except ExpiredLinkCodeError as exc:
        raise Refusal(ErrorCode.EXPIRED_LINK_CODE, str(exc)) from exc
    except InvalidLinkCodeError as exc:
        raise Refusal(ErrorCode.INVALID_LINK_CODE, str(exc)) from exc
    key = audit_key(ctx.keyring, id_code)
    if ctx.holdings.get(f"{key}|{requester}") is None:
        # A genuine code of an agency that has since de-enrolled the person.
        raise Refusal(
            ErrorCode.NOT_ENROLLED, f"{requester} no longer holds this person", audit_key=key
        )
    if ctx.holdings.get(f"{key}|{req.provider}") is None:
        raise Refusal(
            ErrorCode.PROVIDER_DOES_NOT_HOLD,
            f"{req.provider} holds no record of this person",
            audit_key=key,
        )
    cause = req.header.message_id
    hub_request_id = derive_id("hub-request", requester, cause)
    provider_code = ctx.links.mint(req.provider, id_code)
    forwarded = ctx.emit(
        ctx.inbox(req.provider), provider_code, ForwardedRequest,
        message_id=derive_id("forward", hub_request_id), correlation_id=cause,
        hub_request_id=hub_request_id, provider_link_code=provider_code, requester=requester,
        scenario_id=scenario.scenario_id, legal_basis=scenario.legal_basis, items=req.items,
        reply_public_key=req.reply_public_key, hpke_suite=req.hpke_suite, deadline=deadline_ms,
        # The provider binds its sealed answer to the requester's own id of the request,
        # so the answer opens for this request only (renkei.crypto.context).
        request_id=req.request_id,
    )  # fmt: skip
    # Every value was checked on the way in (the request's fields, the directory's).
    pending = trusted(Pending, {
        "requester": requester, "request_id": req.request_id, "request_message_id": cause,
        "requester_link_code": req.requester_link_code, "provider": req.provider,
        "scenario_id": scenario.scenario_id, "legal_basis": scenario.legal_basis,
        "items": tuple(req.items), "audit_key": key, "deadline_ms": deadline_ms,
    })  # fmt: skip
    ctx.pending.put(hub_request_id, pending)
    ctx.metrics["forwarded"] += 1
    return [
        forwarded,
        ctx.audit.record(
            AuditStep.FORWARDED, cause=cause, actor=requester, audit_key=key,
            requester=requester, provider=req.provider, scenario_id=scenario.scenario_id,
            legal_basis=scenario.legal_basis, items=req.items, request_id=req.request_id,
            hub_request_id=hub_request_id,
        ),
    ]  # fmt: skip


def respond(ctx: FlowContext, provider: str, resp: ProviderResponse) -> list[Output]:
    """Route B's sealed answer back to A under A's request id."""
    cause = resp.header.message_id
    pending = ctx.pending.get(resp.hub_request_id)
    if pending is None:
        # Answered already, timed out, or never asked: A has had its one answer.
        ctx.metrics["late_answers"] += 1
        late = ctx.emit(
            ctx.inbox(provider), resp.provider_link_code, HubError,
            message_id=derive_id("late", cause), correlation_id=cause, code=ErrorCode.TIMEOUT,
            detail="no request is waiting for this answer (answered, timed out or unknown)",
            request_id=resp.hub_request_id, retriable=False,
        )  # fmt: skip
        return [
            late,
            ctx.audit.record(
                AuditStep.LATE_ANSWER, cause=cause, actor=provider, provider=provider,
                hub_request_id=resp.hub_request_id,
            ),
        ]  # fmt: skip
    if pending.provider != provider:
        raise Refusal(ErrorCode.MALFORMED_MESSAGE, "this hub request was not sent to you")
    sealed = resp.sealed
    response = ctx.emit(
        ctx.inbox(pending.requester), pending.requester_link_code, AttributeResponse,
        message_id=derive_id("answer", resp.hub_request_id),
        correlation_id=pending.request_message_id, request_id=pending.request_id,
        requester_link_code=pending.requester_link_code, provider=provider,
        scenario_id=pending.scenario_id, status=resp.status,
        sealed=None if sealed is None else {
            "suite": sealed.suite, "enc": sealed.enc, "ciphertext": sealed.ciphertext
        },
        detail=resp.detail,
    )  # fmt: skip
    ctx.pending.delete(resp.hub_request_id)
    ctx.metrics["answered"] += 1
    return [
        response,
        ctx.audit.record(
            AuditStep.ANSWERED, cause=cause, actor=provider, audit_key=pending.audit_key,
            requester=pending.requester, provider=provider, scenario_id=pending.scenario_id,
            legal_basis=pending.legal_basis, items=pending.items, request_id=pending.request_id,
            hub_request_id=resp.hub_request_id,
        ),
    ]  # fmt: skip


def time_out(ctx: FlowContext, hub_request_id: str, pending: Pending) -> list[Output]:
    """The deadline passed with no answer: a typed TIMEOUT to the requester."""
    error = ctx.emit(
        ctx.inbox(pending.requester), pending.requester_link_code, HubError,
        message_id=derive_id("timeout", hub_request_id), correlation_id=pending.request_message_id,
        code=ErrorCode.TIMEOUT, detail=f"{pending.provider} did not answer before the deadline",
        request_id=pending.request_id, retriable=True,
    )  # fmt: skip
    ctx.pending.delete(hub_request_id)
    ctx.metrics["timed_out"] += 1
    return [
        error,
        ctx.audit.record(
            AuditStep.TIMED_OUT, cause=derive_id("timed-out", hub_request_id), actor="hub",
            audit_key=pending.audit_key, requester=pending.requester, provider=pending.provider,
            scenario_id=pending.scenario_id, legal_basis=pending.legal_basis,
            items=pending.items, request_id=pending.request_id, hub_request_id=hub_request_id,
        ),
    ]  # fmt: skip
