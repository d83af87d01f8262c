"""How large a record batch each topic accepts, so the hub never sends one Kafka refuses.

Kafka refuses a record batch larger than the topic's ``max.message.bytes`` (the broker's
``message.max.bytes`` unless the topic overrides it), and our producer refuses a request
larger than its ``max_request_size``. The smaller of the two is the topic's limit: the
loop packs its batches under it, and replaces a single record over it before sending
(:mod:`.unwritable`). A limit is read once per topic and read again after the broker
refused a batch anyway (the topic's configuration may have changed since).
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

__all__ = ["DEFAULT_MAX_REQUEST_SIZE", "TopicLimits"]

log = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_SIZE = 1_048_576
"""aiokafka's default ``max_request_size``, which the hub's producer keeps."""

_CONFIG = "max.message.bytes"


class TopicLimits:
    """Largest record batch, in bytes, the hub may send to each topic.

    :param kafka: aiokafka connection keyword arguments.
    :param max_request_size: the producer's ``max_request_size``.
    """

    def __init__(
        self, kafka: dict[str, Any], max_request_size: int = DEFAULT_MAX_REQUEST_SIZE
    ) -> None:
        self._kafka = kafka
        self.max_request_size = max_request_size
        self._limits: dict[str, int] = {}
        self._admin: AIOKafkaAdminClient | None = None

    async def start(self) -> None:
        """Connect the admin client that reads topic configurations."""
        admin = AIOKafkaAdminClient(**self._kafka)
        await admin.start()
        self._admin = admin

    async def stop(self) -> None:
        """Close the admin client."""
        admin, self._admin = self._admin, None
        if admin is not None:
            await admin.close()

    def known(self, topic: str, limit: int) -> None:
        """Take ``limit`` as the topic's limit without asking the broker (tests, benchmarks)."""
        self._limits[topic] = min(limit, self.max_request_size)

    def forget(self, topic: str) -> None:
        """Read the topic's limit from the broker again next time."""
        self._limits.pop(topic, None)

    async def of(self, topic: str) -> int:
        """The topic's limit: ``min(max.message.bytes, max_request_size)``."""
        limit = self._limits.get(topic)
        if limit is None:
            limit = self._limits[topic] = min(await self._read(topic), self.max_request_size)
        return limit

    async def _read(self, topic: str) -> int:
        if self._admin is None:
            return self.max_request_size
        try:
            responses = await self._admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, {_CONFIG: None})]
            )
        except (KafkaError, TimeoutError) as exc:
            # Unknown is not refused: the broker's own answer after a send still protects us.
            log.warning("could not read %s of %s: %r", _CONFIG, topic, exc)
            return self.max_request_size
        for response in responses:
            for error_code, _message, _type, name, entries in response.resources:
                if name != topic or error_code != 0:
                    continue
                for entry in entries:
                    if entry[0] == _CONFIG and entry[1] is not None:
                        return int(entry[1])
        # A topic that does not exist yet gets the broker's default when it is created,
        # which is above the producer's limit unless someone lowered it.
        return self.max_request_size
