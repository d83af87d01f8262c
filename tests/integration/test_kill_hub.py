"""Delivery proof: SIGKILL the hub worker during 4,000 exchanges, restart it, and count.

The hub runs as a real `renkei hub` process. Every request must get exactly one answer at
the requester — with the right person's value — none lost, no second answer and no
TIMEOUT left to come (the hub holds no pending request at the end); the provider's
handler runs exactly once per forwarded request. The raw redeliveries the agency side's
de-duplication absorbed are printed beside (0 in our runs: the transactions hide them).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from consumers.provider import ProviderService
from producers.agency_client import AgencyClient, PendingRequest
from producers.population import generate_population
from producers.registry_publisher import RegistryPublisher
from renkei.crypto.bundles import bundle_path, read_bundle
from renkei.operator.directory_file import load_directory_file
from renkei.operator.hub_key import hub_key_from_directory
from renkei.operator.publish import init_keys, publish
from renkei.settings import KafkaSettings
from renkei.topics import Topics
from schemas.models import ForwardedRequest, HubError
from tests.integration.test_exchange import basic4_of, wait_registered
from tests.integration.test_unwritable_outputs import read_all

pytestmark = pytest.mark.slow

EXCHANGES = int(os.environ.get("RENKEI_KILL_EXCHANGES", "4000"))  # CI's; more for a long run
PEOPLE = 200


def start_hub_process(
    bootstrap: str, topics: Topics, key_dir: Path, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RENKEI_BOOTSTRAP": bootstrap,
        "RENKEI_HUB_TOPIC_PREFIX": topics.prefix,
        "RENKEI_HUB_KEY_DIR": str(key_dir),
        "RENKEI_HUB_GROUP_ID": f"{topics.prefix}hub",
        "RENKEI_HUB_WORKER_ID": "worker-1",  # the same id after restart fences the old one
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "renkei", "hub", "--loglevel", "info"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def open_pending(kafka: dict[str, Any], topics: Topics) -> list[str]:
    """Hub request ids the hub still waits on (not tombstoned in ``hub.state.pending``)."""
    latest: dict[bytes, bytes | None] = {}
    for record in await read_all(kafka, topics.state("pending")):
        latest[record.key or b""] = record.value
    return sorted(k.decode() for k, v in latest.items() if v is not None)


async def test_sigkill_mid_run_loses_and_duplicates_nothing(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    scenario = next(
        s
        for s in load_directory_file().scenarios
        if s.requester == "city-shinagawa" and s.provider == "jps"
    )
    items = scenario.items[:1]
    scenario_id = scenario.scenario_id
    key_dir = tmp_path / "keys"
    init_keys(key_dir)
    await publish(KafkaSettings(bootstrap=kafka_bootstrap), topics.prefix, key_dir, None)
    kafka: dict[str, Any] = {"bootstrap_servers": kafka_bootstrap}
    log = tmp_path / "hub.log"
    hub = start_hub_process(kafka_bootstrap, topics, key_dir, log)
    from renkei.crypto import keystore

    people = generate_population(PEOPLE, seed=29)
    async with RegistryPublisher(keystore.load(key_dir, "registry"), kafka, topics) as registry:
        for person in people:
            await registry.register(
                person.resident_code, person.my_number, basic4_of(person), person.birth_date
            )

    await wait_registered(kafka, topics, PEOPLE)
    # The agencies' way to the hub's key: its directory entry, checked against the
    # operators' key they pinned.
    operators = read_bundle(bundle_path(key_dir, "operator")).signing_public_key
    hub_key = (await hub_key_from_directory(kafka, topics, operators)).signing_public_key
    city = AgencyClient("city-shinagawa", keystore.load(key_dir, "city-shinagawa"), kafka, topics, grace_s=120, hub_public_key=hub_key)  # fmt: skip  # noqa: E501
    jps = AgencyClient("jps", keystore.load(key_dir, "jps"), kafka, topics, hub_public_key=hub_key)
    answered_by_provider: list[str] = []

    async def handler(request: ForwardedRequest) -> dict[str, Any]:
        answered_by_provider.append(request.hub_request_id)
        return {item: f"{item}-of-{request.provider_link_code}" for item in request.items}

    provider = ProviderService("jps", keystore.load(key_dir, "jps"), kafka, topics, handler,
                               group_id=f"{topics.prefix}agency.jps.provider",
                               hub_public_key=hub_key)  # fmt: skip
    try:
        async with city, jps:
            city_codes, expected = [], []
            for person in people:
                city_code = (
                    await city.enrol(
                        person.resident_code, my_number=person.my_number, timeout_s=120
                    )
                ).link_code
                jps_code = (
                    await jps.enrol(person.resident_code, my_number=person.my_number)
                ).link_code
                assert city_code
                city_codes.append(city_code)
                expected.append(f"{items[0]}-of-{jps_code}")
            async with provider:
                pending: list[tuple[PendingRequest, str]] = []

                async def send_all() -> None:
                    for i in range(EXCHANGES):
                        who = i % PEOPLE
                        request = await city.send_request(
                            link_code=city_codes[who], provider="jps", scenario_id=scenario_id,
                            items=items, deadline_s=300,
                        )  # fmt: skip
                        pending.append((request, expected[who]))
                        if i % 100 == 99:
                            await asyncio.sleep(0.05)  # an offered load, not one burst

                sender = asyncio.create_task(send_all())
                while len(answered_by_provider) < EXCHANGES // 3:
                    refused = [p.peek() for p, _ in pending[:50] if isinstance(p.peek(), HubError)]
                    assert not refused, f"the hub refused: {refused[0]!r}"
                    await asyncio.sleep(0.01)
                killed_at = len(pending)
                hub.send_signal(signal.SIGKILL)
                hub.wait()
                hub = start_hub_process(kafka_bootstrap, topics, key_dir, log)
                await sender
                assert killed_at < EXCHANGES, "the hub was killed after the last request"
                results = await asyncio.wait_for(
                    asyncio.gather(*(p.result() for p, _ in pending)), timeout=600
                )
            print(
                f"\n{EXCHANGES} exchanges, hub SIGKILLed after {killed_at} requests sent: "
                f"{len(results)} answered; messages no call waited for at the requester "
                f"{city.unmatched_count}; raw redeliveries absorbed by de-duplication: "
                f"requester {city.duplicates_dropped}, provider "
                f"{provider.duplicates_dropped}; forwarded requests handled by the provider "
                f"{len(answered_by_provider)} ({len(set(answered_by_provider))} distinct)"
            )
            assert len(results) == EXCHANGES
            assert [r[items[0]] for r in results] == [e for _, e in pending]
            assert city.waiting == 0
            # Exactly one answer per request: a second answer, or a TIMEOUT after the
            # answer, would reach the requester as a message nobody waits for.
            assert city.unmatched_count == 0, "the requester got a stray answer or TIMEOUT"
            # ... and none is still to come: every forwarded request was closed.
            assert await open_pending(kafka, topics) == [], "a TIMEOUT is still to come"
            # What the provider's application saw, after de-duplication: each once.
            assert len(answered_by_provider) == EXCHANGES
            assert len(set(answered_by_provider)) == EXCHANGES
    finally:
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(timeout=30)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()
