"""A leaked agency login attacks through the broker: every other agency's topics, groups and
the hub's privileged topics are refused, with the exact Kafka error.

``city-osaka``'s own credentials (what a thief of its ``.env`` file holds), against the
running deployment with the ACLs ``renkei acl sync`` grants. The broker refuses before
the hub sees anything, so afterwards the hub is ready and answers as before.
``tests/integration/test_secure_broker.py`` holds the full matrix of every principal;
this is the attacker's view, including the ways to hurt the hub without writing to it
(fencing its transactions, moving its offsets, deleting its topics).
"""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, for_code

from tests.integration.hub_env import read_topic
from tests.integration.test_secure_broker import _outcome, _read_assigned, _read_subscribed
from tests.security.deployment import ATTACKER, PROVIDER, VICTIM, Deployment
from tests.security.outcomes import attack

pytestmark = pytest.mark.integration

TOPIC_DENIED = "TopicAuthorizationFailedError"
GROUP_DENIED = "GroupAuthorizationFailedError"
TXN_DENIED = "TransactionalIdAuthorizationFailed"


def privileged(d: Deployment) -> dict[str, str]:
    """Every topic only the hub, the registry or the operators may write."""
    t = d.topics
    named = {
        "hub.directory": t.directory,
        "hub.control": t.control,
        "registry.events": t.registry_events,
        "hub.audit": t.audit,
        "hub.audit.heads": t.audit_heads,  # the tree heads its witness reads, only read
        "hub.deadletter": t.deadletter,
        "hub.disclosure": f"{t.prefix}hub.disclosure",
        f"agency.{ATTACKER}.in": t.agency_in(ATTACKER),  # its own inbox: only the hub writes
        f"agency.{VICTIM}.in": t.agency_in(VICTIM),
        f"agency.{PROVIDER}.in": t.agency_in(PROVIDER),
    }
    for table in ("persons", "holdings", "pending", "audit-chain", "keys", "seen"):
        named[f"hub.state.{table}"] = t.state(table)
    return named


async def test_it_writes_nothing_but_its_own_out(secure_deployment: Deployment) -> None:
    d = secure_deployment
    targets = {**privileged(d), f"agency.{VICTIM}.out": d.topics.agency_out(VICTIM)}
    # As Renkei's producers: idempotent, acks=all.
    async with d.producer(ATTACKER, enable_idempotence=True) as producer:
        got = {name: await _outcome(producer.send_and_wait(topic, b"x")) for name, topic in
               targets.items()}  # fmt: skip
        own = await _outcome(producer.send_and_wait(d.topics.agency_out(ATTACKER), b"x"))
    assert got == dict.fromkeys(targets, TOPIC_DENIED)
    assert own == "ok"  # the login works: it is the ACLs that refuse
    await attack(d, done=lambda _: True)  # the garbage on its own .out hurt nobody


async def test_it_reads_nothing_but_its_own_inbox(secure_deployment: Deployment) -> None:
    d = secure_deployment
    t, kafka, group = d.topics, d.env.kafka_of(ATTACKER), f"{d.topics.prefix}agency.{ATTACKER}.x"
    secret = {
        f"agency.{VICTIM}.in": t.agency_in(VICTIM),  # the victim's answers and forwards
        f"agency.{VICTIM}.out": t.agency_out(VICTIM),  # what the victim asks
        f"agency.{ATTACKER}.out": t.agency_out(ATTACKER),  # even its own: only the hub reads
        "registry.events": t.registry_events,  # My Numbers and basic-4s
        "hub.audit": t.audit,
        "hub.deadletter": t.deadletter,
        "hub.control": t.control,
        "hub.state.persons": t.state("persons"),
        "hub.state.keys": t.state("keys"),
        "hub.state.pending": t.state("pending"),
    }
    subscribed = {name: await _read_subscribed(kafka, topic, group) for name, topic in
                  secret.items()}  # fmt: skip
    assert subscribed == dict.fromkeys(secret, TOPIC_DENIED)
    # It may describe only what it reads or writes: the others do not even exist for it,
    # so a consumer assigned to their partitions finds no leader and reads nothing.
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        visible = {x for x in await admin.list_topics() if x.startswith(t.prefix)}
    finally:
        await admin.close()
    assert visible == {t.agency_in(ATTACKER), t.agency_out(ATTACKER), t.directory,
                       t.audit_heads}  # fmt: skip
    # Its own .out it may describe (it writes it), so there the fetch itself is refused.
    assert await _read_assigned(kafka, t.agency_out(ATTACKER)) == TOPIC_DENIED
    assert await read_topic(kafka, t.agency_in(ATTACKER), lambda got: len(got) > 0)


async def test_it_cannot_join_or_move_anyone_elses_group(secure_deployment: Deployment) -> None:
    d = secure_deployment
    p, kafka, own_inbox = d.topics.prefix, d.env.kafka_of(ATTACKER), d.topics.agency_in(ATTACKER)
    groups = [f"{p}agency.{VICTIM}.client", f"{p}agency.{VICTIM}.provider", f"{p}hub",
              f"{p}hub-control-worker-1", f"{p}operator", f"{p}portal"]  # fmt: skip
    joined = {g: await _read_subscribed(kafka, own_inbox, g) for g in groups}
    assert joined == dict.fromkeys(groups, GROUP_DENIED)
    # The victim's group on the victim's inbox: refused at the topic already.
    victim_group = f"{p}agency.{VICTIM}.client"
    assert await _read_subscribed(kafka, d.topics.agency_in(VICTIM), victim_group) == TOPIC_DENIED
    # Committing offsets for the hub's group would make the hub skip (or redo) input.
    committed = {g: await _commit_as(kafka, g, own_inbox) for g in (f"{p}hub", victim_group)}
    assert committed == dict.fromkeys((f"{p}hub", victim_group), GROUP_DENIED)


async def _commit_as(kafka: dict[str, Any], group: str, topic: str) -> str:
    consumer = AIOKafkaConsumer(**kafka, group_id=group, enable_auto_commit=False)
    try:
        await consumer.start()
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.commit({tp: 0})
    except KafkaError as exc:
        return type(exc).__name__
    finally:
        await consumer.stop()
    return "ok"


async def test_it_cannot_fence_the_hub_or_run_transactions(secure_deployment: Deployment) -> None:
    """The hub's transactional id in a thief's producer would fence the hub's own."""
    d = secure_deployment
    p, kafka = d.topics.prefix, d.env.kafka_of(ATTACKER)
    ids = [f"{d.env.settings.group_id}-{d.env.settings.worker_id}", f"{p}hub",
           f"{p}agency.{ATTACKER}.tx"]  # fmt: skip
    got = {i: await _transaction(kafka, i, d.topics.agency_out(ATTACKER)) for i in ids}
    assert got == dict.fromkeys(ids, TXN_DENIED)
    await attack(d, done=lambda _: True)  # the hub's producer was not fenced


async def _transaction(kafka: dict[str, Any], transactional_id: str, topic: str) -> str:
    producer = AIOKafkaProducer(**kafka, transactional_id=transactional_id)
    try:
        await producer.start()
        async with producer.transaction():
            await producer.send(topic, b"never")
    except KafkaError as exc:
        return type(exc).__name__
    finally:
        await producer.stop()
    return "ok"


async def test_it_cannot_delete_create_or_grant(secure_deployment: Deployment) -> None:
    d = secure_deployment
    admin = AIOKafkaAdminClient(**d.env.kafka_of(ATTACKER))
    await admin.start()
    try:
        deleted = await _admin_outcome(admin.delete_topics([d.topics.agency_in(VICTIM)]))
        created = await _admin_outcome(
            admin.create_topics([NewTopic(f"{d.topics.prefix}agency.{ATTACKER}.in2", 1, 1)])
        )
    finally:
        await admin.close()
    assert (deleted, created) == (TOPIC_DENIED, TOPIC_DENIED)
    await attack(d, done=lambda _: True)  # the victim's inbox is still there


async def _admin_outcome(call: Any) -> str:
    """The first error a CreateTopics or DeleteTopics response names, by its class name."""
    try:
        response = (await call).to_object()
    except KafkaError as exc:
        return type(exc).__name__
    rows = response.get("topic_errors") or response.get("topic_error_codes") or []
    codes = [row["error_code"] for row in rows if row["error_code"]]
    return for_code(codes[0]).__name__ if codes else "ok"
