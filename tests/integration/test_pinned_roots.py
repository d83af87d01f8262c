"""Pinned roots on a real broker: the directory cannot be talked into anything.

* Garbage, an unknown fingerprint, an unsigned entry and a wrongly signed one written to
  ``hub.directory`` before the hub starts: it starts, serves, obeys none of them, and
  parks and audits each exactly once (a restart parks nothing again). The same as
  operators run it, ``renkei hub`` in a process of its own.
* Swapped keys written to the directory — an agency's, the operators', the registry's —
  and a made-up scenario: the hub keeps trusting the keys of its configuration.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from hub_stream.control import RotateKey
from hub_stream.settings import HubSettings
from hub_stream.worker import STATE_TOPICS
from producers.agency_client import AgencyClient
from producers.population import generate_population
from producers.registry_publisher import RegistryPublisher
from renkei.crypto import AgencyKeys, SigningKey
from renkei.envelope import sign_message
from renkei.errors import HubRefusedError
from renkei.operator.publish import init_keys, publish
from renkei.settings import KafkaSettings
from renkei.topics import Topics, ensure_topics
from schemas.codec import default_codec
from schemas.models import (
    AgencyEntry,
    AuditRecord,
    AuditStep,
    DeadLetter,
    EnrolmentOutcome,
    ErrorCode,
    Header,
    ScenarioEntry,
)
from tests.integration.hub_env import HubEnv, read_topic, start_hub
from tests.integration.test_exchange import basic4_of, register_all
from tests.integration.test_hub_process import start_hub as start_hub_process
from tests.integration.test_hub_process import stop, wait_for

CODEC = default_codec()
ATTACKER = SigningKey.generate()


def made_up_scenario() -> ScenarioEntry:
    """jasso may ask jps for the pension status: nobody decided that."""
    return ScenarioEntry(
        header=Header.new("operator"), scenario_id="S999", legal_basis="none", duty="x",
        duty_ja="x", requester="jasso", provider="jps", items=("pension.benefit_status",),
        active=True,
    )  # fmt: skip


def swapped(agency_id: str) -> AgencyEntry:
    return AgencyEntry(
        header=Header.new("operator"), agency_id=agency_id, name=agency_id, name_ja=agency_id,
        signing_public_key=ATTACKER.public_bytes, sealing_public_key=b"",
        entitled_events=(), active=True,
    )  # fmt: skip


BAD_RECORDS: list[tuple[bytes, bytes]] = [
    (b"scenario/S998", b"\x00 not a message"),
    (b"scenario/S997", b"\xc3\x01" + bytes(8) + b"body"),  # an unknown fingerprint
    (b"scenario/S999", CODEC.encode(made_up_scenario())),  # unsigned
    (b"agency/jps", CODEC.encode(sign_message(swapped("jps"), ATTACKER, CODEC))),
]


async def write(kafka: dict[str, Any], topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(**kafka)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def published(bootstrap: str, topics: Topics, key_dir: Path) -> dict[str, Any]:
    init_keys(key_dir)
    await publish(KafkaSettings(bootstrap=bootstrap), topics.prefix, key_dir, None)
    return {"bootstrap_servers": bootstrap}


def hub_settings(topics: Topics, key_dir: Path) -> HubSettings:
    return HubSettings(
        topic_prefix=topics.prefix, partitions=topics.partitions, key_dir=key_dir,
        group_id=f"{topics.prefix}hub", poll_ms=10,
    )  # fmt: skip


async def directory_letters(kafka: dict[str, Any], topics: Topics, count: int) -> list[Any]:
    def enough(got: list[Any]) -> bool:
        return len([m for m in got if isinstance(m, DeadLetter)]) >= count

    letters = await read_topic(kafka, topics.deadletter, enough)
    return [m for m in letters if m.source_topic == topics.directory]


@pytest.fixture
async def env(kafka_bootstrap: str, topics: Topics, tmp_path: Path) -> AsyncIterator[HubEnv]:
    """A hub started after the bad records were written to its directory."""
    key_dir = tmp_path / "keys"
    kafka = await published(kafka_bootstrap, topics, key_dir)
    await write(kafka, topics.directory, BAD_RECORDS)
    settings = hub_settings(topics, key_dir)
    service = await start_hub(kafka, settings)
    try:
        yield HubEnv(kafka, topics, key_dir, service, settings)
    finally:
        await service.stop()


def client(env: HubEnv, agency: str, keys: AgencyKeys | None = None) -> AgencyClient:
    return AgencyClient(
        agency, keys or env.keys(agency), env.kafka, env.topics, grace_s=5,
        hub_public_key=env.hub_key,
    )  # fmt: skip


async def test_bad_directory_records_do_not_stop_a_start_and_are_parked_once(
    env: HubEnv,
) -> None:
    hub = env.hub.hub
    assert env.hub.directory_feed.ignored == len(BAD_RECORDS)
    assert hub.directory.scenario("S999") is None
    assert hub.directory.agencies["jps"].signing_public_key == env.keys("jps").signing.public_bytes
    people = generate_population(1, seed=41)
    await register_all(env, people)
    async with client(env, "jps") as jps:
        result = await jps.enrol("J-1", my_number=people[0].my_number)
    assert result.outcome is EnrolmentOutcome.LINKED
    letters = await directory_letters(env.kafka, env.topics, len(BAD_RECORDS))
    assert [m.reason for m in sorted(letters, key=lambda m: m.source_offset)] == [
        ErrorCode.MALFORMED_MESSAGE, ErrorCode.MALFORMED_MESSAGE,
        ErrorCode.BAD_SIGNATURE, ErrorCode.BAD_SIGNATURE,
    ]  # fmt: skip
    audit = await read_topic(
        env.kafka, env.topics.audit,
        lambda got: sum(isinstance(m, AuditRecord) and m.step is AuditStep.DEAD_LETTERED
                        for m in got) >= len(BAD_RECORDS),
    )  # fmt: skip
    parked = [m for m in audit if isinstance(m, AuditRecord) and m.step is AuditStep.DEAD_LETTERED]
    assert {m.actor for m in parked} == {"operator"}
    # A restart restores the directory again, ignores the same records, and parks nothing
    # new: the loop's offsets on hub.directory were committed with the letters.
    await env.hub.stop()
    again = await start_hub(env.kafka, env.settings)
    try:
        assert again.directory_feed.ignored == len(BAD_RECORDS)
        async with client(env, "jps") as jps:
            assert (await jps.enrol("J-2", my_number=people[0].my_number)).link_code
    finally:
        await again.stop()
    letters = await read_topic(env.kafka, env.topics.deadletter, lambda got: len(got) >= 4)
    assert len([m for m in letters if m.source_topic == env.topics.directory]) == 4


async def test_swapped_keys_in_the_directory_change_nothing(env: HubEnv) -> None:
    await write(env.kafka, env.topics.directory, [
        (b"agency/operator", CODEC.encode(sign_message(swapped("operator"), ATTACKER, CODEC))),
        (b"agency/registry", CODEC.encode(sign_message(swapped("registry"), ATTACKER, CODEC))),
    ])  # fmt: skip
    people = generate_population(2, seed=43)
    await register_all(env, people[:1])
    # The registry's key, swapped for the attacker's: a registration signed by the
    # attacker registers nobody.
    forger = AgencyKeys("registry", ATTACKER, env.keys("registry").sealing)
    async with RegistryPublisher(forger, env.kafka, env.topics) as registry:
        forged = people[1]
        await registry.register(
            forged.resident_code, forged.my_number, basic4_of(forged), forged.birth_date
        )
    # The operators' key, swapped: a rotation signed by the attacker rotates nothing.
    command = RotateKey(agency_id="jps", grace_ms=0).signed(ATTACKER)
    await write(env.kafka, env.topics.control, [(command.key(), command.to_bytes())])
    letters = await read_topic(
        env.kafka, env.topics.deadletter,
        lambda got: {m.source_topic for m in got if isinstance(m, DeadLetter)}
        >= {env.topics.registry_events, env.topics.control},
    )  # fmt: skip
    by_topic = {m.source_topic: m.reason for m in letters if m.source_topic != env.topics.directory}
    assert by_topic == {
        env.topics.registry_events: ErrorCode.BAD_SIGNATURE,
        env.topics.control: ErrorCode.BAD_SIGNATURE,
    }
    hub = env.hub.hub
    assert hub.keyring.current_version("jps") == 1
    async with client(env, "jps") as jps:
        assert (await jps.enrol("J-1", my_number=people[0].my_number)).link_code
        missing = await jps.enrol("J-2", my_number=people[1].my_number)
        assert missing.outcome is EnrolmentOutcome.NO_MATCH
    # jps's key, swapped (written before the start): the attacker cannot speak for jps.
    impostor = client(env, "jps", AgencyKeys("jps", ATTACKER, env.keys("jps").sealing))
    async with impostor:
        with pytest.raises(HubRefusedError) as caught:
            await impostor.enrol("X-1", my_number=people[0].my_number, timeout_s=20)
    assert caught.value.code is ErrorCode.BAD_SIGNATURE
    # The made-up scenario (unsigned, written before the start) allows nothing.
    assert hub.directory.scenario("S999") is None


async def test_renkei_hub_starts_on_a_directory_with_bad_records(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    kafka = await published(kafka_bootstrap, topics, tmp_path / "keys")
    await write(kafka, topics.directory, BAD_RECORDS)
    ready = tmp_path / "ready.json"
    process = start_hub_process(kafka_bootstrap, topics, tmp_path, "--ready-file", str(ready))
    log = tmp_path / "hub.log"
    try:
        await wait_for(ready.exists, process, log)
        assert json.loads(ready.read_text())["worker_id"]
        # And while it runs (the faust agent): more garbage changes nothing either.
        await write(kafka, topics.directory, BAD_RECORDS[:1])
        await directory_letters(kafka, topics, len(BAD_RECORDS) + 1)
        assert process.poll() is None
        assert ready.exists()
    finally:
        assert stop(process) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "hub.directory record ignored" in text  # while restoring
    assert "hub.directory 0:" in text  # the faust agent names where


async def test_renkei_hub_exits_when_its_own_state_cannot_be_read(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    """Not a privileged input but the hub's own state: it stops, rather than idle or guess."""
    kafka = await published(kafka_bootstrap, topics, tmp_path / "keys")
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        await ensure_topics(admin, topics.hub_specs(STATE_TOPICS))
    finally:
        await admin.close()
    person = generate_population(1, seed=59)[0]
    row = f'{{"my_number": "{person.my_number}", "name": "{person.name}"'.encode()
    await write(kafka, topics.state("persons"), [(person.resident_code.encode(), row)])
    process = start_hub_process(kafka_bootstrap, topics, tmp_path)
    log = tmp_path / "hub.log"
    try:
        code = await asyncio.to_thread(process.wait, 120)
    finally:
        stop(process)
    text = log.read_text()
    assert code != 0, text[-3000:]
    assert f"{topics.state('persons')}[" in text
    assert "cannot be restored" in text
    assert person.my_number not in text
    assert person.name not in text
