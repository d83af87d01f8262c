"""One hub worker's life: keys, topics, state restored from Kafka, then the loop.

:class:`HubService` is a ``mode.Service`` (faust's service framework) that the faust app
starts and stops; it restores the state tables and the directory before it reads a
single request, so every answer is given with complete state. It says when it is ready
(:mod:`.health`) and halts if the brokers turn out to be another cluster
(:mod:`.cluster`). The directory it restores is filtered by the pinned operators' key
(:mod:`.directory_feed`): a record nobody signed is ignored, never a reason not to start.
With a health port it also serves its Prometheus metrics (:mod:`.metrics`), the agencies'
inbox lag among them (:mod:`.lag`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import mode
from aiokafka.admin import AIOKafkaAdminClient

from renkei import aiokafka_internals
from renkei.crypto import KeyRing, MasterSecret, SigningKey, keystore
from renkei.envelope import sign_message
from renkei.errors import ClusterChangedError, ConfigurationError
from renkei.topics import Topics, ensure_topics
from schemas.models import Message

from .batch_handler import BatchTrace
from .buckets import route_spec
from .cluster import ClusterWatch
from .control import control_spec, control_topic
from .directory_feed import DirectoryFeed
from .health import HealthServer, Readiness
from .heap import settle as settle_heap
from .hub import Hub
from .inflight import MAX_IN_FLIGHT
from .lag import LagWatch
from .metrics import HubMetrics, Snapshot
from .partitioned import PartitionedPlane
from .pipeline import TransactionalLoop
from .restore import RestoreProgress, restore_tables
from .rotation import StagedKeyRing
from .settings import HubSettings
from .subscription import InputTopics
from .treeheads import rebuild_trees
from .unwritable import StandIns
from .verifier import SignatureVerifier

__all__ = ["HubService", "load_hub_keys"]

log = logging.getLogger(__name__)

STATE_TOPICS = ("persons", "holdings", "pending", "audit-chain", "keys", "seen")


def load_hub_keys(settings: HubSettings) -> tuple[KeyRing, SigningKey]:
    """The master secret (``RENKEI_MASTER_KEY`` or ``<key_dir>/master.key``) and signing key."""
    if os.environ.get("RENKEI_MASTER_KEY"):
        master = MasterSecret.from_env()
    else:
        path = settings.key_dir / "master.key"
        if not path.exists():
            raise ConfigurationError(
                f"no master secret: set RENKEI_MASTER_KEY or create {path} with `renkei keys init`"
            )
        master = MasterSecret.from_file(path)
    # Created only when absent: a file that exists but is refused (malformed, readable by
    # others) must surface as that error, not as "already exists".
    if keystore.hub_key_path(settings.key_dir).exists():
        hub_key = keystore.load_hub_signing_key(settings.key_dir)
    else:
        hub_key = keystore.create_hub_signing_key(settings.key_dir)
    return StagedKeyRing(master), hub_key


class HubService(mode.Service):
    """Restores state, then runs the transactional loop until stopped.

    :param kafka: aiokafka connection keyword arguments.
    :param settings: the worker's settings.
    :param on_committed: called with every committed batch's timings (benchmarks).
    """

    def __init__(
        self,
        kafka: dict[str, Any],
        settings: HubSettings,
        on_committed: Callable[[BatchTrace], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._on_committed = on_committed
        self.kafka = kafka
        self.settings = settings
        self.topics = Topics(settings.topic_prefix, settings.partitions)
        keyring, hub_key = load_hub_keys(settings)
        # Partitioned, the bucket tasks hold the state: this hub's tables stay empty dicts.
        # So does a verifier's, which uses only the directory and the codec.
        own = settings if settings.topology == "single" and settings.role == "hub" else (
            settings.model_copy(update={"store": "memory"})
        )  # fmt: skip
        self.hub = Hub(self.topics, keyring, hub_key, own)
        self._hub_key = hub_key
        self.directory_feed = DirectoryFeed(
            self.topics.directory, lambda: self.hub.directory, self.hub.codec, self.hub.roots,
            self.hub.metrics, hub_key.public_bytes,
        )  # fmt: skip
        self.loop_runner: TransactionalLoop | None = None
        self.cluster = ClusterWatch(kafka)
        self.readiness = Readiness(settings.ready_file, self._report)
        self._requests = aiokafka_internals.count_requests()
        info = {"worker": settings.worker_id, "role": settings.role,
                "topology": settings.topology, "signatures": settings.signatures}  # fmt: skip
        self.metrics = HubMetrics(self.topics, info, self._snapshot)
        """What ``GET /metrics`` serves (observed whether or not anyone scrapes)."""
        self.hub.on_answers = self.metrics.answers
        self._restoring = RestoreProgress()
        self.health: HealthServer | None = None
        self.lag: LagWatch | None = None
        if settings.health_port is not None:
            self.health = HealthServer(
                self.readiness, settings.health_port, settings.health_host, self.metrics.render
            )
            if settings.lag_check_ms:
                hub_topics = [self.topics.audit, self.topics.audit_heads,
                              self.topics.audit_signatures, self.topics.deadletter,
                              self.topics.directory, self.topics.control,
                              *(self.topics.state(s) for s in STATE_TOPICS)]  # fmt: skip
                self.lag = LagWatch(
                    kafka, self.topics, lambda: self.hub.directory.agencies.keys(), hub_topics
                )
        self.failure: BaseException | None = None
        """Why the hub halted itself (another cluster, a fenced producer), if it did."""
        self.plane: PartitionedPlane | None = None
        """The router and the bucket tasks, in the partitioned topology."""
        self.verifier: SignatureVerifier | None = None
        """The signature checks, in the verifier role."""

    async def on_start(self) -> None:
        await aiokafka_internals.check()  # an aiokafka upgrade fails here, not mid-batch
        self.readiness.enter("starting")  # a killed predecessor's ready file goes
        if self.health is not None:
            await self.health.start()
        await self.cluster.start()
        admin = AIOKafkaAdminClient(**self.kafka)
        await admin.start()
        try:
            await ensure_topics(
                admin, [*self.topics.hub_specs(STATE_TOPICS), control_spec(self.topics)]
            )
        finally:
            await admin.close()
        if self.settings.role == "verifier":
            await self._start_verifier()
            return
        if self.settings.topology == "partitioned":
            await self._start_partitioned()
            return
        loop = TransactionalLoop(
            kafka=self.kafka,
            group_id=self.settings.group_id,
            transactional_id=f"{self.settings.group_id}-{self.settings.worker_id}",
            inputs=self._inputs(),
            handler=self.hub,
            replace=StandIns(self.topics, self.hub.codec, self._sign),
            max_batch=self.settings.max_batch,
            poll_ms=self.settings.poll_ms,
            on_polled=self._polled,
            on_committed=self._committed,
            on_aborted=self.metrics.transactions_aborted,
            in_flight=self.settings.transactions_in_flight,
            reserved=MAX_IN_FLIGHT,
            topic_refresh_ms=self.settings.topic_refresh_ms,
        )
        self.loop_runner = loop  # stopped in on_stop, whatever happens from here
        # Fence first: a zombie predecessor could otherwise commit after the restore read
        # the state topics, and this worker would run on state older than its offsets.
        await loop.start_writers()
        self.readiness.enter("restoring")
        restored = await restore_tables(
            self.kafka, [*self.hub.tables, self.directory_feed], progress=self._restoring
        )
        log.info(
            "restored %d state records: %d persons, %d holdings, %d pending, %d agencies, "
            "%d rotated keys, %d message ids; %d directory records ignored (unsigned, "
            "wrongly signed or undecodable: hub.deadletter has them)",
            restored, len(self.hub.persons), len(self.hub.holdings), len(self.hub.pending),
            len(self.hub.directory.agencies), len(self.hub.keys), len(self.hub.replays),
            self.directory_feed.ignored,
        )  # fmt: skip
        # Chain heads written before tree heads: their trees, from hub.audit (.treeheads).
        await rebuild_trees(self.kafka, self.topics.audit, self.hub.chain, self.hub.codec)
        settle_heap()  # the restored rows frozen out of the GC's walks (.heap: why, measured)
        self.readiness.enter("joining")
        await loop.start()

    async def _start_verifier(self) -> None:
        """Check the signatures of every agency's ``.out`` topic (:mod:`.verifier`)."""
        self.verifier = SignatureVerifier(
            self.topics, lambda: self.hub.directory, self.hub.codec, self._hub_key
        )
        group = f"{self.settings.group_id}-verifier"
        loop = TransactionalLoop(
            kafka=self.kafka,
            group_id=group,
            transactional_id=f"{group}-{self.settings.worker_id}",
            inputs=InputTopics((), lambda: self.hub.directory, self.topics.agency_out),
            handler=self.verifier,
            replace=StandIns(self.topics, self.hub.codec, self._sign),
            max_batch=self.settings.max_batch,
            poll_ms=self.settings.poll_ms,
            on_polled=self._polled,
            on_committed=self._committed,
            on_aborted=self.metrics.transactions_aborted,
            topic_refresh_ms=self.settings.topic_refresh_ms,
        )
        self.loop_runner = loop
        await loop.start_writers()
        self.readiness.enter("restoring")
        # the agencies' keys
        await restore_tables(self.kafka, [self.directory_feed], progress=self._restoring)
        self.readiness.enter("joining")
        await loop.start()

    async def _start_partitioned(self) -> None:
        admin = AIOKafkaAdminClient(**self.kafka)
        await admin.start()
        try:
            await ensure_topics(admin, [route_spec(self.topics)])
        finally:
            await admin.close()
        self.readiness.enter("restoring")
        # state: per bucket
        await restore_tables(self.kafka, [self.directory_feed], progress=self._restoring)
        self.readiness.enter("joining")
        self.plane = PartitionedPlane(
            self.kafka, self.settings, self.topics, lambda: load_hub_keys(self.settings)[0],
            self._hub_key, self.hub.roots, self.hub.directory,
            StandIns(self.topics, self.hub.codec, self._sign), on_polled=self._polled,
            state_topics=STATE_TOPICS, on_committed=self._committed,
            on_aborted=self.metrics.transactions_aborted, on_hub=self._share_counters,
        )  # fmt: skip
        self.loop_runner = self.plane.router_loop
        await self.plane.start()

    @mode.Service.task
    async def _run_tasks(self) -> None:
        if self.plane is not None:
            await self.plane.run_tasks()

    def _share_counters(self, hub: Hub) -> None:
        # A bucket's hub counts into this worker's: the metrics outlive the bucket's stay.
        hub.share_counters(self.hub.metrics, self.hub.inputs, self.metrics.answers)

    def _committed(self, trace: BatchTrace) -> None:
        self.metrics.committed(trace)
        if self._on_committed is not None:
            self._on_committed(trace)

    def _snapshot(self) -> Snapshot:
        """What a scrape reads (:mod:`.metrics`)."""
        pending, owned, restoring = len(self.hub.pending), 0, self._restoring.remaining
        if self.plane is not None:
            tasks = list(self.plane.tasks.tasks.values())
            owned = len(tasks)
            pending = sum(len(t.hub.pending) for t in tasks)
            restoring += sum(t.progress.remaining for t in tasks)
        elif self.loop_runner is not None:
            owned = len(self.loop_runner.assignment())
        signatures = None
        if self.verifier is not None:
            signatures = {"checked": 0, "failed": 0, **self.verifier.counts}
        lag = self.lag
        return Snapshot(
            ready=self.readiness.ready, flows=self.hub.metrics, inputs=self.hub.inputs,
            kafka_requests=self._requests, signatures=signatures, partitions_owned=owned,
            pending_requests=pending, restore_remaining=restoring,
            inbox_lag=lag.lag if lag is not None else {},
            under_replicated=lag.under_replicated if lag is not None else None,
            lag_errors=lag.errors if lag is not None else 0,
        )  # fmt: skip

    @mode.Service.task
    async def _watch_lag(self) -> None:
        if self.lag is None:
            return
        try:
            while not self.should_stop:
                await self.lag.check()
                await self.sleep(self.settings.lag_check_ms / 1000)
        finally:  # here, not in on_stop: a check under way would open its clients again
            await self.lag.stop()

    def _polled(self, loop: TransactionalLoop) -> None:
        # Ready once the group has given us our partitions and we have polled them.
        if not self.readiness.ready and loop.assignment():
            self.readiness.set_ready()

    def _report(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "worker_id": self.settings.worker_id,
            "topic_prefix": self.settings.topic_prefix,
            "cluster_id": self.cluster.cluster_id,
        }
        if self.loop_runner is not None:
            stats = self.loop_runner.stats
            report.update(batches=stats.batches, aborted=stats.aborted, replaced=stats.replaced)
        if self.plane is not None:
            report.update(self.plane.report())
        if self.verifier is not None:  # the alarm: any "failed" is a signature that failed
            report["signatures"] = {"checked": 0, "failed": 0, **self.verifier.counts}
        # Every client of the process: fetches and transaction round trips at a glance.
        report["kafka_requests"] = dict(sorted(self._requests.items()))
        return report

    def _sign(self, message: Message) -> Message:
        if self.settings.signatures == "strict":
            return sign_message(message, self._hub_key, self.hub.codec)
        return message

    def apply_directory(self, key: bytes | None, value: bytes | None, where: str = "") -> bool:
        """Apply one ``hub.directory`` record from the faust agent, if the operators signed
        it; return whether it was applied. Never raises."""
        return self.directory_feed.apply(key, value, where)

    def _inputs(self) -> InputTopics:
        t = self.topics
        # hub.directory too: the loop parks and audits, once, what no worker will obey.
        fixed = (t.registry_events, control_topic(t), t.directory)
        return InputTopics(fixed, lambda: self.hub.directory, t.agency_out)

    @mode.Service.task
    async def _process(self) -> None:
        assert self.loop_runner is not None
        try:
            await self.loop_runner.run()
        except Exception as exc:
            self._halt(exc)
            raise  # mode crashes the service, and faust's worker exits non-zero

    @mode.Service.task
    async def _watch_cluster(self) -> None:
        while not self.should_stop:
            await self.sleep(self.settings.cluster_check_ms / 1000)
            if self.should_stop:
                return
            try:
                await self.cluster.check()
            except ClusterChangedError as exc:
                self._halt(exc)
                raise

    def _halt(self, exc: BaseException) -> None:
        log.critical("hub halted: %s", exc)
        self.failure = exc
        self.readiness.fail(exc)
        if self.loop_runner is not None:
            self.loop_runner.halt()

    async def on_stop(self) -> None:
        if self.failure is None:
            self.readiness.enter("stopping")
        if self.plane is not None:
            await self.plane.stop()
        elif self.loop_runner is not None:
            await self.loop_runner.stop()
        self.hub.close()  # its state store (RENKEI_HUB_STORE), once nothing handles a batch
        await self.cluster.stop()
        if self.health is not None:
            await self.health.stop()
