"""Signed tree heads on a real broker: what a running hub committed to hub.audit and
hub.audit.heads, read back ``read_committed``, across a restart; and a partition whose
chain head predates tree heads, its tree rebuilt from the partition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from hub_stream.audit import AuditTrail
from hub_stream.checkpoints import ChainHead
from hub_stream.state import Table
from hub_stream.treeheads import TreeHeads, rebuild_trees
from producers.population import generate_population
from producers.registry_publisher import RegistryPublisher
from renkei.audit.reader import read_topic
from renkei.auditchain import TrustedKeys, load_or_create_signer
from renkei.merkle import MerkleTree, leaf_hash
from renkei.topics import Topics, TopicSpec, ensure_topics
from renkei.treehead import SignedHead
from schemas.models import AuditStep
from tests.integration.hub_env import HubEnv, hub_env, start_hub
from tests.integration.partitioned_env import Deployment
from tests.integration.principals import Principals
from tests.integration.test_audit import HUB_SETTINGS, audit_records, populate, wait_for_steps
from tests.integration.test_exchange import basic4_of
from tests.unit.test_audit_tree_heads import CODEC, check_heads

pytestmark = pytest.mark.integration


@pytest.fixture
async def env(principals: Principals, topics: Topics, tmp_path: Path) -> Any:
    async with hub_env(principals, topics, tmp_path / "keys", **HUB_SETTINGS) as running:
        yield running


async def partitions(kafka: dict[str, Any], topic: str) -> dict[int, list[bytes]]:
    """Every committed value of ``topic``, by partition, in offset order."""
    got: dict[int, list[bytes]] = {}
    async for batch in read_topic(kafka, topic):
        for raw in batch:
            if raw.value is not None:
                got.setdefault(raw.partition, []).append(raw.value)
    return got


async def check_trail(env: HubEnv) -> dict[int, SignedHead]:
    """Every head of the committed trail checked; the last head of each partition."""
    return await check_topics(env.kafka_of("operator"), env.topics, env.key_dir)


async def check_topics(
    kafka: dict[str, Any], topics: Topics, key_dir: Path
) -> dict[int, SignedHead]:
    trusted = TrustedKeys.load(key_dir / "audit-trust.json")
    audit = await partitions(kafka, topics.audit)
    heads = await partitions(kafka, topics.audit_heads)
    assert audit
    assert set(heads) == set(audit)
    for partition, values in audit.items():
        assert check_heads(partition, values, heads[partition], trusted) > 0
    return {p: SignedHead.parse(v[-1], CODEC) for p, v in heads.items()}


async def test_the_committed_heads_cover_the_trail_across_a_restart(env: HubEnv) -> None:
    await populate(env)
    before = await check_trail(env)
    applied = (await audit_steps(env)).count("REGISTRY_APPLIED")
    await env.hub.stop()
    env.hub = await start_hub(env.kafka_of("hub"), env.settings)  # restores the trees
    # Several people: each lands in the partition of their audit key, which the test
    # cannot choose; with 8 at least one lands where heads were written before the restart
    # (all 8 in the one partition without any: a chance of 3^-8 at worst).
    people = generate_population(8, seed=77)
    async with RegistryPublisher(
        env.keys("registry"), env.kafka_of("registry"), env.topics
    ) as registry:
        for person in people:
            await registry.register(
                person.resident_code, person.my_number, basic4_of(person), person.birth_date
            )
    await wait_for_steps(env, lambda steps: steps.count("REGISTRY_APPLIED") >= applied + 8)
    # check_heads: the restarted hub's first head names the last one before the restart
    # as its previous head and proves it extends it (a lost tree would start from 0).
    after = await check_trail(env)
    sizes = {p: (before[p].size, after[p].size) for p in after if p in before}
    assert any(new > old for old, new in sizes.values()), sizes


async def audit_steps(env: HubEnv) -> list[str]:
    return [str(r.step) for r in await audit_records(env)]


async def test_a_tree_from_before_tree_heads_is_rebuilt(
    principals: Principals, topics: Topics, tmp_path: Path
) -> None:
    topic = f"{topics.prefix}legacy.audit"
    admin = AIOKafkaAdminClient(**principals.admin)
    await admin.start()
    try:
        await ensure_topics(admin, [TopicSpec(topic, 2)])
    finally:
        await admin.close()
    # Both partitions as an older hub left them: records, chain heads without a tree; but
    # partition 1's chain head counts a record the partition does not hold.
    heads: Table[ChainHead] = Table("heads", ChainHead.to_bytes, ChainHead.from_bytes)
    old = AuditTrail(topic, 2, CODEC, heads)
    keys = {old.partition_of(k * 32, "jps"): k * 32 for k in "abcdefgh"}
    written: list[bytes] = []
    async with AIOKafkaProducer(**principals.admin) as producer:
        for n in range(9):
            for partition in (0, 1):
                out = old.record(AuditStep.ENROLLED, cause=f"{n:031x}{partition}", actor="jps",
                                 audit_key=keys[partition])  # fmt: skip
                assert out.value is not None
                assert out.partition == partition
                if partition == 0:
                    written.append(out.value)
                if partition == 0 or n < 8:
                    await producer.send_and_wait(topic, out.value, partition=partition)
    heads.commit()
    assert {p: h.tree_size for p, h in heads.items()} == {"0": None, "1": None}
    assert await rebuild_trees(principals.admin, topic, heads, CODEC) == [0]
    assert heads.get("1").tree_size is None  # type: ignore[union-attr]  # it is there
    signer = load_or_create_signer(tmp_path)
    trail = AuditTrail(
        topic, 2, CODEC, heads, None, (), TreeHeads(topic, f"{topic}.heads", signer, CODEC)
    )
    out = trail.record(AuditStep.ENROLLED, cause="e" * 32, actor="jps", audit_key=keys[0])
    assert out.value is not None
    written.append(out.value)
    head, copy = trail.checkpoints(1_000)
    assert head.value == copy.value
    assert (head.topic, copy.topic, head.partition) == (topic, f"{topic}.heads", 0)
    signed = SignedHead.parse(head.value or b"", CODEC)
    assert signed.size == len(written) == 10
    assert signed.root == MerkleTree(map(leaf_hash, written)).root()
    assert signed.head.previous_size == 0  # no head of the rebuilt size was ever written


@pytest.mark.slow
async def test_each_bucket_writes_the_heads_of_its_partition(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """The partitioned topology: every bucket's task is its partition's one writer."""
    deployment = Deployment(kafka_bootstrap, Topics(topic_prefix, partitions=4), tmp_path)
    await deployment.setup()
    deployment.start("worker-1")
    try:
        await deployment.register(12)  # waits for the hub's verdicts
        last = await check_topics(deployment.kafka, deployment.topics, deployment.key_dir)
        assert len(last) > 1  # the persons' buckets: several partitions
        assert sum(h.size for h in last.values()) >= 12
    finally:
        deployment.stop_all()
