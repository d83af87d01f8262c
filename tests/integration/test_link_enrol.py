"""``renkei link match`` then ``renkei link enrol`` against a running hub: codes that work.

A small synthetic registry is published to ``registry.events`` and matched offline
against an agency's file; the linked rows and one reviewed row are enrolled for ``jps``
through the hub. The agency receives a link code per record, the codes are the ones its
own enrolment would give and work in an exchange, the audit trail verifies and its
ENROLLED records carry the run and each row's score or reviewer; an unknown agency is
refused and the command says so; started again, the command sends nothing twice.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from benchmarks.linkage_data import write
from consumers.provider import ProviderService
from producers.registry_publisher import RegistryPublisher
from renkei.linkage.decided import run_identity
from renkei.topics import Topics
from schemas.models import AuditRecord, AuditStep, Basic4, EnrolmentOutcome, EnrolmentResult, Sex
from tests.integration.hub_env import HubEnv, hub_env, read_topic
from tests.integration.principals import Principals
from tests.integration.test_exchange import client, scenario_between, wait_registered

PEOPLE, RECORDS = 300, 120


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _hub_codes(data: Path) -> None:
    """The generator's resident codes (R00000001) as the registry issues them: 11 digits."""
    for name, column in (("registry.csv", "resident_code"), ("truth.csv", "resident_code")):
        rows = _rows(data / name)
        for row in rows:
            if row[column]:
                row[column] = f"1{int(row[column][1:]):010d}"
        with (data / name).open("w", encoding="utf-8", newline="") as handle:
            out = csv.DictWriter(handle, fieldnames=list(rows[0]))
            out.writeheader()
            out.writerows(rows)


def renkei(env: HubEnv, *args: str) -> subprocess.CompletedProcess[str]:
    """``renkei ARGS`` as the operators run it, under their login."""
    environment = {
        **os.environ, **env.cli_env("operator"), "RENKEI_HUB_TOPIC_PREFIX": env.topics.prefix,
        "RENKEI_HUB_KEY_DIR": str(env.key_dir), "COLUMNS": "250",
    }  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "renkei", *args],
        capture_output=True, text=True, env=environment, timeout=300, check=False,
    )  # fmt: skip


async def _register(env: HubEnv, registry: list[dict[str, str]]) -> None:
    async with RegistryPublisher(
        env.keys("registry"), env.kafka_of("registry"), env.topics
    ) as publisher:
        for p in registry:
            born = date.fromisoformat(p["birth_date"])
            sex = Sex.MALE if p["sex"] == "1" else Sex.FEMALE
            b4 = Basic4(name=p["name"], name_kana=p["name_kana"], birth_date=born, sex=sex,
                        address=p["address"])  # fmt: skip
            await publisher.register(p["resident_code"], p["my_number"], b4, born)
    await wait_registered(env.kafka, env.topics, len(registry))


@pytest.fixture(params=["single", "partitioned"])
async def env(
    principals: Principals, topics: Topics, tmp_path: Path, request: pytest.FixtureRequest
) -> Any:
    """The hub in each topology: a partitioned one handles each row in its person's bucket."""
    async with hub_env(
        principals, topics, tmp_path / "keys", audit_checkpoint_records=50, audit_checkpoint_ms=300,
        topology=request.param,
    ) as running:  # fmt: skip
        yield running


async def test_linked_records_are_enrolled_through_the_hub(env: HubEnv, tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    await asyncio.to_thread(write, data, PEOPLE, RECORDS, 5)
    _hub_codes(data)
    registry = _rows(data / "registry.csv")
    await _register(env, registry)
    matched = await asyncio.to_thread(
        renkei, env, "link", "match", "--registry", str(data / "registry.csv"),
        "--records", str(data / "records.csv"), "--out", str(out), "--no-progress",
    )  # fmt: skip
    assert matched.returncode == 0, matched.stderr
    linked = _rows(out / "linked.csv")
    truth = {r["record_ref"]: r["resident_code"] for r in _rows(data / "truth.csv")}
    review = _rows(out / "review.csv")
    assert linked
    assert review, "the data set is meant to leave something to review"
    # a person looks at the first record left to review and confirms the true person
    confirmed = review[0]["record_ref"]
    reviewed = tmp_path / "reviewed.csv"
    reviewed.write_text(
        f"record_ref,resident_code,reviewer\n{confirmed},{truth[confirmed]},staff-0042\n",
        encoding="utf-8",
    )
    enrolled = await asyncio.to_thread(
        renkei, env, "link", "enrol", "--agency", "jps", str(out / "linked.csv"),
        "--reviewed", str(reviewed), "--wait-s", "60", "--no-progress",
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    assert f"enrolled {len(linked) + 1}" in enrolled.stdout, enrolled.stdout

    # the agency has a code per record, on its inbox
    results = await read_topic(
        env.kafka, env.topics.agency_in("jps"),
        lambda got: len([m for m in got if isinstance(m, EnrolmentResult)]) >= len(linked) + 1,
    )  # fmt: skip
    codes = {m.record_ref: m.link_code for m in results if isinstance(m, EnrolmentResult)}
    assert all(m.outcome is EnrolmentOutcome.LINKED for m in results)
    assert set(codes) == {r["record_ref"] for r in linked} | {confirmed}

    # ... the code its own enrolment of the person gives, and it works in an exchange
    first = linked[0]
    person = next(p for p in registry if p["resident_code"] == first["resident_code"])
    async with client(env, "jps") as jps:
        own = await jps.enrol("own-check", my_number=person["my_number"])
    assert own.link_code == codes[first["record_ref"]]
    async with client(env, "city-shinagawa") as city:
        city_code = (await city.enrol("city-1", my_number=person["my_number"])).link_code
    assert city_code
    scenario, items = scenario_between(env, "city-shinagawa", "jps")
    seen: list[str] = []

    async def handler(request: Any) -> dict[str, Any]:
        seen.append(request.provider_link_code)
        return dict.fromkeys(request.items, "ok")

    provider = ProviderService(
        "jps", env.keys("jps"), env.kafka_of("jps"), env.topics, handler,
        hub_public_key=env.hub_key,
    )  # fmt: skip
    async with provider, client(env, "city-shinagawa") as city:
        values = await city.request(
            link_code=city_code, provider="jps", scenario_id=scenario, items=items[:1]
        )
    assert values == {items[0]: "ok"}
    assert seen == [codes[first["record_ref"]]]

    # the trail verifies, and says which run linked each record, with what score or by whom
    run = run_identity(out)
    audit = await read_topic(
        env.kafka, env.topics.audit,
        lambda got: sum(isinstance(m, AuditRecord) and m.linkage_run == run for m in got)
        >= len(linked) + 1,
    )  # fmt: skip
    bulk = [m for m in audit if isinstance(m, AuditRecord) and m.linkage_run == run]
    assert {m.step for m in bulk} == {AuditStep.ENROLLED}
    assert sorted(m.linkage_score for m in bulk if m.linkage_score is not None) == sorted(
        float(r["score"]) for r in linked
    )
    assert [m.reviewed_by for m in bulk if m.linkage_score is None] == ["staff-0042"]
    verified = await asyncio.to_thread(renkei, env, "audit", "verify", "--quiet")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    replay = await asyncio.to_thread(
        renkei, env, "audit", "replay", "--agency", "jps", "--step", "ENROLLED", "--format", "jsonl"
    )
    listed = [json.loads(line) for line in replay.stdout.splitlines()]
    assert sum(line["linkage_run"] == run for line in listed) == len(linked) + 1

    # an agency the directory does not know: the hub refuses each command whole, and says so
    unknown = await asyncio.to_thread(
        renkei, env, "link", "enrol", "--agency", "nobody", str(out / "linked.csv"),
        "--wait-s", "60", "--no-progress",
    )  # fmt: skip
    assert unknown.returncode == 0, unknown.stderr
    assert f"refused (UNKNOWN_AGENCY) {len(linked)}" in unknown.stdout, unknown.stdout
    assert "enrolled 0" in unknown.stdout

    # started again, nothing is sent twice
    again = await asyncio.to_thread(
        renkei, env, "link", "enrol", "--agency", "jps", str(out / "linked.csv"),
        "--reviewed", str(reviewed), "--wait-s", "5", "--no-progress",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert f"sent 0 records in 1 command ({len(linked) + 1} sent by an earlier run)" in (
        again.stdout
    )
