"""``renkei audit verify | replay | trace | rebuild | release | heads | prove``: the operators'
audit tools (``heads`` and ``prove`` live in :mod:`.audit_trees`)."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from renkei.errors import ConfigurationError
from renkei.settings import KafkaSettings
from renkei.topics import Topics

from ._common import console, err_console, friendly_errors

__all__ = ["audit_app", "parse_time"]

audit_app = typer.Typer(
    help="Verify, replay and trace the audit trail (hub.audit).", no_args_is_help=True
)

KeyDir = Annotated[Path, typer.Option(help="Where key files live.", envvar="RENKEI_HUB_KEY_DIR")]
Prefix = Annotated[
    str, typer.Option(help="Topic name prefix of the deployment.", envvar="RENKEI_HUB_TOPIC_PREFIX")
]
TopicOpt = Annotated[
    str | None,
    typer.Option("--topic", help="Read this topic instead of hub.audit (e.g. a copy)."),
]
Since = Annotated[
    str | None, typer.Option("--from", help="Start time: ISO 8601 (UTC if no offset) or a date.")
]
Until = Annotated[str | None, typer.Option("--to", help="End time (exclusive), as --from.")]


def parse_time(text: str | None) -> int | None:
    """ISO 8601 date or time (UTC unless it says otherwise) → milliseconds since the epoch."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigurationError(f"not an ISO 8601 time: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _kafka() -> dict[str, Any]:
    return KafkaSettings().kafka_kwargs()


@audit_app.command("verify")
@friendly_errors
def verify_command(
    key_dir: KeyDir = Path(".renkei/keys"),
    prefix: Prefix = "",
    topic: TopicOpt = None,
    trust: Annotated[
        Path | None, typer.Option(help="Trusted audit keys; <key-dir>/audit-trust.json by default.")
    ] = None,
    since: Since = None,
    until: Until = None,
    against: Annotated[
        Path | None,
        typer.Option(
            "--against",
            help="Tree heads kept earlier (renkei audit heads): prove the trail extends each.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Re-read the trail; report every edited, removed, reordered, inserted or forked record,
    every record no tree head covers, every tree head or checkpoint that fails, by partition,
    chain position and offset. Exits 1 if anything is found."""
    from renkei.audit.proofs import check_against
    from renkei.audit.verify import verify_trail
    from renkei.auditchain import TRUST_FILE, TrustedKeys
    from renkei.treehead import SignedHead
    from schemas.codec import default_codec

    from .audit_trees import print_consistency, print_findings, print_partitions

    trusted = TrustedKeys.load(trust or key_dir / TRUST_FILE)
    codec = default_codec()
    if against is not None and (since or until):
        # the proofs need today's whole tree, from position 0 to the latest head
        raise ConfigurationError("--against reads the whole trail: no --from or --to")
    earlier: list[SignedHead] = []
    if against is not None:
        try:
            text = against.read_text()
        except OSError as exc:
            raise ConfigurationError(f"cannot read {against}: {exc}") from exc
        earlier = SignedHead.load_all(text, codec)
    name = topic or Topics(prefix).audit
    progress = Progress(
        TextColumn("verifying {task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:,.0f} offsets"),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet or not err_console.is_terminal,
    )
    task = progress.add_task(name, total=None)
    with progress:
        report = asyncio.run(
            verify_trail(
                _kafka(), name, trusted, codec,
                since_ms=parse_time(since), until_ms=parse_time(until),
                on_start=lambda total: progress.update(task, total=total),
                on_progress=lambda done: progress.update(task, completed=done),
            )
        )  # fmt: skip
    print_partitions(report)
    findings = report.findings
    if earlier:
        checks = check_against(report, earlier, trusted, codec)
        print_consistency(checks)
        findings += [c.finding for c in checks if c.finding is not None]
    if not findings:
        extends = f", extending {len(earlier)} earlier head(s)" if earlier else ""
        console.print(
            f"[green]{name}: {report.records} records verified{extends}, nothing wrong[/]"
        )
        return
    print_findings(findings, name)
    raise typer.Exit(1)


@audit_app.command("replay")
@friendly_errors
def replay_command(
    key_dir: KeyDir = Path(".renkei/keys"),
    prefix: Prefix = "",
    topic: TopicOpt = None,
    since: Since = None,
    until: Until = None,
    agency: Annotated[str | None, typer.Option(help="Actor, requester or provider.")] = None,
    scenario: Annotated[str | None, typer.Option(help="Scenario id.")] = None,
    step: Annotated[list[str] | None, typer.Option(help="Step(s), e.g. FORWARDED.")] = None,
    person: Annotated[
        str | None,
        typer.Option(help="AGENCY:LINK_CODE of the person (needs the master secret)."),
    ] = None,
    audit_key: Annotated[str | None, typer.Option(help="The person's audit key.")] = None,
    output: Annotated[
        Literal["table", "jsonl", "csv"], typer.Option("--format", help="Output format.")
    ] = "table",
    project: Annotated[
        Literal["records", "stats", "holdings", "pending"],
        typer.Option(help="Print records, or a projection rebuilt from them."),
    ] = "records",
) -> None:
    """Stream the trail's records, filtered, or a projection built from them."""
    from renkei.audit.replay import Filter, audit_key_of_link_code

    keys: frozenset[str] | None = None
    if person is not None:
        agency_id, _, code = person.partition(":")
        if not code:
            raise ConfigurationError("--person takes AGENCY:LINK_CODE")
        from hub_stream.settings import HubSettings
        from hub_stream.worker import load_hub_keys

        keyring, _ = load_hub_keys(HubSettings(key_dir=key_dir))
        keys = frozenset({audit_key_of_link_code(keyring, agency_id, code)})
    if audit_key is not None:
        keys = (keys or frozenset()) | {audit_key}
    where = Filter(
        since_ms=parse_time(since),
        until_ms=parse_time(until),
        agency=agency,
        scenario_id=scenario,
        audit_keys=keys,
        steps=frozenset(step) if step else None,
    )
    asyncio.run(_replay(topic or Topics(prefix).audit, where, output, project))


async def _replay(topic: str, where: Any, output: str, project: str) -> None:
    from renkei.audit.projections import Projections
    from renkei.audit.replay import entries, format_csv, format_jsonl, row
    from schemas.codec import default_codec

    found = [e async for e in entries(_kafka(), topic, default_codec(), where)]
    found.sort(key=lambda e: (e.occurred_ms, e.partition, e.offset))
    if project != "records":
        projections = Projections()
        for entry in found:
            projections.apply(entry)
        rows: list[dict[str, Any]]
        if project == "stats":
            rows = projections.stats.table()
        elif project == "holdings":
            rows = [
                {"audit_key": k.split("|")[0], "agency": k.split("|")[1]}
                for k in sorted(projections.holdings.keys)
            ]
        else:
            pending = projections.pending.pending
            rows = [{"hub_request_id": k, **_fields(v)} for k, v in pending.items()]
        _print_rows(rows, output)
        return
    rows = [row(e) for e in found]
    if output == "jsonl":
        for line in format_jsonl(rows):
            sys.stdout.write(line + "\n")
    elif output == "csv":
        for line in format_csv(rows):
            sys.stdout.write(line)
    else:
        shown = ("occurred_at", "partition", "offset", "step", "actor", "requester", "provider")
        table = Table(*shown, "scenario_id", "items", "error_code", "disclosable")
        for r in rows:
            table.add_row(
                *(str(r[c]) for c in shown), r["scenario_id"] or "", " ".join(r["items"]),
                r["error_code"] or "", "yes" if r["disclosable"] else "no",
            )  # fmt: skip
        console.print(table)
        console.print(f"{len(rows)} record(s)")


def _fields(value: Any) -> dict[str, Any]:
    return {k: getattr(value, k) for k in value.__slots__}


def _print_rows(rows: list[dict[str, Any]], output: str) -> None:
    from renkei.audit.replay import format_jsonl

    if output == "jsonl":
        for line in format_jsonl(rows):
            sys.stdout.write(line + "\n")
        return
    if output == "csv":
        import csv

        if rows:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return
    table = Table(*(rows[0] if rows else ["(none)"]))
    for r in rows:
        table.add_row(*(str(v) for v in r.values()))
    console.print(table)


@audit_app.command("trace")
@friendly_errors
def trace_command(
    request_id: Annotated[str, typer.Argument(help="A hub request id or a request id.")],
    prefix: Prefix = "",
    topic: TopicOpt = None,
) -> None:
    """Every step of one exchange, in order, with timings."""
    from renkei.audit.trace import trace
    from schemas.codec import default_codec

    steps = asyncio.run(trace(_kafka(), topic or Topics(prefix).audit, default_codec(), request_id))
    if not steps:
        err_console.print(f"no audit record names {request_id}")
        raise typer.Exit(1)
    table = Table("occurred_at", "+ms", "Δms", "step", "actor", "requester", "provider",
                  "scenario", "items", "error", "hub request id", "where")  # fmt: skip
    for s in steps:
        r = s.entry.record
        table.add_row(
            r.occurred_at.isoformat(timespec="milliseconds"), str(s.since_start_ms),
            str(s.since_previous_ms), str(r.step), r.actor, r.requester or "",
            r.provider or "", r.scenario_id or "", " ".join(r.items), r.error_code or "",
            r.hub_request_id or "", f"{s.entry.partition}:{s.entry.offset}",
        )  # fmt: skip
    console.print(table)
    console.print(f"{len(steps)} step(s), {steps[-1].since_start_ms} ms from first to last")


@audit_app.command("rebuild")
@friendly_errors
def rebuild_command(key_dir: KeyDir = Path(".renkei/keys"), prefix: Prefix = "") -> None:
    """Rebuild the hub's state from registry.events and hub.audit alone; compare it with the
    live state (hub.state.*). Exits 1 on any difference."""
    from hub_stream.settings import HubSettings
    from hub_stream.trust import load_roots
    from hub_stream.worker import load_hub_keys
    from renkei.audit.rebuild import compare, live_state, rebuild_state
    from schemas.codec import default_codec

    # The hub's own settings (RENKEI_HUB_*) name the pinned registry key, as for the hub.
    settings = HubSettings(key_dir=key_dir)
    keyring, _ = load_hub_keys(settings)
    roots = load_roots(settings)
    topics = Topics(prefix)

    async def run() -> Any:
        rebuilt = await rebuild_state(_kafka(), topics, keyring, default_codec(), roots=roots)
        live = await live_state(_kafka(), topics, keyring)
        return compare(rebuilt, live, keyring)

    result = asyncio.run(run())
    table = Table("table", "rebuilt", "live")
    for name, (want, have) in result.counts.items():
        table.add_row(name, str(want), str(have))
    console.print(table)
    if not result.differences:
        console.print("[green]the rebuilt state equals the live state[/]")
        return
    for d in result.differences[:50]:
        console.print(f"[red]{d.table}[/] {d.key}: rebuilt {d.rebuilt} / live {d.live}")
    console.print(f"[red]{len(result.differences)} difference(s)[/]")
    raise typer.Exit(1)


@audit_app.command("release")
@friendly_errors
def release_command(
    reason: Annotated[str, typer.Option(help="Why the records may now be shown.")],
    hub_request_id: Annotated[str | None, typer.Option(help="Release one exchange.")] = None,
    scenario: Annotated[str | None, typer.Option(help="Release a scenario's records.")] = None,
    until: Until = None,
    key_dir: KeyDir = Path(".renkei/keys"),
    prefix: Prefix = "",
) -> None:
    """Release withheld records to the citizen portal (signed by the operator's key)."""
    from renkei.audit.disclosure import publish_release, sign_release
    from renkei.crypto import keystore

    key = keystore.load(key_dir, "operator").signing
    release = sign_release(
        key, reason, hub_request_id=hub_request_id, scenario_id=scenario,
        until_ms=parse_time(until),
    )  # fmt: skip
    asyncio.run(publish_release(_kafka(), Topics(prefix), release))
    console.print(f"released ({release.release_id})")


from . import audit_trees  # noqa: E402  (registers heads and prove on audit_app)

del audit_trees
