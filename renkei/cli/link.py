"""``renkei link match|enrol``: bulk initial linkage (紐付け) of an agency's records.

``match`` runs offline at the registry's side, without Kafka: it reads the registry (a
file, or ``--registry-topic``: the registry's own feed, read to its end) and an agency's
file (CSV or Parquet), and writes ``linked``, ``review`` and ``not_found``
to the output folder (:mod:`renkei.linkage`, ``docs/linkage.md``). An interrupted run
resumes where it stopped when started again with the same arguments.

Exit codes: 0 done; 2 an error (an input missing or malformed, another run's partial
work in the output folder, or ``enrol``, which is not available yet).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import pyarrow as pa
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from renkei.crypto import keystore
from renkei.errors import ConfigurationError
from renkei.linkage import Policy, match_files
from renkei.linkage.registry_events import read_registry_topic
from renkei.settings import KafkaSettings

from ._common import console, friendly_errors

__all__ = ["link_app"]

link_app = typer.Typer(
    help="Bulk initial linkage: tie an agency's existing records to registry persons.",
    no_args_is_help=True,
)

_PHASES = {
    "prepare": "reading the registry",
    "train": "training the model (EM)",
    "match": "matching records",
}


@link_app.command("match")
@friendly_errors
def match_command(
    records: Annotated[Path, typer.Option(help="The agency's records: .csv or .parquet.")],
    out: Annotated[Path, typer.Option(help="Folder for linked, review and not_found.")],
    registry: Annotated[
        Path | None, typer.Option(help="The person table: .csv or .parquet (docs/linkage.md).")
    ] = None,
    registry_topic: Annotated[
        str | None,
        typer.Option(help="Read the person table from this topic instead (registry.events)."),
    ] = None,
    key_dir: Annotated[
        Path,
        typer.Option(
            help="Key folder with the registry's key (for --registry-topic).",
            envvar="RENKEI_HUB_KEY_DIR",
        ),
    ] = Path(".renkei/keys"),
    output_format: Annotated[
        Literal["csv", "parquet"], typer.Option("--format", help="Format of the outputs.")
    ] = "csv",
    batch_size: Annotated[
        int, typer.Option(min=1, help="Records per batch (the unit of resuming).")
    ] = 100_000,
    link_probability: Annotated[
        float, typer.Option(min=0.5, max=1.0, help="Lowest match probability that links.")
    ] = Policy().link_probability,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes preparing rows (default: the cores, up to 4).")
    ] = min(4, os.cpu_count() or 1),
    restart: Annotated[
        bool, typer.Option(help="Discard a previous run's partial work in --out.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Link RECORDS to REGISTRY offline; write OUT/linked, OUT/review, OUT/not_found."""
    policy = Policy(link_probability=link_probability)
    source = _registry(registry, registry_topic, key_dir)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=not progress, transient=False) as bar:
        tasks: dict[str, TaskID] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(_PHASES.get(phase, phase), total=total)
            bar.update(tasks[phase], completed=done, total=total)

        summary = match_files(
            source,
            records,
            out,
            output_format=output_format,
            batch_size=batch_size,
            policy=policy,
            restart=restart,
            workers=workers,
            progress=report,
        )
    console.print(
        f"{summary.records} records: {summary.linked} linked, {summary.review} to review, "
        f"{summary.not_found} not found"
        + (f" ({summary.batches_resumed} batches resumed)" if summary.batches_resumed else "")
    )
    for path in summary.outputs:
        console.print(f"  {path}")


def _registry(file: Path | None, topic: str | None, key_dir: Path) -> Path | pa.Table:
    """The registry file, or the table read from the registry's topic (signatures checked)."""
    if (file is None) == (topic is None):
        raise ConfigurationError("give exactly one of --registry and --registry-topic")
    if file is not None:
        return file
    assert topic is not None
    public = keystore.load(key_dir, "registry").public().signing_public_key
    console.print(f"reading {topic} …")
    return read_registry_topic(KafkaSettings().kafka_kwargs(), topic, public)


@link_app.command("enrol")
@friendly_errors
def enrol_command(
    linked: Annotated[Path, typer.Option(help="linked.csv of `renkei link match`.")],
) -> None:
    """Not yet: enrol the linked records through the hub (docs/linkage.md, "Later")."""
    raise ConfigurationError(
        f"`renkei link enrol` is not available yet (it needs a bulk-enrolment message in "
        f"the contract); {linked} is unchanged — see docs/linkage.md"
    )
