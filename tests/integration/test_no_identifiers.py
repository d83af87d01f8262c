"""No My Number and no basic-4 in clear anywhere the hub writes for itself, nor in its log.

A run with enrolments by number and by basic-4, bad inputs (a name over the limit, a
truncated enrolment, bytes that are no message, a wrongly signed enrolment and registry
event, an oversize record) and refusals (an invalid number, a replay) — then every record
of every ``hub.*`` topic, every error and result the agencies got, and everything the hub
logged, searched for the population's numbers, names, kana, addresses and birth dates.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from producers.population import Person, generate_population
from producers.registry_publisher import RegistryPublisher
from renkei.crypto import AgencyKeys, SigningKey
from renkei.envelope import sign_message
from renkei.errors import HubRefusedError
from renkei.readers import committed_reader, topic_partitions
from renkei.topics import Topics
from schemas import limits
from schemas.codec import default_codec
from schemas.models import (
    AuditRecord,
    AuditStep,
    EnrolmentOutcome,
    EnrolmentRequest,
    EnrolmentResult,
    Header,
    HubError,
)
from tests.integration.hub_env import HubEnv, hub_env, read_topic
from tests.integration.test_exchange import basic4_of, client, register_all

CODEC = default_codec()


def identifiers(people: list[Person]) -> list[str]:
    found: list[str] = []
    for p in people:
        found += [p.my_number, p.name, p.name_kana, p.address, p.birth_date.isoformat()]
    return found


def leaks(data: bytes | str | None, secrets: list[str]) -> list[str]:
    if data is None:
        return []
    raw = data.encode() if isinstance(data, str) else data
    return [s for s in secrets if s.encode() in raw]


@pytest.fixture
async def env(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[HubEnv]:
    caplog.set_level(logging.DEBUG, logger="hub_stream")
    caplog.set_level(logging.INFO)
    async with hub_env(kafka_bootstrap, topics, tmp_path / "keys") as running:
        yield running


async def everything_on(
    kafka: dict[str, Any], topics: list[str]
) -> list[tuple[bytes | None, bytes | None]]:
    consumer = committed_reader(kafka, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in await topic_partitions(consumer, t)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if end[tp] > 0}
        got: list[tuple[bytes | None, bytes | None]] = []
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for records in batch.values():
                got += [(r.key, r.value) for r in records]
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        return got
    finally:
        await consumer.stop()


async def hub_topics(kafka: dict[str, Any], prefix: str) -> list[str]:
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if t.startswith(f"{prefix}hub."))
    finally:
        await admin.close()


async def bad_inputs(env: HubEnv, person: Person, other: Person) -> int:
    """Bad inputs that each carry a person's identifiers; returns how many get parked."""
    jps = env.keys("jps")
    name_too_long = basic4_of(person).model_construct(
        **{**basic4_of(person).model_dump(), "name": person.name * 60}
    )
    over_the_limit = EnrolmentRequest.model_construct(
        header=Header.new("jps"), record_ref="J-bad-1", my_number=person.my_number,
        basic4=name_too_long, capacity="",
    )  # fmt: skip
    whole = EnrolmentRequest(
        header=Header.new("jps"), record_ref="J-bad-2", my_number=person.my_number,
        basic4=basic4_of(person), capacity="",
    )  # fmt: skip
    truncated = CODEC.encode(sign_message(whole, jps.signing, CODEC))[:-3]
    plain_text = f"{person.my_number},{person.name},{person.address}".encode()
    oversize = plain_text * (limits.MESSAGE_BYTES // len(plain_text) + 1)
    producer = AIOKafkaProducer(**env.kafka)
    await producer.start()
    try:
        out = env.topics.agency_out("jps")
        for value in (CODEC.encode(sign_message(over_the_limit, jps.signing, CODEC)), truncated,
                      plain_text, oversize):  # fmt: skip
            await producer.send_and_wait(out, value, key=b"J-bad")
    finally:
        await producer.stop()
    # The registry's event, signed by someone else, about a person not yet registered.
    forger = AgencyKeys("registry", SigningKey.generate(), env.keys("registry").sealing)
    async with RegistryPublisher(forger, env.kafka, env.topics) as registry:
        await registry.register(
            other.resident_code, other.my_number, basic4_of(other), other.birth_date
        )
    return 5


async def test_no_identifier_in_clear_in_hub_topics_errors_or_logs(
    env: HubEnv, caplog: pytest.LogCaptureFixture
) -> None:
    people = generate_population(6, seed=47)
    secrets = identifiers(people)
    await register_all(env, people[:5])
    async with client(env, "jps") as jps, client(env, "city-shinagawa") as city:
        for p in people[:2]:
            assert (await jps.enrol(f"J-{p.resident_code}", my_number=p.my_number)).link_code
        for p in people[2:4]:
            result = await city.enrol(f"C-{p.resident_code}", basic4=basic4_of(p))
            assert result.outcome is EnrolmentOutcome.LINKED
        number = people[4].my_number
        wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
        assert (await jps.enrol("J-wrong", my_number=wrong)).outcome is EnrolmentOutcome.INVALID
        parked = await bad_inputs(env, people[4], people[5])
        impostor = client(env, "jasso")
        impostor.keys = AgencyKeys("jasso", SigningKey.generate(), env.keys("jasso").sealing)
        async with impostor:
            with pytest.raises(HubRefusedError):
                await impostor.enrol(
                    "X-1", my_number=people[4].my_number, basic4=basic4_of(people[4])
                )
    # A replay: the same signed bytes twice.
    replayed = EnrolmentRequest(
        header=Header.new("jps"), record_ref="J-replayed", my_number=people[4].my_number,
        capacity="",
    )  # fmt: skip
    data = CODEC.encode(sign_message(replayed, env.keys("jps").signing, CODEC))
    producer = AIOKafkaProducer(**env.kafka)
    await producer.start()
    try:
        for _ in range(2):
            await producer.send_and_wait(env.topics.agency_out("jps"), data, key=b"J-replayed")
    finally:
        await producer.stop()

    def done(got: list[Any]) -> bool:
        steps = [m.step for m in got if isinstance(m, AuditRecord)]
        return steps.count(AuditStep.DEAD_LETTERED) >= parked and "DUPLICATE" in {
            m.error_code for m in got if isinstance(m, AuditRecord)
        }

    await read_topic(env.kafka, env.topics.audit, done)
    found: dict[str, list[str]] = {}
    topics = await hub_topics(env.kafka, env.topics.prefix)
    assert {env.topics.deadletter, env.topics.audit, env.topics.state("persons")} <= set(topics)
    for key, value in await everything_on(env.kafka, topics):
        for secret in leaks(key, secrets) + leaks(value, secrets):
            found.setdefault("hub topics", []).append(secret)
    inboxes = [env.topics.agency_in(a) for a in ("jps", "city-shinagawa", "jasso")]
    for _, value in await everything_on(env.kafka, inboxes):
        message = CODEC.decode(value or b"")
        if isinstance(message, HubError | EnrolmentResult):
            found.setdefault("errors and results", []).extend(leaks(message.detail, secrets))
    found["log"] = leaks(caplog.text, secrets)
    assert {where: hits for where, hits in found.items() if hits} == {}
    assert any(r.name.startswith("hub_stream") for r in caplog.records)  # it did log the run


def deadletter_cli(env: HubEnv, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "RENKEI_BOOTSTRAP": env.kafka["bootstrap_servers"],
        "RENKEI_HUB_TOPIC_PREFIX": env.topics.prefix,
        "RENKEI_HUB_KEY_DIR": str(env.key_dir),
        "COLUMNS": "250",
    }
    return subprocess.run(
        [sys.executable, "-m", "renkei", "deadletter", *args],
        capture_output=True, text=True, env=environment, timeout=120, check=False,
    )  # fmt: skip


async def test_operators_list_and_open_dead_letters(env: HubEnv, tmp_path: Path) -> None:
    person = generate_population(1, seed=53)[0]
    whole = EnrolmentRequest(
        header=Header.new("jps"), record_ref="J-cut", my_number=person.my_number,
        basic4=basic4_of(person), capacity="",
    )  # fmt: skip
    truncated = CODEC.encode(sign_message(whole, env.keys("jps").signing, CODEC))[:-3]
    valid_but_unsigned = CODEC.encode(whole)  # refused, not parked: no letter
    producer = AIOKafkaProducer(**env.kafka)
    await producer.start()
    try:
        for value in (valid_but_unsigned, truncated):
            await producer.send_and_wait(env.topics.agency_out("jps"), value, key=b"J-cut")
    finally:
        await producer.stop()
    (letter,) = await read_topic(env.kafka, env.topics.deadletter, lambda got: len(got) >= 1)
    listed = deadletter_cli(env, "list")
    assert listed.returncode == 0, listed.stderr
    assert "1 letter(s)" in listed.stdout
    assert f"{env.topics.agency_out('jps')}@" in listed.stdout
    assert "(sealed)" in listed.stdout
    assert person.my_number not in listed.stdout
    offset = str(0)
    opened = deadletter_cli(env, "open", "--offset", offset)
    assert opened.returncode == 0, opened.stderr
    assert "key: b'J-cut'" in opened.stdout
    assert truncated.hex() in opened.stdout  # not a message any more: shown as hex
    out = tmp_path / "letter.bin"
    written = deadletter_cli(env, "open", "--offset", offset, "--out", str(out))
    assert written.returncode == 0, written.stderr
    assert out.read_bytes() == truncated
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert person.my_number not in written.stdout
    # A registry event nobody pinned signed: parked whole, opened as the message it is.
    forger = AgencyKeys("registry", SigningKey.generate(), env.keys("registry").sealing)
    async with RegistryPublisher(forger, env.kafka, env.topics) as registry:
        await registry.register(
            person.resident_code, person.my_number, basic4_of(person), person.birth_date
        )
    raw = await read_topic(
        env.kafka, env.topics.deadletter, lambda got: len(got) >= 2, decode=False
    )
    event = deadletter_cli(env, "open", "--offset", str(raw[1].offset))  # markers take offsets
    assert event.returncode == 0, event.stderr
    assert "BAD_SIGNATURE" in event.stdout
    assert "value: RegistryEvent" in event.stdout
    assert person.my_number in event.stdout  # the operators see what it held
    missing = deadletter_cli(env, "open", "--offset", "99")
    assert missing.returncode == 2
    assert "no record at offset 99" in missing.stderr
    assert letter.value not in (truncated, b"")
