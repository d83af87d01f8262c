"""``renkei demo``: a hub, a registry and six agencies on a real Kafka, as it happens.

The registry publishes a synthetic population; agencies enrol their records (some by My
Number, some by the basic-4 as their own files spell it); providers answer with values
sealed to the requester; requesters ask under the scenario table — including requests
the hub must refuse and one nobody answers; life events fan out. A summary table ends it.

``renkei demo --secure`` runs the same on the local secure cluster (TLS, SASL/SCRAM,
ACLs), each actor logged in as its own principal: :mod:`.connections`. The scenes are in
:mod:`.run` (the requests in :mod:`.asking`, offered at a stated rate), the hub in a
process of its own or not in :mod:`.hubs`, the summary in :mod:`.summary`.
``renkei demo --ops`` has Prometheus scrape the hub's ``/metrics``: :mod:`.ops`.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from .connections import SECURE_PORT_OFFSET, Connections, secure_cluster
from .ops import DemoOps
from .run import RATE, Demo, default_prefix
from .summary import DemoSummary

__all__ = [
    "RATE",
    "SECURE_PORT_OFFSET",
    "Connections",
    "Demo",
    "DemoOps",
    "DemoSummary",
    "default_prefix",
    "run_demo",
    "secure_cluster",
]


async def run_demo(
    connections: Connections,
    home: Path,
    people: int = 300,
    *,
    prefix: str | None = None,
    console: Console | None = None,
    rate: float | None = RATE,
    hub_in_process: bool = False,
    ops: DemoOps | None = None,
) -> DemoSummary:
    """Run the demo with ``connections``; print its narration and summary, return it.

    :param home: ``RENKEI_HOME``; the run's keys go to ``<home>/demo-keys``.
    :param prefix: the run's topic prefix; a fresh one (``demo-<time>-<hex>.``) by default.
    :param rate: exchanges of the main batch offered per second; ``None``: all at once.
    :param hub_in_process: the hub in this process's event loop, not a process of its own
        (the default: the faster at a normal load, docs/benchmarks.md).
    :param ops: Prometheus to scrape the hub (``renkei demo --ops``): :mod:`.ops`.
    """
    demo = Demo(connections, home, people, console or Console(), prefix=prefix, rate=rate,
                hub_in_process=hub_in_process, ops=ops)  # fmt: skip
    return await demo.run()
