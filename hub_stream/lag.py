"""What the brokers say about the hub's neighbours: the agencies' inbox lag, and replicas.

A worker with a health port reads, every ``RENKEI_HUB_LAG_CHECK_MS``, for ``/metrics``
(:mod:`.metrics`):

* ``renkei_agency_inbox_lag_records{agency}``: for each agency in the directory, how far
  its inbox consumer groups are behind the end of ``agency.<id>.in``. An agency's groups
  are named ``<prefix>agency.<id>.*`` (the ACLs give it no others:
  ``renkei.operator.principals.agency_group_prefix``, a layer above the hub); a group
  counts once it has committed an offset on the inbox, and the agency's lag is its
  furthest-behind group's, summed over the partitions. The end is the last stable
  offset (what a ``read_committed`` reader can reach), so an open transaction of the
  hub's is not lag. The SDK's reader commits past the markers that end the hub's
  transactions once it has handled what precedes them (``consumers/inbox.py``), so a
  caught-up agency reads 0; markers between unread records count (an upper bound). A
  partition the group never committed counts from its beginning. Offsets only: the hub
  may describe the agencies' groups, not read their inboxes.
* ``renkei_kafka_under_replicated_partitions``: partitions of the hub's topics (its own,
  the registry's and every agency's) whose in-sync replicas are fewer than its replicas.

Neither is on the hub's path: a read that fails is logged (once, until one succeeds
again), counted (``renkei_hub_lag_errors_total``), and the last values stay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.metadata import MetadataRequest

from renkei.readers import committed_reader
from renkei.topics import Topics

__all__ = ["LagWatch"]

log = logging.getLogger(__name__)


class LagWatch:
    """Reads the agencies' inbox lag and the under-replicated partitions when asked.

    :param kafka: aiokafka connection keyword arguments.
    :param topics: the deployment's topic names.
    :param agencies: the agencies now in the directory.
    :param hub_topics: the hub's own topics (state, audit, ...), for the replica count.
    """

    def __init__(
        self,
        kafka: dict[str, Any],
        topics: Topics,
        agencies: Callable[[], Collection[str]],
        hub_topics: Iterable[str],
    ) -> None:
        self._kafka = kafka
        self._topics = topics
        self._agencies = agencies
        self._hub_topics = list(hub_topics)
        self.lag: dict[str, int] = {}
        """Records behind, by agency (those with a group that reads its inbox)."""
        self.under_replicated: int | None = None
        """``None`` until read once."""
        self.errors = 0
        self._failing = False
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def check(self) -> None:
        """Read both once; never raises (a failure is logged and counted)."""
        try:
            await self._read()
        except Exception as exc:
            self.errors += 1
            if not self._failing:
                log.warning("cannot read the inbox lag or the replicas (kept as they were): %r",
                            exc)  # fmt: skip
            self._failing = True
            await self.stop()  # a client in a bad state is made again next time
        else:
            if self._failing:
                log.info("reading the inbox lag and the replicas again")
            self._failing = False

    async def stop(self) -> None:
        admin, self._admin = self._admin, None
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
        if admin is not None:
            await admin.close()

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None:
            admin = AIOKafkaAdminClient(**self._kafka)
            await admin.start()
            self._admin = admin
        if self._consumer is None:
            consumer = committed_reader(self._kafka, group_id=None)  # ends: last stable offsets
            await consumer.start()
            self._consumer = consumer
        return self._admin, self._consumer

    async def _read(self) -> None:
        admin, consumer = await self._clients()
        t = self._topics
        agencies = sorted(self._agencies())
        names = [*self._hub_topics, t.registry_events]
        for agency in agencies:
            names += [t.agency_in(agency), t.agency_out(agency)]
        # Not admin.describe_topics: its metadata request lets the broker create a topic
        # it names that does not exist (an agency's, before the operators create it).
        request = MetadataRequest(names, allow_auto_topic_creation=False)
        described = (await admin._send_request(request)).to_object()["topics"]
        partitions: dict[str, list[int]] = {}
        under = 0
        for topic in described:
            if topic["error_code"]:
                continue  # not there (yet), or not ours to describe
            partitions[topic["topic"]] = [p["partition"] for p in topic["partitions"]]
            under += sum(len(p["isr"]) < len(p["replicas"]) for p in topic["partitions"])
        self.under_replicated = under
        self.lag = await self._inbox_lag(admin, consumer, agencies, partitions)

    async def _inbox_lag(
        self,
        admin: AIOKafkaAdminClient,
        consumer: AIOKafkaConsumer,
        agencies: list[str],
        partitions: dict[str, list[int]],
    ) -> dict[str, int]:
        groups = sorted(str(g[0]) for g in await admin.list_consumer_groups())
        committed: dict[str, list[dict[TopicPartition, int]]] = {}
        for agency in agencies:
            inbox = self._topics.agency_in(agency)
            if inbox not in partitions:
                continue
            own = f"{self._topics.prefix}agency.{agency}."
            for group in (g for g in groups if g.startswith(own)):
                offsets = await admin.list_consumer_group_offsets(group)
                read = {tp: o.offset for tp, o in offsets.items() if tp.topic == inbox}
                if read:  # this group reads the inbox
                    committed.setdefault(agency, []).append(read)
        inboxes = [
            TopicPartition(self._topics.agency_in(a), p)
            for a in committed
            for p in partitions[self._topics.agency_in(a)]
        ]
        if not inboxes:
            return {}
        ends = await consumer.end_offsets(inboxes)
        starts = await consumer.beginning_offsets(inboxes)
        lag: dict[str, int] = {}
        for agency, reads in committed.items():
            own_partitions = [tp for tp in inboxes if tp.topic == self._topics.agency_in(agency)]
            lag[agency] = max(
                sum(_behind(ends[tp], max(read.get(tp, -1), starts[tp])) for tp in own_partitions)
                for read in reads
            )
        return lag


def _behind(end: int, committed: int) -> int:
    """Offsets between a group's committed offset and the partition's end: records, and
    the markers and aborted records among them (an upper bound; 0 once caught up)."""
    return max(0, end - committed)
