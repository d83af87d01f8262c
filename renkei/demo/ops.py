"""``renkei demo --ops``: Prometheus scrapes the demo's hub, and stays up to be looked at.

The demo's hub worker gets a health port of its own (a free one), whose ``/metrics``
Prometheus is told to scrape (``set_targets``), and reads the agencies' inbox lag every
second rather than every five (a demo is short); each agency's inbox reader joins a
consumer group of its own and commits, so there is a lag to read.

:class:`DemoOps` holds the demo at two points so that what Prometheus stored covers the
whole run: after the hub starts, until Prometheus has scraped it once (file_sd picks a
new target up within seconds, and traffic before the first scrape would never show in a
rate); and before the hub stops, until two scrapes came after the last scene (a series
that appeared in the last second needs two samples for ``rate()``). Both waits are
bounded: a demo never hangs on its monitoring, it only graphs less.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import urllib.parse
from pathlib import Path

from renkei.operator.principals import agency_group_prefix
from renkei.ops.prometheus import HUB_JOB, Prometheus, PrometheusError, running
from renkei.topics import Topics

__all__ = ["DEMO_GRAPH", "DemoOps", "demo_prometheus", "free_port"]

log = logging.getLogger(__name__)

LAG_CHECK_MS = 1000
"""How often the demo's hub reads the inbox lag: as often as Prometheus scrapes."""

DEMO_GRAPH = "sum by (type) (rate(renkei_hub_inputs_total[10s]))"
"""What the printed graph link plots: the hub's inputs a second, by message type."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def demo_prometheus(home: Path, port: int = 9090) -> tuple[Prometheus, bool]:
    """The Prometheus of ``home``: the one already running (on its port), else started.

    :returns: it, and whether this call started it.
    :raises PrometheusMissing: no prometheus binary (the message says how to install it).
    :raises PrometheusStartError: it did not start (port taken, bad config: ``log_tail``).
    """
    current = running(home)
    if current is not None:
        return current, False
    prometheus = Prometheus(home, port)
    prometheus.start()
    return prometheus, True


class DemoOps:
    """What the demo does for ``--ops``: the hub's health port, and Prometheus told of it.

    :param prometheus: a running Prometheus; its ``renkei-hub`` job is pointed at the
        demo's hub (a previous run's target is replaced: that hub is gone).
    :param timeout_s: how long each wait for a scrape may hold the demo.
    """

    def __init__(self, prometheus: Prometheus, timeout_s: float = 20) -> None:
        self.prometheus = prometheus
        self.timeout_s = timeout_s
        self.hub_port = free_port()
        """The hub worker's ``RENKEI_HUB_HEALTH_PORT``: ``/healthz`` and ``/metrics``."""
        self.target = f"127.0.0.1:{self.hub_port}"
        self.scraped_at: float | None = None
        """When Prometheus last scraped the hub after the scenes (Unix seconds), if it did:
        an instant query at this time sees the run's final counts."""

    def hub_settings(self) -> dict[str, int]:
        """What ``--ops`` changes of the hub worker's ``HubSettings``."""
        return {"health_port": self.hub_port, "lag_check_ms": LAG_CHECK_MS}

    def hub_environment(self) -> dict[str, str]:
        """The same as ``RENKEI_HUB_*`` variables, for a hub in a process of its own."""
        return {"RENKEI_HUB_HEALTH_PORT": str(self.hub_port),
                "RENKEI_HUB_LAG_CHECK_MS": str(LAG_CHECK_MS)}  # fmt: skip

    @staticmethod
    def inbox_group(topics: Topics, agency: str) -> str:
        """The consumer group of ``agency``'s demo inbox reader: the hub measures an
        agency's inbox lag by its groups' commits, and the ACLs allow it this name."""
        return f"{agency_group_prefix(topics, agency)}demo"

    def graph_url(self, expr: str = DEMO_GRAPH, minutes: int = 5) -> str:
        """Prometheus's graph page plotting ``expr`` over the last ``minutes``."""
        query = {"g0.expr": expr, "g0.tab": "0", "g0.range_input": f"{minutes}m"}
        return f"{self.prometheus.url}/graph?{urllib.parse.urlencode(query)}"

    async def watching(self) -> None:
        """Point Prometheus at the hub; return once it scraped it (or after the timeout)."""
        self.prometheus.set_targets([self.target], HUB_JOB)
        await self._scraped_after(0.0)

    async def settled(self) -> None:
        """Return once two scrapes of the hub came after now (or after the timeout)."""
        first = await self._scraped_after(time.time())
        if first is not None:
            self.scraped_at = await self._scraped_after(first) or first

    async def _scraped_after(self, after: float) -> float | None:
        """The time of the hub's first successful scrape later than ``after``, if any."""
        up = f'up{{job="{HUB_JOB}", instance="{self.target}"}}'
        # timestamp() of a selector is its sample's time; of `up == 1` it would be now.
        expr = f"timestamp({up}) and {up} == 1"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        while True:
            try:
                # Blocking HTTP in a thread: an in-process hub shares this event loop.
                result = await asyncio.to_thread(self.prometheus.query, expr)
            except PrometheusError as exc:
                log.warning("demo --ops: %s", exc)
                result = []
            stamps = [float(r["value"][1]) for r in result]
            if stamps and stamps[0] > after:
                return stamps[0]
            if loop.time() > deadline:
                log.warning("demo --ops: Prometheus has not scraped %s since %.1f",
                            self.target, after)  # fmt: skip
                return None
            await asyncio.sleep(0.2)
