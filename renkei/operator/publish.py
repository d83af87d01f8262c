"""Operators write the directory: entries from a directory file, signed, to ``hub.directory``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from hub_stream.directory import DirectoryEntry, entry_key
from hub_stream.ids import derive_id
from renkei.crypto import AgencyPublicKeys, MasterSecret, SigningKey, keystore
from renkei.envelope import sign_message
from renkei.errors import ConfigurationError
from renkei.settings import KafkaSettings
from renkei.topics import Topics, ensure_topics
from schemas.codec import Codec, default_codec
from schemas.models import AgencyEntry, EventKind, Header, ScenarioEntry

from .directory_file import DirectoryFile, load_directory_file

__all__ = ["SENDERS", "directory_entries", "init_keys", "publish", "publish_directory"]


SENDERS = (
    ("registry", "Resident Registry", "住民基本台帳"),
    ("operator", "Hub operators", "運用者"),
)
"""Signers that are not data-holding agencies: the registry and the operators."""


def init_keys(key_dir: Path, directory_file: Path | None = None) -> list[str]:
    """Create whatever keys are missing; return the ids that got new keys."""
    key_dir.mkdir(parents=True, exist_ok=True)
    created: list[str] = []
    if not (key_dir / "master.key").exists():
        MasterSecret.generate_file(key_dir / "master.key")
        created.append("master")
    file = load_directory_file(directory_file)
    for agency_id in [a.agency_id for a in file.agencies] + [s[0] for s in SENDERS]:
        if not keystore.agency_key_path(key_dir, agency_id).exists():
            keystore.create(key_dir, agency_id)
            created.append(agency_id)
    return created


async def publish(kafka: KafkaSettings, prefix: str, key_dir: Path, file: Path | None) -> int:
    """Publish the directory file, with public keys from ``key_dir``, to ``hub.directory``."""
    topics = Topics(prefix)
    directory = load_directory_file(file)
    ids = [a.agency_id for a in directory.agencies] + [s[0] for s in SENDERS]
    try:
        public = {i: keystore.load(key_dir, i).public() for i in ids}
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc} (run `renkei keys init` first)") from exc
    admin = AIOKafkaAdminClient(**kafka.kafka_kwargs())
    await admin.start()
    try:
        specs = topics.hub_specs()
        for agency in directory.agencies:
            specs += topics.agency_specs(agency.agency_id)
        await ensure_topics(admin, specs)
    finally:
        await admin.close()
    entries = directory_entries(directory, public, SENDERS)
    operator = keystore.load(key_dir, "operator").signing
    return await publish_directory(kafka.kafka_kwargs(), topics, entries, default_codec(), operator)


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
