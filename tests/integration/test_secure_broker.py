"""A secure broker refuses strangers and lets each principal do exactly its job.

The cluster (``secure_kafka``) has TLS + SASL/SCRAM-SHA-512 and the StandardAuthorizer;
each test syncs the ACLs of the sample directory under its own topic prefix and writes
one record to every topic, so a read that is allowed has something to find.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError, SaslAuthenticationFailed
from aiokafka.helpers import create_ssl_context

from consumers.provider import ProviderService
from hub_stream.settings import HubSettings
from hub_stream.worker import HubService
from infra.kafka import LocalCluster
from infra.kafka.acls import (
    AclBinding,
    Operation,
    PatternType,
    ResourceType,
    create_acls,
    delete_acls,
)
from infra.kafka.wire import admin_client
from producers.agency_client import AgencyClient
from producers.population import generate_population
from producers.registry_publisher import RegistryPublisher
from renkei.crypto import keystore
from renkei.crypto.bundles import bundle_path
from renkei.operator.acl import desired_acls, sync_acls
from renkei.operator.directory_file import DirectoryFile, load_directory_file
from renkei.operator.publish import init_keys, publish
from renkei.readers import committed_reader
from renkei.settings import KafkaSettings
from renkei.topics import Topics, TopicSpec, ensure_topics
from schemas.models import ForwardedRequest
from tests.integration.hub_env import eventually
from tests.integration.test_exchange import basic4_of, wait_registered

JPS, CITY = "agency.jps", "agency.city-shinagawa"
PRINCIPALS = (JPS, CITY, "hub", "registry", "operator", "portal")


@dataclass
class Deployment:
    home: Path
    topics: Topics
    directory: DirectoryFile

    def kafka(self, principal: str) -> dict[str, Any]:
        return KafkaSettings.for_principal(principal, self.home).kafka_kwargs()

    def named(self) -> dict[str, str]:
        """Short names of the topics under test → their full names."""
        t = self.topics
        return {
            "agency.jps.out": t.agency_out("jps"),
            "agency.jps.in": t.agency_in("jps"),
            "agency.city-shinagawa.out": t.agency_out("city-shinagawa"),
            "agency.city-shinagawa.in": t.agency_in("city-shinagawa"),
            "registry.events": t.registry_events,
            "hub.directory": t.directory,
            "hub.control": t.control,
            "hub.audit": t.audit,
            "hub.audit.heads": t.audit_heads,
            "hub.deadletter": t.deadletter,
            "hub.state.persons": t.state("persons"),
            "hub.disclosure": f"{t.prefix}hub.disclosure",
            "registry.portal": t.registry_portal,
            "hub.portal.registrations": t.portal_registrations,
            "portal.credentials": t.portal_credentials,
        }


@pytest.fixture
async def deployment(secure_kafka: Path, topics: Topics) -> Deployment:
    directory = load_directory_file()
    d = Deployment(secure_kafka, topics, directory)
    admin = d.kafka("admin")
    client = _admin(admin)
    await client.start()
    try:
        await ensure_topics(client, [TopicSpec(name, 1) for name in d.named().values()])
    finally:
        await client.close()
    await sync_acls(admin, directory, topics)
    producer = AIOKafkaProducer(**admin, acks="all")
    await producer.start()
    try:
        for name in d.named().values():
            await producer.send_and_wait(name, b"seed", partition=0)
    finally:
        await producer.stop()
    return d


def _admin(kafka: dict[str, Any]) -> Any:
    from aiokafka.admin import AIOKafkaAdminClient

    return AIOKafkaAdminClient(**kafka)


# --- who gets in --------------------------------------------------------------------


async def test_strangers_are_refused(deployment: Deployment) -> None:
    jps = deployment.kafka(JPS)
    host, port = jps["bootstrap_servers"].split(":")
    # A plaintext client speaks Kafka where the broker expects a TLS handshake.
    with pytest.raises(KafkaConnectionError, match="closed"):
        await create_conn(host, int(port), security_protocol="PLAINTEXT")
    with pytest.raises(SaslAuthenticationFailed, match="invalid credentials"):
        await create_conn(
            host, int(port), security_protocol="SASL_SSL", ssl_context=jps["ssl_context"],
            sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=JPS,
            sasl_plain_password="not-the-password",
        )  # fmt: skip
    # A client that does not trust our CA does not even send its password.
    with pytest.raises(ssl.SSLCertVerificationError, match="CERTIFICATE_VERIFY_FAILED"):
        await create_conn(
            host, int(port), security_protocol="SASL_SSL", ssl_context=create_ssl_context(),
            sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=JPS,
            sasl_plain_password=jps["sasl_plain_password"],
        )  # fmt: skip
    # The controller listener wants a client certificate, which only brokers hold.
    with pytest.raises(KafkaConnectionError, match="closed"):
        await _ask_metadata(host, int(port) + 1, jps["ssl_context"])
    # Through a real client, both come out as "cannot bootstrap".
    wrong = {**jps, "sasl_plain_password": "not-the-password", "request_timeout_ms": 5000}
    producer = AIOKafkaProducer(**wrong)
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        await producer.start()
    await producer.stop()


async def _ask_metadata(host: str, port: int, context: Any) -> None:
    from aiokafka.protocol.metadata import MetadataRequest

    conn = await create_conn(host, port, security_protocol="SSL", ssl_context=context)
    try:
        await conn.send(MetadataRequest([]))
    finally:
        conn.close()


# --- what each principal may write and read ---------------------------------------------

WRITERS = {
    "agency.jps.out": {JPS},
    "agency.jps.in": {"hub"},
    "agency.city-shinagawa.out": {CITY},
    "agency.city-shinagawa.in": {"hub"},
    "registry.events": {"registry"},
    "hub.directory": {"operator"},
    "hub.control": {"operator"},
    "hub.audit": {"hub"},
    "hub.audit.heads": {"hub"},
    "hub.deadletter": {"hub"},
    "hub.state.persons": {"hub"},
    "hub.disclosure": {"operator"},
    "registry.portal": {"registry"},
    "hub.portal.registrations": {"hub"},
    "portal.credentials": {"portal"},
}
READERS = {
    "agency.jps.out": {"hub"},
    "agency.jps.in": {JPS},
    "agency.city-shinagawa.out": {"hub"},
    "agency.city-shinagawa.in": {CITY},
    "registry.events": {"hub", "operator"},
    "hub.directory": {"hub", "operator", "portal", JPS, CITY},
    "hub.control": {"hub", "operator"},
    "hub.audit": {"operator", "portal", "registry"},
    "hub.audit.heads": {"operator", "portal", JPS, CITY},  # the witnesses
    "hub.deadletter": {"operator"},
    "hub.state.persons": {"hub", "operator"},
    "hub.disclosure": {"operator", "portal"},
    "registry.portal": {"hub", "operator"},
    "hub.portal.registrations": {"operator", "portal"},
    "portal.credentials": {"portal"},
}
DENIED = "TopicAuthorizationFailedError"


def _expected(table: dict[str, set[str]], denied: str = DENIED) -> dict[tuple[str, str], str]:
    return {
        (p, t): "ok" if p in allowed else denied for t, allowed in table.items() for p in PRINCIPALS
    }


async def test_each_principal_writes_only_its_topics(deployment: Deployment) -> None:
    names = deployment.named()
    got: dict[tuple[str, str], str] = {}
    for principal in PRINCIPALS:
        # As every Renkei producer: idempotent, acks=all (no IdempotentWrite ACL needed:
        # each principal may write some topic, the portal its portal.credentials).
        producer = AIOKafkaProducer(
            **deployment.kafka(principal), acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            for short, topic in names.items():
                got[(principal, short)] = await _outcome(producer.send_and_wait(topic, b"w"))
        finally:
            await producer.stop()
    assert got == _expected(WRITERS)


async def test_each_principal_reads_only_its_topics(deployment: Deployment) -> None:
    names = deployment.named()
    got: dict[tuple[str, str], str] = {}
    for (principal, short), outcome in _expected(READERS).items():
        kafka = deployment.kafka(principal)
        if outcome == "ok":
            # As Renkei's readers do: partitions assigned by hand, read_committed.
            got[(principal, short)] = await _read_assigned(kafka, names[short])
        else:
            # A subscribing consumer is told why; an assigning one would just see nothing.
            group = f"{deployment.topics.prefix}{_own_group(principal)}"
            got[(principal, short)] = await _read_subscribed(kafka, names[short], group)
    expected = _expected(READERS)
    # The registry may DESCRIBE the topic it writes, so there the check that fails first
    # is its consumer group (it has none); by assignment, the fetch itself is refused.
    expected[("registry", "registry.events")] = "GroupAuthorizationFailedError"
    expected[("registry", "registry.portal")] = "GroupAuthorizationFailedError"
    assert got == expected
    registry = deployment.kafka("registry")
    assert await _read_assigned(registry, names["registry.events"]) == DENIED


def _own_group(principal: str) -> str:
    return f"{principal}.test" if principal.startswith("agency.") else f"{principal}-test"


async def test_agency_groups_are_its_own(deployment: Deployment) -> None:
    jps, p = deployment.kafka(JPS), deployment.topics.prefix
    inbox = deployment.topics.agency_in("jps")
    assert await _read_subscribed(jps, inbox, f"{p}agency.jps.provider") == "ok"
    assert await _read_subscribed(jps, inbox, f"{p}agency.jps.lifecycle") == "ok"
    for foreign in (f"{p}agency.city-shinagawa.provider", f"{p}hub", f"{p}agency.jpsx.a", "jps"):
        assert await _read_subscribed(jps, inbox, foreign) == "GroupAuthorizationFailedError"


async def test_hub_consumes_and_produces_in_one_transaction(deployment: Deployment) -> None:
    t, p = deployment.topics, deployment.topics.prefix
    hub = deployment.kafka("hub")
    out, inbox = t.agency_out("jps"), t.agency_in("city-shinagawa")
    consumer = committed_reader(hub, out, group_id=f"{p}hub")
    producer = AIOKafkaProducer(**hub, transactional_id=f"{p}hub-worker-1")
    await consumer.start()
    await producer.start()
    try:
        batch = await _next_batch(consumer)
        async with producer.transaction():
            for records in batch.values():
                for record in records:
                    await producer.send(inbox, b"forwarded:" + record.value, partition=0)
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            await producer.send_offsets_to_transaction(offsets, f"{p}hub")
        # The offsets are stable once the coordinator has written the commit markers.
        await eventually(lambda: _committed_is(consumer, TopicPartition(out, 0), 1))
    finally:
        await producer.stop()
        await consumer.stop()
    assert await _values(deployment.kafka(CITY), inbox) == [b"seed", b"forwarded:seed"]
    # A transactional id outside the hub's prefix is refused.
    stray = AIOKafkaProducer(**hub, transactional_id="someone-else")
    try:
        assert (
            await _outcome(_one_transaction(stray, inbox)) == "TransactionalIdAuthorizationFailed"
        )
    finally:
        await stray.stop()


async def _committed_is(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> bool:
    return bool(await consumer.committed(tp) == offset)


async def _one_transaction(producer: AIOKafkaProducer, topic: str) -> None:
    await producer.start()
    async with producer.transaction():
        await producer.send(topic, b"never")


async def _next_batch(consumer: AIOKafkaConsumer) -> dict[TopicPartition, list[Any]]:
    async with asyncio.timeout(30):
        while True:
            batch: dict[TopicPartition, list[Any]] = await consumer.getmany(timeout_ms=500)
            if batch:
                return batch


# --- acl sync ---------------------------------------------------------------------------


async def test_acl_sync_is_idempotent_and_removes_only_stale_acls(deployment: Deployment) -> None:
    admin, t = deployment.kafka("admin"), deployment.topics
    wanted = desired_acls(deployment.directory, t)
    again = await sync_acls(admin, deployment.directory, t)
    assert (again.added, again.removed, again.kept) == ((), (), len(wanted))

    stale = AclBinding(
        ResourceType.TOPIC, t.directory, PatternType.LITERAL, "User:hub", Operation.WRITE
    )
    foreign = AclBinding(
        ResourceType.TOPIC, t.audit, PatternType.LITERAL, "User:someone", Operation.READ
    )
    elsewhere = AclBinding(
        ResourceType.TOPIC, "other.hub.directory", PatternType.LITERAL, "User:hub", Operation.WRITE
    )
    async with admin_client(admin) as client:
        await create_acls(client, [stale, foreign, elsewhere])
    repaired = await sync_acls(admin, deployment.directory, t)
    assert (repaired.added, repaired.removed) == ((), (stale,))
    # The hub may not write the directory again; the other two were never ours to remove.
    hub = AIOKafkaProducer(**deployment.kafka("hub"))
    await hub.start()
    try:
        assert await _outcome(hub.send_and_wait(t.directory, b"x")) == DENIED
    finally:
        await hub.stop()

    # An agency leaves the directory: its ACLs, and the hub's for its topics, go.
    without = deployment.directory.model_copy(
        update={
            "agencies": tuple(
                a for a in deployment.directory.agencies if a.agency_id != "city-shinagawa"
            )
        }
    )
    removed = await sync_acls(admin, without, t)
    assert removed.added == ()
    assert set(removed.removed) == wanted - desired_acls(without, t)
    assert {b.principal for b in removed.removed} == {f"User:{CITY}", "User:hub", "User:operator"}
    city = AIOKafkaProducer(**deployment.kafka(CITY))
    await city.start()
    try:
        assert await _outcome(city.send_and_wait(t.agency_out("city-shinagawa"), b"x")) == DENIED
    finally:
        await city.stop()
    async with admin_client(admin) as client:
        await delete_acls(client, [foreign, elsewhere])


async def test_an_agency_joining_later_gets_a_login(secure_kafka: Path, topics: Topics) -> None:
    cluster = LocalCluster(secure_kafka / "kafka")
    principal = f"agency.late-{topics.prefix.strip('.')}"
    # LocalCluster's methods are synchronous (they run their own event loop).
    assert (await asyncio.to_thread(cluster.add_principals, [principal])).keys() == {principal}
    assert await asyncio.to_thread(cluster.add_principals, [principal]) == {}  # nothing new
    late = KafkaSettings.for_principal(principal, secure_kafka).kafka_kwargs()
    producer = AIOKafkaProducer(**late)
    await producer.start()  # it logs in; it may do nothing until acl sync grants it
    try:
        assert await _outcome(producer.send_and_wait(topics.agency_out("jps"), b"x")) == DENIED
    finally:
        await producer.stop()


# --- helpers ----------------------------------------------------------------------------


async def _outcome(operation: Any) -> str:
    try:
        await operation
    except KafkaError as exc:
        return type(exc).__name__
    return "ok"


async def _read_assigned(kafka: dict[str, Any], topic: str, wait_s: float = 20) -> str:
    consumer = committed_reader(kafka, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        async with asyncio.timeout(wait_s):
            while not await consumer.getmany(timeout_ms=500):
                pass
        return "ok"
    except TimeoutError:
        return "nothing read"
    except KafkaError as exc:
        return type(exc).__name__
    finally:
        await consumer.stop()


async def _read_subscribed(kafka: dict[str, Any], topic: str, group: str) -> str:
    consumer = committed_reader(kafka, topic, group_id=group)
    try:
        await consumer.start()
        async with asyncio.timeout(20):
            while not await consumer.getmany(timeout_ms=500):
                pass
        return "ok"
    except TimeoutError:
        return "nothing read"
    except KafkaError as exc:
        return type(exc).__name__
    finally:
        await consumer.stop()


async def _values(kafka: dict[str, Any], topic: str) -> list[bytes]:
    consumer = committed_reader(kafka, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        got: list[bytes] = []
        async with asyncio.timeout(20):
            while await consumer.position(tp) < end:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got += [r.value for r in records]
        return got
    finally:
        await consumer.stop()


# --- the real thing ---------------------------------------------------------------------


async def test_the_hub_and_its_clients_work_under_their_principals(
    secure_kafka: Path, topics: Topics, tmp_path: Path
) -> None:
    """The synced ACLs are enough for the real code: operator, registry, hub, agencies."""
    d = Deployment(secure_kafka, topics, load_directory_file())
    p, key_dir = topics.prefix, tmp_path / "keys"
    init_keys(key_dir)
    await sync_acls(d.kafka("admin"), d.directory, topics)
    operator = KafkaSettings.for_principal("operator", secure_kafka)
    await publish(operator, p, key_dir, None)  # creates the topics, writes hub.directory
    settings = HubSettings(topic_prefix=p, key_dir=key_dir, group_id=f"{p}hub", poll_ms=10)
    hub = HubService(d.kafka("hub"), settings)
    await hub.start()
    try:
        person = generate_population(1, seed=5)[0]
        registry_keys = keystore.load(key_dir, "registry")
        async with RegistryPublisher(registry_keys, d.kafka("registry"), topics) as registry:
            await registry.register(
                person.resident_code, person.my_number, basic4_of(person), person.birth_date
            )
        await wait_registered(d.kafka("operator"), topics, 1)

        def agency(name: str) -> AgencyClient:
            kafka = d.kafka(f"agency.{name}")
            return AgencyClient(name, keystore.load(key_dir, name), kafka, topics, grace_s=5,
                                hub_public_key=bundle_path(key_dir, "hub"))  # fmt: skip

        async with agency("city-shinagawa") as city, agency("jps") as jps:
            city_code = (await city.enrol("S-1", my_number=person.my_number)).link_code
            assert (await jps.enrol("J-1", my_number=person.my_number)).link_code
        assert city_code
        scenario = next(
            s
            for s in d.directory.scenarios
            if (s.requester, s.provider) == ("city-shinagawa", "jps")
        )

        async def answer(request: ForwardedRequest) -> dict[str, Any]:
            return {item: f"value of {item}" for item in request.items}

        provider = ProviderService(
            "jps", keystore.load(key_dir, "jps"), d.kafka(JPS), topics, answer,
            group_id=f"{p}agency.jps.provider", hub_public_key=bundle_path(key_dir, "hub"),
        )  # fmt: skip
        async with provider, agency("city-shinagawa") as city:
            values = await city.request(
                link_code=city_code, provider="jps", scenario_id=scenario.scenario_id,
                items=scenario.items[:1],
            )  # fmt: skip
        assert values == {scenario.items[0]: f"value of {scenario.items[0]}"}
    finally:
        await hub.stop()
