"""``renkei audit heads | prove`` and verify's tree-head output (``--against``, the table).

Registered on :data:`renkei.cli.audit.audit_app`; split from it to keep that module short.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.table import Table

from renkei.topics import Topics

from ._common import console, err_console, friendly_errors
from .audit import KeyDir, Prefix, TopicOpt, _kafka, audit_app

if TYPE_CHECKING:
    from renkei.audit.proofs import Consistency, Inclusion
    from renkei.audit.verify import Finding, VerifyReport

__all__ = ["heads_command", "print_consistency", "print_findings", "print_partitions"]

Trust = Annotated[
    Path | None, typer.Option(help="Trusted audit keys; <key-dir>/audit-trust.json by default.")
]


def _short(root: bytes | None) -> str:
    return "-" if root is None else root.hex()[:16] + "…"


def print_partitions(report: VerifyReport) -> None:
    """verify's table: per partition what was read and how far signatures reach."""
    table = Table(
        "partition", "offsets", "records", "checkpoints", "tree heads", "tree size", "root",
        "signed through", "unsigned",
    )  # fmt: skip
    for p in report.partitions:
        span = f"{p.first_offset}..{p.last_offset}" if p.first_offset is not None else "-"
        latest = p.chain.latest if p.chain is not None else None
        table.add_row(
            str(p.partition), span, str(p.records), str(p.checkpoints), str(p.tree_heads),
            "-" if latest is None else str(latest.size),
            _short(None if latest is None else latest.root),
            "-" if p.signed_through is None else str(p.signed_through), str(p.unsigned_records),
        )  # fmt: skip
    console.print(table)
    headless = [p for p in report.partitions if p.records and not p.tree_size]
    if any(p.tree_size for p in report.partitions):
        console.print(
            "tree heads: the hub signs every commit, so no record may stand after the last "
            "head (after-last-head)"
        )
    if headless:
        unsigned = sum(p.unsigned_records for p in headless)
        names = ", ".join(str(p.partition) for p in headless)
        console.print(
            f"no tree head in partition(s) {names} (written before tree heads): "
            f"{unsigned} record(s) there after the last checkpoint are not signed yet"
        )


def print_findings(findings: list[Finding], name: str) -> None:
    table = Table("partition", "position", "offset", "finding", "detail", title="findings")
    for f in findings:
        table.add_row(
            str(f.partition), "-" if f.position is None else str(f.position),
            "-" if f.offset < 0 else str(f.offset), f"[red]{f.kind}[/]", f.detail,
        )  # fmt: skip
    console.print(table)
    console.print(f"[red]{len(findings)} finding(s) in {name}[/]")


def print_consistency(checks: list[Consistency]) -> None:
    """``--against``: each earlier head, the consistency proof to today's, and whether it holds."""
    table = Table(
        "partition", "earlier size", "earlier root", "today size", "today root", "proof hashes",
        "", title="consistency (RFC 9162) with the earlier heads",
    )  # fmt: skip
    for c in checks:
        verdict = "[green]extends[/]" if c.ok else f"[red]{c.finding.kind if c.finding else ''}[/]"
        table.add_row(
            str(c.partition), str(c.old_size), _short(c.old_root), str(c.new_size),
            _short(c.new_root), str(len(c.proof)), verdict,
        )  # fmt: skip
    console.print(table)


@audit_app.command("heads")
@friendly_errors
def heads_command(
    key_dir: KeyDir = Path(".renkei/keys"),
    prefix: Prefix = "",
    topic: TopicOpt = None,
    trust: Trust = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write here, not stdout.")] = None,
) -> None:
    """Export the latest valid tree head of every partition (JSON lines, renkei-tree-head/1):
    keep it, and later `renkei audit verify --against FILE` proves the log still extends it."""
    from renkei.audit.proofs import latest_heads
    from renkei.audit.verify import verify_trail
    from renkei.auditchain import TRUST_FILE, TrustedKeys
    from schemas.codec import default_codec

    trusted = TrustedKeys.load(trust or key_dir / TRUST_FILE)
    name = topic or Topics(prefix).audit
    report = asyncio.run(verify_trail(_kafka(), name, trusted, default_codec()))
    heads = latest_heads(report)
    if not heads:
        err_console.print(f"{name} has no tree head with a valid signature")
        raise typer.Exit(1)
    text = "".join(json.dumps(h.to_json(), separators=(",", ":")) + "\n" for h in heads)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        err_console.print(f"{len(heads)} tree head(s) of {name} written to {out}")
    if not report.ok:
        err_console.print(
            f"[red]{len(report.findings)} finding(s) in {name}: run renkei audit verify[/]"
        )
        raise typer.Exit(1)


@audit_app.command("prove")
@friendly_errors
def prove_command(
    request_id: Annotated[str, typer.Argument(help="A hub request id or a request id.")],
    key_dir: KeyDir = Path(".renkei/keys"),
    prefix: Prefix = "",
    topic: TopicOpt = None,
    trust: Trust = None,
    output: Annotated[
        Literal["table", "json"], typer.Option("--format", help="Output format.")
    ] = "table",
) -> None:
    """Every record of one exchange with its RFC 9162 inclusion proof against the latest tree
    head of its partition, verified. Exits 1 if a record is not covered by a head."""
    from renkei.audit.proofs import prove
    from renkei.auditchain import TRUST_FILE, TrustedKeys
    from schemas.codec import default_codec

    trusted = TrustedKeys.load(trust or key_dir / TRUST_FILE)
    name = topic or Topics(prefix).audit
    report, proven = asyncio.run(prove(_kafka(), name, trusted, default_codec(), request_id))
    if not proven:
        err_console.print(f"no audit record names {request_id}")
        raise typer.Exit(1)
    if output == "json":
        heads = {i.head.partition: i.head.to_json() for i in proven if i.head is not None}
        doc = {
            "request_id": request_id,
            "records": [i.to_json() for i in proven],
            "heads": [heads[p] for p in sorted(heads)],
            "findings": len(report.findings),
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        _print_inclusions(proven)
    if report.findings:
        err_console.print(
            f"[red]{len(report.findings)} finding(s) in {name}: run renkei audit verify[/]"
        )
    if not all(i.verified for i in proven):
        err_console.print("[red]a record is not covered by any tree head[/]")
        raise typer.Exit(1)


def _print_inclusions(proven: list[Inclusion]) -> None:
    table = Table(
        "partition", "position", "offset", "step", "leaf hash", "tree size", "root",
        "inclusion proof", "",
    )  # fmt: skip
    for i in proven:
        table.add_row(
            str(i.entry.partition), "-" if i.position is None else str(i.position),
            str(i.entry.offset), str(i.entry.record.step), i.leaf.hex(),
            "-" if i.head is None else str(i.head.size),
            _short(None if i.head is None else i.head.root),
            "\n".join(h.hex() for h in i.proof) or "-",  # whole: a proof to check by hand
            "[green]verified[/]" if i.verified else "[red]not covered[/]",
        )  # fmt: skip
    console.print(table)
    ok = sum(i.verified for i in proven)
    console.print(f"{ok} of {len(proven)} record(s) proven included in their tree heads")
