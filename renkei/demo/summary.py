"""What a demo run did, as counts: the table it ends with, and what tests check."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:
    from .next_steps import NextSteps

__all__ = ["DemoSummary"]


@dataclass(frozen=True)
class DemoSummary:
    """The outcome of one demo run.

    Keys of ``outcomes``: ``answered``, ``enrolment <outcome>``, ``refused <code>`` and
    the names of other exchange errors; of ``notices``: ``<kind> <action>``.
    """

    prefix: str
    """The run's topic prefix."""
    exchanges: int
    """Requests of the main batch (entitled, both agencies hold the person)."""
    outcomes: dict[str, int]
    notices: dict[str, int]
    """Life-event notices the agencies received."""
    hub: dict[str, int]
    """The hub's own counters (``Hub.metrics``)."""
    latencies_s: tuple[float, ...]
    """Request to answer, for each answered request."""
    duplicates_dropped: int
    principals: tuple[str, ...]
    """Who connected, sorted; on a secure cluster each actor is its own principal."""
    secure: bool
    offered_per_s: float | None = None
    """Requests of the main batch started per second, as reached; ``None``: all at once."""
    hub_in_process: bool = False
    """Whether the hub ran in the demo's process (else in a process of its own)."""
    cpu_ms: tuple[float, float] = (0.0, 0.0)
    """CPU per exchange of the main batch, idle polling included: the demo's process (the
    agencies, and the hub when in process) and the hub's process."""
    next_steps: NextSteps | None = None
    """The commands printed after the table, to look at the run."""

    def latency_label(self) -> str:
        """What the latency row measured: offered how, strict, where the hub ran."""
        offered = ("all at once" if self.offered_per_s is None
                   else f"offered at {self.offered_per_s:.3g}/s")  # fmt: skip
        where = "hub in the demo's process" if self.hub_in_process else "hub in its own process"
        return f"exchange latency p50 / p99 ({self.exchanges} {offered}; strict; {where})"

    def table(self) -> Table:
        """The summary as the demo prints it."""
        table = Table(title="Renkei demo — summary")
        table.add_column("what")
        table.add_column("count", justify="right")
        for key, value in sorted(self.outcomes.items()):
            table.add_row(key, str(value))
        for key, value in sorted(self.notices.items()):
            if value:
                table.add_row(f"notice {key}", str(value))
        if self.latencies_s:
            lat = sorted(self.latencies_s)
            p50, p99 = statistics.median(lat), lat[int(len(lat) * 0.99)]
            table.add_row(self.latency_label(), f"{p50 * 1000:.0f} / {p99 * 1000:.0f} ms")
            demo, hub = self.cpu_ms
            cpu = f"{demo:.1f} ms" if self.hub_in_process else f"{demo:.1f} + {hub:.1f} ms"
            who = "agencies and hub" if self.hub_in_process else "agencies + hub"
            table.add_row(f"CPU per exchange ({who}, idle polling included)", cpu)
        for key, value in sorted(self.hub.items()):
            table.add_row(f"hub {key}", str(value))
        table.add_row("duplicates dropped by agencies", str(self.duplicates_dropped))
        if self.secure:
            table.add_row("principals (TLS + SCRAM, ACLs)", str(len(self.principals)))
        return table
