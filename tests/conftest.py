"""Fixtures shared by every test: a real Kafka broker, unique topic prefixes, a task guard.

The broker comes from, in this order: ``RENKEI_BOOTSTRAP`` (CI starts one with
``renkei kafka up`` and names it), a testcontainers KRaft Kafka when a Docker engine
answers, or a single node started here from the Maven Central jars and stopped at the end.

With ``RENKEI_TEST_SECURE=1`` it is the secure cluster of ``secure_kafka`` instead, and
``principals`` gives each actor its own login (``tests/integration/principals.py``).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import socket
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from infra.kafka import LocalCluster
from renkei.topics import Topics
from tests.integration.principals import SECURE, Principals


def _docker_answers() -> bool:
    """Whether a Docker engine answers (then testcontainers can provide Kafka)."""
    if not os.environ.get("DOCKER_HOST") and not os.path.exists("/var/run/docker.sock"):
        return False
    try:
        import docker  # type: ignore[import-untyped]  # only present with the docker extra
    except ImportError:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client = docker.from_env(timeout=2)
        except Exception:
            return False
        try:
            return bool(client.ping())
        except Exception:
            return False
        finally:
            client.close()


def _free_base_port() -> int:
    """Two consecutive free ports (broker, controller) so a test broker never collides."""
    for _ in range(50):
        base = random.randrange(20_000, 40_000, 2)
        try:
            for port in (base, base + 1):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port pair found on 127.0.0.1")


@pytest.fixture(scope="session")
def kafka_bootstrap(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Bootstrap address of a real Kafka broker for the whole session."""
    if SECURE:
        home: Path = request.getfixturevalue("secure_kafka")
        yield Principals("", home).settings("admin").resolved_bootstrap()
        return
    external = os.environ.get("RENKEI_BOOTSTRAP")
    if external:
        yield external
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    cluster = LocalCluster(tmp_path_factory.mktemp("kafka"), base_port=_free_base_port())
    try:
        yield cluster.up(timeout_s=120)
    finally:
        cluster.down()


@pytest.fixture(scope="session")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``RENKEI_HOME`` of a secure single-node cluster (TLS, SCRAM, ACLs) for the session.

    Started here from the Maven Central jars on free ports, whatever ``RENKEI_BOOTSTRAP``
    says, with a principal for every agency of the sample directory and every service;
    ``KafkaSettings.for_principal(name, home)`` gives each one's settings. With
    ``RENKEI_TEST_SECURE=1``, the secure cluster running under ``RENKEI_HOME`` if there is
    one (left running afterwards).
    """
    from renkei.operator.directory_file import load_directory_file
    from renkei.operator.principals import principal_names

    principals = principal_names(load_directory_file())
    if SECURE and os.environ.get("RENKEI_HOME"):
        shared = Path(os.environ["RENKEI_HOME"]).resolve()
        running = LocalCluster(shared / "kafka", secure=True, principals=principals)
        state = running.state()
        if state is not None and state.secure and running.running_pids():
            running.up()  # running already: only gives new principals a login
            yield shared
            return
    home = tmp_path_factory.mktemp("secure-home")
    cluster = LocalCluster(
        home / "kafka", base_port=_free_base_port(), secure=True, principals=principals
    )
    try:
        cluster.up(timeout_s=120)
        yield home
    finally:
        cluster.down()


@pytest.fixture
def topic_prefix() -> str:
    """A prefix no other test uses, so every test has its own topics and groups."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture(scope="session")
def principals(request: pytest.FixtureRequest, kafka_bootstrap: str) -> Principals:
    """How each actor connects: one login each on a secure cluster, else one for all."""
    home = request.getfixturevalue("secure_kafka") if SECURE else None
    return Principals(kafka_bootstrap, home)


@pytest.fixture
async def drop_test_topics(principals: Principals, topic_prefix: str) -> AsyncIterator[None]:
    """Delete the test's topics afterwards: a broker keeps files open for every partition,
    and a whole suite's worth of them would exhaust its file limit (``ulimit -n``)."""
    yield
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**principals.admin)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(topic_prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()
    if principals.secure:  # and its ACLs, or every sync would read all tests' bindings
        from infra.kafka.acls import delete_acls, describe_acls
        from infra.kafka.wire import admin_client, broker_ids
        from renkei.operator.acl import in_scope

        async with admin_client(principals.admin) as client:
            held = await describe_acls(client, broker_ids(client)[0])
            await delete_acls(client, [b for b in held if in_scope(b, Topics(topic_prefix))])


@pytest.fixture
def topics(topic_prefix: str) -> Topics:
    """The contract's topic names under this test's prefix."""
    return Topics(prefix=topic_prefix)


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail an async test that leaves tasks running behind it."""
    before = set(asyncio.all_tasks())
    yield
    await asyncio.sleep(0)
    leaked = [
        t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()
    ]
    for task in leaked:
        task.cancel()
    assert not leaked, f"test leaked {len(leaked)} task(s): {[t.get_coro() for t in leaked]}"


SECURE_PASS = frozenset(
    (folder, f"test_{name}.py")
    for folder, names in (
        ("integration", ("exchange", "life_events", "audit", "hub_process", "link_enrol",
                         "signature_verifier", "metrics_endpoint")),
        ("security", ("broker_denials", "hub_attacks")),
    )
    for name in names
)  # fmt: skip
"""The flow tests and the attacks on the broker: ``make test`` runs them (the slow ones
aside) in its secure pass only, every actor logged in as its own principal — on the
plaintext broker with one login for all they would prove less, and twice the same."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if (item.path.parent.name, item.path.name) in SECURE_PASS:
            item.add_marker(pytest.mark.secure_pass)
        if "/security/" in str(item.path):
            item.add_marker(pytest.mark.security)
        if "/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)
            if "topic_prefix" in item.fixturenames:  # type: ignore[attr-defined]
                item.fixturenames.insert(0, "drop_test_topics")  # type: ignore[attr-defined]
        function = getattr(item, "function", None)
        if function is not None and inspect.iscoroutinefunction(function):
            item.fixturenames.insert(0, "no_leaked_tasks")  # type: ignore[attr-defined]
