"""The data plane of one worker in the partitioned topology: the router and its tasks.

``RENKEI_HUB_TOPOLOGY=partitioned`` makes :class:`~.worker.HubService` run this instead of
the single loop. Every worker runs both stages, and any number of workers share them:

* stage 1, the :class:`~.router.Router`, in the group ``<group>-router`` over the single
  hub's inputs, transactional id ``<group>-router-<worker id>``;
* stage 2, the :class:`~.tasks.TaskManager`, in the group ``<group>-tasks`` over
  ``hub.route``, one :class:`~.bucket_task.BucketTask` (transactional id ``<group>-task-<p>``)
  per bucket the group gives this worker.

Each worker's own directory (restored, then followed by the faust agent) is shared by the
router and every task of the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from renkei.auditchain import load_or_create_signer
from renkei.crypto import KeyRing, SigningKey
from renkei.errors import ConfigurationError, HubHaltedError
from renkei.readers import committed_reader, topic_partitions
from renkei.topics import Topics

from .batch_handler import BatchTrace
from .bucket_hub import BucketHub
from .bucket_task import BucketTask
from .buckets import route_topic
from .directory import Directory
from .heap import settle as settle_heap
from .persons_view import Persons, PersonsFollower
from .pipeline import TransactionalLoop
from .router import Router
from .settings import HubSettings
from .subscription import InputTopics
from .tasks import TaskManager
from .trust import PinnedRoots
from .unwritable import Replacer

__all__ = ["PartitionedPlane"]

log = logging.getLogger(__name__)


class PartitionedPlane:
    """Stage 1 and stage 2 of one worker.

    :param kafka: aiokafka connection keyword arguments.
    :param settings: the worker's settings.
    :param topics: topic names (``topics.partitions`` buckets).
    :param new_keyring: a fresh key ring from the master secret; each bucket follows its
        own key table, so each gets its own ring.
    :param hub_key: the hub's signing key.
    :param roots: the pinned keys.
    :param directory: the worker's directory.
    :param replace: stand-ins for records Kafka refuses.
    :param on_polled: the router loop's poll callback (readiness).
    :param state_topics: the names of the ``hub.state.*`` topics.
    :param on_committed: every loop's (the router's and each task's) committed batches.
    :param on_aborted: every loop's aborted transactions.
    :param on_hub: called with each bucket's hub as it is made (the worker's metrics).
    """

    def __init__(
        self,
        kafka: dict[str, Any],
        settings: HubSettings,
        topics: Topics,
        new_keyring: Callable[[], KeyRing],
        hub_key: SigningKey,
        roots: PinnedRoots,
        directory: Directory,
        replace: Replacer,
        on_polled: Callable[[TransactionalLoop], None] | None = None,
        state_topics: Sequence[str] = (),
        on_committed: Callable[[BatchTrace], None] | None = None,
        on_aborted: Callable[[int], None] | None = None,
        on_hub: Callable[[BucketHub], None] | None = None,
    ) -> None:
        self.kafka = kafka
        self._on_committed = on_committed
        self._on_aborted = on_aborted
        self._on_hub = on_hub
        self.state_topics = state_topics
        self.settings = settings
        self.topics = topics
        self._new_keyring = new_keyring
        self._hub_key = hub_key
        self._roots = roots
        self._directory = directory
        self._replace = replace
        self._signer = load_or_create_signer(settings.key_dir)
        keyring = new_keyring()
        self.persons = Persons(keyring, topics.state("persons"))
        self.follower = PersonsFollower(kafka, self.persons)
        self.router = Router(topics, keyring, roots, self.persons)
        group = settings.group_id
        self.router_loop = TransactionalLoop(
            kafka=kafka, group_id=f"{group}-router",
            transactional_id=f"{group}-router-{settings.worker_id}",
            inputs=_inputs(topics, directory), handler=self.router, replace=replace,
            max_batch=settings.max_batch, poll_ms=settings.poll_ms, on_polled=on_polled,
            on_committed=on_committed, on_aborted=on_aborted,
        )  # fmt: skip
        self.tasks = TaskManager(kafka, topics, f"{group}-tasks", self._task)

    def _task(self, bucket: int) -> BucketTask:
        hub = BucketHub(
            bucket, self._directory, self.topics, self._new_keyring(), self._hub_key,
            self.settings, self._signer, self._roots,
        )  # fmt: skip
        if self._on_hub is not None:
            self._on_hub(hub)
        return BucketTask(
            hub, self.kafka, f"{self.settings.group_id}-tasks",
            f"{self.settings.group_id}-task-{bucket}", self._replace,
            self.settings.max_batch, self.settings.poll_ms,
            on_committed=self._on_committed, on_aborted=self._on_aborted,
        )  # fmt: skip

    async def start(self) -> None:
        """Check the buckets, catch the router up with every person, join both groups.

        :raises ConfigurationError: a hub-internal topic has another partition count than
            the buckets (``RENKEI_HUB_PARTITIONS``): bucket *p* would have no partition.
        """
        await check_partitions(self.kafka, self.topics, self.state_topics)
        read = await self.follower.start()
        log.info("router: %d person rows read, %d persons", read, len(self.persons))
        settle_heap()  # the router's copy of every person frozen out of the GC's walks
        await self.tasks.start()
        await self.router_loop.start()

    async def run_tasks(self) -> None:
        """Keep this worker in the stage-2 group until stopped."""
        await self.tasks.run(self._check)

    def _check(self) -> None:
        if self.follower.failed:
            raise HubHaltedError("the router stopped following hub.state.persons")

    async def stop(self) -> None:
        await self.router_loop.stop()
        await self.tasks.stop()
        await self.follower.stop()

    def report(self) -> dict[str, Any]:
        """What the readiness file says about the stages."""
        return {
            "topology": "partitioned",
            "buckets": self.tasks.owned(),
            "buckets_running": [b for b, t in sorted(self.tasks.tasks.items()) if t.running],
            # Per bucket: tasks started with a restore, and rebalances it was kept through.
            "restores": {str(b): n for b, n in sorted(self.tasks.restores.items())},
            "kept": {str(b): n for b, n in sorted(self.tasks.kept.items())},
            "routed": list(self.router.routed),
            # Batches and records of each stage's current loop (a bucket's loop is new
            # each time the bucket comes to this worker): records per batch at a glance.
            "loops": {
                "router": _counts(self.router_loop),
                **{f"bucket {b}": _counts(t.loop) for b, t in sorted(self.tasks.tasks.items())},
            },
        }


def _counts(loop: TransactionalLoop) -> dict[str, int]:
    stats = loop.stats
    return {"batches": stats.batches, "in": stats.records_in, "out": stats.records_out}


async def check_partitions(kafka: dict[str, Any], topics: Topics, state: Sequence[str]) -> None:
    """Refuse to run unless every hub-internal topic has one partition per bucket."""
    names = [topics.audit, route_topic(topics), *(topics.state(s) for s in state)]
    consumer = committed_reader(kafka, group_id=None)
    await consumer.start()
    try:
        wrong = {}
        for name in names:
            count = len(await topic_partitions(consumer, name))
            if count != topics.partitions:
                wrong[name] = count
    finally:
        await consumer.stop()
    if wrong:
        raise ConfigurationError(
            f"the partitioned hub has {topics.partitions} buckets (RENKEI_HUB_PARTITIONS), "
            f"but these topics have other partition counts: {wrong}; create the "
            "deployment's topics with the hub's partition count"
        )


def _inputs(topics: Topics, directory: Directory) -> InputTopics:
    fixed = (topics.registry_events, topics.control, topics.directory)
    return InputTopics(fixed, lambda: directory, topics.agency_out)
