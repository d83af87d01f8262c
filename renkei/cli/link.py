"""``renkei link match|enrol``: bulk initial linkage (紐付け) of an agency's records.

``match`` runs offline at the registry's side, without Kafka: it reads the registry (a
file, or ``--registry-topic``: the registry's own feed, read to its end) and an agency's
file (CSV or Parquet), and writes ``linked``, ``review`` and ``not_found``
to the output folder (:mod:`renkei.linkage`, ``docs/linkage.md``). An interrupted run
resumes where it stopped when started again with the same arguments.

``enrol`` sends the linked rows (and rows a person confirmed after review) to the hub as
signed operator commands, so the agency receives its link codes and the audit trail
records each enrolment with the run and its score (:mod:`renkei.operator.linked_enrol`).
Interrupted, it resumes: what Kafka acknowledged is not sent again.

Exit codes: 0 done; 2 an error (an input missing or malformed, another run's partial
work in the output folder, no Kafka).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from renkei.linkage.decided import linked_rows, reviewed_rows, run_identity
from renkei.linkage.registry_events import read_registry_topic
from renkei.operator.linked_enrol import EnrolOutcome, enrol_linked
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
_ENROL_PHASES = {"send": "sending to hub.control", "wait": "the hub's outcome"}


@contextmanager
def _bars(phases: dict[str, str], enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar per phase, as ``report(phase, done, total)`` announces them."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, disable=not enabled, transient=False) as bar:
        tasks: dict[str, TaskID] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phases.get(phase, phase), total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield report


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
    with _bars(_PHASES, progress) as report:
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
    linked: Annotated[
        Path, typer.Argument(help="DIR/linked.csv (or .parquet) of `renkei link match`.")
    ],
    agency: Annotated[str, typer.Option(help="The agency whose records these are.")],
    reviewed: Annotated[
        Path | None,
        typer.Option(help="Rows a person confirmed: record_ref,resident_code,reviewer."),
    ] = None,
    capacity: Annotated[str, typer.Option(help="What the agency holds these persons as.")] = "",
    wait_s: Annotated[
        float,
        typer.Option(
            "--wait-s",
            help="Wait for the hub's outcome until it is quiet this long; 0: don't.",
        ),
    ] = 60,
    restart: Annotated[
        bool,
        typer.Option(help="Forget an interrupted enrolment's progress; send everything again."),
    ] = False,
    key_dir: Annotated[
        Path, typer.Option(help="Key folder with the operators' key.", envvar="RENKEI_HUB_KEY_DIR")
    ] = Path(".renkei/keys"),
    prefix: Annotated[str, typer.Option(envvar="RENKEI_HUB_TOPIC_PREFIX")] = "",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Enrol the linked (and reviewed) records through the hub: the agency gets its link codes."""
    out = linked.parent
    run = run_identity(out)
    rows = linked_rows(linked)
    if reviewed is not None:
        rows += reviewed_rows(reviewed, out)
        if len({r.record_ref for r in rows}) != len(rows):
            raise ConfigurationError(f"{reviewed} repeats a record_ref of {linked}")
    console.print(f"linkage run {run}: {len(rows)} records for {agency}")
    with _bars(_ENROL_PHASES, progress) as report:
        result = asyncio.run(
            enrol_linked(
                KafkaSettings(), prefix, key_dir, out, agency, run, rows, capacity=capacity,
                restart=restart, wait_s=wait_s, progress=report,
            )
        )  # fmt: skip
    _summary(result, wait_s)


def _summary(result: EnrolOutcome, wait_s: float) -> None:
    skipped = f" ({result.skipped_rows} sent by an earlier run)" if result.skipped_rows else ""
    commands = f"{result.commands} command{'' if result.commands == 1 else 's'}"
    console.print(f"sent {result.sent} records in {commands}{skipped}")
    if wait_s <= 0:
        console.print("not waited for: the outcome of each record is in hub.audit")
        return
    console.print(f"enrolled {result.enrolled}")
    for code, count in sorted(result.not_enrolled.items()):
        console.print(f"not enrolled ({code}) {count}")
    for code, count in sorted(result.refused.items()):
        console.print(f"refused ({code}) {count}")
    if result.unanswered:
        console.print(
            f"no outcome seen for {result.unanswered} (waited until {wait_s:g} s passed without "
            "one): is a hub running? Started again, this command sends only what it has not sent"
        )
