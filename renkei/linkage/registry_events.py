"""The person table from ``registry.events`` instead of a file (``--registry-topic``).

The registry's feed is the source of truth the hub itself is built from, and it has what
a CSV export often lacks: every earlier name and address. :func:`read_registry_topic`
reads the topic from its beginning to its current end (committed records only), checks
each event's signature against the registry's public key, and :func:`fold` replays the
events per resident code into the columns of ``REGISTRY.csv``:

- ``REGISTERED`` gives the number and the basic-4; ``MOVED`` and ``RENAMED`` replace the
  address or name and keep the old one in ``former_addresses`` / ``former_names``;
  ``NUMBER_REISSUED`` replaces the number; ``DIED`` changes nothing here (an agency must
  still link a deceased person's records);
- a ``CORRECTION`` replaces the body of the event it names, an ``ANNULMENT`` removes
  that event (an annulled registration removes the person); a repeated event id is
  ignored, as the hub ignores it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa
from aiokafka import TopicPartition

from renkei.envelope import verify_bytes
from renkei.errors import SignatureError
from renkei.readers import committed_reader, topic_partitions
from schemas.codec import Codec, default_codec
from schemas.models import (
    EventAction,
    EventKind,
    NumberReissued,
    PersonMoved,
    PersonRegistered,
    PersonRenamed,
    RegistryEvent,
)

from .errors import LinkageInputError
from .tables import REGISTRY_COLUMNS

__all__ = ["fold", "read_registry_topic"]

_SEX: Final = {"MALE": "1", "FEMALE": "2"}


@dataclass(slots=True)
class _History:
    """One resident's events in the order the registry wrote them (corrections applied)."""

    events: dict[str, RegistryEvent] = field(default_factory=dict)

    def apply(self, event: RegistryEvent) -> None:
        if event.action is EventAction.ORIGINAL:
            self.events.setdefault(event.event_id, event)
        elif event.corrects_event_id in self.events:
            if event.action is EventAction.CORRECTION:
                old = self.events[event.corrects_event_id]
                self.events[event.corrects_event_id] = old.model_copy(update={"body": event.body})
            else:
                del self.events[event.corrects_event_id]

    def row(self, resident_code: str) -> dict[str, str] | None:
        row: dict[str, str] | None = None
        names: list[str] = []
        addresses: list[str] = []
        for event in self.events.values():
            body = event.body
            if event.kind is EventKind.REGISTERED and isinstance(body, PersonRegistered):
                b = body.basic4
                row = {
                    "resident_code": resident_code,
                    "my_number": body.my_number,
                    "name": b.name,
                    "name_kana": b.name_kana,
                    "birth_date": b.birth_date.isoformat(),
                    "sex": _SEX.get(str(b.sex), ""),
                    "address": b.address,
                }
            elif row is None:
                continue
            elif isinstance(body, PersonMoved):
                addresses.append(row["address"])
                row["address"] = body.address
            elif isinstance(body, PersonRenamed):
                names.append(row["name"])
                row["name"], row["name_kana"] = body.name, body.name_kana
            elif isinstance(body, NumberReissued):
                row["my_number"] = body.my_number
        if row is None:
            return None
        row["former_names"] = ";".join(n for n in dict.fromkeys(names) if n != row["name"])
        row["former_addresses"] = ";".join(
            a for a in dict.fromkeys(addresses) if a != row["address"]
        )
        return row


def fold(events: Iterable[RegistryEvent]) -> pa.Table:
    """Replay ``events`` (each resident's in the order written) into registry columns."""
    histories: dict[str, _History] = {}
    for event in events:
        histories.setdefault(event.resident_code, _History()).apply(event)
    # Sorted, so that a re-read of an unchanged feed is the same table (runs resume).
    rows = [r for code, h in sorted(histories.items()) if (r := h.row(code)) is not None]
    columns = (*REGISTRY_COLUMNS, "former_addresses")
    return pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in columns})


async def _read(
    kafka: dict[str, Any], topic: str, public_key: bytes, codec: Codec
) -> list[RegistryEvent]:
    consumer = committed_reader(kafka, group_id=None, max_poll_records=5000)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
        if not partitions:
            raise LinkageInputError(f"topic {topic} does not exist or has no partitions")
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        events: list[RegistryEvent] = []
        pending = {tp for tp in partitions if ends[tp] > 0}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    events.append(_event(record.value, public_key, codec, tp, record.offset))
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return events
    finally:
        await consumer.stop()


def _event(
    value: bytes | None, public_key: bytes, codec: Codec, tp: TopicPartition, offset: int
) -> RegistryEvent:
    where = f"{tp.topic}[{tp.partition}]@{offset}"
    if value is None:
        raise LinkageInputError(f"{where}: an empty record in the registry feed")
    try:
        verify_bytes(value, public_key, codec)
    except SignatureError as exc:
        raise LinkageInputError(f"{where}: not signed by the registry's key: {exc}") from exc
    return codec.decode_as(value, RegistryEvent)


def read_registry_topic(
    kafka: dict[str, Any], topic: str, registry_public_key: bytes, codec: Codec | None = None
) -> pa.Table:
    """Read ``topic`` to its end and fold it into the registry's columns.

    :param kafka: connection keyword arguments (``KafkaSettings.kafka_kwargs()``).
    :param registry_public_key: the registry's Ed25519 key; every event must verify.
    :raises LinkageInputError: the topic is missing, or an event is empty or unsigned.
    """
    events = asyncio.run(_read(kafka, topic, registry_public_key, codec or default_codec()))
    return fold(events)
