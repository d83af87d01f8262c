"""The router's view of every person: who a resident code and an enrolment are about.

The partitioned hub keeps each person's row in the task of their bucket (:mod:`.tasks`),
but an enrolment (by My Number or basic-4) and a registry event (by resident code) name
no bucket: the router (:mod:`.router`) must find the person first. :class:`Persons` is
the router's copy of the person table and its index, fed from two sides:

* the registrations the router places itself, staged with the router's batch and kept
  when its transaction commits (:meth:`registered`), so that an enrolment right after
  a registration finds the person before any task has applied it;
* every partition of ``hub.state.persons``, followed as the tasks commit their rows
  (:class:`PersonsFollower`): moves, renames, reissued numbers and deaths, from
  whichever worker applied them. Rows are applied between the router's batches
  (:meth:`catch_up`), never under a staged one.

It holds the whole country, as every single-topology worker does today; index shards
per bucket are the planned replacement (``docs/architecture.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from renkei.crypto import KeyRing
from renkei.readers import committed_reader, partitions_of, read_batches
from schemas.models import RegistryEvent

from . import history
from .indexes import DerivedIndexes
from .records import PersonState
from .restore import collector_paused
from .sealed_state import persons_table
from .state import Table

__all__ = ["Persons", "PersonsFollower"]

log = logging.getLogger(__name__)


class Persons:
    """Resident code → person row, and the person index derived from it.

    :param keyring: opens the sealed rows of ``hub.state.persons``.
    :param topic: ``hub.state.persons``.
    """

    def __init__(self, keyring: KeyRing, topic: str) -> None:
        self.indexes = DerivedIndexes()
        self.table: Table[PersonState] = persons_table(keyring, topic, self.indexes.person_changed)
        self._arrived: list[tuple[bytes, bytes | None]] = []
        self.refused = 0
        """Rows the index refused (a number another person holds here): skipped."""

    def __len__(self) -> int:
        return len(self.table)

    def registered(self, event: RegistryEvent, id_code: bytes) -> None:
        """Stage the person a signed registration creates (nothing if the resident code
        is known: the task refuses or ignores the event)."""
        if self.table.get(event.resident_code) is not None:
            return
        try:
            self.table.put(event.resident_code, history.register(id_code.hex(), event))
        except ValueError:  # the index refuses it (a number another person holds)
            self.refused += 1

    def arrived(self, key: bytes, value: bytes | None) -> None:
        """A row committed to ``hub.state.persons``, to apply at the next :meth:`catch_up`."""
        self._arrived.append((key, value))

    def catch_up(self) -> None:
        """Apply the rows that arrived; call only when nothing is staged."""
        arrived, self._arrived = self._arrived, []
        for key, value in arrived:
            self.load(key, value)

    def load(self, key: bytes, value: bytes | None) -> None:
        """Apply one committed row (the restore's interface, too)."""
        try:
            self.table.load(key, value)
        except Exception as exc:  # the router must keep placing records
            self.refused += 1
            log.warning("a hub.state.persons row not applied to the router: %s", type(exc).__name__)

    def commit(self) -> None:
        self.table.commit()

    def rollback(self) -> None:
        self.table.rollback()


class PersonsFollower:
    """Reads every partition of ``hub.state.persons``: to its end first, then as it grows.

    :param kafka: aiokafka connection keyword arguments.
    :param persons: where rows go (:meth:`Persons.load` while catching up at start,
        :meth:`Persons.arrived` afterwards).
    """

    def __init__(self, kafka: dict[str, Any], persons: Persons) -> None:
        self._kafka = kafka
        self._persons = persons
        self._consumer = committed_reader(kafka, group_id=None, max_poll_records=10_000)
        self._task: asyncio.Task[None] | None = None
        self.failed = False
        """The follower stopped on an error (the router then knows only what it placed)."""

    async def start(self) -> int:
        """Read to the current end, then keep following; return the rows read at start."""
        consumer = self._consumer
        await consumer.start()
        partitions = await partitions_of(consumer, [self._persons.table.topic])
        read = 0
        batches = read_batches(consumer, partitions)
        async with contextlib.aclosing(batches):
            with collector_paused():
                async for _, records in batches:
                    for record in records:
                        if record.key is not None:
                            self._persons.load(record.key, record.value)
                            read += 1
        self._task = asyncio.create_task(self._follow(), name="router-persons-follower")
        return read

    async def _follow(self) -> None:
        try:
            while True:
                batch = await self._consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for record in records:
                        if record.key is not None:
                            self._persons.arrived(record.key, record.value)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failed = True
            log.exception("the router stopped following hub.state.persons")
            raise

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._consumer.stop()
