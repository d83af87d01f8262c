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
* :func:`alert_raised` — the module's Prometheus (``renkei.ops``, the project's alert
  rules loaded, every deployment's workers its targets) has the alert pending or firing:
  what an operator would be shown of the fault.
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
from renkei.demo.ops import free_port
from renkei.ops.prometheus import Prometheus
from renkei.topics import Topics
from tests.integration.drill_traffic import Reconciliation, Traffic
from tests.integration.hub_env import eventually
from tests.integration.partitioned_env import Deployment

__all__ = [
    "BUCKETS",
    "LAG_CHECK_MS",
    "DrillCluster",
    "DrillDeployment",
    "Reconciliation",
    "Samples",
    "Traffic",
    "alert_raised",
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
    prometheus: Prometheus | None = None
    """Scrapes the workers of the deployment last made, with the alert rules: one of its
    own for each deployment, so no earlier drill's series are in its rate windows."""

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
        deployment = DrillDeployment(self.bootstrap, Topics(prefix, partitions=BUCKETS), home)
        self.stop_prometheus()
        self.prometheus = deployment.prometheus = Prometheus(home, free_port())
        self.prometheus.start()
        return deployment

    def stop_prometheus(self) -> None:
        prometheus, self.prometheus = self.prometheus, None
        if prometheus is not None:
            prometheus.stop()


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


@pytest.fixture(scope="module")
def drill_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DrillCluster]:
    """One three-node cluster for every drill of the module (≈ 15 s to start here)."""
    home = tmp_path_factory.mktemp("drills")
    cluster = LocalCluster(home / "kafka", nodes=3, base_port=_free_base(6))
    drills: DrillCluster | None = None
    try:
        bootstrap = cluster.up(timeout_s=180)
        drills = DrillCluster(cluster, bootstrap, home)
        yield drills
    finally:
        if drills is not None:
            drills.stop_prometheus()
        cluster.down()


@dataclass
class DrillDeployment(Deployment):
    """Partitioned ``renkei hub`` workers, each with a health port (``/metrics``)."""

    health_ports: dict[str, int] = field(default_factory=dict)
    prometheus: Prometheus | None = None

    def start(self, worker_id: str, extra_env: dict[str, str] | None = None) -> None:
        port = free_port()
        self.health_ports[worker_id] = port
        env = {
            "RENKEI_HUB_HEALTH_PORT": str(port),
            "RENKEI_HUB_LAG_CHECK_MS": str(LAG_CHECK_MS),
            **(extra_env or {}),
        }
        super().start(worker_id, env)
        if self.prometheus is not None:  # every worker ever started: a killed one is down
            self.prometheus.set_targets([f"127.0.0.1:{p}" for p in self.health_ports.values()])

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


async def alert_raised(prometheus: Prometheus | None, name: str, timeout_s: float = 90) -> str:
    """Wait until Prometheus has alert ``name`` pending or firing; its state.

    The drills are shorter than most alerts' ``for:``, so pending is what they can show:
    the rule's expression holds, and the alert fires if the fault lasts.
    """
    assert prometheus is not None, "no deployment made yet"
    states: list[str] = []

    async def raised() -> bool:
        alerts = await asyncio.to_thread(prometheus.alerts)
        states[:] = [a["state"] for a in alerts if a["labels"].get("alertname") == name]
        return any(state in ("pending", "firing") for state in states)

    try:
        await eventually(raised, timeout_s=timeout_s)
    except AssertionError as exc:
        shown = await asyncio.to_thread(prometheus.alerts)
        raise AssertionError(f"{name} not raised; the alerts now: {shown}") from exc
    return states[0]
