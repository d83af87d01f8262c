"""Operators write the directory: entries from a directory file, signed, to ``hub.directory``.

The agencies' keys come from a folder of public bundles (:mod:`renkei.crypto.bundles`), one
per agency plus the registry's, the operators' and the hub's; the only private key read is
the operators' own signing key. The hub's key is published too, as the entry ``hub``, so
agencies can learn it from the directory under the operators' signature.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from hub_stream.directory import DirectoryEntry, entry_key
from hub_stream.ids import derive_id
from renkei.crypto import AgencyPublicKeys, SigningKey, keystore
from renkei.crypto._files import ensure_private_dir
from renkei.crypto.bundles import HUB_ID, read_bundles, write_bundle
from renkei.envelope import sign_message
from renkei.errors import ConfigurationError
from renkei.settings import KafkaSettings
from renkei.topics import Topics, ensure_topics
from schemas.codec import Codec, default_codec
from schemas.models import AgencyEntry, EventKind, Header, ScenarioEntry

from .directory_file import DirectoryFile, load_directory_file
from .onboarding import hub_init

__all__ = [
    "HUB",
    "RESERVED_IDS",
    "SENDERS",
    "directory_entries",
    "directory_keys",
    "init_keys",
    "publish",
    "publish_directory",
]


SENDERS = (
    ("registry", "Resident Registry", "住民基本台帳"),
    ("operator", "Hub operators", "運用者"),
)
"""Signers that are not data-holding agencies: the registry and the operators."""
HUB = (HUB_ID, "Renkei hub", "連携ハブ")
"""The hub's own directory entry: its signing key, no sealing key, no entitlements."""
RESERVED_IDS = frozenset(s[0] for s in (*SENDERS, HUB))
"""Ids a directory file may not give an agency: their entries are made here."""


def init_keys(key_dir: Path, directory_file: Path | None = None) -> list[str]:
    """Create whatever keys are missing, all in one folder (the demo, the tests).

    The master secret, the hub's key, keys for every agency of the directory, the
    registry and the operators, and a public bundle beside each, so that
    :func:`publish` can read this folder like the operators' folder of bundles.
    :returns: the ids that got new keys (``master`` for the master secret).
    """
    ensure_private_dir(key_dir)
    created = [c for c in hub_init(key_dir) if c in ("master", HUB_ID)]
    file = load_directory_file(directory_file)
    for agency_id in [a.agency_id for a in file.agencies] + [s[0] for s in SENDERS]:
        if not keystore.agency_key_path(key_dir, agency_id).exists():
            keystore.create(key_dir, agency_id)
            created.append(agency_id)
        # Also for folders made before bundles existed; rewriting the same bytes is a no-op.
        write_bundle(key_dir, keystore.load(key_dir, agency_id).public())
    return created


def directory_keys(directory: DirectoryFile, folder: Path) -> dict[str, AgencyPublicKeys]:
    """The public keys the directory needs, read from the bundles in ``folder``.

    :raises ConfigurationError: the file gives an agency a reserved id, a bundle is
        invalid, or some party's bundle is missing (all missing ones are named).
    """
    reserved = sorted(a.agency_id for a in directory.agencies if a.agency_id in RESERVED_IDS)
    if reserved:
        raise ConfigurationError(f"the directory file gives agencies reserved ids: {reserved}")
    bundles = read_bundles(folder)
    needed = [a.agency_id for a in directory.agencies] + [s[0] for s in (*SENDERS, HUB)]
    missing = [agency_id for agency_id in needed if agency_id not in bundles]
    if missing:
        raise ConfigurationError(
            f"no public key bundle in {folder} for: {', '.join(missing)}. Each party exports "
            "its own (`renkei keys agency-init` / `renkei keys export-public`, the hub's with "
            "`--agency hub`); `renkei keys init` makes them for a local key folder"
        )
    return {agency_id: bundles[agency_id] for agency_id in needed}


async def publish(
    kafka: KafkaSettings,
    prefix: str,
    key_dir: Path,
    file: Path | None,
    public_dir: Path | None = None,
) -> int:
    """Publish the directory file, with the keys of the bundles in ``public_dir``.

    :param key_dir: holds the operators' key file, ``agency-operator.json``, to sign with.
    :param public_dir: the folder of public bundles; ``key_dir`` by default.
    :raises ConfigurationError: a bundle is missing or invalid, or the operators' key is
        not the one in the operators' bundle (the hub would refuse their commands).
    """
    topics = Topics(prefix)
    directory = load_directory_file(file)
    public = directory_keys(directory, key_dir if public_dir is None else public_dir)
    try:
        operator = keystore.load(key_dir, "operator").signing
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc} (the operators' own key)") from exc
    if operator.public_bytes != public["operator"].signing_public_key:
        raise ConfigurationError(
            f"the operators' key in {key_dir} is not the one in the operators' public bundle"
        )
    admin = AIOKafkaAdminClient(**kafka.kafka_kwargs())
    await admin.start()
    try:
        specs = topics.hub_specs()
        for agency in directory.agencies:
            specs += topics.agency_specs(agency.agency_id)
        await ensure_topics(admin, specs)
    finally:
        await admin.close()
    entries = directory_entries(directory, public, (*SENDERS, HUB))
    return await publish_directory(kafka.kafka_kwargs(), topics, entries, default_codec(), operator)


def directory_entries(
    file: DirectoryFile,
    keys: Mapping[str, AgencyPublicKeys],
    extra_agencies: Iterable[tuple[str, str, str]] = (),
) -> list[DirectoryEntry]:
    """The entries of a directory file, with each agency's public keys filled in.

    :param keys: public keys by agency id; every agency of the file must have some.
    :param extra_agencies: (id, name, name_ja) of signers that are not data-holding
        agencies but whose keys others check: :data:`SENDERS` and :data:`HUB`.
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
