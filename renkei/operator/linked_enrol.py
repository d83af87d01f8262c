"""``renkei link enrol``: a linkage run's rows sent to the hub, and the hub's outcome read.

The rows are packed into signed :class:`~hub_stream.control.EnrolLinked` commands
(:mod:`.linked_commands`) and written to ``hub.control``; each is noted as sent once
Kafka acknowledges it, so an interrupted enrolment resumes. With ``wait_s`` > 0 the
outcome of every row is then read from ``hub.audit``, from where it ended before the
first command went: ``ENROLLED``, ``NOT_ENROLLED`` (a resident code the hub's person
table lacks), or the whole command ``REFUSED`` (an unknown agency, a replay — typically a
command that had been applied before a crash — or a bad signature). The audit trail is
the record of what happened; nothing here needs the agency's inbox.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from hub_stream.bulk_enrolment import row_cause
from hub_stream.control import EnrolLinked, LinkedRow, control_spec
from hub_stream.ids import derive_id
from renkei.crypto import SigningKey, keystore
from renkei.errors import ConfigurationError, ContractError, PublishError
from renkei.readers import committed_reader, topic_partitions
from renkei.settings import KafkaSettings
from renkei.topics import Topics, ensure_topics
from schemas.codec import default_codec
from schemas.models import AuditRecord, AuditStep

from .linked_commands import EnrolProgress, pack, progress_path

__all__ = ["EnrolOutcome", "Progress", "enrol_linked"]

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)`` in rows; phases: send, wait."""


@dataclass
class EnrolOutcome:
    """What was sent, and what the hub did with it as far as it was waited for."""

    rows: int
    commands: int
    skipped_rows: int = 0
    """Rows of commands acknowledged by an earlier, interrupted run: not sent again."""
    enrolled: int = 0
    not_enrolled: Counter[str] = field(default_factory=Counter)
    """Rows the hub did not enrol, by the audit record's error code (``NO_MATCH``)."""
    refused: Counter[str] = field(default_factory=Counter)
    """Rows of commands the hub refused whole, by error code."""
    unanswered: int = 0
    """Rows sent whose outcome was not seen in the time waited (or not waited for)."""

    @property
    def sent(self) -> int:
        """Rows sent by this run."""
        return self.rows - self.skipped_rows


async def enrol_linked(
    kafka: KafkaSettings,
    prefix: str,
    key_dir: Path,
    out: Path,
    agency: str,
    run: str,
    rows: Sequence[LinkedRow],
    *,
    capacity: str = "",
    restart: bool = False,
    wait_s: float = 0,
    progress: Progress | None = None,
) -> EnrolOutcome:
    """Enrol ``rows`` for ``agency`` through the hub; resume what ``out`` says was sent.

    :param out: the linkage run's folder; the progress is kept in ``out/.enrol/``.
    :param wait_s: wait for the hub's outcome, giving up when nothing new arrives for
        this long; 0 does not wait.
    """
    report = progress or (lambda _phase, _done, _total: None)
    operator = keystore.load(key_dir, "operator").signing
    path = progress_path(out, agency)
    state = EnrolProgress.open(path, EnrolProgress.digest(agency, run, capacity, rows), restart)
    commands = pack(agency, run, rows, session=state.session, capacity=capacity)
    if state.sent and state.commands != len(commands):
        raise ConfigurationError(
            f"{path} was packed into {state.commands} commands, these rows into "
            f"{len(commands)}; pass --restart to start a new session"
        )
    state.commands = len(commands)
    done = set(state.sent)
    todo = [(i, c) for i, c in enumerate(commands) if i not in done]
    outcome = EnrolOutcome(rows=len(rows), commands=len(commands))
    outcome.skipped_rows = sum(len(c.rows) for i, c in enumerate(commands) if i in done)
    outcome.unanswered = outcome.sent
    try:
        await _enrol(kafka.kafka_kwargs(), Topics(prefix), todo, operator, state, path, wait_s,
                     outcome, report)  # fmt: skip
    except KafkaError as exc:
        # what was acknowledged is noted: started again, the rest goes
        raise PublishError(
            f"Kafka did not take the commands ({type(exc).__name__}); "
            f"{len(state.sent) - len(done)} of {len(todo)} were sent"
        ) from exc
    return outcome


async def _enrol(
    kafka: dict[str, Any],
    topics: Topics,
    todo: list[tuple[int, EnrolLinked]],
    operator: SigningKey,
    state: EnrolProgress,
    path: Path,
    wait_s: float,
    outcome: EnrolOutcome,
    report: Progress,
) -> None:
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        await ensure_topics(admin, [control_spec(topics)])
    finally:
        await admin.close()
    audit = _AuditWatch(kafka, topics.audit)
    await audit.start(wait_s)
    try:
        awaited = await _send(kafka, topics, todo, operator, state, path, report)
        if wait_s > 0 and awaited:
            await audit.outcomes(awaited, outcome, wait_s, report)
    finally:
        await audit.stop()


async def _send(
    kafka: dict[str, Any],
    topics: Topics,
    todo: list[tuple[int, EnrolLinked]],
    operator: SigningKey,
    state: EnrolProgress,
    path: Path,
    report: Progress,
) -> dict[str, _Command]:
    """Send ``todo`` in order, noting each as it is acknowledged; what to wait for."""
    total = sum(len(c.rows) for _, c in todo)
    report("send", 0, total)
    awaited: dict[str, _Command] = {}
    producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = 0
        for index, command in todo:
            signed = command.model_copy(update={"requested_at_ms": int(time.time() * 1000)}).signed(
                operator
            )
            meta = await producer.send_and_wait(topics.control, signed.to_bytes(), key=signed.key())
            state.sent.append(index)
            state.save(path)
            # the hub audits a refused command under an id derived from where it read it
            refusal = derive_id("control", meta.topic, str(meta.partition), str(meta.offset))
            pending = _Command(len(command.rows))
            awaited[refusal] = pending
            for row in command.rows:
                awaited[row_cause(command.command_id, row.record_ref)] = pending
            sent += len(command.rows)
            report("send", sent, total)
    finally:
        await producer.stop()
    return awaited


@dataclass
class _Command:
    rows: int
    answered: int = 0


class _AuditWatch:
    """``hub.audit`` read from where it ended when :meth:`start` was called."""

    def __init__(self, kafka: dict[str, Any], topic: str) -> None:
        self._topic = topic
        self._consumer: AIOKafkaConsumer = committed_reader(kafka, group_id=None)
        self._start: dict[TopicPartition, int] = {}

    async def start(self, wait_s: float) -> None:
        await self._consumer.start()
        if wait_s <= 0:
            return
        # a hub that ever ran created it; not worth a long wait before anything is sent
        partitions = await topic_partitions(self._consumer, self._topic, wait_s=5)
        tps = [TopicPartition(self._topic, p) for p in partitions]
        if tps:
            self._start = await self._consumer.end_offsets(tps)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def outcomes(
        self, awaited: dict[str, _Command], outcome: EnrolOutcome, wait_s: float, report: Progress
    ) -> None:
        """Count each awaited row's outcome into ``outcome`` until all are in, or nothing
        new has come for ``wait_s``."""
        if not self._start:
            return  # no audit topic: no hub has ever run here
        self._consumer.assign(list(self._start))
        for tp, offset in self._start.items():
            self._consumer.seek(tp, offset)
        codec = default_codec()
        total, seen = outcome.unanswered, 0
        report("wait", 0, total)
        idle_since = asyncio.get_running_loop().time()
        while outcome.unanswered > 0:
            batch = await self._consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    try:
                        message = codec.decode(record.value or b"")
                    except ContractError:
                        continue  # not ours to judge: renkei audit verify does
                    if not isinstance(message, AuditRecord):
                        continue
                    answered = _count(message, awaited, outcome)
                    if answered:
                        seen += answered
                        outcome.unanswered -= answered
                        idle_since = asyncio.get_running_loop().time()
            report("wait", seen, total)
            if asyncio.get_running_loop().time() - idle_since > wait_s:
                return


def _count(record: AuditRecord, awaited: dict[str, _Command], outcome: EnrolOutcome) -> int:
    """Rows ``record`` answers (0 if it is not about them)."""
    command = awaited.pop(record.header.correlation_id or "", None)
    if command is None:
        return 0
    if record.step is AuditStep.REFUSED:  # the whole command
        rows = command.rows - command.answered
        command.answered = command.rows
        outcome.refused[record.error_code or "UNKNOWN"] += rows
        return rows
    if command.answered >= command.rows:
        return 0  # refused already
    command.answered += 1
    if record.step is AuditStep.ENROLLED:
        outcome.enrolled += 1
    else:
        outcome.not_enrolled[record.error_code or "UNKNOWN"] += 1
    return 1
