"""``renkei keys init`` and ``renkei directory publish``: key material and the directory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from renkei.crypto import MasterSecret, keystore
from renkei.errors import ConfigurationError
from renkei.settings import KafkaSettings

from ._common import console, friendly_errors

__all__ = ["SENDERS", "directory_app", "init_keys", "keys_app", "publish"]

keys_app = typer.Typer(help="Key material of the hub and of local agencies.", no_args_is_help=True)
directory_app = typer.Typer(help="The agency directory and scenario table.", no_args_is_help=True)

SENDERS = (
    ("registry", "Resident Registry", "住民基本台帳"),
    ("operator", "Hub operators", "運用者"),
)
"""Signers that are not data-holding agencies: the registry and the operators."""

KeyDir = Annotated[Path, typer.Option(help="Where key files live.", envvar="RENKEI_HUB_KEY_DIR")]
DirectoryPath = Annotated[
    Path | None, typer.Option("--file", help="Directory file; the packaged sample by default.")
]


def init_keys(key_dir: Path, directory_file: Path | None = None) -> list[str]:
    """Create whatever keys are missing; return the ids that got new keys."""
    from hub_stream.directory_file import load_directory_file

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


@keys_app.command("init")
@friendly_errors
def init(key_dir: KeyDir = Path(".renkei/keys"), file: DirectoryPath = None) -> None:
    """Create the master secret and keys for every agency of the directory (local use)."""
    created = init_keys(key_dir, file)
    console.print(f"created keys for: {', '.join(created)}" if created else "all keys exist")


async def publish(kafka: KafkaSettings, prefix: str, key_dir: Path, file: Path | None) -> int:
    """Publish the directory file, with public keys from ``key_dir``, to ``hub.directory``."""
    from aiokafka.admin import AIOKafkaAdminClient

    from hub_stream.directory import directory_entries, publish_directory
    from hub_stream.directory_file import load_directory_file
    from renkei.topics import Topics, ensure_topics
    from schemas.codec import default_codec

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


@directory_app.command("publish")
@friendly_errors
def publish_command(
    key_dir: KeyDir = Path(".renkei/keys"),
    file: DirectoryPath = None,
    prefix: Annotated[str, typer.Option(envvar="RENKEI_HUB_TOPIC_PREFIX")] = "",
) -> None:
    """Create the agencies' topics and publish the directory to hub.directory."""
    count = asyncio.run(publish(KafkaSettings(), prefix, key_dir, file))
    console.print(f"published {count} directory entries")
