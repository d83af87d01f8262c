"""An authenticated agency attacks the hub from its own ``agency.<id>.out``.

``city-osaka`` logs in with its own credentials (the broker lets it write only its
``.out``) and sends what a malicious or compromised agency would: unsigned or wrongly
signed messages, replays, oversized records, forged and borrowed link codes, a scenario
it is not in, answers to requests it never got and to another agency's request. Each is
refused with the code ``docs/contract.md`` documents for it, told to the attacker on its
own inbox, audited with that code, and harms nobody: a genuine enrolment sent right
after it, on the same partition, is answered exactly once, and the hub stays ready.
"""

from __future__ import annotations

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from consumers.provider import build_response
from hub_stream.ids import derive_id
from producers.answers import open_response
from schemas import limits
from schemas.models import (
    AttributeResponse,
    AuditStep,
    DeadLetter,
    EnrolmentRequest,
    ErrorCode,
    ForwardedRequest,
    Header,
    HpkeSuite,
    HubError,
    Message,
    ProviderResponse,
    ResponseStatus,
    SealedPayload,
)
from tests.security.deployment import ATTACKER, CODEC, PROVIDER, VICTIM, Deployment, Tap
from tests.security.outcomes import (
    answers,
    attack,
    audited,
    duplicate_cause,
    inbox,
    letter_cause,
    refusal_seen,
    refused,
    with_id,
)

pytestmark = pytest.mark.integration


# -- who wrote it ------------------------------------------------------------------------


async def test_an_unsigned_message_is_refused_bad_signature(secure_deployment: Deployment) -> None:
    d = secure_deployment
    unsigned = d.enrolment()
    tap, _, _ = await attack(d, CODEC.encode(unsigned), done=refusal_seen(d, unsigned))
    assert refused(tap, d, unsigned) == [(ErrorCode.BAD_SIGNATURE, None, False)]
    assert audited(tap, d, unsigned.header.message_id) == [
        (AuditStep.REFUSED, "BAD_SIGNATURE", ATTACKER)
    ]


async def test_a_message_signed_with_another_agencys_key_is_refused(
    secure_deployment: Deployment,
) -> None:
    d = secure_deployment
    forged = d.enrolment()  # says it is the attacker's, signed with the victim's key
    tap, _, _ = await attack(d, d.value(forged, signer=VICTIM), done=refusal_seen(d, forged))
    assert refused(tap, d, forged) == [(ErrorCode.BAD_SIGNATURE, None, False)]
    assert audited(tap, d, forged.header.message_id) == [
        (AuditStep.REFUSED, "BAD_SIGNATURE", ATTACKER)
    ]


async def test_another_agencys_genuine_message_on_its_topic_is_refused(
    secure_deployment: Deployment,
) -> None:
    """A message the victim signed (stolen, say) and the attacker writes as its own."""
    d = secure_deployment
    stolen = d.request(sender=VICTIM, scenario="S003")
    tap, _, _ = await attack(
        d, d.value(stolen), done=refusal_seen(d, stolen), topics=(inbox(d, VICTIM),)
    )
    # Refused on the topic it came from: the victim is neither answered nor asked.
    assert refused(tap, d, stolen) == [(ErrorCode.BAD_SIGNATURE, stolen.request_id, False)]
    assert answers(tap, inbox(d, VICTIM), stolen.header.message_id) == []
    assert audited(tap, d, stolen.header.message_id) == [
        (AuditStep.REFUSED, "BAD_SIGNATURE", ATTACKER)
    ]


# -- replays ------------------------------------------------------------------------------


async def test_a_replayed_request_and_a_replayed_answer_count_once(
    secure_deployment: Deployment,
) -> None:
    d = secure_deployment
    request = d.request()
    value = d.value(request)
    jps = inbox(d, PROVIDER)

    def forwarded(t: Tap) -> list[ForwardedRequest]:
        found = answers(t, jps, request.header.message_id)
        return [m for m in found if isinstance(m, ForwardedRequest)]

    copy_cause: list[str] = []

    def copy_refused(t: Tap) -> bool:
        return bool(copy_cause) and bool(t.audit(d.topics.audit, copy_cause[0]))

    first, second = (await d.send(ATTACKER, value, value))[:2]
    copy_cause.append(duplicate_cause(request.header.message_id, second))
    tap, _, _ = await attack(d, done=lambda t: bool(forwarded(t)) and copy_refused(t),
                             topics=(jps,))  # fmt: skip
    (forward,) = forwarded(tap)  # the copy was not forwarded again
    assert forward.request_id == request.request_id
    assert audited(tap, d, request.header.message_id) == [(AuditStep.FORWARDED, None, ATTACKER)]
    # The copy: DUPLICATE, correlated with nothing (the first copy's answer is the answer).
    (duplicate,) = with_id(tap, inbox(d), derive_id("duplicate-error", copy_cause[0]))
    assert isinstance(duplicate, HubError)
    assert (duplicate.code, duplicate.request_id, duplicate.header.correlation_id) == (
        ErrorCode.DUPLICATE, None, None,
    )  # fmt: skip
    assert audited(tap, d, copy_cause[0]) == [(AuditStep.REFUSED, "DUPLICATE", ATTACKER)]
    assert first.offset < second.offset

    # The provider answers twice with the same bytes: the requester gets one answer.
    answer = build_response(PROVIDER, forward, {"pension.benefit_status": "PAID"})
    answer_value = d.value(answer)
    sent = await d.send(PROVIDER, answer_value, answer_value)
    copy = duplicate_cause(answer.header.message_id, sent[1])
    async with d.tap(inbox(d), d.topics.audit, jps) as tap:
        await tap.until(lambda t: bool(t.audit(d.topics.audit, copy)))
        await tap.drain()
    (response,) = answers(tap, inbox(d), request.header.message_id)
    assert isinstance(response, AttributeResponse)
    assert open_response(response, request, d.reply) == {"pension.benefit_status": "PAID"}
    assert audited(tap, d, answer.header.message_id) == [(AuditStep.ANSWERED, None, PROVIDER)]
    assert audited(tap, d, copy) == [(AuditStep.REFUSED, "DUPLICATE", PROVIDER)]
    (duplicate,) = with_id(tap, jps, derive_id("duplicate-error", copy))
    assert isinstance(duplicate, HubError)
    assert duplicate.code is ErrorCode.DUPLICATE


# -- size --------------------------------------------------------------------------------


async def test_a_900000_character_record_ref_is_dead_lettered_unread(
    secure_deployment: Deployment,
) -> None:
    d = secure_deployment
    # Built without validation: the models themselves refuse a record_ref over ID.
    huge = EnrolmentRequest.model_construct(
        header=Header.new(ATTACKER), record_ref="R" * 900_000, my_number=d.person.my_number,
        capacity="",
    )  # fmt: skip
    value = d.value(huge)
    assert limits.MESSAGE_BYTES < len(value) < 1_000_000  # the broker takes it; the hub must not
    sent = await d.send(ATTACKER, value)
    cause = letter_cause(sent[0])
    tap, _, _ = await attack(d, done=lambda t: bool(t.audit(d.topics.audit, cause)))
    (letter,) = with_id(tap, d.topics.deadletter, cause)
    assert isinstance(letter, DeadLetter)
    assert (letter.reason, letter.source_offset) == (ErrorCode.MALFORMED_MESSAGE, sent[0].offset)
    assert len(letter.value) < limits.KEPT_BYTES + 1_000  # a sealed prefix, not 900 kB
    (error,) = with_id(tap, inbox(d), derive_id("dlq-error", cause))
    assert isinstance(error, HubError)
    assert error.code is ErrorCode.MALFORMED_MESSAGE
    assert f"over the limits of {limits.MESSAGE_BYTES}" in error.detail
    assert "RRRR" not in error.detail
    assert refused(tap, d, huge) == []  # it was never read, so nothing is correlated with it
    assert audited(tap, d, cause) == [(AuditStep.DEAD_LETTERED, "MALFORMED_MESSAGE", ATTACKER)]


async def test_a_field_over_its_limit_is_dead_lettered(secure_deployment: Deployment) -> None:
    d = secure_deployment
    long_ref = EnrolmentRequest.model_construct(
        header=Header.new(ATTACKER), record_ref="R" * (limits.ID + 1),
        my_number=d.person.my_number, capacity="",
    )  # fmt: skip
    sent = await d.send(ATTACKER, d.value(long_ref))
    cause = letter_cause(sent[0])
    tap, _, _ = await attack(d, done=lambda t: bool(t.audit(d.topics.audit, cause)))
    (error,) = with_id(tap, inbox(d), derive_id("dlq-error", cause))
    assert isinstance(error, HubError)
    assert error.code is ErrorCode.MALFORMED_MESSAGE
    assert "record_ref" in error.detail
    assert "RRRR" not in error.detail
    assert audited(tap, d, cause) == [(AuditStep.DEAD_LETTERED, "MALFORMED_MESSAGE", ATTACKER)]


async def test_a_2_mb_value_is_refused_by_the_broker(secure_deployment: Deployment) -> None:
    d = secure_deployment
    # The client's own size check is lifted, so the broker is the one that refuses it.
    async with d.producer(ATTACKER, max_request_size=4_000_000) as producer:
        with pytest.raises(MessageSizeTooLargeError):
            await producer.send_and_wait(
                d.topics.agency_out(ATTACKER), b"\xc3\x01" + bytes(2 << 20)
            )
    await attack(d, done=lambda t: True)


# -- link codes and scenarios -------------------------------------------------------------


async def test_a_forged_link_code_is_refused(secure_deployment: Deployment) -> None:
    d = secure_deployment
    own = d.codes[ATTACKER]
    forged = d.request(requester_link_code=own[:-2] + ("aa" if own[-2:] != "aa" else "ba"))
    await _refused_request(d, forged, ErrorCode.INVALID_LINK_CODE)


async def test_another_agencys_link_code_is_refused(secure_deployment: Deployment) -> None:
    d = secure_deployment
    await _refused_request(
        d, d.request(requester_link_code=d.codes[VICTIM]), ErrorCode.INVALID_LINK_CODE
    )


async def test_a_scenario_it_is_not_in_is_refused(secure_deployment: Deployment) -> None:
    d = secure_deployment
    # S003 lets the victim ask jps; the attacker asks under it with its own, genuine code.
    await _refused_request(d, d.request(scenario="S003"), ErrorCode.SCENARIO_MISMATCH)


async def _refused_request(d: Deployment, request: Message, code: ErrorCode) -> None:
    request_id = getattr(request, "request_id", None)
    tap, _, _ = await attack(
        d, d.value(request), done=refusal_seen(d, request), topics=(inbox(d, PROVIDER),)
    )
    assert refused(tap, d, request) == [(code, request_id, False)]
    assert audited(tap, d, request.header.message_id) == [(AuditStep.REFUSED, str(code), ATTACKER)]
    assert answers(tap, inbox(d, PROVIDER), request.header.message_id) == []  # nobody asked


# -- answers -----------------------------------------------------------------------------


def _answer(d: Deployment, hub_request_id: str, status: ResponseStatus) -> ProviderResponse:
    sealed = None
    if status is ResponseStatus.PROVIDED:  # what it claims to provide cannot open anyway
        sealed = SealedPayload(suite=HpkeSuite.X25519, enc=bytes(32), ciphertext=bytes(64))
    return ProviderResponse(
        header=Header.new(ATTACKER), hub_request_id=hub_request_id,
        provider_link_code=d.codes[ATTACKER], status=status, sealed=sealed, detail="",
    )  # fmt: skip


async def test_an_answer_to_a_request_never_sent_is_dropped(secure_deployment: Deployment) -> None:
    """Documented as a late answer: the hub keeps no request it never forwarded."""
    d = secure_deployment
    made_up = _answer(d, "0" * 32, ResponseStatus.NO_DATA)
    tap, _, _ = await attack(d, d.value(made_up), done=refusal_seen(d, made_up))
    assert refused(tap, d, made_up) == [(ErrorCode.TIMEOUT, "0" * 32, False)]
    assert audited(tap, d, made_up.header.message_id) == [(AuditStep.LATE_ANSWER, None, ATTACKER)]


async def test_an_answer_to_another_agencys_request_is_refused(
    secure_deployment: Deployment,
) -> None:
    """Answer stealing: the attacker answers a request the hub forwarded to jps."""
    d = secure_deployment
    jps, victim = inbox(d, PROVIDER), inbox(d, VICTIM)
    request = d.request(sender=VICTIM, scenario="S003")
    await d.send(VICTIM, d.value(request))
    async with d.tap(jps) as tap:
        await tap.until(lambda t: bool(answers(t, jps, request.header.message_id)))
    (forward,) = answers(tap, jps, request.header.message_id)
    assert isinstance(forward, ForwardedRequest)

    stolen = _answer(d, forward.hub_request_id, ResponseStatus.PROVIDED)
    tap, _, _ = await attack(d, d.value(stolen), done=refusal_seen(d, stolen), topics=(victim,))
    assert refused(tap, d, stolen) == [(ErrorCode.MALFORMED_MESSAGE, None, False)]
    assert audited(tap, d, stolen.header.message_id) == [
        (AuditStep.REFUSED, "MALFORMED_MESSAGE", ATTACKER)
    ]
    assert answers(tap, victim, request.header.message_id) == []  # the victim still waits

    # The request is still pending: jps's genuine answer reaches the victim, once.
    genuine = build_response(PROVIDER, forward, {"pension.benefit_status": "PAID"})
    await d.send(PROVIDER, d.value(genuine))
    async with d.tap(victim, d.topics.audit) as tap:
        await tap.until(lambda t: bool(t.audit(d.topics.audit, genuine.header.message_id)))
        await tap.drain()
    (response,) = answers(tap, victim, request.header.message_id)
    assert isinstance(response, AttributeResponse)
    assert open_response(response, request, d.reply) == {"pension.benefit_status": "PAID"}


async def test_a_hub_message_type_from_an_agency_is_refused(secure_deployment: Deployment) -> None:
    """An agency writing what only the hub writes (a forwarded request) gets it back."""
    d = secure_deployment
    fake = ForwardedRequest(
        header=Header.new(ATTACKER), hub_request_id="1" * 32,
        provider_link_code=d.codes[ATTACKER], requester=VICTIM, scenario_id="S003",
        legal_basis="none", items=("pension.benefit_status",),
        reply_public_key=d.reply.public_bytes, hpke_suite=HpkeSuite.X25519,
        deadline=Header.new(ATTACKER).sent_at, request_id="r",
    )  # fmt: skip
    tap, _, _ = await attack(d, d.value(fake), done=refusal_seen(d, fake))
    assert refused(tap, d, fake) == [(ErrorCode.MALFORMED_MESSAGE, "r", False)]
    assert audited(tap, d, fake.header.message_id) == [
        (AuditStep.REFUSED, "MALFORMED_MESSAGE", ATTACKER)
    ]
