"""The inbox reader without a broker: routing, de-duplication, one decode, refusals, commits.

A fake consumer records the offsets the reader commits; records are what the reader reads
of aiokafka's ``ConsumerRecord`` (offset and value).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest

from consumers import InboxReader, LifecycleSubscriber, ProviderService
from producers import AgencyClient
from renkei.crypto import AgencyKeys, SealingKeyPair, SigningKey
from renkei.envelope import sign_message
from renkei.errors import ConfigurationError, DecodeError, RenkeiError, SignatureError
from renkei.topics import Topics
from schemas.codec import Codec, default_codec
from schemas.models import (
    EnrolmentOutcome,
    EnrolmentResult,
    EventAction,
    EventKind,
    ForwardedRequest,
    Header,
    HpkeSuite,
    LifeEventNotice,
    Message,
    PersonMoved,
    now_ms,
)

CODEC = default_codec()
TOPICS = Topics(prefix="unit.")
HUB_KEY = SigningKey.generate()
HUB = HUB_KEY.public_bytes
TP = "partition-0"  # the reader only uses partitions as keys of its batches and commits


@dataclass(frozen=True)
class Record:
    offset: int
    value: bytes | None


class FakeConsumer:
    """Records every commit; the reader commits through ``consumer.commit(offsets)``."""

    def __init__(self) -> None:
        self.commits: list[dict[Any, int]] = []

    async def commit(self, offsets: dict[Any, int]) -> None:
        self.commits.append(dict(offsets))


class CountingCodec:
    """The codec, counting its decodes."""

    def __init__(self) -> None:
        self.decodes = 0

    def decode(self, data: bytes) -> Message:
        self.decodes += 1
        return CODEC.decode(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(CODEC, name)


def _reader(**settings: Any) -> tuple[InboxReader, FakeConsumer]:
    settings = {"hub_public_key": HUB_KEY.public_bytes, **settings}
    reader = InboxReader("jps", {}, TOPICS, group_id="unit.jps", **settings)
    consumer = FakeConsumer()
    reader._consumer = consumer  # stands in for a started, positioned AIOKafkaConsumer
    return reader, consumer


def _keys(agency_id: str = "jps") -> AgencyKeys:
    return AgencyKeys(agency_id, SigningKey.generate(), SealingKeyPair.generate())


def _result() -> EnrolmentResult:
    return EnrolmentResult(
        header=Header.new("hub"), record_ref="r", outcome=EnrolmentOutcome.NO_MATCH, detail=""
    )


def _notice() -> LifeEventNotice:
    return LifeEventNotice(
        header=Header.new("hub"), link_code="J-CODE", event_id="ev", kind=EventKind.MOVED,
        action=EventAction.ORIGINAL, effective_date=date(2025, 4, 1),
        body=PersonMoved(address="大阪市"),
    )  # fmt: skip


def _forwarded() -> ForwardedRequest:
    return ForwardedRequest(
        header=Header.new("hub"), hub_request_id="h" * 32, provider_link_code="J-CODE",
        requester="city-a", scenario_id="S-001", legal_basis="番号法", items=("x",),
        reply_public_key=SealingKeyPair.generate().public_bytes, hpke_suite=HpkeSuite.X25519,
        deadline=now_ms() + timedelta(seconds=10),
    )  # fmt: skip


def _records(*messages: Message | bytes) -> list[Record]:
    return [
        Record(i, m if isinstance(m, bytes) else CODEC.encode(sign_message(m, HUB_KEY, CODEC)))
        for i, m in enumerate(messages)
    ]


class Handled:
    """A handler that records what it was handed."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> bool:
        self.messages.append(message)
        return True


# -- dispatch --------------------------------------------------------------------------


async def test_each_message_goes_to_the_handler_of_its_type_and_the_rest_elsewhere() -> None:
    reader, _ = _reader()
    results, notices, rest = Handled(), Handled(), Handled()
    reader.route(EnrolmentResult, results)
    reader.route(LifeEventNotice, notices)
    result, notice, forwarded = _result(), _notice(), _forwarded()
    await reader.handle_batch({TP: _records(result, notice, forwarded)})
    assert [m.header.message_id for m in results.messages] == [result.header.message_id]
    assert [m.header.message_id for m in notices.messages] == [notice.header.message_id]
    assert reader.ignored == 1  # the forwarded request: nobody routed it, nobody takes the rest
    reader.route_rest(rest)
    await reader.handle_batch({TP: _records(_forwarded())})
    assert [type(m) for m in rest.messages] == [ForwardedRequest]
    with pytest.raises(ConfigurationError, match="EnrolmentResult"):
        reader.route(EnrolmentResult, Handled())
    with pytest.raises(ConfigurationError, match="rest"):
        reader.route_rest(Handled())


async def test_a_message_id_is_handled_once_ordered_or_concurrent() -> None:
    for ordered in (True, False):
        reader, _ = _reader()
        handled = Handled()
        reader.route(ForwardedRequest, handled, ordered=ordered)
        forwarded = _forwarded()
        # the hub re-sent it: same message id, in this batch and in a later one
        await reader.handle_batch({TP: _records(forwarded, forwarded)})
        await reader.handle_batch({TP: _records(forwarded)})
        assert len(handled.messages) == 1, f"ordered={ordered}"
        assert reader.duplicates == 2


async def test_a_handler_that_raised_gets_its_message_again() -> None:
    reader, _ = _reader()
    failures = [RuntimeError("database down")]

    async def flaky(message: LifeEventNotice) -> bool:
        if failures:
            raise failures.pop()
        return True

    reader.route(LifeEventNotice, flaky)
    notice = sign_message(_notice(), HUB_KEY, CODEC)
    with pytest.raises(RuntimeError):
        await reader.dispatch(notice)
    assert await reader.dispatch(notice)
    assert not await reader.dispatch(notice)
    assert reader.duplicates == 1


async def test_each_record_is_decoded_once_for_client_provider_and_subscriber() -> None:
    codec = CountingCodec()
    inbox = InboxReader("jps", {}, TOPICS, group_id="unit.jps", codec=codec, hub_public_key=HUB)  # type: ignore[arg-type]  # fmt: skip
    inbox._consumer = FakeConsumer()
    keys = _keys()
    notices: list[LifeEventNotice] = []

    async def on_move(notice: LifeEventNotice) -> None:
        notices.append(notice)

    client = AgencyClient("jps", keys, {}, TOPICS, inbox=inbox)
    provider = ProviderService("jps", keys, {}, TOPICS, _no_data, inbox=inbox)
    subscriber = LifecycleSubscriber(
        "jps", keys, {}, TOPICS, {EventKind.MOVED: on_move}, inbox=inbox
    )
    sent: list[bytes] = []

    class Outbox:
        async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
            sent.append(value)

    provider._producer = Outbox()
    waiting = client._calls.register("e" * 32)
    result = _result().model_copy(update={"header": Header.new("hub", "e" * 32)})
    records = _records(result, _notice(), _forwarded(), _result())
    assert await inbox.handle_batch({TP: records}) == {TP: 4}
    assert codec.decodes == 4  # one decode a record, whoever handles it
    assert waiting.result().header.message_id == result.header.message_id
    assert subscriber.notices == len(notices) == 1
    assert provider.handled == 1
    assert len(sent) == 1
    assert client.unmatched_count == 1  # the second result: no call waits for it
    assert inbox.ignored == 0


async def _no_data(request: ForwardedRequest) -> None:
    return None


# -- refusals ----------------------------------------------------------------------------


async def test_bad_signatures_and_undecodable_records_are_refused_with_typed_errors() -> None:
    refused: list[RenkeiError] = []
    reader, consumer = _reader(hub_public_key=HUB_KEY.public_bytes, on_rejected=refused.append)
    handled = Handled()
    reader.route(EnrolmentResult, handled)
    forged = CODEC.encode(sign_message(_result(), SigningKey.generate(), CODEC))
    genuine = _records(_result())[0].value
    records = [Record(0, forged), Record(1, b"\x00garbage"), Record(2, None), Record(3, genuine)]
    assert await reader.handle_batch({TP: records}) == {TP: 4}
    assert isinstance(refused[0], SignatureError)
    assert [isinstance(e, DecodeError) for e in refused] == [False, True, True]
    assert "signed by another key: not the hub's signature" in str(refused[0])
    assert (reader.bad_signatures, reader.undecodable) == (1, 2)
    assert len(handled.messages) == 1  # only the genuine one
    assert consumer.commits == [{TP: 4}]  # refused records are handled by being dropped


# -- commits ---------------------------------------------------------------------------


async def test_offsets_are_committed_only_after_the_handlers_returned() -> None:
    reader, consumer = _reader()
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(message: ForwardedRequest) -> bool:
        started.set()
        await release.wait()
        return True

    reader.route(ForwardedRequest, slow, ordered=False)
    batch = asyncio.create_task(reader.handle_batch({TP: _records(_forwarded(), _forwarded())}))
    await started.wait()
    assert consumer.commits == []  # the handlers are still running
    release.set()
    assert await batch == {TP: 2}
    assert consumer.commits == [{TP: 2}]


async def test_a_failing_handler_stops_the_commit_before_its_record() -> None:
    reader, consumer = _reader()
    handled = Handled()

    async def on_notice(message: LifeEventNotice) -> bool:
        if message.event_id == "bad":
            raise RuntimeError("cannot apply")
        return await handled(message)

    reader.route(LifeEventNotice, on_notice)
    bad = _notice().model_copy(update={"event_id": "bad"})
    other_partition = "partition-1"
    with pytest.raises(RuntimeError):
        await reader.handle_batch(
            {TP: _records(_notice(), bad, _notice()), other_partition: _records(_notice())}
        )
    # handled before the failure: committed; the failed one and everything after: not
    assert consumer.commits == [{TP: 1}]
    assert len(handled.messages) == 1


async def test_a_failing_concurrent_handler_stops_the_commit_before_its_record() -> None:
    reader, consumer = _reader()
    bad = _forwarded()

    async def lookup(message: ForwardedRequest) -> bool:
        if message.header.message_id == bad.header.message_id:
            raise RuntimeError("lookup failed")
        return True

    reader.route(ForwardedRequest, lookup, ordered=False)
    with pytest.raises(RuntimeError):
        await reader.handle_batch({TP: _records(_forwarded(), bad, _forwarded())})
    assert consumer.commits == [{TP: 1}]  # the third ran, but comes after the failure


async def test_a_stopped_batch_commits_what_was_handled() -> None:
    reader, consumer = _reader()
    started = asyncio.Event()

    async def on_notice(message: LifeEventNotice) -> bool:
        if message.event_id == "stuck":
            started.set()
            await asyncio.Event().wait()  # until cancelled
        return True

    reader.route(LifeEventNotice, on_notice)
    stuck = _notice().model_copy(update={"event_id": "stuck"})
    batch = asyncio.create_task(reader.handle_batch({TP: _records(_notice(), stuck)}))
    await started.wait()
    batch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch
    assert consumer.commits == [{TP: 1}]


async def test_without_a_group_nothing_is_committed() -> None:
    reader = InboxReader("jps", {}, TOPICS, hub_public_key=HUB)
    consumer = FakeConsumer()
    reader._consumer = consumer
    reader.route(EnrolmentResult, Handled())
    assert await reader.handle_batch({TP: _records(_result())}) == {TP: 1}
    assert consumer.commits == []


# -- configuration -------------------------------------------------------------------------


def test_sharing_a_reader_is_checked() -> None:
    keys = _keys()
    balanced = InboxReader("jps", {}, TOPICS, group_id="g", share_partitions=True, hub_public_key=HUB)  # fmt: skip  # noqa: E501
    with pytest.raises(ConfigurationError, match="every partition"):
        AgencyClient("jps", keys, {}, TOPICS, inbox=balanced)
    with pytest.raises(ConfigurationError, match="group_id"):
        ProviderService("jps", keys, {}, TOPICS, _no_data, group_id="g", inbox=balanced)
    with pytest.raises(ConfigurationError, match="city-a"):
        LifecycleSubscriber(
            "jps", keys, {}, TOPICS, {}, inbox=InboxReader("city-a", {}, TOPICS, hub_public_key=HUB)
        )
    with pytest.raises(ConfigurationError, match="group_id"):
        InboxReader("jps", {}, TOPICS, share_partitions=True, hub_public_key=HUB)
    with pytest.raises(ConfigurationError, match="max_batch"):
        InboxReader("jps", {}, TOPICS, max_batch=0, hub_public_key=HUB)
    with pytest.raises(ConfigurationError, match="verify_hub"):
        ProviderService("jps", keys, {}, TOPICS, _no_data, group_id="g", verify_hub=False, inbox=balanced)  # fmt: skip  # noqa: E501
    codec: Codec = CODEC
    provider = ProviderService("jps", keys, {}, TOPICS, _no_data, codec=codec, hub_public_key=HUB)
    assert provider.reader.codec is codec


async def test_run_before_start_is_refused() -> None:
    reader = InboxReader("jps", {}, TOPICS, hub_public_key=HUB)
    with pytest.raises(ConfigurationError, match="before start"):
        await reader.run()
    provider = ProviderService("jps", _keys(), {}, TOPICS, _no_data, inbox=reader)
    with pytest.raises(ConfigurationError, match="shares its inbox"):
        await provider.run()
