"""``renkei deadletter list | open``: what the hub parked in ``hub.deadletter``.

``list`` shows every letter's offset, source, reason and detail, never what it holds.
``open`` opens one letter's sealed input with the operators' key from the key folder
(``agency-operator.json``) and prints it: decoded as a contract message when it is one,
else as hex. It may hold a My Number or a basic-4: print it only where operators may see
personal data, or write the raw value to a file (``--out``, mode 0600) instead.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from renkei.crypto import keystore
from renkei.crypto._files import write_secret_file
from renkei.errors import ContractError
from renkei.operator.deadletters import Letter, open_at, read_letters
from renkei.settings import KafkaSettings
from renkei.topics import Topics
from schemas.codec import default_codec

from ._common import console, friendly_errors

__all__ = ["deadletter_app"]

deadletter_app = typer.Typer(
    help="Dead letters: list them, open a sealed one with the operators' key.",
    no_args_is_help=True,
)

Prefix = Annotated[str, typer.Option(envvar="RENKEI_HUB_TOPIC_PREFIX")]
KeyDir = Annotated[
    Path, typer.Option(help="Key folder with the operators' key file.", envvar="RENKEI_HUB_KEY_DIR")
]


def _kafka() -> dict[str, Any]:
    return KafkaSettings().kafka_kwargs()


@deadletter_app.command("list")
@friendly_errors
def list_command(prefix: Prefix = "") -> None:
    """Every letter: offset, where its input came from, why, and whether it is sealed."""

    async def run() -> list[Letter]:
        return [found async for found in read_letters(_kafka(), Topics(prefix), default_codec())]

    letters = asyncio.run(run())
    for found in letters:
        letter = found.letter
        if letter is None:
            console.print(f"{found.offset}: not a DeadLetter")
            continue
        held = "sealed" if found.sealed else "no value kept"
        console.print(
            f"{found.offset}: {letter.source_topic}@{letter.source_partition}:"
            f"{letter.source_offset} {letter.reason} ({held}) {letter.detail}",
            markup=False,
        )
    console.print(f"{len(letters)} letter(s)")


@deadletter_app.command("open")
@friendly_errors
def open_command(
    offset: Annotated[int, typer.Option("--offset", help="The letter's offset in hub.deadletter.")],
    key_dir: KeyDir = Path(".renkei/keys"),
    prefix: Prefix = "",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the input's value here (0600) instead of printing it."),
    ] = None,
) -> None:
    """Open one letter's sealed input with the operators' private sealing key."""
    operators = keystore.load(key_dir, "operator").sealing
    codec = default_codec()
    letter, opened = asyncio.run(open_at(_kafka(), Topics(prefix), codec, offset, operators))
    console.print(
        f"{letter.source_topic}@{letter.source_partition}:{letter.source_offset} "
        f"{letter.reason}: {letter.detail}",
        markup=False,
    )
    console.print(f"key: {opened.key!r}", markup=False)
    if out is not None:
        write_secret_file(out, opened.value)
        console.print(f"value: {len(opened.value)} bytes written to {out}")
        return
    try:
        message = codec.decode(opened.value)
    except ContractError:
        # soft_wrap: one unbroken line of hex, to copy as it is
        what = f"value ({len(opened.value)} bytes, not a message): {opened.value.hex()}"
        console.print(what, soft_wrap=True)
        return
    console.print(f"value: {type(message).__name__}", markup=False)
    text = json.dumps(message.model_dump(), default=_plain, ensure_ascii=False, indent=2)
    console.print(text, markup=False, soft_wrap=True)


def _plain(value: object) -> str:
    """JSON for what a message holds besides text and numbers: bytes as base64, dates ISO."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)
