"""The hub stays on the cluster it started on.

Kafka clients reconnect to the same addresses after an outage. If a *different* cluster
answers there (someone started a fresh broker on the same port), a hub that simply went
on would join an unknown consumer group, reset its offsets, create topics, and mix its
state into someone else's data. Each cluster has an id fixed when its storage was
formatted; :class:`ClusterWatch` remembers it at start and compares it every
``RENKEI_HUB_CLUSTER_CHECK_MS``. A different id halts the hub with
:class:`~renkei.errors.ClusterChangedError`; an unreachable cluster is not a change (the
clients keep retrying, as they should for an outage).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from renkei.aiokafka_internals import cluster_id
from renkei.errors import ClusterChangedError

__all__ = ["ClusterWatch"]

log = logging.getLogger(__name__)


class ClusterWatch:
    """Remembers the cluster id at :meth:`start` and checks it on demand.

    :param kafka: aiokafka connection keyword arguments.
    """

    def __init__(self, kafka: dict[str, Any]) -> None:
        self._kafka = kafka
        self._admin: AIOKafkaAdminClient | None = None
        self.cluster_id: str | None = None

    async def start(self) -> str:
        """Connect and remember the cluster id. Returns it."""
        admin = AIOKafkaAdminClient(**self._kafka)
        await admin.start()
        self._admin = admin
        self.cluster_id = await self._describe()
        if self.cluster_id is None:
            raise ClusterChangedError("the brokers report no cluster id (Kafka < 0.10.1?)")
        log.info("hub on Kafka cluster %s", self.cluster_id)
        return self.cluster_id

    async def stop(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            await admin.close()

    async def check(self, timeout_s: float = 10) -> None:
        """Compare the cluster answering now with the one at start.

        :raises ClusterChangedError: another cluster answers at the same addresses.
        """
        try:
            now = await asyncio.wait_for(self._describe(), timeout_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("cluster id check: no answer (%r); trying again later", exc)
            return
        if now is not None and now != self.cluster_id:
            raise ClusterChangedError(
                f"Kafka at {self._kafka.get('bootstrap_servers')} is now cluster {now}, "
                f"not {self.cluster_id} that this hub started on: stopping rather than "
                "reading or writing another cluster's data. If the cluster was rebuilt on "
                "purpose, restore its topics first, then start the hub again."
            )

    async def _describe(self) -> str | None:
        assert self._admin is not None, "start() first"
        # Not describe_cluster(): it reads every topic's metadata (aiokafka_internals).
        return await cluster_id(self._admin)
