"""The fault drills' shared environment: one three-node cluster, traffic, a reconciliation.

* :func:`drill_cluster` — a module-scoped fixture: ONE ``LocalCluster`` of three nodes
  (replication 3, ``min.insync.replicas`` 2) under a temporary directory on free ports,
  for every drill of the importing module, stopped after its last. Import it into the
  test module (``from tests.integration.drill_env import drill_cluster``) and name it as
  a parameter.
* :class:`DrillDeployment` — ``partitioned_env.Deployment`` whose workers each serve
  ``/metrics`` on a health port of their own (``health_ports``) and read the lag and the
  replicas every ``LAG_CHECK_MS``.
* :class:`~tests.integration.drill_traffic.Traffic` — the agencies: a requester offering
  exchanges at a steady rate while a fault happens, a provider, a subscriber of moves, and
  ``reconcile()`` at the end (re-exported here).
* :func:`scrape`, :func:`value`, :func:`scraped_until`, :func:`total` — a worker's
  ``/metrics`` parsed with ``prometheus_client.parser``.
"""

from __future__ import annotations

import asyncio
import random
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.kafka import LocalCluster
from infra.kafka.quorum import active_controller
from renkei.topics import Topics
from tests.integration.drill_traffic import Reconciliation, Traffic
from tests.integration.partitioned_env import Deployment

__all__ = [
    "BUCKETS",
    "LAG_CHECK_MS",
    "DrillCluster",
    "DrillDeployment",
    "Reconciliation",
    "Samples",
    "Traffic",
    "drill_cluster",
    "free_port",
    "scrape",
    "scraped_until",
    "total",
    "value",
]

BUCKETS = 6
LAG_CHECK_MS = 500  # the under-replicated gauge follows a broker's fall within a second
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class DrillCluster:
    """The module's cluster and its bootstrap address (all three brokers)."""

    cluster: LocalCluster
    bootstrap: str
    home: Path

    def controller(self) -> int | None:
        """The active KRaft controller's node id (``None`` during an election)."""
        return active_controller(self.cluster)

    def brokers(self) -> list[int]:
        """Node ids now running."""
        return sorted(self.cluster.running_pids())

    def deployment(self, name: str) -> DrillDeployment:
        """A deployment of its own (topic prefix, keys, logs) on this cluster."""
        home = self.home / f"{name}-{uuid.uuid4().hex[:6]}"
        home.mkdir(parents=True)
        prefix = f"d{uuid.uuid4().hex[:8]}."
        return DrillDeployment(self.bootstrap, Topics(prefix, partitions=BUCKETS), home)


def _free_base(count: int) -> int:
    """``count`` consecutive free ports on 127.0.0.1 (a node takes two)."""
    for _ in range(100):
        base = random.randrange(20_000, 40_000, 2)
        try:
            for port in range(base, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range found on 127.0.0.1")


def free_port() -> int:
    """A port free now (the kernel's pick), for a worker's health server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def drill_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DrillCluster]:
    """One three-node cluster for every drill of the module (≈ 15 s to start here)."""
    home = tmp_path_factory.mktemp("drills")
    cluster = LocalCluster(home / "kafka", nodes=3, base_port=_free_base(6))
    try:
        bootstrap = cluster.up(timeout_s=180)
        yield DrillCluster(cluster, bootstrap, home)
    finally:
        cluster.down()


@dataclass
class DrillDeployment(Deployment):
    """Partitioned ``renkei hub`` workers, each with a health port (``/metrics``)."""

    health_ports: dict[str, int] = field(default_factory=dict)

    def start(self, worker_id: str, extra_env: dict[str, str] | None = None) -> None:
        port = free_port()
        self.health_ports[worker_id] = port
        env = {
            "RENKEI_HUB_HEALTH_PORT": str(port),
            "RENKEI_HUB_LAG_CHECK_MS": str(LAG_CHECK_MS),
            **(extra_env or {}),
        }
        super().start(worker_id, env)

    def running_ports(self) -> dict[str, int]:
        """Health ports of the workers still running."""
        return {w: p for w, p in self.health_ports.items() if w in self.workers}


async def scrape(port: int) -> Samples:
    """Every sample of the worker's ``/metrics`` by (name, labels)."""
    url = f"http://127.0.0.1:{port}/metrics"
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        response.raise_for_status()
        text = await response.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the worker has not exported it."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scraped_until(
    port: int, done: Callable[[Samples], bool], timeout_s: float = 120
) -> Samples:
    """Scrape until ``done`` holds; a worker not yet (or no longer) serving is retried."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    samples: Samples = {}
    while True:
        try:
            samples = await scrape(port)
        except (TimeoutError, aiohttp.ClientError):
            samples = {}
        if samples and done(samples):
            return samples
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"port {port}'s metrics never got there: {sorted(samples)[:40]}")
        await asyncio.sleep(0.1)


async def total(ports: dict[str, int], name: str, **labels: str) -> float:
    """``name`` summed over the workers of ``ports`` (each must answer)."""
    scraped = await asyncio.gather(*(scrape(p) for p in ports.values()))
    return sum(value(s, name, **labels) for s in scraped)
