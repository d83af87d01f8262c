"""Reading what the hub did with an attack: the attacker's inbox, the audit trail, the
dead letters, and whether the hub is still well.

The hub's ids are derived from what it read (:func:`hub_stream.ids.derive_id`), so a test
knows in advance the id of the refusal, dead letter or audit record an attack must cause.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiokafka.structs import RecordMetadata

from hub_stream.ids import derive_id
from schemas.models import (
    AuditStep,
    DeadLetter,
    EnrolmentOutcome,
    EnrolmentRequest,
    EnrolmentResult,
    ErrorCode,
    Header,
    HubError,
    Message,
)
from tests.security.deployment import ATTACKER, Deployment, Tap

__all__ = [
    "answers",
    "attack",
    "audited",
    "duplicate_cause",
    "inbox",
    "letter_cause",
    "refusal_seen",
    "refused",
    "unharmed",
    "with_id",
]


def inbox(d: Deployment, agency: str = ATTACKER) -> str:
    """``agency.<agency>.in`` of the deployment: the attacker's by default."""
    return d.topics.agency_in(agency)


def answers(tap: Tap, topic: str, message_id: str) -> list[Message]:
    """What ``topic`` holds that answers ``message_id`` (its correlation id)."""
    return [m for m in tap.on(topic) if m.header.correlation_id == message_id]


def with_id(tap: Tap, topic: str, message_id: str) -> list[Message]:
    """What ``topic`` holds under ``message_id`` (an id the hub derived)."""
    return [m for m in tap.on(topic) if m.header.message_id == message_id]


def audited(tap: Tap, d: Deployment, cause: str) -> list[tuple[AuditStep, str | None, str]]:
    """``(step, error code, actor)`` of every audit record ``cause`` caused."""
    return [(a.step, a.error_code, a.actor) for a in tap.audit(d.topics.audit, cause)]


def enrolled(tap: Tap, d: Deployment, valid: EnrolmentRequest) -> bool:
    """Whether ``valid`` has been answered."""
    return bool(answers(tap, inbox(d, valid.header.sender), valid.header.message_id))


async def attack(
    d: Deployment, *values: bytes, done: Callable[[Tap], bool], topics: tuple[str, ...] = ()
) -> tuple[Tap, list[RecordMetadata], EnrolmentRequest]:
    """Send ``values`` as the attacker, then a genuine enrolment on the same partition.

    Returns once the enrolment is answered and ``done`` holds, with everything the hub
    had committed by then read (so counts are exact), and checks the hub is unharmed:
    still ready, no defect of its own (``INTERNAL``) anywhere.
    """
    valid = d.enrolment(record_ref=f"after-{Header.new(ATTACKER).message_id}")
    sent = await d.send(ATTACKER, *values, d.value(valid))
    watched = (inbox(d), d.topics.audit, d.topics.deadletter, *topics)
    async with d.tap(*dict.fromkeys(watched)) as tap:
        await tap.until(lambda t: enrolled(t, d, valid) and done(t))
        await tap.drain()
    (result,) = answers(tap, inbox(d), valid.header.message_id)  # exactly one answer
    assert isinstance(result, EnrolmentResult)
    assert (result.outcome, result.link_code) == (EnrolmentOutcome.LINKED, d.codes[ATTACKER])
    await unharmed(d, tap)
    return tap, sent[:-1], valid


async def unharmed(d: Deployment, tap: Tap) -> None:
    status, report = await d.health()
    assert (status, report["ready"], report["phase"]) == (200, True, "ready")
    assert d.env.hub.failure is None
    letters = [m for m in tap.on(d.topics.deadletter) if isinstance(m, DeadLetter)]
    assert ErrorCode.INTERNAL not in {m.reason for m in letters}
    assert not [m for m in tap.on(inbox(d)) if isinstance(m, HubError) and m.code == "INTERNAL"]


def refused(tap: Tap, d: Deployment, message: Message) -> list[tuple[ErrorCode, Any, bool]]:
    """The HubErrors that answer ``message`` on the attacker's inbox, as (code, request id,
    retriable)."""
    found = answers(tap, inbox(d), message.header.message_id)
    return [(m.code, m.request_id, m.retriable) for m in found if isinstance(m, HubError)]


def refusal_seen(d: Deployment, message: Message) -> Callable[[Tap], bool]:
    """A check that holds once ``message`` has caused an audit record."""
    return lambda t: bool(t.audit(d.topics.audit, message.header.message_id))


def duplicate_cause(message_id: str, where: RecordMetadata) -> str:
    """The hub's id for the copy of ``message_id`` it read at ``where``."""
    return derive_id("duplicate", message_id, where.topic, str(where.partition), str(where.offset))


def letter_cause(where: RecordMetadata) -> str:
    """The hub's id for the record at ``where`` it dead-lettered."""
    return derive_id("dlq", where.topic, str(where.partition), str(where.offset))
