"""``renkei link match --registry-topic``: the person table read from registry.events."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import date

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from renkei.crypto.signing import SigningKey
from renkei.envelope import encode_signed
from renkei.linkage import LinkageInputError
from renkei.linkage.registry_events import read_registry_topic
from renkei.mynumber import check_digit
from renkei.topics import Topics, TopicSpec, ensure_topics
from schemas.codec import default_codec
from schemas.models import (
    Basic4,
    EventAction,
    EventBody,
    EventKind,
    Header,
    PersonMoved,
    PersonRegistered,
    RegistryEvent,
    Sex,
)
from tests.integration.principals import Principals


def _event(event_id: str, code: str, kind: EventKind, body: EventBody | None) -> RegistryEvent:
    message_id = hashlib.blake2b(event_id.encode(), digest_size=16).hexdigest()
    return RegistryEvent(
        header=Header.new("registry", message_id=message_id),
        event_id=event_id, resident_code=code, kind=kind, action=EventAction.ORIGINAL,
        effective_date=date(2026, 4, 1), body=body,
    )  # fmt: skip


def _registered(i: int) -> RegistryEvent:
    b4 = Basic4(name=f"佐藤 花子{i}", name_kana="サトウ ハナコ", birth_date=date(1980, 1, 1 + i),
                sex=Sex.FEMALE, address=f"東京都品川区広町2-1-{i}")  # fmt: skip
    number = f"{i:011d}"
    body = PersonRegistered(my_number=number + str(check_digit(number)), basic4=b4)
    return _event(f"r{i}", f"{10_000_000_000 + i}", EventKind.REGISTERED, body)


async def _publish(principals: Principals, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    admin = AIOKafkaAdminClient(**principals.admin)
    await admin.start()
    try:
        await ensure_topics(admin, [TopicSpec(topic, 3, {})])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**principals.admin)
    await producer.start()
    try:
        for key, value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def test_the_person_table_is_read_from_the_feed(
    principals: Principals, topics: Topics
) -> None:
    codec, registry = default_codec(), SigningKey.generate()
    events = [_registered(i) for i in range(1, 21)]
    events.append(_event("m1", events[0].resident_code, EventKind.MOVED,
                         PersonMoved(address="大阪府豊中市本町1-2-3")))  # fmt: skip
    signed = [(e.resident_code.encode(), encode_signed(e, registry, codec)) for e in events]
    await _publish(principals, topics.registry_events, signed)
    table = await asyncio.to_thread(
        read_registry_topic, principals.admin, topics.registry_events, registry.public_bytes
    )
    rows = {r["resident_code"]: r for r in table.to_pylist()}
    assert len(rows) == 20
    moved = rows[events[0].resident_code]
    assert moved["address"] == "大阪府豊中市本町1-2-3"
    assert moved["former_addresses"] == "東京都品川区広町2-1-1"
    # Someone else's key: the same feed is refused, not read.
    with pytest.raises(LinkageInputError, match="not signed"):
        await asyncio.to_thread(
            read_registry_topic,
            principals.admin,
            topics.registry_events,
            SigningKey.generate().public_bytes,
        )


async def test_a_missing_topic_is_a_clear_error(principals: Principals, topics: Topics) -> None:
    with pytest.raises(LinkageInputError, match="does not exist"):
        await asyncio.to_thread(
            read_registry_topic, principals.admin, topics.registry_events, b"\0" * 32
        )
