"""One secure deployment per attack module, and the attacker's tools.

The broker is always the secure one (``secure_kafka``: TLS, SASL/SCRAM, ACLs), whatever
``RENKEI_TEST_SECURE`` says: an attack that passes on a plaintext broker proves nothing.
The hub, the registry and the agencies log in as themselves (``hub_env``'s principals);
the suite's own look at the topics is the super user's.

The hub runs for the whole module on an event loop of its own, in a thread
(:class:`Background`): each test keeps its own loop and its leaked-task guard, and a test
cannot stop the hub by ending. One registered person is enrolled at the attacker
(``city-osaka``), at its victim (``city-shinagawa``) and at the provider (``jps``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.structs import RecordMetadata

from producers.population import Person
from renkei.crypto import SealingKeyPair
from renkei.envelope import encode_signed
from renkei.readers import committed_reader, topic_partitions
from renkei.topics import Topics
from schemas.codec import default_codec
from schemas.models import (
    AttributeRequest,
    AuditRecord,
    EnrolmentRequest,
    Header,
    HpkeSuite,
    Message,
)
from tests.integration.hub_env import HubEnv

__all__ = [
    "ATTACKER",
    "PROVIDER",
    "VICTIM",
    "Background",
    "Deployment",
    "Tap",
]

T = TypeVar("T")
CODEC = default_codec()

ATTACKER = "city-osaka"
"""The agency whose credentials the attacks use: S004 lets it ask jps, S002 the victim."""
VICTIM = "city-shinagawa"
"""The agency it attacks: S003 lets it ask jps, S001 the attacker."""
PROVIDER = "jps"
"""The provider both may ask."""


class Background:
    """An event loop in a thread of its own, for what outlives a test (the hub)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="hub", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` there and wait for it (from synchronous code: fixtures)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    async def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` there and await it from another loop (a test's)."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


@dataclass
class Deployment:
    """The running deployment the attacks are aimed at."""

    env: HubEnv
    background: Background
    person: Person
    codes: dict[str, str]
    """The person's link code at each agency that enrolled them."""
    health_url: str
    reply: SealingKeyPair = field(default_factory=SealingKeyPair.generate)

    @property
    def topics(self) -> Topics:
        """The deployment's topic names (its own prefix)."""
        return self.env.topics

    def value(self, message: Message, signer: str | None = None) -> bytes:
        """``message`` encoded and signed with ``signer``'s key (its sender's by default)."""
        keys = self.env.keys(signer or message.header.sender)
        return encode_signed(message, keys.signing, CODEC)

    def enrolment(self, sender: str = ATTACKER, **fields: Any) -> EnrolmentRequest:
        """An enrolment of the person by My Number (unsigned)."""
        values = {"record_ref": "ref-1", "my_number": self.person.my_number, "capacity": ""}
        return EnrolmentRequest(header=Header.new(sender), **{**values, **fields})

    def request(
        self, sender: str = ATTACKER, scenario: str = "S004", provider: str = PROVIDER,
        **fields: Any,
    ) -> AttributeRequest:  # fmt: skip
        """An attribute request about the person under the sender's own code (unsigned)."""
        header = Header.new(sender)
        values: dict[str, Any] = {
            "request_id": f"req-{header.message_id}",
            "requester_link_code": self.codes.get(sender, ""),
            "provider": provider,
            "scenario_id": scenario,
            "items": ("pension.benefit_status",),
            "reply_public_key": self.reply.public_bytes,
            "hpke_suite": HpkeSuite.X25519,
            "deadline": header.sent_at + timedelta(minutes=10),
        }
        return AttributeRequest(header=header, **{**values, **fields})

    async def send(
        self, principal: str, *values: bytes, key: bytes = b"attack", **options: Any
    ) -> list[RecordMetadata]:
        """Write ``values``, in order, to ``principal``'s own ``.out`` as that principal."""
        async with self.producer(principal, **options) as producer:
            return [
                await producer.send_and_wait(self.topics.agency_out(principal), v, key=key)
                for v in values
            ]

    def producer(self, principal: str, **options: Any) -> AbstractAsyncContextManager[Any]:
        """A started producer logged in as ``principal`` (an agency id or a service)."""
        return _started(AIOKafkaProducer(**self.env.kafka_of(principal), acks="all", **options))

    async def health(self) -> tuple[int, dict[str, Any]]:
        """What ``GET /healthz`` answers: the status and the report."""
        async with httpx.AsyncClient() as http:
            answer = await http.get(self.health_url)
        return answer.status_code, answer.json()

    def tap(self, *topics: str) -> Tap:
        """A reader of ``topics`` from their beginning, as the super user."""
        return Tap(self.env.kafka, topics)


@asynccontextmanager
async def _started(producer: AIOKafkaProducer) -> AsyncIterator[AIOKafkaProducer]:
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


class Tap:
    """Everything committed on some topics, decoded, read from their beginning.

    ``async with deployment.tap(a, b) as tap: await tap.until(check)``; ``tap.on(a)``
    lists what ``a`` holds so far.
    """

    def __init__(self, kafka: dict[str, Any], topics: tuple[str, ...]) -> None:
        self._consumer = committed_reader(kafka, group_id=None)
        self._topics = topics
        self._seen: dict[str, list[Message]] = {t: [] for t in topics}

    async def __aenter__(self) -> Tap:
        await self._consumer.start()
        parts = [
            TopicPartition(t, p) for t in self._topics
            for p in await topic_partitions(self._consumer, t)
        ]  # fmt: skip
        self._consumer.assign(parts)
        await self._consumer.seek_to_beginning(*parts)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    def on(self, topic: str) -> list[Message]:
        return self._seen[topic]

    def audit(self, topic: str, correlation_id: str) -> list[AuditRecord]:
        """The audit records on ``topic`` that a message (or a derived cause) caused."""
        return [
            m for m in self._seen[topic]
            if isinstance(m, AuditRecord) and m.header.correlation_id == correlation_id
        ]  # fmt: skip

    async def until(self, check: Callable[[Tap], bool], timeout_s: float = 60) -> None:
        """Read on until ``check(self)`` holds (an AssertionError after ``timeout_s``)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not check(self):
            if asyncio.get_running_loop().time() > deadline:
                counts = {t: len(v) for t, v in self._seen.items()}
                raise AssertionError(f"not seen in {timeout_s} s; read so far: {counts}")
            await self._read()

    async def drain(self) -> None:
        """Read on to the end of every partition as it stands now.

        Once an answer to a message sent after an attack (same key, so the same partition
        of ``.out``) is seen, the hub has committed whatever the attack made it write: a
        drain then shows all of it, so a count after it is exact.
        """
        parts = list(self._consumer.assignment())
        ends = await self._consumer.end_offsets(parts)
        for tp, end in ends.items():
            while await self._consumer.position(tp) < end:
                await self._read()

    async def _read(self) -> None:
        for tp, records in (await self._consumer.getmany(timeout_ms=200)).items():
            self._seen[tp.topic] += [CODEC.decode(r.value) for r in records]
