"""The directory the hub obeys: agencies with their public keys, and the scenario table.

Operators publish it to the compacted ``hub.directory`` topic (``renkei directory
publish``); the hub reads it from Kafka, so adding an agency or changing the law's table
is an event the hub applies between two batches, with no restart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer

from renkei.crypto import AgencyPublicKeys, SigningKey
from renkei.envelope import sign_message
from renkei.topics import Topics
from schemas.codec import Codec
from schemas.models import AgencyEntry, EventKind, Header, ScenarioEntry

from .directory_file import DirectoryFile
from .ids import derive_id

__all__ = ["Directory", "DirectoryEntry", "directory_entries", "entry_key", "publish_directory"]

DirectoryEntry = AgencyEntry | ScenarioEntry


def entry_key(entry: DirectoryEntry) -> bytes:
    """The compaction key: the newest entry per agency and per scenario is kept."""
    if isinstance(entry, AgencyEntry):
        return f"agency/{entry.agency_id}".encode()
    return f"scenario/{entry.scenario_id}".encode()


class Directory:
    """The current directory, applied entry by entry as the hub reads ``hub.directory``."""

    def __init__(self) -> None:
        self.agencies: dict[str, AgencyEntry] = {}
        self.scenarios: dict[str, ScenarioEntry] = {}

    def apply(self, entry: DirectoryEntry) -> None:
        if isinstance(entry, AgencyEntry):
            self.agencies[entry.agency_id] = entry
        else:
            self.scenarios[entry.scenario_id] = entry

    def agency(self, agency_id: str) -> AgencyEntry | None:
        """The agency if it is known and active."""
        entry = self.agencies.get(agency_id)
        return entry if entry is not None and entry.active else None

    def scenario(self, scenario_id: str) -> ScenarioEntry | None:
        """The scenario if it is known and active."""
        entry = self.scenarios.get(scenario_id)
        return entry if entry is not None and entry.active else None

    def entitled(self, agency_id: str, kind: EventKind) -> bool:
        """May ``agency_id`` learn of life events of this kind?"""
        entry = self.agency(agency_id)
        return entry is not None and kind in entry.entitled_events


def directory_entries(
    file: DirectoryFile,
    keys: Mapping[str, AgencyPublicKeys],
    extra_agencies: Iterable[tuple[str, str, str]] = (),
) -> list[DirectoryEntry]:
    """The entries of a directory file, with each agency's public keys filled in.

    :param keys: public keys by agency id; every agency of the file must have some.
    :param extra_agencies: (id, name, name_ja) of senders that are not data-holding
        agencies but whose signatures the hub checks (the resident registry).
    """
    entries: list[DirectoryEntry] = []
    for agency in file.agencies:
        public = keys[agency.agency_id]
        entries.append(
            AgencyEntry(
                header=Header.new("operator", message_id=derive_id("dir", agency.agency_id)),
                agency_id=agency.agency_id,
                name=agency.name,
                name_ja=agency.name_ja,
                signing_public_key=public.signing_public_key,
                sealing_public_key=public.sealing_public_key,
                entitled_events=tuple(EventKind(e) for e in agency.entitled_events),
                active=True,
            )
        )
    for agency_id, name, name_ja in extra_agencies:
        public = keys[agency_id]
        entries.append(
            AgencyEntry(
                header=Header.new("operator", message_id=derive_id("dir", agency_id)),
                agency_id=agency_id,
                name=name,
                name_ja=name_ja,
                signing_public_key=public.signing_public_key,
                sealing_public_key=public.sealing_public_key,
                entitled_events=(),
                active=True,
            )
        )
    for s in file.scenarios:
        entries.append(
            ScenarioEntry(
                header=Header.new("operator", message_id=derive_id("dir", s.scenario_id)),
                scenario_id=s.scenario_id,
                legal_basis=s.legal_basis,
                duty=s.duty,
                duty_ja=s.duty_ja,
                requester=s.requester,
                provider=s.provider,
                items=tuple(s.items),
                active=True,
            )
        )
    return entries


async def publish_directory(
    kafka: dict[str, Any],
    topics: Topics,
    entries: Iterable[DirectoryEntry],
    codec: Codec,
    operator_key: SigningKey,
) -> int:
    """Write signed entries to ``hub.directory``; return how many."""
    producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True)
    await producer.start()
    count = 0
    try:
        for entry in entries:
            signed = sign_message(entry, operator_key, codec)
            await producer.send(topics.directory, codec.encode(signed), key=entry_key(entry))
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count
