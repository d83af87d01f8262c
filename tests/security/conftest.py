"""The attack suite's deployment: the secure broker, one hub per module.

``secure_deployment`` is built for each attack module and torn down, with its topics and
ACLs, when the module is done: its hub runs in a thread of its own, and a thread that
touches the ``random`` module while hypothesis draws an example makes hypothesis fail
that example as flaky, so no hub may outlive its module into the fuzz tests.

The broker is ``secure_kafka``'s: a cluster started for the session, or with
``RENKEI_TEST_SECURE=1`` the one CI runs under ``RENKEI_HOME``. If it cannot start, the
fixture raises and every attack errors: nothing here is ever skipped. The fuzz tests need
none of it.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.kafka.acls import delete_acls, describe_acls
from infra.kafka.wire import admin_client, broker_ids
from producers.population import Person, generate_population
from renkei.operator.acl import in_scope
from renkei.topics import Topics
from tests.integration.hub_env import HubEnv, hub_env
from tests.integration.principals import Principals
from tests.integration.test_exchange import client, register_all
from tests.security.deployment import ATTACKER, PROVIDER, VICTIM, Background, Deployment


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def secure_principals(secure_kafka: Path) -> Principals:
    """Each actor's own login on the secure cluster (never the plaintext broker)."""
    bootstrap = Principals("", secure_kafka).settings("admin").resolved_bootstrap()
    return Principals(bootstrap, secure_kafka)


@pytest.fixture(scope="module")
def secure_deployment(
    secure_principals: Principals, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """A hub, a registry and the sample directory's agencies, each as its own principal."""
    assert secure_principals.secure  # an attack on a broker without ACLs would prove nothing
    topics = Topics(prefix=f"sec{uuid.uuid4().hex[:8]}.")
    key_dir = tmp_path_factory.mktemp("security") / "keys"
    port = _free_port()
    background = Background()
    running = hub_env(secure_principals, topics, key_dir, health_port=port)
    try:
        env = background.run(running.__aenter__())
        try:
            person = generate_population(1, seed=909)[0]
            codes = background.run(_enrol(env, person))
            yield Deployment(env, background, person, codes, f"http://127.0.0.1:{port}/healthz")
        finally:
            background.run(running.__aexit__(None, None, None))
            background.run(_drop(secure_principals, topics))
    finally:
        background.close()


async def _enrol(env: HubEnv, person: Person) -> dict[str, str]:
    await register_all(env, [person])
    codes: dict[str, str] = {}
    for agency in (ATTACKER, VICTIM, PROVIDER):
        async with client(env, agency) as agent:
            result = await agent.enrol(f"{agency}-1", my_number=person.my_number)
        assert result.link_code
        codes[agency] = result.link_code
    return codes


async def _drop(principals: Principals, topics: Topics) -> None:
    """The suite's topics and ACLs go, as ``drop_test_topics`` does for a flow test."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**principals.admin)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(topics.prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()
    async with admin_client(principals.admin) as wire:
        held = await describe_acls(wire, broker_ids(wire)[0])
        await delete_acls(wire, [b for b in held if in_scope(b, topics)])
