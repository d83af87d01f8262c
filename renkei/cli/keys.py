"""``renkei keys init|rotate`` and ``renkei directory publish``: keys and the directory."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from renkei.operator.commands import rotate
from renkei.operator.publish import init_keys, publish
from renkei.settings import KafkaSettings

from ._common import console, friendly_errors

__all__ = ["directory_app", "keys_app"]

keys_app = typer.Typer(help="Key material of the hub and of local agencies.", no_args_is_help=True)
directory_app = typer.Typer(help="The agency directory and scenario table.", no_args_is_help=True)

KeyDir = Annotated[Path, typer.Option(help="Where key files live.", envvar="RENKEI_HUB_KEY_DIR")]
DirectoryPath = Annotated[
    Path | None, typer.Option("--file", help="Directory file; the packaged sample by default.")
]


@keys_app.command("init")
@friendly_errors
def init(key_dir: KeyDir = Path(".renkei/keys"), file: DirectoryPath = None) -> None:
    """Create the master secret and keys for every agency of the directory (local use)."""
    created = init_keys(key_dir, file)
    console.print(f"created keys for: {', '.join(created)}" if created else "all keys exist")


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
