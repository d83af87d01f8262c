"""Witnesses on a real broker: an agency's follower of hub.audit.heads catches a fork and a
truncated rewrite of the log, and accepts every head a real hub signs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import REGISTRY

from consumers.inbox import InboxReader
from consumers.witness import HeadWitness
from renkei.auditchain import TRUST_FILE, TrustedKeys, load_or_create_signer
from renkei.errors import WitnessAlarm
from renkei.readers import read_to_end
from renkei.topics import Topics, TopicSpec, ensure_topics
from renkei.witness import AlarmKind, Witness
from schemas.codec import default_codec
from tests.heads import History, new_signer, trust_of
from tests.integration.hub_env import eventually, hub_env
from tests.integration.principals import Principals
from tests.integration.test_audit import populate

CODEC = default_codec()


async def write_heads(kafka: dict[str, Any], topic: str, *heads: tuple[int, bytes]) -> None:
    """Write (partition, head bytes) pairs, in order, as the hub's copies would be."""
    producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for partition, data in heads:
            await producer.send_and_wait(topic, data, partition=partition)
    finally:
        await producer.stop()


async def create(kafka: dict[str, Any], *specs: TopicSpec) -> None:
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        await ensure_topics(admin, specs)
    finally:
        await admin.close()


async def heads_topic(kafka: dict[str, Any], topics: Topics) -> None:
    await create(kafka, TopicSpec(topics.audit_heads, 2))


async def catch_up(follower: HeadWitness) -> None:
    """Poll until the follower has read to the end of the topic as of now."""
    while await follower.lag():
        await follower.poll()


def alarms_counted(kind: AlarmKind) -> float:
    value = REGISTRY.get_sample_value("renkei_witness_alarms_total", {"kind": kind.value})
    assert value is not None
    return value


async def test_the_follower_accepts_a_log_then_catches_a_fork_and_a_truncated_rewrite(
    principals: Principals, topics: Topics, tmp_path: Path
) -> None:
    kafka = principals.admin
    log = History(new_signer())
    other = History(log.signer, partition=1)
    trust = trust_of(log.signer)
    state = tmp_path / "witness.json"
    await heads_topic(kafka, topics)
    honest = [(0, log.commit(3)), (1, other.commit(2)), (0, log.commit(4)), (0, log.commit(1))]
    await write_heads(kafka, topics.audit_heads, *honest)

    follower = HeadWitness(kafka, topics, Witness.load(state, trust), name="test")
    await follower.start()
    try:
        await catch_up(follower)
        assert {p: h.size for p, h in follower.witness.latest.items()} == {0: 8, 1: 2}
        assert follower.raised == []

        # The hub shows this witness another history: a head of the same size with another
        # root, and a larger head whose proof does not start from the root kept.
        fork = log.fork(b"forged", keep=5)
        fork.append(3)
        same_size = fork.head(previous=4)
        fork.append(4)
        larger = fork.head(previous=8)
        split_before = alarms_counted(AlarmKind.SPLIT_VIEW)
        await write_heads(kafka, topics.audit_heads, (0, same_size), (0, larger))
        await catch_up(follower)
    finally:
        await follower.stop()
    assert [(a.kind, a.partition, a.kept_size, a.head_size) for a in follower.raised] == [
        (AlarmKind.SPLIT_VIEW, 0, 8, 8),
        (AlarmKind.SPLIT_VIEW, 0, 8, 12),
    ]
    assert alarms_counted(AlarmKind.SPLIT_VIEW) == split_before + 2
    assert follower.witness.latest[0].root == log.tree.root()

    # The log rewritten shorter (a fresh topic in its place): the restarted witness sees
    # each partition end before where it had read, and then every shorter head.
    rewritten_topics = Topics(prefix=f"{topics.prefix}rewritten.")
    await heads_topic(kafka, rewritten_topics)
    cut = log.fork(b"honest", keep=3)
    cut.last_size = 0
    await write_heads(kafka, rewritten_topics.audit_heads, (0, cut.head()))
    restarted = HeadWitness(kafka, rewritten_topics, Witness.load(state, trust), name="test")
    await restarted.start()
    try:
        await catch_up(restarted)
    finally:
        await restarted.stop()
    assert [(a.kind, a.partition, a.kept_size, a.head_size) for a in restarted.raised] == [
        (AlarmKind.ROLLBACK, 0, 8, None),  # ends at offset 1, had read to 6
        (AlarmKind.ROLLBACK, 1, 2, None),  # empty, had read to 1
        (AlarmKind.ROLLBACK, 0, 8, 3),  # the head there: shorter than the one kept
    ]
    assert {p: h.size for p, h in Witness.load(state, trust).latest.items()} == {0: 8, 1: 2}


async def test_every_inbox_reader_runs_the_agency_witness_when_the_trust_file_is_set(
    principals: Principals, topics: Topics, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = principals.admin
    log = History(load_or_create_signer(tmp_path))  # and its audit-trust.json beside it
    trust_file = tmp_path / TRUST_FILE
    monkeypatch.setenv("RENKEI_AGENCY_AUDIT_TRUST", str(trust_file))
    monkeypatch.setenv("RENKEI_AGENCY_WITNESS_STATE", str(tmp_path / "state.json"))
    await heads_topic(kafka, topics)
    await create(kafka, *topics.agency_specs("jps"))
    await write_heads(kafka, topics.audit_heads, (0, log.commit(2)))

    seen: list[WitnessAlarm] = []
    first = InboxReader("jps", kafka, topics, verify_hub=False, on_witness_alarm=seen.append)
    second = InboxReader("jps", kafka, topics, verify_hub=False)
    off = InboxReader("jps", kafka, topics, verify_hub=False, witness=False)
    async with first, second, off:
        assert first.witness is not None
        assert second.witness is first.witness  # one witness per agency and process
        assert off.witness is None
        witness = first.witness

        async def accepted_one() -> bool:
            return 0 in witness.witness.latest

        await eventually(accepted_one)
        await write_heads(kafka, topics.audit_heads, (0, log.fork(b"x", keep=1).head(previous=0)))

        async def alarmed() -> bool:
            return bool(seen)

        await eventually(alarmed)
    assert seen[0].kind == AlarmKind.ROLLBACK
    assert witness.raised == seen
    assert not witness.started  # stopped with the last reader


async def test_the_witness_accepts_every_head_a_real_hub_signs(
    principals: Principals, topics: Topics, tmp_path: Path
) -> None:
    key_dir = tmp_path / "keys"
    async with hub_env(principals, topics, key_dir) as env:
        await populate(env)
        kafka = env.kafka_of("jps")  # as an agency reads it: Read on hub.audit.heads
    heads = [r async for r in read_to_end(principals.admin, topics.audit_heads, 30)]
    assert heads
    last = {r.partition: r.value for r in heads}
    trust = TrustedKeys.load(key_dir / TRUST_FILE)
    follower = HeadWitness(kafka, topics, Witness(trust, state_path=tmp_path / "w.json"))
    await follower.start()
    try:
        await catch_up(follower)
    finally:
        await follower.stop()
    assert follower.raised == []
    assert follower.witness.accepted == len(heads)
    assert {p: h.data for p, h in follower.witness.latest.items()} == last
