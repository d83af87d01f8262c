"""An agency's witness of the audit trail: follows ``hub.audit.heads``, alarms on a lie.

Agencies may not read ``hub.audit``, but every tree head the hub signs is copied to
``hub.audit.heads`` (same partition, same bytes). :class:`HeadWitness` reads that topic
``read_committed``, from the offsets its state file says it has read to (the beginning
the first time), and feeds each head to a :class:`renkei.witness.Witness`, which checks
it against the latest head it kept, with the audit keys the agency pinned. An alarm
(:class:`~renkei.errors.WitnessAlarm`: split view, rollback, gap, bad signature) is logged
at ERROR, counted (``renkei_witness_alarms_total{kind}``), kept in :attr:`HeadWitness.raised`
and the state file, and passed to every ``on_alarm`` listener; reading goes on. The state
is saved after every batch.

**On by default.** Every :class:`~consumers.inbox.InboxReader` runs the agency's witness
(``witness=None``, the default) when ``RENKEI_AGENCY_AUDIT_TRUST`` names the pinned
``audit-trust.json``, and logs that it is off otherwise; the readers of one agency in one
process share one witness (:func:`acquire`). ``witness=True`` requires it, ``False``
turns it off. The state file is ``RENKEI_AGENCY_WITNESS_STATE``, by default
``$RENKEI_HOME/witness/<topic prefix>agency.<id>.heads.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from consumers.running import BackgroundService
from renkei.auditchain import TrustedKeys
from renkei.errors import ConfigurationError, WitnessAlarm
from renkei.readers import committed_reader, topic_partitions
from renkei.settings import KafkaSettings
from renkei.topics import Topics
from renkei.witness import Witness
from schemas.codec import Codec

__all__ = ["AlarmListener", "HeadWitness", "WitnessSettings", "acquire", "release"]

log = logging.getLogger(__name__)

AlarmListener = Callable[[WitnessAlarm], object]
"""Called with every alarm a witness raises."""


class WitnessSettings(BaseSettings):
    """Where an agency's witness finds the audit keys and keeps its state."""

    model_config = SettingsConfigDict(env_prefix="RENKEI_AGENCY_", frozen=True, extra="ignore")

    audit_trust: Path | None = Field(
        default=None,
        description="RENKEI_AGENCY_AUDIT_TRUST: the pinned audit trust file "
        "(audit-trust.json, from the operators); set, the agency's readers run the witness.",
    )
    witness_state: Path | None = Field(
        default=None,
        description="RENKEI_AGENCY_WITNESS_STATE: the witness's state file; unset: "
        "$RENKEI_HOME/witness/<topic prefix>agency.<id>.heads.json.",
    )

    def state_path(self, agency_id: str, topics: Topics) -> Path:
        """The state file of ``agency_id``'s witness."""
        if self.witness_state is not None:
            return self.witness_state
        return KafkaSettings().home / "witness" / f"{topics.prefix}agency.{agency_id}.heads.json"


class HeadWitness(BackgroundService):
    """Follows ``hub.audit.heads`` and checks every head with a :class:`Witness`.

    :param kafka: aiokafka connection keyword arguments (Read on ``hub.audit.heads``).
    :param topics: topic names (and prefix).
    :param witness: the witness; its state file says where to resume.
    :param name: for the logs (the agency id).
    :param metadata_timeout_s: how long :meth:`start` waits for the topic to appear.
    """

    def __init__(
        self,
        kafka: dict[str, Any],
        topics: Topics,
        witness: Witness,
        *,
        name: str = "witness",
        metadata_timeout_s: float = 10.0,
    ) -> None:
        self.topic = topics.audit_heads
        self.witness = witness
        self.name = name
        self.metadata_timeout_s = metadata_timeout_s
        self.listeners: list[AlarmListener] = []
        """Called with every alarm (:func:`acquire` adds its caller's)."""
        self.raised: list[WitnessAlarm] = []
        """The alarms raised since this witness was built (the state file keeps more)."""
        self.failure: BaseException | None = None
        """The error that stopped the reading, if one did."""
        self._kafka = dict(kafka)
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_file(
        cls,
        kafka: dict[str, Any],
        topics: Topics,
        trust_file: Path,
        state_path: Path,
        *,
        codec: Codec | None = None,
        name: str = "witness",
    ) -> HeadWitness:
        """A witness with the keys of ``trust_file`` and the state of ``state_path``.

        :raises ConfigurationError: the trust file or the state file cannot be used.
        """
        witness = Witness.load(state_path, TrustedKeys.load(trust_file), codec)
        return cls(kafka, topics, witness, name=name)

    @property
    def started(self) -> bool:
        return self._consumer is not None

    def _report(self, alarm: WitnessAlarm) -> None:
        log.error("%s: %s", self.name, alarm)
        self.raised.append(alarm)
        for listener in list(self.listeners):
            listener(alarm)

    async def start(self) -> None:
        """Connect, check each partition still reaches where the witness had read, and seek
        there (a no-op if started).

        :raises ConfigurationError: ``hub.audit.heads`` does not exist.
        """
        if self._consumer is not None:
            return
        consumer = committed_reader(self._kafka, group_id=None, auto_offset_reset="earliest")
        try:
            await consumer.start()
            partitions = await topic_partitions(consumer, self.topic, self.metadata_timeout_s)
            if not partitions:
                raise ConfigurationError(f"topic {self.topic} does not exist")
            assigned = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(assigned)
            ends = await consumer.end_offsets(assigned)
            for tp in assigned:
                try:
                    self.witness.check_end(tp.partition, ends[tp])
                except WitnessAlarm as alarm:
                    self._report(alarm)  # and read the partition again from its beginning
                resume = self.witness.resume_offset(tp.partition)
                if resume is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, resume)
            self.witness.save()
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self.failure = None

    async def poll(self, timeout_ms: int = 500) -> int:
        """Observe the heads one fetch returns and save the state; how many were read."""
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=1000)
        read = 0
        for tp, records in batches.items():
            for record in records:
                read += 1
                try:
                    self.witness.observe(record.value, partition=tp.partition, offset=record.offset)
                except WitnessAlarm as alarm:
                    self._report(alarm)
        self.witness.save()
        return read

    async def lag(self) -> int:
        """Offsets between where the witness reads and the topic's end (0: caught up)."""
        if self._consumer is None:
            raise ConfigurationError("HeadWitness.lag() before start()")
        assigned = list(self._consumer.assignment())
        ends = await self._consumer.end_offsets(assigned)
        behind = 0
        for tp in assigned:
            position: int = await self._consumer.position(tp)
            behind += max(0, ends[tp] - position)
        return behind

    async def run(self) -> None:
        """Follow the heads until cancelled (call :meth:`start` first)."""
        if self._consumer is None:
            raise ConfigurationError("HeadWitness.run() before start()")
        try:
            while True:
                await self.poll()
        except Exception as exc:
            self.failure = exc
            log.exception("%s: the witness stopped on an error", self.name)
            raise

    def run_in_background(self) -> None:
        """:meth:`run` in a task of its own (a no-op if one runs)."""
        if self._consumer is None:
            raise ConfigurationError("HeadWitness.run_in_background() before start()")
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"renkei-witness-{self.name}")

    async def stop(self) -> None:
        """Stop reading, save the state and close; raise the error that stopped :meth:`run`."""
        task, self._task = self._task, None
        try:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            consumer, self._consumer = self._consumer, None
            if consumer is not None:
                self.witness.save()
                await consumer.stop()


# -- one witness per agency and process, shared by its readers ------------------------------

_Key = tuple[int, Path]  # the event loop's id, the state file: a witness runs on one loop
_shared: dict[_Key, tuple[HeadWitness, int]] = {}
_locks: dict[_Key, asyncio.Lock] = {}


async def acquire(
    agency_id: str,
    kafka: dict[str, Any],
    topics: Topics,
    *,
    required: bool = False,
    on_alarm: AlarmListener | None = None,
    codec: Codec | None = None,
) -> HeadWitness | None:
    """The agency's running witness, started by its first user; ``None`` when it is off.

    Off means ``RENKEI_AGENCY_AUDIT_TRUST`` is unset (logged). A witness that cannot
    start (no Read on ``hub.audit.heads``, a broken state file) is logged at ERROR and
    off, unless ``required``.

    :raises ConfigurationError: ``required`` and the witness is off or cannot start.
    """
    settings = WitnessSettings()
    if settings.audit_trust is None:
        if required:
            raise ConfigurationError("the witness needs RENKEI_AGENCY_AUDIT_TRUST")
        log.info("agency %s: the audit witness is off (RENKEI_AGENCY_AUDIT_TRUST unset)", agency_id)
        return None
    key = (id(asyncio.get_running_loop()), settings.state_path(agency_id, topics).resolve())
    async with _locks.setdefault(key, asyncio.Lock()):  # readers started at once share one
        if key in _shared:
            head_witness, users = _shared[key]
        else:
            try:
                head_witness = HeadWitness.from_file(
                    kafka, topics, settings.audit_trust, key[1], codec=codec, name=agency_id
                )
                await head_witness.start()
            except Exception:
                if required:
                    raise
                log.exception("agency %s: the audit witness could not start: off", agency_id)
                return None
            head_witness.run_in_background()
            users = 0
        if on_alarm is not None:
            head_witness.listeners.append(on_alarm)
        _shared[key] = (head_witness, users + 1)
        return head_witness


async def release(head_witness: HeadWitness, on_alarm: AlarmListener | None = None) -> None:
    """Give back what :func:`acquire` returned; the last user stops the witness."""
    if on_alarm is not None and on_alarm in head_witness.listeners:
        head_witness.listeners.remove(on_alarm)
    path = head_witness.witness.state_path
    if path is None:
        return
    key = (id(asyncio.get_running_loop()), path)
    entry = _shared.get(key)
    if entry is None or entry[0] is not head_witness:
        return
    if entry[1] > 1:
        _shared[key] = (head_witness, entry[1] - 1)
        return
    del _shared[key]
    _locks.pop(key, None)
    try:
        await head_witness.stop()
    except Exception:
        log.exception("%s: the witness had stopped on an error", head_witness.name)
