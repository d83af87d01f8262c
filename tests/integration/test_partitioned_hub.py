"""The partitioned topology end to end: several `renkei hub` workers share the buckets.

Read-your-writes along a flow (an exchange after an acknowledged enrolment is never
refused PROVIDER_DOES_NOT_HOLD, wherever the enrolment and the request were routed), an
answer routed back whichever worker read it, and each deadline fired once, by the owner
of its bucket.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from producers.answers import PendingRequest
from renkei.errors import HubRefusedError
from renkei.topics import Topics
from schemas.models import AuditStep, ErrorCode
from tests.integration.partitioned_env import Deployment, wait_steps
from tests.integration.test_exchange import basic4_of
from tests.integration.test_kill_hub import open_pending

pytestmark = pytest.mark.slow

PEOPLE = 24


async def test_two_workers_exchange_time_out_and_route_answers_back(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    deployment = Deployment(kafka_bootstrap, Topics(topic_prefix, partitions=6), tmp_path)
    await deployment.setup()
    deployment.start("worker-1")
    deployment.start("worker-2")
    try:
        await deployment.register(PEOPLE)
        hub_key = await deployment.hub_key()
        city = deployment.client("city-shinagawa", hub_key)
        jps = deployment.client("jps", hub_key)
        hellowork = deployment.client("mhlw-hellowork", hub_key)
        async with city, jps, hellowork:
            codes, expected = [], []
            for person in deployment.people:
                city_code = (await city.enrol(person.resident_code, my_number=person.my_number, timeout_s=60)).link_code  # fmt: skip  # noqa: E501
                jps_code = (await jps.enrol(person.resident_code, my_number=person.my_number)).link_code  # fmt: skip  # noqa: E501
                await hellowork.enrol(person.resident_code, basic4=basic4_of(person))
                assert city_code
                assert jps_code
                codes.append(city_code)
                expected.append(f"pension.benefit_status-of-{jps_code}")
            # Nobody provides for hellowork: each of these requests must time out, once.
            timeouts = [
                await city.send_request(
                    link_code=code,
                    provider="mhlw-hellowork",
                    scenario_id="S005",
                    items=["employment_insurance.benefit_status"],
                    deadline_s=2,
                )
                for code in codes
            ]
            async with deployment.provider("jps", hub_key):
                sent: list[PendingRequest] = [
                    await city.send_request(
                        link_code=code,
                        provider="jps",
                        scenario_id="S003",
                        items=["pension.benefit_status"],
                        deadline_s=120,
                    )
                    for code in codes
                ]
                answers = await asyncio.wait_for(
                    asyncio.gather(*(p.result() for p in sent)), timeout=120
                )
            assert [a["pension.benefit_status"] for a in answers] == expected
            for pending in timeouts:
                with pytest.raises(HubRefusedError) as refused:
                    await asyncio.wait_for(pending.result(), timeout=120)
                assert refused.value.code == ErrorCode.TIMEOUT
            timed_out = await wait_steps(deployment, AuditStep.TIMED_OUT, PEOPLE)
            assert len(timed_out) == PEOPLE
            assert len({r.hub_request_id for r in timed_out}) == PEOPLE  # each once
            assert city.unmatched_count == 0, "a second answer or TIMEOUT reached the city"
            assert await open_pending(deployment.kafka, deployment.topics) == []
            assert sorted(deployment.provided) == sorted(set(deployment.provided))
    except BaseException:
        print(deployment.logs())
        raise
    finally:
        deployment.stop_all()
