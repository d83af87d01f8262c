"""How ``renkei top`` draws a :class:`~renkei.ops.top.Frame` with rich.

One table of workers (a worker that did not answer is a red ``DOWN`` row with the
reason), then small tables side by side for what the hub does as a whole. Unknown
numbers (a rate before the second scrape, a metric a worker does not export) print as
``-``, never as 0, so "nothing happened" and "not known" look different.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from rich import box
from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .top import Frame, WorkerRow

__all__ = ["render_frame"]

_UNKNOWN = "-"


def _count(value: float | None) -> str:
    return _UNKNOWN if value is None else f"{value:,.0f}"


def _rate(value: float | None) -> str:
    return _UNKNOWN if value is None else f"{value:,.1f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return _UNKNOWN
    return f"{value:.2f} s" if value >= 1 else f"{value * 1000:.1f} ms"


def _state(row: WorkerRow) -> Text:
    if not row.up:
        return Text("DOWN", style="bold red")
    if row.ready is None:
        return Text("up", style="yellow")
    return Text("ready", style="green") if row.ready else Text("not ready", style="yellow")


def _workers(frame: Frame) -> Table:
    table = Table(
        title=f"workers (latency: stage {frame.stage})", box=box.SIMPLE_HEAD, title_justify="left"
    )
    for name in ("target", "state", "worker", "role", "parts"):
        table.add_column(name, no_wrap=True)
    for name in ("in/s", "out/s", "p50", "p99", "pending", "restore"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in frame.workers:
        if not row.up:
            # The reason sits where the worker's name would: the numbers are all unknown.
            reason = Text(row.error or "", style="red")
            table.add_row(Text(row.target, style="red"), _state(row), reason, style="red")
            continue
        table.add_row(
            row.target,
            _state(row),
            row.worker or _UNKNOWN,
            row.role or _UNKNOWN,
            _count(row.partitions),
            _rate(row.inputs_per_s),
            _rate(row.outputs_per_s),
            _seconds(row.p50_s),
            _seconds(row.p99_s),
            _count(row.pending),
            _count(row.restore_remaining),
        )
    return table


def _small(title: str, headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column(headers[0], no_wrap=True)
    for name in headers[1:]:
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows or [(_UNKNOWN,) * len(headers)]:
        table.add_row(*row)
    return table


def _by_key(values: Mapping[str, float]) -> list[tuple[str, str]]:
    return [(key or "(none)", _rate(values[key])) for key in sorted(values)]


def render_frame(frame: Frame, interval_s: float, now: float | None = None) -> RenderableType:
    """The whole dashboard for one refresh.

    :param interval_s: the refresh interval, printed in the header.
    :param now: wall-clock time for the header (``time.time()`` when not given).
    """
    clock = time.strftime("%H:%M:%S", time.localtime(time.time() if now is None else now))
    up = sum(1 for row in frame.workers if row.up)
    header = Text.assemble(
        ("renkei top", "bold"),
        f"  {clock}  every {interval_s:g} s  {up}/{len(frame.workers)} up",
        (f"  DOWN: {', '.join(frame.down)}", "bold red") if frame.down else "",
    )
    hub = _small(
        "hub",
        ("what", "total", "/s"),
        [
            ("dead letters", _count(frame.dead_letters), _rate(frame.dead_letters_per_s)),
            (
                "deadlines expired",
                _count(frame.deadlines_expired),
                _rate(frame.deadlines_expired_per_s),
            ),
            (
                "signature failures",
                _count(frame.signature_failures),
                _rate(frame.signature_failures_per_s),
            ),
            ("under-replicated partitions", _count(frame.under_replicated), ""),
        ],
    )
    refusals = _small("refusals/s", ("code", "/s"), _by_key(frame.refusals_per_s))
    notices = _small(
        "notices",
        ("kind", "total", "/s"),
        [
            (kind, _count(total), _rate(frame.notices_per_s.get(kind)))
            for kind, total in sorted(frame.notices.items())
        ],
    )
    lag = _small(
        "inbox lag",
        ("agency", "lag"),
        [(agency, _count(value)) for agency, value in sorted(frame.inbox_lag.items())],
    )
    return Group(header, _workers(frame), Columns([hub, refusals, notices, lag], padding=(0, 3)))
