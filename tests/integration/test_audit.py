"""The audit trail on a real broker: verify, tampering in a copy, replay, trace, state rebuild.

``populate`` drives a hub through every kind of step (registry events, enrolment,
de-enrolment, answered, refused, withheld and still-pending exchanges, life-event
notices); the portal tests reuse it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from consumers.provider import ProviderService
from hub_stream.worker import load_hub_keys
from producers.agency_client import AgencyClient
from producers.population import Person, generate_population
from producers.registry_publisher import RegistryPublisher
from renkei.audit.reader import read_topic
from renkei.audit.rebuild import compare, live_state, rebuild_state
from renkei.audit.replay import Filter, audit_key_of_link_code, entries
from renkei.audit.trace import trace
from renkei.audit.verify import VerifyReport, verify_trail
from renkei.auditchain import TrustedKeys
from renkei.errors import ExchangeError, HubRefusedError
from renkei.topics import Topics, TopicSpec, ensure_topics
from renkei.treehead import is_tree_head
from schemas.codec import default_codec
from schemas.models import AuditCheckpoint, AuditRecord, ErrorCode, ForwardedRequest
from tests.integration.hub_env import HubEnv, eventually, hub_env
from tests.integration.principals import Principals
from tests.integration.test_exchange import basic4_of

CODEC = default_codec()
Tamper = Callable[[list[bytes]], int]
WITHHELD = "S005"  # city-shinagawa asks the employment offices: an "investigation" here
HUB_SETTINGS: dict[str, Any] = {
    "audit_checkpoint_records": 4,
    "audit_checkpoint_ms": 300,
    "audit_withheld_scenarios": WITHHELD,
}


@dataclass
class Populated:
    """What ``populate`` did, for the assertions."""

    people: list[Person]
    city_codes: dict[str, str] = field(default_factory=dict)  # resident code → city's code
    traced_request: str = "trace-me-1"
    withheld_request: str = "withheld-1"
    pending_request: str = "pending-1"


def client(env: HubEnv, agency: str) -> AgencyClient:
    return AgencyClient(
        agency,
        env.keys(agency),
        env.kafka_of(agency),
        env.topics,
        grace_s=5,
        hub_public_key=env.hub_key,
    )


async def answer(request: ForwardedRequest) -> dict[str, Any]:
    return dict.fromkeys(request.items, "SECRET-VALUE-42")


async def populate(env: HubEnv, n: int = 6, seed: int = 31) -> Populated:
    """Registry events, enrolments, exchanges of every outcome, a de-enrolment, a move."""
    people = generate_population(n, seed=seed)
    done = Populated(people)
    async with RegistryPublisher(
        env.keys("registry"), env.kafka_of("registry"), env.topics
    ) as registry:
        for p in people:
            await registry.register(p.resident_code, p.my_number, basic4_of(p), p.birth_date)
    # No wait for the hub before enrolling these few: see test_exchange.register_all.
    jps_provider = ProviderService(
        "jps",
        env.keys("jps"),
        env.kafka_of("jps"),
        env.topics,
        answer,
        hub_public_key=env.hub_key,
    )
    hw_provider = ProviderService(
        "mhlw-hellowork", env.keys("mhlw-hellowork"), env.kafka_of("mhlw-hellowork"), env.topics,
        answer,
        hub_public_key=env.hub_key,
    )  # fmt: skip
    async with (
        client(env, "city-shinagawa") as city,
        client(env, "jps") as jps,
        client(env, "mhlw-hellowork") as hw,
        client(env, "kyokai-kenpo") as kenpo,
        jps_provider,
        hw_provider,
    ):
        jps_codes: dict[str, str] = {}
        for i, p in enumerate(people):
            code = (await city.enrol(f"S-{i}", my_number=p.my_number)).link_code
            assert code
            done.city_codes[p.resident_code] = code
            if i < 4:
                jps_code = (await jps.enrol(f"J-{i}", my_number=p.my_number)).link_code
                assert jps_code
                jps_codes[p.resident_code] = jps_code
        first, second = people[0], people[1]
        assert (await hw.enrol("H-0", basic4=basic4_of(first))).link_code
        assert (await kenpo.enrol("K-1", my_number=second.my_number)).link_code
        for i, p in enumerate(people[:3]):
            await city.request(
                link_code=done.city_codes[p.resident_code], provider="jps", scenario_id="S003",
                items=("pension.benefit_status",),
                request_id=done.traced_request if i == 0 else f"plain-{i}",
            )  # fmt: skip
        with pytest.raises(HubRefusedError) as refused:
            await city.request(
                link_code=done.city_codes[people[4].resident_code], provider="jps",
                scenario_id="S003", items=("pension.annual_amount",), request_id="refused-1",
            )  # fmt: skip
        assert refused.value.code is ErrorCode.PROVIDER_DOES_NOT_HOLD
        await city.request(
            link_code=done.city_codes[first.resident_code], provider="mhlw-hellowork",
            scenario_id=WITHHELD, items=("employment_insurance.benefit_status",),
            request_id=done.withheld_request,
        )  # fmt: skip
        # Nobody serves kyokai-kenpo: this one stays pending for an hour.
        pending = await city.send_request(
            link_code=done.city_codes[second.resident_code], provider="kyokai-kenpo",
            scenario_id="S011", items=("health_insurance.qualification",), deadline_s=3600,
            request_id=done.pending_request,
        )  # fmt: skip
        await jps.deenrol(jps_codes[people[3].resident_code], "J-3")
    with contextlib.suppress(ExchangeError):  # its client has stopped waiting
        await pending.result()
    async with RegistryPublisher(
        env.keys("registry"), env.kafka_of("registry"), env.topics
    ) as registry:
        await registry.move(first.resident_code, "東京都品川区広町二丁目1番36号", first.birth_date)
    await wait_for_steps(env, lambda steps: steps.count("NOTIFIED") >= 3 and "FORWARDED" in steps)
    return done


async def audit_records(env: HubEnv, topic: str | None = None) -> list[AuditRecord]:
    return [e.record async for e in entries(env.kafka, topic or env.topics.audit, CODEC)]


async def wait_for_steps(env: HubEnv, done: Callable[[list[str]], bool]) -> None:
    async def check() -> bool:
        return done([str(r.step) for r in await audit_records(env)])

    await eventually(check, timeout_s=60)


async def wait_until_signed(env: HubEnv, trusted: TrustedKeys) -> VerifyReport:
    """The live trail verified, once every record is covered by a checkpoint."""
    report: VerifyReport | None = None

    async def signed() -> bool:
        nonlocal report
        report = await verify_trail(env.kafka, env.topics.audit, trusted, CODEC)
        return all(p.unsigned_records == 0 for p in report.partitions)

    await eventually(signed, timeout_s=30)
    assert report is not None
    return report


@pytest.fixture
async def env(principals: Principals, topics: Topics, tmp_path: Path) -> Any:
    async with hub_env(principals, topics, tmp_path / "keys", **HUB_SETTINGS) as running:
        yield running


def trusted_keys(env: HubEnv) -> TrustedKeys:
    return TrustedKeys.load(env.key_dir / "audit-trust.json")


def run_cli(
    env: HubEnv, *args: str, principal: str = "operator"
) -> subprocess.CompletedProcess[str]:
    """``renkei audit ARGS``; by default as the operators run it, under their login."""
    environment = {
        **os.environ,
        **env.cli_env(principal),
        "RENKEI_HUB_TOPIC_PREFIX": env.topics.prefix,
        "RENKEI_HUB_KEY_DIR": str(env.key_dir),
        "COLUMNS": "250",
    }
    return subprocess.run(
        [sys.executable, "-m", "renkei", "audit", *args],
        capture_output=True, text=True, env=environment, timeout=120, check=False,
    )  # fmt: skip


# -- tampering in a copy ---------------------------------------------------------------


async def copy_trail(
    env: HubEnv, name: str, tamper: Callable[[list[bytes]], None], partition: int
) -> str:
    """Copy ``hub.audit`` to a new topic, partition by partition, tampering one partition."""
    by_partition: dict[int, list[bytes]] = {p: [] for p in range(env.topics.partitions)}
    async for batch in read_topic(env.kafka, env.topics.audit):
        by_partition[batch[0].partition] += [r.value for r in batch if r.value is not None]
    tamper(by_partition[partition])
    topic = f"{env.topics.prefix}{name}"
    admin = AIOKafkaAdminClient(**env.kafka)
    await admin.start()
    try:
        await ensure_topics(admin, [TopicSpec(topic, env.topics.partitions)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**env.kafka, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for p, values in by_partition.items():
            for value in values:  # plain producer: copy offsets are 0, 1, 2, … per partition
                await producer.send(topic, value, key=b"copy", partition=p)
        await producer.flush()
    finally:
        await producer.stop()
    return topic


def is_checkpoint(value: bytes) -> bool:
    return value[2:10] == CODEC.fingerprint(AuditCheckpoint)


def is_signature(value: bytes) -> bool:
    """A checkpoint or a tree head: not an audit record."""
    return is_checkpoint(value) or is_tree_head(value, CODEC)


def record_index(values: list[bytes], n: int) -> int:
    """Offset (in the copy) of the ``n``-th audit record of the partition."""
    return [i for i, v in enumerate(values) if not is_signature(v)][n]


def edit(values: list[bytes]) -> int:
    at = record_index(values, 3)
    data = bytearray(values[at])
    data[len(data) // 2] ^= 0x20  # one byte in the middle of the record
    values[at] = bytes(data)
    return at


def remove(values: list[bytes]) -> int:
    at = record_index(values, 4)
    del values[at]
    # verify names the first record after the gap (a checkpoint may stand in between)
    return next(i for i in range(at, len(values)) if not is_signature(values[i]))


def swap(values: list[bytes]) -> int:
    a = next(
        i for i in range(2, len(values) - 1)
        if not is_signature(values[i]) and not is_signature(values[i + 1])
    )  # fmt: skip
    values[a], values[a + 1] = values[a + 1], values[a]
    return a


def insert(values: list[bytes]) -> int:
    at = record_index(values, 5)
    genuine = CODEC.decode_as(values[record_index(values, 4)], AuditRecord)
    # A forger who knows the format links the forgery to the genuine predecessor.
    forged = genuine.model_copy(update={"requester": "nta", "request_id": "forged"})
    values.insert(at, CODEC.encode(forged))
    return at


def forge_checkpoint(values: list[bytes]) -> int:
    at = next(i for i, v in enumerate(values) if is_checkpoint(v))
    checkpoint = CODEC.decode_as(values[at], AuditCheckpoint)
    values[at] = CODEC.encode(checkpoint.model_copy(update={"chain_hash": bytes(32)}))
    return at


async def test_verify_catches_each_tampering_in_a_copy(env: HubEnv) -> None:
    await populate(env)
    trusted = trusted_keys(env)
    live = await wait_until_signed(env, trusted)
    assert live.ok, live.findings
    biggest_result = max(live.partitions, key=lambda p: p.records)
    biggest = biggest_result.partition
    assert biggest_result.records >= 8

    clean = await copy_trail(env, "audit-copy-clean", lambda _: None, biggest)
    report = await verify_trail(env.kafka, clean, trusted, CODEC)
    assert report.ok, report.findings
    assert report.records == live.records

    cases: list[tuple[str, Tamper, str]] = [
        ("edited", edit, "edit"),
        ("removed", remove, "remove"),
        ("reordered", swap, "swap"),
        ("forked", insert, "insert"),  # linked to its genuine predecessor: a second history
        ("bad-signature", forge_checkpoint, "forge"),
    ]
    for kind, tamper, name in cases:
        where: list[int] = []

        def tampered(values: list[bytes], t: Tamper = tamper, at: list[int] = where) -> None:
            at.append(t(values))

        topic = await copy_trail(env, f"audit-copy-{name}", tampered, biggest)
        report = await verify_trail(env.kafka, topic, trusted, CODEC)
        found = [(f.kind, f.partition, f.offset) for f in report.findings]
        assert found == [(kind, biggest, where[0])], f"{name}: {report.findings}"

    # The command line says the same and exits non-zero. (Only the admin, who made the
    # copies, may read them: they are no topic of the contract.)
    copy = f"{env.topics.prefix}audit-copy-remove"
    result = run_cli(env, "verify", "--topic", copy, "--quiet", principal="admin")
    assert result.returncode == 1, result.stderr
    assert "removed" in result.stdout
    assert run_cli(env, "verify", "--topic", clean, "--quiet", principal="admin").returncode == 0


async def test_replay_trace_and_state_rebuild(env: HubEnv) -> None:
    done = await populate(env)
    keyring, _ = load_hub_keys(env.settings)
    first = done.people[0]
    first_key = audit_key_of_link_code(
        keyring, "city-shinagawa", done.city_codes[first.resident_code]
    )

    # replay by person (an agency's link code), by agency, by scenario
    mine = [e async for e in entries(env.kafka, env.topics.audit, CODEC,
                                     Filter(audit_keys=frozenset({first_key})))]  # fmt: skip
    steps = [str(e.record.step) for e in mine]
    assert steps.count("FORWARDED") == 2  # the pension request and the withheld one
    assert "REGISTRY_APPLIED" in steps
    assert "NOTIFIED" in steps
    assert {e.record.audit_key for e in mine} == {first_key}
    withheld = [e.record for e in mine if e.record.scenario_id == WITHHELD]
    assert withheld
    assert not any(r.disclosable for r in withheld)
    assert all(e.record.disclosable for e in mine if e.record.scenario_id != WITHHELD)
    by_scenario = [e async for e in entries(env.kafka, env.topics.audit, CODEC,
                                            Filter(scenario_id="S011"))]  # fmt: skip
    assert [str(e.record.step) for e in by_scenario] == ["FORWARDED"]
    raw = [r.value async for b in read_topic(env.kafka, env.topics.audit) for r in b]
    assert all(b"SECRET-VALUE-42" not in (v or b"") for v in raw)  # never values

    code = done.city_codes[first.resident_code]
    jsonl = run_cli(env, "replay", "--person", f"city-shinagawa:{code}", "--format", "jsonl")
    assert jsonl.returncode == 0, jsonl.stderr
    lines = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert {line["audit_key"] for line in lines} == {first_key}
    assert len(lines) == len(mine)
    csv_out = run_cli(env, "replay", "--agency", "kyokai-kenpo", "--format", "csv")
    assert csv_out.returncode == 0, csv_out.stderr
    assert csv_out.stdout.splitlines()[0].startswith("occurred_at,partition,offset,step")
    assert len(csv_out.stdout.splitlines()) == 3  # header, ENROLLED, FORWARDED

    # trace: one exchange, in order, with timings
    traced = await trace(env.kafka, env.topics.audit, CODEC, done.traced_request)
    assert [str(s.entry.record.step) for s in traced] == ["FORWARDED", "ANSWERED"]
    assert traced[0].since_start_ms == 0
    assert traced[1].since_start_ms >= 0
    hub_id = traced[0].entry.record.hub_request_id
    assert hub_id
    by_hub_id = await trace(env.kafka, env.topics.audit, CODEC, hub_id)
    assert [s.entry for s in by_hub_id] == [s.entry for s in traced]
    cli = run_cli(env, "trace", done.traced_request)
    assert cli.returncode == 0, cli.stderr
    assert "FORWARDED" in cli.stdout
    assert "ANSWERED" in cli.stdout

    # rebuild the hub's state from scratch and compare it with the live state
    await asyncio.sleep(0.5)  # let the hub commit its last batch's state
    rebuilt = await rebuild_state(env.kafka, env.topics, keyring, CODEC, roots=env.hub.hub.roots)
    live = await live_state(env.kafka, env.topics, keyring)
    result = compare(rebuilt, live, keyring)
    assert result.differences == []
    assert result.counts["persons"] == (6, 6)
    assert result.counts["holdings"] == (6 + 3 + 2, 6 + 3 + 2)  # city 6, jps 4-1, hw 1, kenpo 1
    assert result.counts["pending"] == (1, 1)
    assert result.counts["persons-seen"] == (6, 6)
    assert set(rebuilt.projections.pending.pending) == set(live.pending)
    # ...and the comparison does fail when they differ
    rebuilt.projections.holdings.keys.discard(f"{first_key}|jps")
    assert [d.table for d in compare(rebuilt, live, keyring).differences] == ["holdings"]
    cli = run_cli(env, "rebuild")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "equals the live state" in cli.stdout
