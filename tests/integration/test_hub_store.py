"""The hub with its state in RocksDB (``RENKEI_HUB_STORE=rocksdb``): an exchange, a restart,
and the state back from the changelog — the store itself never outlives a worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from consumers.provider import ProviderService
from hub_stream.hub import Hub
from hub_stream.store import RocksStore
from producers.population import generate_population
from renkei.topics import Topics
from schemas.models import ForwardedRequest
from tests.integration.hub_env import HubEnv, eventually, hub_env, start_hub
from tests.integration.principals import Principals
from tests.integration.test_exchange import client, enrolled_pair, register_all, scenario_between


@pytest.fixture(params=["single", "partitioned"])
async def env(
    principals: Principals, topics: Topics, tmp_path: Path, request: pytest.FixtureRequest
) -> Any:
    async with hub_env(
        principals, topics, tmp_path / "keys", topology=request.param, store="rocksdb",
        store_dir=tmp_path / "store",
    ) as running:  # fmt: skip
        yield running


def state_hubs(env: HubEnv) -> list[Hub]:
    """The hubs whose tables hold the state: the worker's, or its bucket tasks'."""
    plane = env.hub.plane
    return [env.hub.hub] if plane is None else [t.hub for t in plane.tasks.tasks.values()]


def held(env: HubEnv) -> tuple[int, int]:
    """(persons, holdings) committed in the worker's tables."""
    hubs = state_hubs(env)
    return sum(len(h.persons) for h in hubs), sum(len(h.holdings) for h in hubs)


async def exchange(env: HubEnv, city_code: str) -> dict[str, Any]:
    scenario, items = scenario_between(env, "city-shinagawa", "jps")

    async def handler(request: ForwardedRequest) -> dict[str, Any]:
        return {item: f"value of {item}" for item in request.items}

    provider = ProviderService(
        "jps", env.keys("jps"), env.kafka_of("jps"), env.topics, handler,
        hub_public_key=env.hub_key,
    )  # fmt: skip
    async with provider, client(env, "city-shinagawa") as city:
        return await city.request(
            link_code=city_code, provider="jps", scenario_id=scenario, items=items[:1]
        )


async def test_state_in_rocksdb_survives_a_restart_through_the_changelog(
    env: HubEnv, tmp_path: Path
) -> None:
    people = generate_population(3, seed=23)
    await register_all(env, people)
    city_code, _ = await enrolled_pair(env, people[0])
    before = await exchange(env, city_code)
    assert list(before.values()) == [f"value of {k}" for k in before]
    hubs = state_hubs(env)
    assert hubs
    assert all(isinstance(h.persons._store, RocksStore) for h in hubs)
    scopes = sorted(p.name for p in (tmp_path / "store").glob("*/*/*"))
    assert scopes == sorted(str(h.stores.path.name) for h in hubs if h.stores is not None)
    assert held(env) == (3, 2)

    await env.hub.stop()
    assert not list((tmp_path / "store").glob("*/*/*")), "a stopped worker left its store"
    env.hub = await start_hub(env.kafka_of("hub"), env.settings)

    async def restored() -> bool:
        plane = env.hub.plane
        running = plane is None or all(t.running for t in plane.tasks.tasks.values())
        return running and held(env) == (3, 2)

    await eventually(restored, timeout_s=60)
    # The restarted hub answers from the rows it rebuilt: the person, the holdings.
    assert await exchange(env, city_code) == before
