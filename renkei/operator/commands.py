"""Operators send signed commands to the hub on ``hub.control`` and wait for their effect."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from hub_stream.control import RotateKey, control_spec, control_topic
from hub_stream.records import KeyStateRecord
from renkei.crypto import keystore
from renkei.errors import ConfigurationError, RequestTimeoutError
from renkei.readers import committed_reader, topic_partitions
from renkei.settings import KafkaSettings
from renkei.topics import Topics, ensure_topics

__all__ = ["rotate", "send_command", "wait_for_key_state"]


async def send_command(kafka: dict[str, Any], topics: Topics, command: RotateKey) -> None:
    """Write a (signed) command to ``hub.control`` and wait for Kafka's acknowledgement."""
    producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(control_topic(topics), command.to_bytes(), key=command.key())
    finally:
        await producer.stop()


async def wait_for_key_state(
    kafka: dict[str, Any], topics: Topics, command_id: str, timeout_s: float
) -> KeyStateRecord:
    """The key state the hub wrote for command ``command_id``, once it has committed it.

    :raises RequestTimeoutError: nothing within ``timeout_s`` (the hub is down, or refused
        the command: refusals are in ``hub.deadletter`` and ``hub.audit``).
    """
    topic = topics.state("keys")
    consumer = committed_reader(kafka, group_id=None)
    await consumer.start()
    try:
        async with asyncio.timeout(timeout_s):
            # The hub creates the topic when it starts: wait for it as long as for the state.
            partitions = await topic_partitions(consumer, topic, wait_s=timeout_s)
            tps = [TopicPartition(topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while True:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for record in records:
                        if record.value is None:
                            continue
                        state = KeyStateRecord.from_bytes(record.value)
                        if state.command_id == command_id:
                            return state
    except TimeoutError:
        raise RequestTimeoutError(
            f"the hub did not apply command {command_id} within {timeout_s:g} s: is a hub "
            "running? A refused command is in hub.deadletter and hub.audit"
        ) from None
    finally:
        await consumer.stop()


async def rotate(
    kafka: KafkaSettings, prefix: str, key_dir: Path, agency: str, grace_s: float, wait_s: float
) -> KeyStateRecord | None:
    """Ask the hub to rotate ``agency``'s link-code key; its new key state, once applied.

    The command is signed with the operators' key and written to ``hub.control``; the hub
    applies it in its transactional loop (new key version, one ``LinkCodeRemap`` per
    person the agency holds, ``KEY_ROTATED`` audit record). With ``wait_s`` > 0 this waits
    for the key state the hub publishes to ``hub.state.keys``; with 0 it returns None.
    """
    if grace_s < 0:
        raise ConfigurationError("--grace-s must not be negative")
    topics = Topics(prefix)
    operator = keystore.load(key_dir, "operator").signing
    command = RotateKey(agency_id=agency, grace_ms=round(grace_s * 1000)).signed(operator)
    admin = AIOKafkaAdminClient(**kafka.kafka_kwargs())
    await admin.start()
    try:
        await ensure_topics(admin, [control_spec(topics)])
    finally:
        await admin.close()
    await send_command(kafka.kafka_kwargs(), topics, command)
    if wait_s <= 0:
        return None
    return await wait_for_key_state(kafka.kafka_kwargs(), topics, command.command_id, wait_s)
