"""A running hub, agencies and a registry on the test broker, for the flow tests.

Given :class:`~tests.integration.principals.Principals` of a secure cluster
(``RENKEI_TEST_SECURE=1``), the admin syncs the ACLs for the test's prefix, the
operators publish the directory, the hub runs as ``hub``, and ``env.kafka_of(who)``
gives each actor its own login; ``env.kafka`` is then the super user's, for the test's
own reads and writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from hub_stream.settings import HubSettings
from hub_stream.worker import HubService
from renkei.crypto import AgencyKeys, keystore
from renkei.crypto.bundles import HUB_ID, bundle_path, read_bundle
from renkei.operator.directory_file import load_directory_file
from renkei.operator.publish import init_keys, publish
from renkei.readers import committed_reader, topic_partitions
from renkei.topics import Topics
from schemas.codec import default_codec
from schemas.models import Message
from tests.integration.principals import Principals


@dataclass
class HubEnv:
    """Everything a flow test needs."""

    kafka: dict[str, Any]
    topics: Topics
    key_dir: Path
    hub: HubService
    settings: HubSettings
    extra: list[Any] = field(default_factory=list)
    principals: Principals | None = None

    def keys(self, agency_id: str) -> AgencyKeys:
        return keystore.load(self.key_dir, agency_id)

    def kafka_of(self, who: str) -> dict[str, Any]:
        """How ``who`` connects: an agency id, or ``hub``, ``registry``, ``operator``…

        On a secure cluster each has its own login, whose ACLs are all it may use.
        """
        return self.kafka if self.principals is None else self.principals.of(who)

    def cli_env(self, principal: str) -> dict[str, str]:
        """``RENKEI_*`` variables for a ``renkei`` command run as ``principal``."""
        if self.principals is None:
            return {"RENKEI_BOOTSTRAP": self.kafka["bootstrap_servers"]}
        return self.principals.environment(principal)

    @property
    def hub_bundle(self) -> Path:
        """The hub's public bundle, as an agency pins it (``hub.public.json``)."""
        return bundle_path(self.key_dir, HUB_ID)

    @property
    def hub_key(self) -> bytes:
        """The hub's verification key, which every agency reader is given."""
        return read_bundle(self.hub_bundle).signing_public_key


async def start_hub(kafka: dict[str, Any], settings: HubSettings) -> HubService:
    service = HubService(kafka, settings)
    await service.start()
    return service


@asynccontextmanager
async def hub_env(
    broker: str | Principals,
    topics: Topics,
    key_dir: Path,
    directory: Path | None = None,
    **hub_settings: Any,
) -> AsyncIterator[HubEnv]:
    """Keys, directory, agency topics and one hub worker under the test's prefix.

    :param broker: the bootstrap address (everyone shares it), or the session's
        ``principals`` fixture (each actor its own login when the broker is secure).
    :param directory: the directory file; the packaged sample by default.
    """
    principals = broker if isinstance(broker, Principals) else Principals(broker)
    init_keys(key_dir, directory)
    if principals.secure:  # what `renkei acl sync --prefix P` does, before anything else
        await principals.grant(load_directory_file(directory), topics)
    await publish(principals.settings("operator"), topics.prefix, key_dir, directory)
    settings = HubSettings(
        topic_prefix=topics.prefix,
        partitions=topics.partitions,
        key_dir=key_dir,
        poll_ms=10,
        **hub_settings,
    )
    service = await start_hub(principals.of("hub"), settings)
    env = HubEnv(principals.admin, topics, key_dir, service, settings, principals=principals)
    try:
        yield env
    finally:
        await env.hub.stop()  # the one running now: a test may have restarted it


async def read_topic(
    kafka: dict[str, Any],
    topic: str,
    until: Callable[[list[Message]], bool],
    timeout_s: float = 30,
    decode: bool = True,
) -> list[Any]:
    """Read ``topic`` from the beginning (read_committed) until ``until`` holds."""
    consumer = committed_reader(kafka, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got: list[Any] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not until(got):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"condition not met on {topic}; read {len(got)} records")
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    got.append(default_codec().decode(r.value) if decode else r)
        return got
    finally:
        await consumer.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)
