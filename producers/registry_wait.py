"""Wait until the hub has applied registry events: read its verdicts in the audit trail.

The hub commits each registry event it processes together with exactly one audit record
caused by it (``header.correlation_id`` = the event's message id, actor ``registry``):
``REGISTRY_APPLIED`` once the person table holds the change, or ``REFUSED`` with the
error code (a registration of a resident code that exists, a move of an unknown person,
a bad signature). Both are in the same Kafka transaction as the state change, so a
committed audit record means a committed state: an enrolment sent after it is matched
against the new facts.

Why the audit trail and not ``hub.state.persons``: the audit trail also says *refused*
(the persons table would just never show the event), and it carries pseudonymous audit
keys only, while a person row carries the hub's internal ID code, which never leaves the
hub. The reader needs read access to ``hub.audit``.

An event the hub already applied earlier is dropped as a duplicate, with no new audit
record. So a wait that follows the trail from a mark taken before publishing (what
:class:`~producers.registry_publisher.RegistryPublisher` does, so that it need not read
the whole trail) also reads the trail up to that mark alongside, and stops that as soon
as every verdict is in.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from renkei.errors import DecodeError, RequestTimeoutError
from renkei.readers import committed_reader, topic_partitions
from renkei.topics import Topics
from schemas.codec import Codec, default_codec
from schemas.models import AuditRecord, AuditStep

__all__ = ["APPLIED", "audit_mark", "wait_applied"]

APPLIED = "APPLIED"
"""The outcome of an applied event; a refused one's outcome is its error code."""

Mark = dict[TopicPartition, int]


async def audit_mark(kafka: dict[str, Any], topics: Topics) -> Mark:
    """The audit trail's committed end now: what a later wait starts from.

    Empty when the trail does not exist yet (then a wait reads it from the beginning).
    """
    async with _reader(kafka) as consumer:
        parts = await topic_partitions(consumer, topics.audit)
        tps = [TopicPartition(topics.audit, p) for p in parts]
        if not tps:
            return {}
        consumer.assign(tps)  # aiokafka's stop() trips over a reader that never had any
        return dict(await consumer.end_offsets(tps))


async def wait_applied(
    kafka: dict[str, Any],
    topics: Topics,
    event_messages: dict[str, str],
    *,
    since: Mark | None = None,
    timeout_s: float = 60,
    codec: Codec | None = None,
) -> dict[str, str]:
    """Wait for the hub's verdict on each event; returns ``{event id: outcome}``.

    :param event_messages: ``{event id: its message id}``
        (:func:`~producers.registry_publisher.event_message_id`).
    :param since: read from this mark (:func:`audit_mark`), else from the beginning.
    :param timeout_s: give up after this long.
    :raises RequestTimeoutError: some events got no verdict in time (named, up to five).
    """
    verdicts = _Verdicts(event_messages, codec if codec is not None else default_codec())
    # Verdicts before the mark (events an earlier run applied) are looked up alongside,
    # and the look-up is cancelled as soon as every verdict is in.
    earlier = asyncio.create_task(_before(kafka, since, verdicts))
    try:
        await _follow(kafka, topics.audit, since, verdicts, timeout_s)
    finally:
        earlier.cancel()
        await asyncio.gather(earlier, return_exceptions=True)
    outcomes = verdicts.outcomes
    missing = [e for e in event_messages if e not in outcomes]
    if missing:
        raise RequestTimeoutError(
            f"the hub gave no verdict on {len(missing)} of {len(event_messages)} registry "
            f"events within {timeout_s:g} s (e.g. {', '.join(missing[:5])}): is the hub "
            "running, and is the registry's key in its directory?"
        )
    return {e: outcomes[e] for e in event_messages}


@asynccontextmanager
async def _reader(kafka: dict[str, Any]) -> AsyncIterator[AIOKafkaConsumer]:
    """A started reader of committed records with no group (partitions assigned by hand)."""
    consumer = committed_reader(kafka, group_id=None)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def _follow(
    kafka: dict[str, Any], audit: str, since: Mark | None, verdicts: _Verdicts, timeout_s: float
) -> None:
    """Read the trail from the mark (or its start) until every verdict is in, or time out."""
    async with _reader(kafka) as consumer:
        parts = await topic_partitions(consumer, audit, wait_s=min(timeout_s, 30))
        tps = [TopicPartition(audit, p) for p in parts]
        if not tps:
            return
        consumer.assign(tps)
        for tp in tps:
            if since and tp in since:
                consumer.seek(tp, since[tp])
            else:
                await consumer.seek_to_beginning(tp)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not verdicts.complete and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                verdicts.take(r.value for r in records)


async def _before(kafka: dict[str, Any], mark: Mark | None, verdicts: _Verdicts) -> None:
    """Read the trail from its start up to ``mark``: verdicts given before it."""
    behind = [tp for tp, end in (mark or {}).items() if end > 0]
    if not behind:
        return
    assert mark is not None
    async with _reader(kafka) as consumer:
        consumer.assign(behind)
        await consumer.seek_to_beginning(*behind)
        while behind and not verdicts.complete:
            batch = await consumer.getmany(*behind, timeout_ms=200, max_records=5000)
            for tp, records in batch.items():
                verdicts.take(r.value for r in records if r.offset < mark[tp])
            behind = [tp for tp in behind if await consumer.position(tp) < mark[tp]]


class _Verdicts:
    """The outcomes found so far of the events waited for, filled in from audit records.

    Both readers of a wait (before the mark and after it) fill in the same one.
    """

    def __init__(self, event_messages: dict[str, str], codec: Codec) -> None:
        self.by_message = {m: e for e, m in event_messages.items()}
        self.codec = codec
        self.outcomes: dict[str, str] = {}

    @property
    def complete(self) -> bool:
        """Whether every event waited for has its verdict."""
        return len(self.outcomes) >= len(self.by_message)

    def take(self, values: Iterable[bytes | None]) -> None:
        """Note the verdicts among ``values`` (raw records of the audit trail)."""
        for value in values:
            if value is None:
                continue
            try:
                record = self.codec.decode(value)
            except DecodeError:
                continue
            if not isinstance(record, AuditRecord) or record.actor != "registry":
                continue
            event_id = self.by_message.get(record.header.correlation_id or "")
            if event_id is None or event_id in self.outcomes:
                continue
            if record.step is AuditStep.REGISTRY_APPLIED:
                self.outcomes[event_id] = APPLIED
            elif record.step is AuditStep.REFUSED:
                self.outcomes[event_id] = str(record.error_code or "REFUSED")
