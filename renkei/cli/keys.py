"""``renkei keys init|rotate`` and ``renkei directory publish``: keys and the directory."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from renkei.crypto import MasterSecret, keystore
from renkei.errors import ConfigurationError
from renkei.settings import KafkaSettings

from ._common import console, friendly_errors

if TYPE_CHECKING:
    from hub_stream.records import KeyStateRecord

__all__ = ["SENDERS", "directory_app", "init_keys", "keys_app", "publish", "rotate"]

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


async def rotate(
    kafka: KafkaSettings, prefix: str, key_dir: Path, agency: str, grace_s: float, wait_s: float
) -> KeyStateRecord | None:
    """Ask the hub to rotate ``agency``'s link-code key; its new key state, once applied.

    The command is signed with the operators' key and written to ``hub.control``; the hub
    applies it in its transactional loop (new key version, one ``LinkCodeRemap`` per
    person the agency holds, ``KEY_ROTATED`` audit record). With ``wait_s`` > 0 this waits
    for the key state the hub publishes to ``hub.state.keys``; with 0 it returns None.
    """
    from aiokafka.admin import AIOKafkaAdminClient

    from hub_stream.control import RotateKey, control_spec, send_command, wait_for_key_state
    from renkei.topics import Topics, ensure_topics

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


@keys_app.command("rotate")
@friendly_errors
def rotate_command(
    agency: Annotated[str, typer.Option("--agency", help="The agency whose key leaked.")],
    grace_s: Annotated[
        float, typer.Option("--grace-s", help="How long its old link codes keep working.")
    ] = 7 * 24 * 3600,
    wait_s: Annotated[
        float, typer.Option("--wait-s", help="Wait this long for the hub to apply it; 0: don't.")
    ] = 60,
    key_dir: KeyDir = Path(".renkei/keys"),
    prefix: Annotated[str, typer.Option(envvar="RENKEI_HUB_TOPIC_PREFIX")] = "",
) -> None:
    """Rotate an agency's link-code key: new codes for everyone it holds, old ones expire."""
    state = asyncio.run(rotate(KafkaSettings(), prefix, key_dir, agency, grace_s, wait_s))
    if state is None:
        console.print(f"rotation of {agency} requested; the hub sends the remaps when it runs")
        return
    s = state.state
    console.print(
        f"{agency}: link-code key version {s.current_version} since {_when(s.rotated_at)}; "
        f"codes of version {s.previous_version} accepted until "
        f"{_when(s.previous_valid_until)}, then refused with EXPIRED_LINK_CODE; "
        f"{state.remapped} LinkCodeRemap messages sent"
    )


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(timespec="milliseconds")
