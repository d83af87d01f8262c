"""A rebalance keeps the buckets a worker owns again, and restores only those that moved.

worker-1 runs all six buckets; worker-2 joins, takes some, and leaves again. aiokafka
revokes every bucket at each of those rebalances, yet worker-1 restores none of the
buckets it never lost (its health report counts restores per bucket), restores each
bucket that came back from worker-2, and every exchange — sent before the join, while
worker-2 joins, while it leaves, and after — is answered exactly once.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from producers.agency_client import AgencyClient
from renkei.topics import Topics
from tests.integration.hub_env import eventually
from tests.integration.partitioned_env import Deployment
from tests.integration.test_kill_hub import open_pending

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # a loaded machine: three rebalances

PEOPLE = 18
BUCKETS = list(range(6))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _health(port: int) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/healthz") as response,
    ):
        report: dict[str, Any] = await response.json()
        return report


async def _running(ports: list[int]) -> dict[int, list[int]]:
    """Each worker's running buckets, once each runs some and together each bucket once."""
    found: dict[int, list[int]] = {}

    async def settled() -> bool:
        try:
            reports = [await _health(port) for port in ports]
        except aiohttp.ClientError:
            return False  # a worker still starting its endpoint
        for port, report in zip(ports, reports, strict=True):
            found[port] = report.get("buckets_running", [])
            if report.get("buckets") != found[port]:
                return False  # a bucket still restoring, or given back and not yet resumed
        if not all(found.values()):
            return False  # a worker not yet in the group
        return sorted(b for running in found.values() for b in running) == BUCKETS

    await eventually(settled, timeout_s=120)
    return found


async def _ask(city: AgencyClient, codes: list[str]) -> list[Any]:
    """Send one request per person; the pending answers."""
    return [
        await city.send_request(
            link_code=code,
            provider="jps",
            scenario_id="S003",
            items=["pension.benefit_status"],
            deadline_s=120,
        )
        for code in codes
    ]


async def test_a_worker_keeps_the_buckets_it_never_lost(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    deployment = Deployment(kafka_bootstrap, Topics(topic_prefix, partitions=6), tmp_path)
    await deployment.setup()
    one, two = _free_port(), _free_port()
    deployment.start("worker-1", {"RENKEI_HUB_HEALTH_PORT": str(one)})
    try:
        await deployment.register(PEOPLE)
        hub_key = await deployment.hub_key()
        city = deployment.client("city-shinagawa", hub_key)
        jps = deployment.client("jps", hub_key)
        async with city, jps, deployment.provider("jps", hub_key):
            codes, expected = [], []
            for person in deployment.people:
                city_code = (await city.enrol(person.resident_code, my_number=person.my_number, timeout_s=60)).link_code  # fmt: skip  # noqa: E501
                jps_code = (await jps.enrol(person.resident_code, my_number=person.my_number)).link_code  # fmt: skip  # noqa: E501
                assert city_code
                assert jps_code
                codes.append(city_code)
                expected.append(f"pension.benefit_status-of-{jps_code}")
            await _running([one])
            report = await _health(one)
            assert report["restores"] == {str(b): 1 for b in BUCKETS}
            # Both enrolments of every person passed the router and then their bucket.
            loops = report["loops"]
            assert loops["router"]["in"] >= 2 * len(codes)
            assert sum(c["in"] for name, c in loops.items() if name != "router") >= 2 * len(codes)
            # Each transaction ends with an EndTxn, and the loops fetched what they handled.
            requests = report["kafka_requests"]
            assert requests["EndTxn"] >= loops["router"]["batches"] > 0
            assert requests["Fetch"] > 0
            sent = await _ask(city, codes)

            deployment.start("worker-2", {"RENKEI_HUB_HEALTH_PORT": str(two)})
            sent += await _ask(city, codes)
            running = await _running([one, two])
            kept, moved = running[one], running[two]
            assert kept
            assert moved, "worker-2 was given no bucket"
            joined = await _health(one)
            for bucket in kept:
                assert joined["restores"][str(bucket)] == 1, f"bucket {bucket} was restored"
                assert joined["kept"][str(bucket)] >= 1
            sent += await _ask(city, codes)

            leaving = asyncio.create_task(deployment.stop("worker-2"))
            sent += await _ask(city, codes)
            assert await leaving == 0
            await _running([one])
            left = await _health(one)
            for bucket in kept:
                assert left["restores"][str(bucket)] == 1, f"bucket {bucket} was restored"
                assert left["kept"][str(bucket)] >= 2
            for bucket in moved:
                assert left["restores"][str(bucket)] == 2, f"bucket {bucket} came back as it was"
            sent += await _ask(city, codes)

            answers = await asyncio.wait_for(
                asyncio.gather(*(p.result() for p in sent)), timeout=180
            )
            assert [a["pension.benefit_status"] for a in answers] == expected * 5
            assert city.unmatched_count == 0, "a second answer reached the city"
            assert sorted(deployment.provided) == sorted(set(deployment.provided))
            assert len(deployment.provided) == len(sent)  # each forwarded to jps once
            assert await open_pending(deployment.kafka, deployment.topics) == []
    except BaseException:
        print(deployment.logs())
        raise
    finally:
        deployment.stop_all()
