"""``renkei registry publish|wait``: the resident registry's feed, from a file.

``publish`` signs one ``RegistryEvent`` per line of a CSV or JSONL file
(:mod:`producers.registry_feed` documents the columns) with the registry's key from the
key folder, and by default waits until the hub has applied them. ``wait`` waits for the
events of a file (or named event ids) without publishing: it reads the hub's audit trail
from its beginning (:mod:`producers.registry_wait`).

Exit codes: 0 every event applied; 1 the hub refused some (each is listed with its error
code); 2 an error (bad file, no verdict in time, no key).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from producers.registry_feed import FeedEvent, publish_feed, read_feed
from producers.registry_publisher import APPLIED, RegistryPublisher, event_message_id
from producers.registry_wait import wait_applied
from renkei.crypto import keystore
from renkei.errors import ConfigurationError
from renkei.settings import KafkaSettings
from renkei.topics import Topics

from ._common import console, err_console, friendly_errors

__all__ = ["registry_app"]

registry_app = typer.Typer(
    help="The resident registry's feed: publish persons and events, wait for the hub.",
    no_args_is_help=True,
)

FeedFile = Annotated[Path, typer.Option("--file", help="The feed: .csv or .jsonl.")]
KeyDir = Annotated[
    Path, typer.Option(help="Key folder with the registry's key.", envvar="RENKEI_HUB_KEY_DIR")
]
Prefix = Annotated[str, typer.Option(envvar="RENKEI_HUB_TOPIC_PREFIX")]
WaitS = Annotated[float, typer.Option("--wait-s", help="Wait this long for the hub; 0: don't.")]


@registry_app.command("publish")
@friendly_errors
def publish_command(
    file: FeedFile,
    key_dir: KeyDir = Path(".renkei/keys"),
    prefix: Prefix = "",
    wait_s: WaitS = 60,
) -> None:
    """Publish a feed file's events, signed by the registry; then wait until applied.

    Columns: action (register|move|rename|die|reissue_number, default register),
    resident_code, event_id (optional: derived from the line), effective_date, and
    my_number, name, name_kana, birth_date, sex, address / date_of_death as the action
    needs (docs/operations.md).
    """
    events = read_feed(file)
    keys = keystore.load(key_dir, "registry")
    kafka = KafkaSettings().kafka_kwargs()

    async def run() -> dict[str, str] | None:
        async with RegistryPublisher(keys, kafka, Topics(prefix)) as registry:
            ids = await publish_feed(registry, events)
            await registry.flush()
            console.print(f"published {len(ids)} registry events from {file}")
            return await registry.wait_applied(ids, timeout_s=wait_s) if wait_s > 0 else None

    outcomes = asyncio.run(run())
    if outcomes is not None:
        _report(events, outcomes)


@registry_app.command("wait")
@friendly_errors
def wait_command(
    file: Annotated[
        Path | None, typer.Option("--file", help="Wait for this feed's events.")
    ] = None,
    event_id: Annotated[
        list[str] | None, typer.Option("--event-id", help="An event id (repeatable).")
    ] = None,
    prefix: Prefix = "",
    wait_s: WaitS = 60,
) -> None:
    """Wait until the hub has applied (or refused) events, reading its audit trail."""
    events = read_feed(file) if file is not None else []
    ids = [e.event_id for e in events] + list(event_id or [])
    if not ids:
        raise ConfigurationError("name the events: --file FEED or --event-id ID")
    kafka = KafkaSettings().kafka_kwargs()
    messages = {i: event_message_id(i) for i in ids}
    outcomes = asyncio.run(
        wait_applied(kafka, Topics(prefix), messages, timeout_s=max(wait_s, 0.1))
    )
    _report(events, outcomes)


def _report(events: list[FeedEvent], outcomes: dict[str, str]) -> None:
    where = {e.event_id: f"{e.where} {e.action} {e.resident_code}" for e in events}
    refused = {i: code for i, code in outcomes.items() if code != APPLIED}
    console.print(f"applied {len(outcomes) - len(refused)}, refused {len(refused)}")
    for event_id, code in refused.items():
        err_console.print(f"refused {code}: {where.get(event_id, event_id)} (event {event_id})")
    if refused:
        raise typer.Exit(1)
