"""Refusals: every "no" the hub says is a typed :class:`Refusal` with an error code.

A flow raises :class:`Refusal`; the hub turns it into a ``HubError`` to the sender (same
code), an audit record (same code) and a counter (same code) with :func:`refuse`. Never
silence. A copy of a message already handled gets :func:`duplicate`. Bytes that are no
message at all, input on a privileged topic that is not signed by its pinned root
(:mod:`.trust`), and records a defect of ours could not handle are parked in
``hub.deadletter`` (:func:`dead_letter`, :func:`untrusted`, :func:`parked`), the input's
key and value sealed to the operators (:mod:`.deadletters`). Details never quote the
input (:mod:`.redact`).
"""

from __future__ import annotations

from aiokafka import ConsumerRecord

from schemas.limits import clip
from schemas.models import (
    RETRIABLE_CODES,
    AgencyEntry,
    AuditStep,
    DeadLetter,
    ErrorCode,
    Header,
    HubError,
    Message,
)

from .context import FlowContext
from .directory import Directory
from .ids import derive_id
from .outputs import Output
from .trust import Untrusted

__all__ = ["Refusal", "author_entry", "dead_letter", "duplicate", "parked", "refuse", "untrusted"]


class Refusal(Exception):
    """The hub refuses the message it is handling.

    :param code: the error code the sender, the audit trail and the metrics see.
    :param detail: a sentence for the sender's engineers; never personal data.
    :param audit_key: the person concerned, when the hub got as far as knowing them, so
        the refusal shows in that person's history.
    """

    def __init__(self, code: ErrorCode, detail: str, audit_key: str | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        # clipped to the contract's DETAIL limit: a flow's sentence may list what the
        # input named (its items), and a refusal is never larger than a small constant
        self.detail = clip(detail)
        self.audit_key = audit_key

    @property
    def retriable(self) -> bool:
        return self.code in RETRIABLE_CODES


def author_entry(directory: Directory, agency: str, message: Message) -> AgencyEntry:
    """The directory entry of ``agency``, which must have written ``message`` on its own
    ``.out`` topic: the hub's first check of every agency input, and the verifier's.

    :raises Refusal: ``UNKNOWN_AGENCY``, or ``BAD_SIGNATURE`` when the header names another
        sender.
    """
    entry = directory.agency(agency)
    if entry is None:
        raise Refusal(ErrorCode.UNKNOWN_AGENCY, f"agency {agency} is not in the directory")
    if message.header.sender != agency:
        raise Refusal(
            ErrorCode.BAD_SIGNATURE,
            f"sender {message.header.sender!r} wrote to agency {agency}'s topic",
        )
    return entry


def refuse(ctx: FlowContext, agency: str, message: Message, refusal: Refusal) -> list[Output]:
    """A typed error to the sender, and an audit record with the same code."""
    ctx.metrics[f"refused.{refusal.code}"] += 1
    request_id = getattr(message, "request_id", None)
    key = getattr(message, "requester_link_code", None) or getattr(message, "link_code", None)
    cause = message.header.message_id
    error = HubError(
        header=Header.new("hub", cause, message_id=derive_id("refusal", cause)),
        code=refusal.code,
        detail=refusal.detail,
        request_id=request_id,
        retriable=refusal.retriable,
    )
    audit = ctx.audit.record(
        AuditStep.REFUSED,
        cause=cause,
        actor=agency,
        audit_key=refusal.audit_key,
        requester=agency,
        provider=getattr(message, "provider", None),
        scenario_id=getattr(message, "scenario_id", None),
        items=getattr(message, "items", ()),
        request_id=request_id,
        error_code=refusal.code,
    )
    if ctx.directory.agency(agency) is None:
        return [audit]  # no such agency: there is no topic of theirs to answer on
    return [ctx.send(ctx.topics.agency_in(agency), key, error), audit]


def duplicate(
    ctx: FlowContext, sender: str, message: Message, record: ConsumerRecord[bytes, bytes]
) -> list[Output]:
    """A copy of a message the hub has already handled: ``DUPLICATE``, and nothing else.

    The error names neither the request id nor a correlation id: the first copy's answer
    is the answer, and a client waiting for it must not take this refusal for it. Its id
    and the audit record's cause are derived from where the copy was read, so every copy
    gets its own, and a batch processed again gets the same.
    """
    ctx.metrics[f"refused.{ErrorCode.DUPLICATE}"] += 1
    message_id = message.header.message_id
    where = (record.topic, str(record.partition), str(record.offset))
    cause = derive_id("duplicate", message_id, *where)
    outputs = [
        ctx.audit.record(
            AuditStep.REFUSED, cause=cause, actor=sender, error_code=ErrorCode.DUPLICATE
        )
    ]
    if ctx.directory.agency(sender) is not None:
        error = HubError(
            header=Header.new("hub", message_id=derive_id("duplicate-error", cause)),
            code=ErrorCode.DUPLICATE,
            detail=f"message {message_id} was handled already; the copy at {record.topic}@"
            f"{record.partition}:{record.offset} is ignored",
            request_id=None,
            retriable=False,
        )
        outputs.insert(0, ctx.send(ctx.topics.agency_in(sender), None, error))
    return outputs


def parked(
    ctx: FlowContext, record: ConsumerRecord[bytes, bytes], code: ErrorCode, detail: str, cause: str
) -> Output:
    """The record, sealed to the operators, with the reason, for ``hub.deadletter``.

    Unkeyed, and the letter's ``key`` is null: an input's key can be an identifier too
    (a resident code), so it is sealed with the value.
    """
    value = ctx.letters(
        cause, record.topic, record.partition, record.offset, record.key, record.value
    )
    letter = DeadLetter(
        header=Header.new("hub", message_id=cause),
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        reason=code,
        detail=detail[:1000],
        key=None,
        value=value,
    )
    return Output(ctx.topics.deadletter, None, ctx.codec.encode(letter))


def untrusted(
    ctx: FlowContext, record: ConsumerRecord[bytes, bytes], actor: str, refused: Untrusted
) -> list[Output]:
    """Input on a privileged topic that its pinned root did not sign: parked and audited.

    Nobody is answered: the registry and the operators read the audit trail.
    """
    cause = derive_id("dlq", record.topic, str(record.partition), str(record.offset))
    ctx.metrics[f"untrusted.{actor}.{refused.code}"] += 1
    return [
        parked(ctx, record, refused.code, refused.detail, cause),
        ctx.audit.record(
            AuditStep.DEAD_LETTERED, cause=cause, actor=actor, error_code=refused.code
        ),
    ]


def dead_letter(
    ctx: FlowContext, record: ConsumerRecord[bytes, bytes], code: ErrorCode, detail: str
) -> list[Output]:
    """Park bytes we cannot handle, tell the sending agency, and audit it."""
    cause = derive_id("dlq", record.topic, str(record.partition), str(record.offset))
    outputs = [parked(ctx, record, code, detail, cause)]
    actor = "registry"
    if record.topic in (ctx.topics.control, ctx.topics.directory):
        actor = "operator"
    elif record.topic != ctx.topics.registry_events:
        actor = ctx.topics.agency_of(record.topic)
        if ctx.directory.agency(actor) is not None:
            error = HubError(
                header=Header.new("hub", message_id=derive_id("dlq-error", cause)),
                code=code,
                detail=f"{record.topic}@{record.partition}:{record.offset}: {detail[:500]}",
                request_id=None,
                retriable=False,
            )
            outputs.append(ctx.send(ctx.topics.agency_in(actor), None, error))
    outputs.append(
        ctx.audit.record(AuditStep.DEAD_LETTERED, cause=cause, actor=actor, error_code=code)
    )
    return outputs
