"""The requester and the provider of ``benchmarks.hops``, stamping every hop they see.

``sdk_agents``: the agency SDK, as agencies run it. ``lean_agents``: bare aiokafka
clients (``read_committed``, as every reader) that write requests built and signed before
the clock runs and answer each forwarded request at once with a payload sealed once —
the hub is offered the same messages, but the agencies' CPU (HPKE, Ed25519, pydantic)
stays out of the two cores the hub and the broker share.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from benchmarks.exchange import PROVIDER, REQUESTER
from consumers.provider import ProviderService, response_id
from hub_stream.ids import derive_id
from producers.agency_client import AgencyClient
from renkei.crypto import SealingKeyPair, keystore, seal
from renkei.demo import Connections
from renkei.envelope import sign_message
from renkei.errors import ExchangeError
from renkei.operator.directory_file import load_directory_file
from renkei.readers import committed_reader, topic_partitions
from renkei.topics import Topics
from schemas.codec import default_codec
from schemas.models import (
    AttributeRequest,
    AttributeResponse,
    ForwardedRequest,
    Header,
    HpkeSuite,
    HubError,
    Message,
    ProviderResponse,
    ResponseStatus,
    SealedPayload,
)

__all__ = ["Agents", "lean_agents", "sdk_agents"]


class Agents:
    """What both kinds share: the stamps, the records they wrote, and the offering."""

    def __init__(self) -> None:
        self.stamps: dict[str, dict[str, float]] = {}
        """Per request id: hop name → ``time.monotonic()``."""
        self.records: dict[tuple[str, int, int], str] = {}
        """(topic, partition, offset) of every record written → its request id."""
        self.by_hub_request: dict[str, str] = {}
        self.unanswered = 0
        self.offered_per_s = 0.0
        self.round = 0
        """Rounds offered so far: request ids are unique across them."""
        scenario = next(s for s in load_directory_file().scenarios
                        if s.requester == REQUESTER and s.provider == PROVIDER)  # fmt: skip
        self.scenario_id, self.items = scenario.scenario_id, scenario.items[:1]

    def stamp(self, request_id: str | None, hop: str) -> None:
        if request_id is not None and request_id in self.stamps:
            self.stamps[request_id][hop] = time.monotonic()

    def wrote(self, request_id: str | None, meta: Any, hop: str) -> None:
        if request_id is not None and request_id in self.stamps:
            self.stamps[request_id][hop] = time.monotonic()
            self.records[(meta.topic, meta.partition, meta.offset)] = request_id

    async def one(self, code: str, i: int) -> None:
        """One exchange, from the request's writing to its answer."""
        raise NotImplementedError

    async def prepare(self, codes: list[str], count: int) -> None:
        """Build what ``count`` exchanges will send (before the clock runs)."""

    def request_id(self, i: int) -> str:
        return f"r{self.round}h{i}"

    async def offer(self, codes: list[str], rate: int, seconds: float) -> None:
        """``rate`` exchanges/s for ``seconds`` (0: one at a time), each to its answer."""
        self.round += 1
        self.unanswered = 0
        await self.prepare(codes, int(rate * seconds) if rate else 3_000)
        started = time.perf_counter()
        if rate == 0:
            i = 0
            while time.perf_counter() - started < seconds:
                await self.one(codes[i % len(codes)], i)
                i += 1
            self.offered_per_s = i / (time.perf_counter() - started)
            return
        tasks: list[asyncio.Task[None]] = []
        for step in range(int(seconds * 100)):  # every 10 ms, those due by then
            while len(tasks) < (step + 1) * rate // 100:
                i = len(tasks)
                tasks.append(asyncio.create_task(self.one(codes[i % len(codes)], i)))
            await asyncio.sleep(max(0.0, started + (step + 1) * 0.01 - time.perf_counter()))
        self.offered_per_s = len(tasks) / (time.perf_counter() - started)
        await asyncio.gather(*tasks)


class _Sdk(Agents):
    def __init__(self, client: AgencyClient, provider: ProviderService) -> None:
        super().__init__()
        self.client = client
        for service, on in ((client, self._requested), (provider, self._answered)):
            _capture_publish(service, on)
        match, answer = client._match, provider._answer

        def matched(message: Message) -> bool:
            if isinstance(message, AttributeResponse):
                self.stamp(message.request_id, "answer")
            return match(message)

        async def answering(request: ForwardedRequest) -> ProviderResponse:
            self.stamp(self.by_hub_request.get(request.hub_request_id), "prov")
            return await answer(request)

        client._match = matched  # type: ignore[method-assign]
        provider._answer = answering  # type: ignore[method-assign]

    def _requested(self, message: Message, meta: Any) -> None:
        if isinstance(message, AttributeRequest):
            hub_id = derive_id("hub-request", REQUESTER, message.header.message_id)
            self.by_hub_request[hub_id] = message.request_id
            self.wrote(message.request_id, meta, "acked")

    def _answered(self, message: Message, meta: Any) -> None:
        if isinstance(message, ProviderResponse):
            self.wrote(self.by_hub_request.get(message.hub_request_id), meta, "packed")

    async def one(self, code: str, i: int) -> None:
        request_id = self.request_id(i)
        self.stamps[request_id] = {"send": time.monotonic()}
        try:
            await self.client.request(link_code=code, provider=PROVIDER, items=self.items,
                                      scenario_id=self.scenario_id, deadline_s=60,
                                      request_id=request_id)  # fmt: skip
        except ExchangeError:  # a saturated hub times out: counted, not fatal
            self.unanswered += 1


def _capture_publish(service: Any, on_acked: Any) -> None:
    """Make ``service._send_bytes`` (every write) report each acknowledged message's
    coordinates."""

    async def send(value: bytes, key: str, message: Message) -> None:
        meta = await service._producer.send_and_wait(
            service.topics.agency_out(service.agency_id), value, key=key.encode()
        )
        on_acked(message, meta)

    service._send_bytes = send


@contextlib.asynccontextmanager
async def sdk_agents(
    conn: Connections, topics: Topics, key_dir: Path, signatures: str, trust: dict[str, Any]
) -> AsyncIterator[Agents]:
    """An ``AgencyClient`` and a ``ProviderService`` in this process."""

    async def handler(request: Any) -> dict[str, Any]:
        return dict.fromkeys(request.items, "ok")

    provider = ProviderService(PROVIDER, keystore.load(key_dir, PROVIDER),
                               conn.agency(PROVIDER), topics, handler, **trust)  # fmt: skip
    client = AgencyClient(REQUESTER, keystore.load(key_dir, REQUESTER),
                          conn.agency(REQUESTER), topics, **trust)  # fmt: skip
    async with provider, client:
        yield _Sdk(client, provider)


class _Lean(Agents):
    def __init__(self, topics: Topics, key_dir: Path, signatures: str) -> None:
        super().__init__()
        self.topics = topics
        self.codec = default_codec()
        self.strict = signatures == "strict"
        self.city = keystore.load(key_dir, REQUESTER)
        self.jps = keystore.load(key_dir, PROVIDER)
        self.reply = SealingKeyPair.generate()
        enc, ciphertext = seal("X25519", self.reply.public_bytes, b'{"v":1}', aad=b"bench")
        self.sealed = SealedPayload(suite=HpkeSuite.X25519, enc=enc, ciphertext=ciphertext)
        self.prepared: list[tuple[str, bytes]] = []
        self.waiting: dict[str, asyncio.Future[bool]] = {}
        self.producers: dict[str, AIOKafkaProducer] = {}

    def request(self, code: str, request_id: str) -> bytes:
        header = Header.new(REQUESTER)
        request = AttributeRequest(
            header=header, request_id=request_id, requester_link_code=code,
            provider=PROVIDER, scenario_id=self.scenario_id, items=self.items,
            reply_public_key=self.reply.public_bytes, hpke_suite=HpkeSuite.X25519,
            deadline=header.sent_at + timedelta(seconds=60),
        )  # fmt: skip
        if self.strict:
            request = sign_message(request, self.city.signing, self.codec)
        self.by_hub_request[derive_id("hub-request", REQUESTER, header.message_id)] = request_id
        return self.codec.encode(request)

    async def prepare(self, codes: list[str], count: int) -> None:
        self.prepared = [
            (code, self.request(code, self.request_id(i)))
            for i, code in zip(range(count), _cycle(codes), strict=False)
        ]

    async def one(self, code: str, i: int) -> None:
        request_id = self.request_id(i)
        value = (
            self.prepared[i][1] if 0 <= i < len(self.prepared) else self.request(code, request_id)
        )
        self.stamps[request_id] = {"send": time.monotonic()}
        answered = self.waiting[request_id] = asyncio.get_running_loop().create_future()
        sent = await self.producers[REQUESTER].send(
            self.topics.agency_out(REQUESTER), value, key=code.encode()
        )
        sent.add_done_callback(lambda f: self.wrote(request_id, f.result(), "acked"))
        try:
            if not await asyncio.wait_for(answered, 60):
                self.unanswered += 1
        except TimeoutError:
            self.unanswered += 1
        finally:
            self.waiting.pop(request_id, None)

    def answer(self, message: Message) -> None:
        """The requester reads an answer (or a refusal) to one of its requests."""
        if isinstance(message, AttributeResponse | HubError):
            request_id = getattr(message, "request_id", None)
            self.stamp(request_id, "answer")
            waiter = self.waiting.get(request_id or "")
            if waiter is not None and not waiter.done():
                waiter.set_result(isinstance(message, AttributeResponse))

    def forwarded(self, message: Message) -> None:
        """The provider answers a forwarded request at once."""
        if not isinstance(message, ForwardedRequest):
            return
        request_id = self.by_hub_request.get(message.hub_request_id)
        self.stamp(request_id, "prov")
        response = ProviderResponse(
            header=Header.new(PROVIDER, message.header.message_id,
                              message_id=response_id(PROVIDER, message.header.message_id)),
            hub_request_id=message.hub_request_id, provider_link_code=message.provider_link_code,
            status=ResponseStatus.PROVIDED, sealed=self.sealed, detail="",
        )  # fmt: skip
        if self.strict:
            response = sign_message(response, self.jps.signing, self.codec)
        sending = asyncio.ensure_future(self.producers[PROVIDER].send(
            self.topics.agency_out(PROVIDER), self.codec.encode(response),
            key=message.provider_link_code.encode(),
        ))  # fmt: skip

        def acked(sent: asyncio.Future[Any]) -> None:
            sent.result().add_done_callback(lambda f: self.wrote(request_id, f.result(), "packed"))

        sending.add_done_callback(acked)


def _cycle(codes: list[str]) -> Any:
    while True:
        yield from codes


async def _read(kafka: dict[str, Any], topic: str, started: asyncio.Event, on: Any) -> None:
    consumer = committed_reader(kafka, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        started.set()
        codec = default_codec()
        while True:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.value is not None:
                        on(codec.decode(record.value))
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def lean_agents(
    conn: Connections, topics: Topics, key_dir: Path, signatures: str, trust: dict[str, Any]
) -> AsyncIterator[Agents]:
    """A requester and a provider of bare aiokafka clients, each agency as itself."""
    agents = _Lean(topics, key_dir, signatures)
    readers = []
    try:
        for agency, on in ((REQUESTER, agents.answer), (PROVIDER, agents.forwarded)):
            kafka = conn.agency(agency)
            producer = agents.producers[agency] = AIOKafkaProducer(
                **kafka, acks="all", enable_idempotence=True, linger_ms=0
            )
            await producer.start()
            started = asyncio.Event()
            readers.append(asyncio.create_task(_read(kafka, topics.agency_in(agency), started, on)))
            await started.wait()
        yield agents
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for producer in agents.producers.values():
            await producer.stop()
