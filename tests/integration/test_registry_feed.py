"""The registry feeds persons from a file and waits until the hub has applied them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from producers.agency_client import AgencyClient
from producers.population import generate_population
from producers.registry_feed import read_feed
from producers.registry_publisher import APPLIED, RegistryPublisher
from renkei.topics import Topics
from schemas.models import EnrolmentOutcome
from tests.integration.hub_env import hub_env
from tests.integration.test_exchange import basic4_of


def _feed(path: Path, rows: list[list[str]]) -> Path:
    header = "resident_code,my_number,name,name_kana,birth_date,sex,address"
    path.write_text("\n".join([header, *(",".join(r) for r in rows)]) + "\n", encoding="utf-8")
    return path


def _cli(
    bootstrap: str, topics: Topics, key_dir: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RENKEI_BOOTSTRAP": bootstrap, "RENKEI_HUB_TOPIC_PREFIX": topics.prefix,
           "RENKEI_HUB_KEY_DIR": str(key_dir)}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "renkei", "registry", *args],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


async def test_publish_waits_until_applied_and_names_what_the_hub_refused(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    people = generate_population(3, seed=41)
    rows = [
        [p.resident_code, p.my_number, p.name, p.name_kana, p.birth_date.isoformat(), p.sex,
         p.address] for p in people
    ]  # fmt: skip
    twin = people[1]  # the same resident code registered again with another name: refused
    clash = [twin.resident_code, people[2].my_number, "別人 花子", "ベツジン ハナコ",
             "1990-01-01", "FEMALE", twin.address]  # fmt: skip
    feed = _feed(tmp_path / "persons.csv", [*rows, clash])
    key_dir = tmp_path / "keys"
    async with hub_env(kafka_bootstrap, topics, key_dir) as env:
        published = await asyncio.to_thread(
            _cli, kafka_bootstrap, topics, key_dir, "publish", "--file", str(feed)
        )
        assert published.returncode == 1, published.stdout + published.stderr
        assert "published 4 registry events" in published.stdout, published.stderr
        assert "applied 3, refused 1" in published.stdout
        assert "refused MALFORMED_MESSAGE: persons.csv:5 register" in published.stderr
        # Applied means committed: an enrolment right away is matched, no retry needed.
        async with AgencyClient(
            "jps", env.keys("jps"), env.kafka, topics, hub_public_key=env.hub_key
        ) as jps:
            linked = await jps.enrol("J-1", my_number=people[0].my_number)
        assert linked.outcome is EnrolmentOutcome.LINKED
        # `wait` on the same file (from the audit trail's start) gives the same verdicts.
        waited = await asyncio.to_thread(
            _cli, kafka_bootstrap, topics, key_dir, "wait", "--file", str(feed), "--wait-s", "30"
        )
        assert waited.returncode == 1, waited.stdout + waited.stderr
        assert "applied 3, refused 1" in waited.stdout
        # Publishing again: the hub drops the duplicates without a new audit record; the
        # publisher's wait finds the earlier verdicts before its mark.
        person, same_id = people[0], read_feed(feed)[0].event_id
        async with RegistryPublisher(env.keys("registry"), env.kafka, topics) as registry:
            await registry.register(person.resident_code, person.my_number, basic4_of(person),
                                    person.birth_date, event_id=same_id)  # fmt: skip
            other = await registry.register(person.resident_code, person.my_number,
                                            basic4_of(person), person.birth_date)  # fmt: skip
            outcomes = await registry.wait_applied(timeout_s=60)
    assert outcomes == {same_id: APPLIED, other: "MALFORMED_MESSAGE"}


async def test_wait_applied_returns_once_the_hub_has_applied_each_event(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    people = generate_population(5, seed=43)
    async with hub_env(kafka_bootstrap, topics, tmp_path / "keys") as env:
        async with RegistryPublisher(env.keys("registry"), env.kafka, topics) as registry:
            ids = [
                await registry.register(p.resident_code, p.my_number, basic4_of(p), p.birth_date)
                for p in people
            ]
            moved = await registry.move(
                people[0].resident_code, "東京都港区1-1", people[0].birth_date
            )
            outcomes = await registry.wait_applied()
            again = await registry.wait_applied([ids[0]], timeout_s=10)  # known already
        assert outcomes == dict.fromkeys([*ids, moved], APPLIED)
        assert again == {ids[0]: APPLIED}
        assert len(env.hub.hub.persons) == 5
