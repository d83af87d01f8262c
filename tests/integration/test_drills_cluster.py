"""Fault drills on three brokers: a broker, the controller, a hub worker mid-rebalance.

One three-node cluster (replication 3, ``min.insync.replicas`` 2) serves the module
(:func:`~tests.integration.drill_env.drill_cluster`); each drill has a deployment of its
own on it — partitioned ``renkei hub`` workers with ``/metrics`` — and agencies offering
exchanges at a steady rate while the fault happens. Each ends with
:meth:`~tests.integration.drill_traffic.Traffic.reconcile` (every request answered once
with the right value, every notice once, nothing pending, the provider called once per
request, the audit trail complete and its chains intact) and asserts what the workers'
metrics showed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest

from tests.integration.drill_env import (
    BUCKETS,
    DrillCluster,
    DrillDeployment,
    Samples,
    Traffic,
    alert_raised,
    drill_cluster,  # noqa: F401  # the module's cluster fixture
    scrape,
    scraped_until,
    total,
    value,
)
from tests.integration.hub_env import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

UNDER_REPLICATED = "renkei_kafka_under_replicated_partitions"
OWNED = "renkei_hub_partitions_owned"
STEP = 20  # exchanges the provider must handle between two moments of a drill


async def _deployment(cluster: DrillCluster, name: str, workers: int) -> DrillDeployment:
    deployment = cluster.deployment(name)
    await deployment.setup()
    for n in range(1, workers + 1):
        deployment.start(f"worker-{n}")
    return deployment


async def _every_worker(deployment: DrillDeployment, done: Callable[[Samples], bool]) -> None:
    for port in deployment.running_ports().values():
        await scraped_until(port, done, timeout_s=180)


def _replicated(samples: Samples) -> bool:
    return value(samples, "renkei_hub_ready") == 1 and value(samples, UNDER_REPLICATED) == 0


async def _controller(cluster: DrillCluster, not_: int | None = None) -> int:
    found: list[int] = []

    async def elected() -> bool:
        leader = cluster.controller()
        found[:] = [] if leader is None or leader == not_ else [leader]
        return bool(found)

    await eventually(elected, timeout_s=120)
    return found[0]


async def _kill_and_restart(
    cluster: DrillCluster, deployment: DrillDeployment, traffic: Traffic, node: int
) -> None:
    """SIGKILL ``node`` under load, see the workers report under-replicated partitions
    and traffic go on, restart it, see every partition's replicas in sync again."""
    await _every_worker(deployment, _replicated)
    await traffic.answered(STEP)
    cluster.cluster.kill_node(node)
    await _every_worker(deployment, lambda s: value(s, UNDER_REPLICATED) > 0)
    await alert_raised(cluster.prometheus, "RenkeiKafkaUnderReplicated")
    await traffic.answered(len(traffic.provided) + STEP)  # two of three brokers suffice
    cluster.cluster.restart_node(node)
    await _every_worker(deployment, _replicated)
    await traffic.answered(len(traffic.provided) + STEP)


async def test_a_broker_killed_under_load_and_restarted(drill_cluster: DrillCluster) -> None:  # noqa: F811
    deployment = await _deployment(drill_cluster, "broker", workers=2)
    try:
        async with Traffic(deployment) as traffic:
            traffic.start()
            controller = await _controller(drill_cluster)
            victim = next(n for n in drill_cluster.brokers() if n != controller)
            await _kill_and_restart(drill_cluster, deployment, traffic, victim)
            await traffic.stop()
            print(f"\nbroker {victim} killed and restarted:", await traffic.reconcile())
    except BaseException:
        print(deployment.logs())
        raise
    finally:
        deployment.stop_all()


async def test_the_active_controller_killed_under_load(drill_cluster: DrillCluster) -> None:  # noqa: F811
    deployment = await _deployment(drill_cluster, "controller", workers=2)
    try:
        async with Traffic(deployment) as traffic:
            traffic.start()
            old = await _controller(drill_cluster)
            await _every_worker(deployment, _replicated)
            await traffic.answered(STEP)
            drill_cluster.cluster.kill_node(old)
            new = await _controller(drill_cluster, not_=old)
            await _every_worker(deployment, lambda s: value(s, UNDER_REPLICATED) > 0)
            await alert_raised(drill_cluster.prometheus, "RenkeiKafkaUnderReplicated")
            await traffic.answered(len(traffic.provided) + STEP)
            drill_cluster.cluster.restart_node(old)
            await _every_worker(deployment, _replicated)
            await traffic.answered(len(traffic.provided) + STEP)
            await traffic.stop()
            print(f"\ncontroller {old} killed, {new} elected:", await traffic.reconcile())
        assert new != old
    except BaseException:
        print(deployment.logs())
        raise
    finally:
        deployment.stop_all()


async def _owned(port: int) -> float | None:
    """Buckets the worker owns; ``None`` while it does not serve."""
    try:
        return value(await scrape(port), OWNED)
    except (TimeoutError, aiohttp.ClientError):
        return None


async def test_a_worker_killed_while_buckets_move(drill_cluster: DrillCluster) -> None:  # noqa: F811
    deployment = await _deployment(drill_cluster, "rebalance", workers=2)
    try:
        async with Traffic(deployment) as traffic:
            traffic.start()
            await traffic.answered(STEP)
            ports = deployment.running_ports()
            await eventually(lambda: _sums_to_all(ports), timeout_s=120)
            deployment.start("worker-3")
            third = deployment.health_ports["worker-3"]
            seen: list[float | None] = []

            async def moving() -> bool:
                # The join revokes buckets from the two (or hands some to the third).
                seen[:] = await asyncio.gather(*(_owned(p) for p in [*ports.values(), third]))
                two, joining = seen[:2], seen[2] or 0
                if None in two:
                    return False
                return sum(v or 0 for v in two) < BUCKETS or joining > 0

            await eventually(moving, timeout_s=120)
            deployment.kill("worker-2")
            await alert_raised(drill_cluster.prometheus, "RenkeiHubWorkerDown")
            survivors = deployment.running_ports()
            await eventually(lambda: _sums_to_all(survivors), timeout_s=180)
            await traffic.answered(len(traffic.provided) + STEP)
            await traffic.stop()
            print(f"\nworker-2 killed at buckets owned {seen}:", await traffic.reconcile())
            assert await total(survivors, OWNED) == BUCKETS
    except BaseException:
        print(deployment.logs())
        raise
    finally:
        deployment.stop_all()


async def _sums_to_all(ports: dict[str, int]) -> bool:
    """Every worker of ``ports`` ready and their buckets all of them."""
    try:
        scraped = await asyncio.gather(*(scrape(p) for p in ports.values()))
    except (TimeoutError, aiohttp.ClientError):
        return False
    ready = all(value(s, "renkei_hub_ready") == 1 for s in scraped)
    return ready and sum(value(s, OWNED) for s in scraped) == BUCKETS
