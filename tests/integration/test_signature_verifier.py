"""A trust-acl hub forwards a forged request; the verifier beside it says so, once.

On the test broker: a ``trust-acl`` hub and a verifier worker (``role="verifier"``). A
person is registered and enrolled at two agencies (genuine, signed messages), then a
forger who can write the city's ``.out`` topic sends a request under the city's name
signed with a key of its own. The trust-acl hub acts on it, as it is configured to. The
verifier's verdicts must cover every record of both ``.out`` topics, the ranges of each
partition following each other, and name the forgery alone, by offset and message id.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from producers.agency_client import AgencyClient
from producers.population import generate_population
from renkei.crypto import SealingKeyPair, SigningKey
from renkei.envelope import encode_signed, verify_bytes
from renkei.readers import committed_reader, topic_partitions
from renkei.topics import Topics
from schemas.codec import default_codec
from schemas.models import (
    AttributeRequest,
    ErrorCode,
    Header,
    HpkeSuite,
    Message,
    SignatureVerdict,
)
from tests.integration.hub_env import HubEnv, eventually, hub_env, read_topic, start_hub
from tests.integration.principals import Principals
from tests.integration.test_exchange import register_all, scenario_between

CODEC = default_codec()
CITY, JPS = "city-shinagawa", "jps"


@pytest.fixture
async def env(principals: Principals, topics: Topics, tmp_path: Path) -> Any:
    # On a secure broker (make test-secure) every actor logs in as its own principal.
    async with hub_env(principals, topics, tmp_path / "keys", signatures="trust-acl") as e:
        yield e


async def _committed(env: HubEnv, topic: str) -> dict[int, list[int]]:
    """The offsets of every committed record of ``topic``, by partition: read to the end."""
    consumer = committed_reader(env.kafka, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)  # the last stable offsets
        offsets: dict[int, list[int]] = defaultdict(list)
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                offsets[tp.partition] += [r.offset for r in records]
        return offsets
    finally:
        await consumer.stop()


async def test_the_verifier_covers_every_input_and_names_the_forgery(env: HubEnv) -> None:
    verifier = await start_hub(
        env.kafka_of("hub"),
        env.settings.model_copy(update={"role": "verifier", "worker_id": "verifier-1"}),
    )
    try:
        person = generate_population(1, seed=73)[0]
        await register_all(env, [person])
        # A trust-acl hub signs nothing either: the agencies read it unverified.
        codes = []
        for agency, ref in ((CITY, "S-1"), (JPS, "J-1")):
            async with AgencyClient(
                agency,
                env.keys(agency),
                env.kafka_of(agency),
                env.topics,
                grace_s=5,
                verify_hub=False,
            ) as client:
                codes.append((await client.enrol(ref, my_number=person.my_number)).link_code)
        city_code = codes[0]
        assert city_code
        scenario, items = scenario_between(env, CITY, JPS)
        header = Header.new(CITY)
        forged = AttributeRequest(
            header=header, request_id="forged-1", requester_link_code=city_code,
            provider=JPS, scenario_id=scenario, items=items[:1],
            reply_public_key=SealingKeyPair.generate().public_bytes,
            hpke_suite=HpkeSuite.X25519, deadline=header.sent_at + timedelta(minutes=5),
        )  # fmt: skip
        value = encode_signed(forged, SigningKey.generate(), CODEC)  # not the city's key
        async with AIOKafkaProducer(**env.kafka, acks="all") as forger:
            sent = await forger.send_and_wait(
                env.topics.agency_out(CITY), value, key=city_code.encode()
            )

        inputs = {t: await _committed(env, t) for t in map(env.topics.agency_out, (CITY, JPS))}
        total = sum(len(o) for offsets in inputs.values() for o in offsets.values())
        assert total >= 3  # the two enrolments and the forgery

        def covered(got: list[Message]) -> bool:
            return sum(v.checked for v in got if isinstance(v, SignatureVerdict)) >= total

        verdicts: list[SignatureVerdict] = await read_topic(
            env.kafka, env.topics.audit_signatures, covered, timeout_s=60
        )
        assert sum(v.checked for v in verdicts) == total  # each input checked once
        for verdict in verdicts:
            raw = CODEC.encode(verdict)
            verify_bytes(raw, env.hub_key, CODEC)  # signed by the hub
        by_partition: dict[tuple[str, int], list[SignatureVerdict]] = defaultdict(list)
        for v in verdicts:
            by_partition[(v.source_topic, v.source_partition)].append(v)
        for (topic, partition), ranges in by_partition.items():
            ranges.sort(key=lambda v: v.first_offset)
            for before, after in itertools.pairwise(ranges):
                assert after.first_offset > before.last_offset  # no overlap
            offsets = inputs[topic][partition]
            # Every committed record lies in exactly one range of its partition.
            for offset in offsets:
                assert sum(v.first_offset <= offset <= v.last_offset for v in ranges) == 1
            assert sum(v.checked for v in ranges) == len(offsets)
        failures = [(v.source_topic, v.source_partition, f) for v in verdicts for f in v.failures]
        assert len(failures) == 1
        topic, partition, failure = failures[0]
        assert (topic, partition, failure.offset) == (sent.topic, sent.partition, sent.offset)
        assert failure.message_id == header.message_id
        assert (failure.sender, failure.reason) == (CITY, ErrorCode.BAD_SIGNATURE)
        assert verifier.verifier is not None
        expected = {"checked": total, "failed": 1}

        async def counted() -> bool:  # the alarm's figures, once the batches are settled
            report = verifier._report()["signatures"]
            return bool(report == expected)

        await eventually(counted, timeout_s=10)
    finally:
        await verifier.stop()
