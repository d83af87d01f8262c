"""`GET /metrics` of a running hub worker: its counters after real exchanges, and the lag."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub_stream.worker import HubService
from renkei.errors import HubRefusedError
from renkei.topics import Topics
from schemas.models import ErrorCode
from tests.integration.hub_env import HubEnv, hub_env, start_hub
from tests.integration.principals import Principals
from tests.integration.test_exchange import answering_jps, client, one_person_to_ask_about

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def env(principals: Principals, topics: Topics, tmp_path: Path) -> Any:
    # Port 0: a free one; the lag read every 100 ms, so that the test waits little.
    async with hub_env(
        principals, topics, tmp_path / "keys", health_port=0, lag_check_ms=100
    ) as running:
        yield running


async def scrape(worker: HubEnv | HubService) -> Samples:
    hub = worker.hub if isinstance(worker, HubEnv) else worker
    assert hub.health is not None
    url = f"http://127.0.0.1:{hub.health.port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scraped_until(worker: HubEnv | HubService, done: Callable[[Samples], bool]) -> Samples:
    """Scrape until ``done`` holds (the counters follow commits, a moment after them)."""
    deadline = asyncio.get_running_loop().time() + 30
    while not done(samples := await scrape(worker)):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"metrics never got there: {sorted(samples.items())}")
        await asyncio.sleep(0.05)
    return samples


def one(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_a_workers_metrics_count_its_exchanges_refusals_and_the_inbox_lag(
    env: HubEnv,
) -> None:
    city_code, scenario, items = await one_person_to_ask_about(env, 21)
    provider = answering_jps(env)
    async with provider, client(env, "city-shinagawa") as city:
        for _ in range(2):
            await city.request(
                link_code=city_code, provider="jps", scenario_id=scenario, items=items[:1]
            )
        with pytest.raises(HubRefusedError) as refused:
            await city.request(
                link_code=city_code, provider="jps", scenario_id="S999", items=items[:1]
            )
        assert refused.value.code == ErrorCode.UNKNOWN_SCENARIO
        # The provider has consumed its inbox (and committed, after each batch).
        got = await scraped_until(
            env,
            lambda s: (
                one(s, "renkei_agency_inbox_lag_records", agency="jps") == 0
                and one(s, "renkei_hub_exchange_seconds_count") == 2
                and one(s, "renkei_hub_refusals_total", code="UNKNOWN_SCENARIO") == 1
            ),
        )
    assert ("renkei_agency_inbox_lag_records", frozenset({("agency", "jps")})) in got
    assert one(got, "renkei_hub_inputs_total", type="AttributeRequest") == 3
    assert one(got, "renkei_hub_inputs_total", type="ProviderResponse") == 2
    assert one(got, "renkei_hub_inputs_total", type="EnrolmentRequest") == 2
    assert one(got, "renkei_hub_requests_forwarded_total") == 2
    assert one(got, "renkei_hub_answers_total") == 2
    assert one(got, "renkei_hub_ready") == 1
    assert one(got, "renkei_hub_pending_requests") == 0
    assert one(got, "renkei_hub_partitions_owned") > 0
    assert one(got, "renkei_hub_outputs_total", type="agency") >= 5  # 2 forwarded, 2 answers
    assert one(got, "renkei_hub_audit_records_total") >= 5
    assert one(got, "renkei_hub_batches_total") > 0
    assert one(got, "renkei_hub_batch_records_count") == one(got, "renkei_hub_batches_total")
    assert one(got, "renkei_hub_kafka_requests_total", kind="Fetch") > 0
    assert one(got, "renkei_kafka_under_replicated_partitions") == 0
    assert one(got, "renkei_hub_lag_errors_total") == 0


@pytest.fixture
async def partitioned(principals: Principals, topics: Topics, tmp_path: Path) -> Any:
    async with hub_env(
        principals, topics, tmp_path / "keys", health_port=0, lag_check_ms=100,
        topology="partitioned",
    ) as running:  # fmt: skip
        yield running


async def test_a_partitioned_worker_and_a_verifier_export_theirs(partitioned: HubEnv) -> None:
    env = partitioned
    verifier = await start_hub(
        env.kafka_of("hub"),
        env.settings.model_copy(update={"role": "verifier", "worker_id": "verifier-1"}),
    )
    try:
        city_code, scenario, items = await one_person_to_ask_about(env, 23)
        provider = answering_jps(env)
        async with provider, client(env, "city-shinagawa") as city:
            await city.request(
                link_code=city_code, provider="jps", scenario_id=scenario, items=items[:1]
            )
        # The bucket tasks count into the worker's counters, and their loops' batches too.
        got = await scraped_until(
            env,
            lambda s: (
                one(s, "renkei_hub_exchange_seconds_count") == 1
                and one(s, "renkei_hub_partitions_owned") == env.topics.partitions
            ),
        )
        assert one(got, "renkei_hub_answers_total") == 1
        assert one(got, "renkei_hub_inputs_total", type="AttributeRequest") == 1
        assert one(got, "renkei_hub_outputs_total", type="route") >= 5  # the router's
        assert one(got, "renkei_hub_info", worker="worker-1", role="hub",
                   topology="partitioned", signatures="strict") == 1  # fmt: skip
        # The verifier has checked the enrolments, the request and the answer.
        checked = await scraped_until(
            verifier, lambda s: one(s, "renkei_hub_signatures_checked_total") >= 4
        )
        assert one(checked, "renkei_hub_signature_failures_total") == 0
        assert one(checked, "renkei_hub_outputs_total", type="signature_verdict") > 0
    finally:
        await verifier.stop()
