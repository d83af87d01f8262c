"""The agency side without a broker: routing of answers, sealing, provider answers, registry.

A fake producer stands in for Kafka and a fake hub answers the way ``hub_stream``
does (same ids, same correlation), so the client's and the provider's logic run whole.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

import pytest

from consumers.provider import ProviderService, build_response, response_id
from hub_stream.ids import derive_id
from producers.agency_client import AgencyClient, open_response
from producers.registry_publisher import RegistryPublisher, event_message_id
from renkei.crypto import AgencyKeys, SealingKeyPair, SigningKey
from renkei.envelope import sign_message, verify_message
from renkei.errors import (
    ConfigurationError,
    ExchangeError,
    HubRefusedError,
    ProviderDeclinedError,
    RequestTimeoutError,
    SealingError,
)
from renkei.topics import Topics
from schemas.codec import default_codec
from schemas.models import (
    AttributeRequest,
    AttributeResponse,
    Basic4,
    EnrolmentOutcome,
    EnrolmentRequest,
    EnrolmentResult,
    ErrorCode,
    EventAction,
    EventKind,
    ForwardedRequest,
    Header,
    HpkeSuite,
    HubError,
    LifeEventNotice,
    Message,
    NumberReissued,
    PersonDied,
    PersonMoved,
    PersonRegistered,
    PersonRenamed,
    ProviderResponse,
    RegistryEvent,
    ResponseStatus,
    Sex,
    now_ms,
)
from tests.unit.hub_world import B4, NUMBERS

CODEC = default_codec()
M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class _Record:
    """What the reader uses of an aiokafka ConsumerRecord."""

    offset: int
    value: bytes | None


TOPICS = Topics(prefix="unit.")
HUB_KEY = SigningKey.generate()
HUB = HUB_KEY.public_bytes


def _keys(agency_id: str) -> AgencyKeys:
    return AgencyKeys(agency_id, SigningKey.generate(), SealingKeyPair.generate())


def _signed(message: M) -> M:
    return sign_message(message, HUB_KEY, CODEC)


def _hub(message: Message) -> bytes:
    return CODEC.encode(_signed(message))


def _forwarded(
    request: AttributeRequest, requester: str = "city-a", *, deadline_s: float = 10
) -> ForwardedRequest:
    """What ``hub_stream.exchange.request`` sends the provider."""
    hub_request_id = derive_id("hub-request", requester, request.header.message_id)
    return ForwardedRequest(
        header=Header.new(
            "hub", request.header.message_id, message_id=derive_id("forward", hub_request_id)
        ),
        hub_request_id=hub_request_id,
        provider_link_code="B-CODE",
        requester=requester,
        scenario_id=request.scenario_id,
        legal_basis="番号法 別表 1",
        items=request.items,
        reply_public_key=request.reply_public_key,
        hpke_suite=request.hpke_suite,
        deadline=now_ms() + timedelta(seconds=deadline_s),
        request_id=request.request_id,
    )


def _routed(request: AttributeRequest, answer: ProviderResponse) -> AttributeResponse:
    """What ``hub_stream.exchange.respond`` sends the requester."""
    return AttributeResponse(
        header=Header.new(
            "hub", request.header.message_id, message_id=derive_id("answer", answer.hub_request_id)
        ),
        request_id=request.request_id,
        requester_link_code=request.requester_link_code,
        provider=request.provider,
        scenario_id=request.scenario_id,
        status=answer.status,
        sealed=answer.sealed,
        detail=answer.detail,
    )


class FakeHub:
    """A producer for the client: checks what it gets and answers like the hub."""

    def __init__(self, requester: AgencyKeys, provider: ProviderService | None = None) -> None:
        self.requester = requester
        self.provider = provider
        self.client: AgencyClient | None = None
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.copies = 1
        self.silent = False
        self.refuse: ErrorCode | None = None

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        assert self.client is not None
        self.sent.append((topic, value, key))
        message = CODEC.decode(value)
        verify_message(message, self.requester.signing.public_bytes, CODEC)
        if self.silent:
            return
        answer: Message
        cause = message.header.message_id
        if self.refuse is not None:
            answer = HubError(
                header=Header.new("hub", cause, message_id=derive_id("refusal", cause)),
                code=self.refuse,
                detail="refused by the fake hub",
                request_id=getattr(message, "request_id", None),
                retriable=False,
            )
        elif isinstance(message, EnrolmentRequest):
            answer = EnrolmentResult(
                header=Header.new("hub", cause, message_id=derive_id("enrol", cause)),
                record_ref=message.record_ref,
                outcome=EnrolmentOutcome.LINKED,
                link_code="A-CODE",
                detail="",
            )
        else:
            assert isinstance(message, AttributeRequest)
            assert self.provider is not None
            provided = await self.provider.answer(_forwarded(message, self.requester.agency_id))
            verify_message(provided, self.provider.keys.signing.public_bytes, CODEC)
            answer = _routed(message, CODEC.decode(CODEC.encode(provided)))  # type: ignore[arg-type]
        for _ in range(self.copies):
            self.client.dispatch_bytes(_hub(answer))


def _client(keys: AgencyKeys, fake: FakeHub, **kwargs: Any) -> AgencyClient:
    client = AgencyClient(
        keys.agency_id, keys, {}, TOPICS, hub_public_key=HUB_KEY.public_bytes, **kwargs
    )
    client._producer = fake  # stands in for a started AIOKafkaProducer
    fake.client = client
    return client


def _provider(keys: AgencyKeys, handler: Any) -> ProviderService:
    return ProviderService(keys.agency_id, keys, {}, TOPICS, handler, hub_public_key=HUB)


async def _values(request: ForwardedRequest) -> dict[str, Any]:
    return {"income_2024": 3_120_000, "tax_bracket": "B", "bank_account": "never asked for"}


# -- sealing (the AAD itself: test_exchange_binding.py) ---------------------------------


@pytest.mark.parametrize("suite", ["X25519", "MLKEM768_X25519"])
async def test_values_the_provider_seals_open_only_for_the_exchange_they_answer(suite: Any) -> None:
    reply = SealingKeyPair.generate(suite)
    request = AttributeRequest(
        header=Header.new("city-a"),
        request_id="r-1",
        requester_link_code="A-CODE",
        provider="tax-b",
        scenario_id="S-001",
        items=("income_2024", "tax_bracket"),
        reply_public_key=reply.public_bytes,
        hpke_suite=HpkeSuite(suite),
        deadline=now_ms() + timedelta(seconds=10),
    )
    forwarded = _forwarded(request)
    answer = build_response("tax-b", forwarded, await _values(forwarded))
    assert answer.status is ResponseStatus.PROVIDED
    assert answer.header.correlation_id == forwarded.header.message_id
    routed = _routed(request, answer)
    opened = open_response(routed, request, reply)
    assert opened == {"income_2024": 3_120_000, "tax_bracket": "B"}  # only what was asked
    for other in (
        {"provider": "pension-c"},
        {"scenario_id": "S-009"},
        {"request_id": "r-2"},
        {"items": ("income_2024",)},
        {"header": Header.new("city-z")},
    ):
        with pytest.raises(SealingError):
            open_response(routed, request.model_copy(update=other), reply)


# -- the client's routing ---------------------------------------------------------------


async def test_enrolment_result_resolves_the_call_it_answers_and_a_duplicate_is_dropped() -> None:
    keys = _keys("city-a")
    fake = FakeHub(keys)
    fake.copies = 2  # the hub re-sent after a crash: same message id
    client = _client(keys, fake)
    basic4 = Basic4(
        name="山田 太郎", name_kana="ヤマダ タロウ", birth_date=date(1980, 4, 1), sex=Sex.MALE,
        address="東京都千代田区千代田1-1",
    )  # fmt: skip
    result = await client.enrol("rec-1", basic4=basic4, capacity="resident")
    assert result.link_code == "A-CODE"
    assert result.record_ref == "rec-1"
    assert client.duplicates_dropped == 1
    assert client.unmatched_count == 0
    assert client.waiting == 0
    topic, _, key = fake.sent[0]
    assert topic == TOPICS.agency_out("city-a")
    assert key == b"rec-1"


async def test_dispatch_routes_by_correlation_and_request_id() -> None:
    client = AgencyClient("city-a", _keys("city-a"), {}, TOPICS, hub_public_key=HUB)
    enrol = client._calls.register("e" * 32)
    other = client._calls.register("f" * 32)
    asked = client._calls.register("req-7")
    result = _signed(EnrolmentResult(
        header=Header.new("hub", "e" * 32), record_ref="r", outcome=EnrolmentOutcome.NO_MATCH,
        detail="no person matches",
    ))  # fmt: skip
    refusal = _signed(HubError(
        header=Header.new("hub", "a" * 32), code=ErrorCode.SCENARIO_MISMATCH, detail="no",
        request_id="req-7", retriable=False,
    ))  # fmt: skip
    assert client.dispatch(result)
    assert client.dispatch(refusal)
    assert enrol.result() is result
    assert asked.result() is refusal
    assert not other.done()
    assert not client.dispatch(result)  # the same message again
    assert client.duplicates_dropped == 1
    assert client.waiting == 1


async def test_messages_nobody_waits_for_are_handed_on() -> None:
    client = AgencyClient(
        "city-a", _keys("city-a"), {}, TOPICS, hub_public_key=HUB, unmatched_maxsize=1
    )
    notice = _signed(LifeEventNotice(
        header=Header.new("hub"), link_code="A-CODE", event_id="ev-1", kind=EventKind.MOVED,
        action=EventAction.ORIGINAL, effective_date=date(2025, 1, 1),
        body=PersonMoved(address="大阪市"),
    ))  # fmt: skip
    assert not client.dispatch(notice)
    assert client.unmatched.get_nowait() is notice
    seen: list[Message] = []
    client.on_unmatched = seen.append
    late = _signed(notice.model_copy(update={"header": Header.new("hub")}))
    client.dispatch(late)
    assert seen == [late]
    assert client.unmatched_count == 2


async def test_answers_not_signed_by_the_hub_are_dropped() -> None:
    client = AgencyClient(
        "city-a", _keys("city-a"), {}, TOPICS, hub_public_key=HUB_KEY.public_bytes
    )
    future = client._calls.register("e" * 32)
    forged = EnrolmentResult(
        header=Header.new("hub", "e" * 32), record_ref="r", outcome=EnrolmentOutcome.LINKED,
        link_code="FORGED", detail="",
    )  # fmt: skip
    assert not client.dispatch(sign_message(forged, SigningKey.generate(), CODEC))
    assert client.bad_signatures == 1
    assert not future.done()
    assert client.dispatch_bytes(_hub(forged))
    assert not client.dispatch_bytes(b"\x00garbage")
    assert client.undecodable == 1


async def test_a_hub_error_becomes_hub_refused_error_with_its_code() -> None:
    keys = _keys("city-a")
    fake = FakeHub(keys)
    fake.refuse = ErrorCode.MALFORMED_MESSAGE
    client = _client(keys, fake)
    with pytest.raises(HubRefusedError) as caught:
        await client.enrol("rec-1")
    assert caught.value.code is ErrorCode.MALFORMED_MESSAGE
    assert caught.value.retriable is False
    fake.refuse = ErrorCode.ITEM_NOT_PERMITTED
    with pytest.raises(HubRefusedError) as caught:
        await client.request(link_code="A", provider="tax-b", scenario_id="S-001", items=["x"])
    assert caught.value.code is ErrorCode.ITEM_NOT_PERMITTED
    assert client.waiting == 0


async def test_no_answer_at_all_is_a_request_timeout() -> None:
    keys = _keys("city-a")
    fake = FakeHub(keys)
    fake.silent = True
    client = _client(keys, fake, grace_s=0.0)
    with pytest.raises(RequestTimeoutError):
        await client.request(
            link_code="A", provider="tax-b", scenario_id="S-001", items=["x"], deadline_s=0.05
        )
    assert client.waiting == 0


async def test_a_stopped_client_fails_its_waiting_calls() -> None:
    keys = _keys("city-a")
    fake = FakeHub(keys)
    fake.silent = True
    client = _client(keys, fake)
    call = asyncio.ensure_future(client.enrol("rec-1"))
    await asyncio.sleep(0)
    client._producer = None
    await client.stop()
    with pytest.raises(ExchangeError, match="stopped"):
        await call
    with pytest.raises(ExchangeError, match="not started"):
        await client.enrol("rec-2")


# -- a whole exchange through the fake hub ----------------------------------------------


@pytest.mark.parametrize("reply_keys", ["per_client", "per_request"])
async def test_thousands_of_concurrent_requests_each_get_their_own_values(reply_keys: Any) -> None:
    async def handler(request: ForwardedRequest) -> dict[str, Any]:
        return {"income_2024": int(request.hub_request_id[:6], 16)}

    provider = _provider(_keys("tax-b"), handler)
    keys = _keys("city-a")
    fake = FakeHub(keys, provider)
    fake.copies = 2
    client = _client(keys, fake, reply_keys=reply_keys)
    request_ids = [f"req-{i}" for i in range(1000 if reply_keys == "per_client" else 100)]
    results = await asyncio.gather(
        *(
            client.request(link_code="A-CODE", provider="tax-b", scenario_id="S-001",
                           items=["income_2024"], request_id=rid)
            for rid in request_ids
        )
    )  # fmt: skip
    # each answer is the one for its own request: the value derives from its hub request id
    for (_, value, _), result in zip(fake.sent, results, strict=True):
        request = CODEC.decode(value)
        assert isinstance(request, AttributeRequest)
        hub_request_id = derive_id("hub-request", "city-a", request.header.message_id)
        assert result == {"income_2024": int(hub_request_id[:6], 16)}
    assert client.duplicates_dropped == len(request_ids)
    assert provider.handled == len(request_ids)
    keys_used = {CODEC.decode(v).reply_public_key for _, v, _ in fake.sent}  # type: ignore[attr-defined]
    assert len(keys_used) == (1 if reply_keys == "per_client" else len(request_ids))


async def test_no_data_and_refusals_are_provider_declined_errors() -> None:
    async def nothing(request: ForwardedRequest) -> None:
        return None

    async def broken(request: ForwardedRequest) -> dict[str, Any]:
        raise RuntimeError("database down; last query for 山田 太郎")

    keys = _keys("city-a")
    for handler, status in ((nothing, ResponseStatus.NO_DATA), (broken, ResponseStatus.REFUSED)):
        provider = _provider(_keys("tax-b"), handler)
        client = _client(keys, FakeHub(keys, provider))
        with pytest.raises(ProviderDeclinedError) as caught:
            await client.request(link_code="A", provider="tax-b", scenario_id="S-1", items=["x"])
        assert caught.value.status is status
        assert "山田" not in caught.value.detail


# -- the provider's answers -------------------------------------------------------------


def _request_for(reply: SealingKeyPair) -> AttributeRequest:
    return AttributeRequest(
        header=Header.new("city-a"), request_id="r-1", requester_link_code="A-CODE",
        provider="tax-b", scenario_id="S-001", items=("income_2024",),
        reply_public_key=reply.public_bytes, hpke_suite=HpkeSuite.X25519,
        deadline=now_ms() + timedelta(seconds=10),
    )  # fmt: skip


async def test_a_re_answer_after_a_crash_has_the_same_message_id() -> None:
    provider = _provider(_keys("tax-b"), _values)
    forwarded = _forwarded(_request_for(SealingKeyPair.generate()))
    first, again = await provider.answer(forwarded), await provider.answer(forwarded)
    assert first.header.message_id == again.header.message_id
    assert first.header.message_id == response_id("tax-b", forwarded.header.message_id)
    assert first.sealed != again.sealed  # HPKE is randomised; the id is what dedups
    assert first.hub_request_id == forwarded.hub_request_id
    assert first.provider_link_code == "B-CODE"
    verify_message(first, provider.keys.signing.public_bytes, CODEC)
    assert provider.extra_items_dropped == 4


async def test_the_provider_refuses_without_asking_the_handler_past_the_deadline() -> None:
    calls: list[ForwardedRequest] = []

    async def handler(request: ForwardedRequest) -> dict[str, Any]:
        calls.append(request)
        return {}

    provider = _provider(_keys("tax-b"), handler)
    expired = _forwarded(_request_for(SealingKeyPair.generate()), deadline_s=-1)
    answer = await provider.answer(expired)
    assert answer.status is ResponseStatus.REFUSED
    assert answer.sealed is None
    assert calls == []
    assert provider.refused == 1


async def test_an_unusable_reply_key_is_refused_not_raised() -> None:
    provider = _provider(_keys("tax-b"), _values)
    forwarded = _forwarded(_request_for(SealingKeyPair.generate()))
    bad = forwarded.model_copy(update={"hpke_suite": HpkeSuite.UNKNOWN})
    assert (await provider.answer(bad)).status is ResponseStatus.REFUSED


async def test_the_provider_reads_only_forwarded_requests_once() -> None:
    provider = _provider(_keys("tax-b"), _values)
    sent: list[tuple[str, bytes, bytes]] = []

    class Outbox:
        async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
            sent.append((topic, value, key))

    provider._producer = Outbox()  # stands in for a started AIOKafkaProducer
    forwarded = _forwarded(_request_for(SealingKeyPair.generate()))
    notice = HubError(
        header=Header.new("hub"), code=ErrorCode.TIMEOUT, detail="late", retriable=False
    )
    records = [_Record(i, _hub(m)) for i, m in enumerate((forwarded, forwarded, notice))]
    assert await provider.reader.handle_batch({0: records}) == {0: 3}
    assert [CODEC.decode(v).header.correlation_id for _, v, _ in sent] == [
        forwarded.header.message_id
    ]
    assert provider.duplicates_dropped == 1
    assert provider.ignored == 1


def test_keys_of_another_agency_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="keys of 'tax-b'"):
        AgencyClient("city-a", _keys("tax-b"), {}, TOPICS, hub_public_key=HUB)
    with pytest.raises(ConfigurationError, match="keys of 'tax-b'"):
        ProviderService("city-a", _keys("tax-b"), {}, TOPICS, _values, hub_public_key=HUB)
    with pytest.raises(ConfigurationError):
        RegistryPublisher(_keys("city-a"), {}, TOPICS)


# -- the registry publisher -------------------------------------------------------------


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        self.sent.append((topic, value, key))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def flush(self) -> None:
        return None


async def test_registry_events_are_signed_keyed_by_resident_code_with_stable_ids() -> None:
    keys = _keys("registry")
    publisher = RegistryPublisher(keys, {}, TOPICS)
    fake = FakeProducer()
    publisher._producer = fake
    moved = await publisher.move("12345678901", "大阪府大阪市北区1-1", date(2025, 4, 1))
    again = await publisher.move("12345678901", "大阪府大阪市北区1-1", date(2025, 4, 1), moved)
    annulled = await publisher.annul("12345678901", moved, EventKind.MOVED, date(2025, 4, 2))
    await publisher.flush()
    events = [CODEC.decode(value) for _, value, _ in fake.sent]
    assert all(isinstance(e, RegistryEvent) for e in events)
    assert {topic for topic, _, _ in fake.sent} == {TOPICS.registry_events}
    assert {key for _, _, key in fake.sent} == {b"12345678901"}
    for event in events:
        verify_message(event, keys.signing.public_bytes, CODEC)
    assert again == moved
    assert events[0].header.message_id == events[1].header.message_id == event_message_id(moved)
    last = events[2]
    assert isinstance(last, RegistryEvent)
    assert last.event_id == annulled
    assert last.corrects_event_id == moved
    assert last.body is None
    assert publisher.published == 3


async def test_each_registry_shorthand_publishes_its_kind_with_the_body_of_that_kind() -> None:
    publisher = RegistryPublisher(_keys("registry"), {}, TOPICS)
    publisher._producer = FakeProducer()
    code, day, death = "12345678901", date(2025, 4, 1), date(2025, 3, 30)
    registered = await publisher.register(code, NUMBERS[0], B4, day)
    await publisher.move(code, "大阪府大阪市北区1-1", day)
    await publisher.rename(code, "山田 花子", "ヤマダ ハナコ", day)
    await publisher.die(code, death)  # effective on the date of death
    await publisher.reissue_number(code, NUMBERS[1], day)
    await publisher.correct(code, registered, EventKind.REGISTERED, PersonRegistered(
        my_number=NUMBERS[2], basic4=B4), day)  # fmt: skip
    await publisher.annul(code, registered, EventKind.REGISTERED, day)
    decoded = [CODEC.decode(value) for _, value, _ in publisher._producer.sent]
    events = [e for e in decoded if isinstance(e, RegistryEvent)]
    assert len(events) == len(decoded)
    seen = [(e.kind, e.action, e.body, e.effective_date, e.corrects_event_id) for e in events]
    assert seen == [
        (EventKind.REGISTERED, EventAction.ORIGINAL, PersonRegistered(
            my_number=NUMBERS[0], basic4=B4), day, None),
        (EventKind.MOVED, EventAction.ORIGINAL, PersonMoved(address="大阪府大阪市北区1-1"),
            day, None),
        (EventKind.RENAMED, EventAction.ORIGINAL, PersonRenamed(
            name="山田 花子", name_kana="ヤマダ ハナコ"), day, None),
        (EventKind.DIED, EventAction.ORIGINAL, PersonDied(date_of_death=death), death, None),
        (EventKind.NUMBER_REISSUED, EventAction.ORIGINAL, NumberReissued(my_number=NUMBERS[1]),
            day, None),
        (EventKind.REGISTERED, EventAction.CORRECTION, PersonRegistered(
            my_number=NUMBERS[2], basic4=B4), day, registered),
        (EventKind.REGISTERED, EventAction.ANNULMENT, None, day, registered),
    ]  # fmt: skip


async def test_a_registry_publisher_in_async_with_stops_even_when_the_body_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publisher = RegistryPublisher(_keys("registry"), {}, TOPICS)
    calls: list[str] = []

    async def start() -> None:
        calls.append("start")

    async def stop() -> None:
        calls.append("stop")

    async def use() -> None:
        async with publisher as entered:
            assert entered is publisher
            raise LookupError

    monkeypatch.setattr(publisher, "start", start)  # no broker in unit tests
    monkeypatch.setattr(publisher, "stop", stop)
    with pytest.raises(LookupError):
        await use()
    assert calls == ["start", "stop"]
