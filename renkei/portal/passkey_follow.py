"""Following Kafka for passkeys: ``hub.portal.registrations`` and ``portal.credentials``.

Both are read from their beginning (they are compacted: one record per resident code and
per credential) and then tailed, into :class:`~.passkeys.Passkeys`; what does not verify
is counted there and ignored. The portal creates ``portal.credentials`` if it is missing
and writes it with an idempotent producer, waiting for the broker's acknowledgement before
a registration or login answers, so another process (or this one after a restart) learns
the passkey and its sign count from the topic. Like :mod:`.follow`, any failure is retried
where reading stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from renkei.errors import AuditError
from renkei.readers import committed_reader, topic_partitions
from renkei.topics import Topics, ensure_topics

from .passkeys import Passkeys

__all__ = ["follow_passkeys", "start_following"]

log = logging.getLogger(__name__)


async def follow_passkeys(
    passkeys: Passkeys, kafka: dict[str, Any], topics: Topics, *, retry_s: float = 5.0
) -> None:
    """Learn registrations and credentials, and write new ones, until cancelled."""
    positions: dict[TopicPartition, int] = {}
    while True:
        try:
            await _ensure_topic(kafka, topics)
            producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True)
            await producer.start()
            try:
                passkeys.writer = functools.partial(_write, producer, topics.portal_credentials)
                await _read(passkeys, kafka, topics, positions)
            finally:
                passkeys.writer = None
                await producer.stop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # whatever went wrong, keep trying and say so
            log.warning("portal: passkeys: %s: %s; retrying in %.0f s",
                        type(exc).__name__, exc, retry_s)  # fmt: skip
            await asyncio.sleep(retry_s)


async def _write(producer: AIOKafkaProducer, topic: str, key: str, value: bytes) -> None:
    await producer.send_and_wait(topic, value, key=key.encode())


async def _ensure_topic(kafka: dict[str, Any], topics: Topics) -> None:
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        await ensure_topics(admin, topics.portal_specs())
    finally:
        await admin.close()


async def _read(
    passkeys: Passkeys, kafka: dict[str, Any], topics: Topics, positions: dict[TopicPartition, int]
) -> None:
    consumer = committed_reader(kafka, group_id=None)
    await consumer.start()
    try:
        tps = []
        for topic in (topics.portal_registrations, topics.portal_credentials):
            found = await topic_partitions(consumer, topic)
            if not found:
                raise AuditError(f"topic {topic} does not exist (yet)")
            tps += [TopicPartition(topic, p) for p in found]
        consumer.assign(tps)
        begin = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, positions.get(tp, begin[tp]))
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                learn = (
                    passkeys.learn_registration
                    if tp.topic == topics.portal_registrations
                    else passkeys.learn_credential
                )
                for record in records:
                    learn(record.value)
                if records:
                    positions[tp] = records[-1].offset + 1
            await asyncio.sleep(0)
    finally:
        await consumer.stop()


def start_following(
    passkeys: Passkeys | None, kafka: dict[str, Any] | None, topics: Topics | None
) -> Callable[[], Awaitable[None]]:
    """Start :func:`follow_passkeys` when there are passkeys and Kafka; return what stops it."""
    task = None
    if passkeys is not None and kafka is not None and topics is not None:
        passkeys.durable = True
        task = asyncio.create_task(follow_passkeys(passkeys, kafka, topics))

    async def stop() -> None:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return stop
