"""The worker's Prometheus metrics, served at ``GET /metrics`` beside ``/healthz``.

The names and labels are the catalogue in ``docs/operations.md`` ("Metrics"). Nothing
here runs per message: the flows already count into :attr:`.hub.Hub.metrics` and
:attr:`.hub.Hub.inputs`, the loop hands each committed batch's :class:`.BatchTrace` to
:meth:`HubMetrics.committed` (a few histogram observations a batch), and the rest is read
when Prometheus scrapes (:class:`Snapshot`). Each worker has a registry of its own, not
prometheus-client's global one, so two workers in one process (the tests, the demo)
never mix their numbers.

The loop counters are kept here, summed over every loop the worker ran: a partitioned
worker's bucket tasks come and go with rebalances, each with a new loop, and a counter
that Prometheus sees fall back reads as a restart.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from renkei.topics import Topics

from .batch_handler import BatchTrace
from .buckets import route_topic

__all__ = ["CONTENT_TYPE", "HubMetrics", "Snapshot", "output_kind"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text format's media type."""

# The flows' counters that are refusals of an input, and where the code is in the key:
# refused.<CODE>, registry_refused.<CODE>, control_refused.<CODE>, untrusted.<actor>.<CODE>.
# control_refused_silently is a bucket's copy of a refusal another bucket writes: not counted.
_REFUSALS = ("refused.", "registry_refused.", "control_refused.", "untrusted.")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the worker reads out for a scrape (all plain values, read in one go)."""

    ready: bool
    flows: Mapping[str, int]
    """The flows' counters (:attr:`.hub.Hub.metrics`)."""
    inputs: Mapping[str, int]
    """Inputs handled by message type (:attr:`.hub.Hub.inputs`)."""
    kafka_requests: Mapping[str, int]
    signatures: Mapping[str, int] | None = None
    """The verifier's ``checked`` and ``failed``; ``None`` in the hub role."""
    partitions_owned: int = 0
    pending_requests: int = 0
    restore_remaining: int = 0
    inbox_lag: Mapping[str, int] = field(default_factory=dict)
    under_replicated: int | None = None
    lag_errors: int = 0


def output_kind(topics: Topics, topic: str) -> str:
    """The ``type`` label of a record written to ``topic`` (``renkei_hub_outputs_total``)."""
    if topic == topics.audit:
        return "audit"
    if topic == topics.audit_heads:
        return "tree_head"
    if topic == topics.audit_signatures:
        return "signature_verdict"
    if topic == topics.deadletter:
        return "dead_letter"
    if topic == route_topic(topics):
        return "route"
    state = topics.state("")
    if topic.startswith(state):
        return topic[len(state) :].replace("-", "_")  # pending, persons, audit_chain, ...
    if topic.startswith(f"{topics.prefix}agency.") and topic.endswith(".in"):
        return "agency"
    return "other"


class HubMetrics:
    """One worker's metrics: histograms observed per batch, the rest read at scrape time.

    :param topics: the deployment's topic names (to tell outputs' kinds).
    :param info: the labels of ``renkei_hub_info`` (``worker``, ``role``, ``topology``,
        ``signatures``).
    :param read: reads the worker's :class:`Snapshot` at each scrape.
    """

    def __init__(
        self, topics: Topics, info: Mapping[str, str], read: Callable[[], Snapshot]
    ) -> None:
        self._topics = topics
        self._info = dict(info)
        self._read = read
        self.batches = self.records_in = self.records_out = self.aborted = 0
        self.written: Counter[str] = Counter()
        """Records committed, by topic."""
        self._kinds: dict[str, str] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self._batch_records = Histogram(
            "renkei_hub_batch_records", "Records a committed batch held.",
            buckets=(1, 5, 10, 50, 100, 250, 500, 1000), registry=r,
        )  # fmt: skip
        stage = Histogram(
            "renkei_hub_stage_seconds", "Time a committed batch spent in each stage of the loop.",
            ["stage"], registry=r,
        )  # fmt: skip
        self._handle, self._commit_wait, self._poll_to_commit = (
            stage.labels(s) for s in ("handle", "commit", "poll_to_commit")
        )
        self._commit = Histogram(
            "renkei_hub_transaction_commit_seconds",
            "A transaction's commit alone: its offsets sent and EndTxn.", registry=r,
        )  # fmt: skip
        self._exchange = Histogram(
            "renkei_hub_exchange_seconds",
            "An answer's leg at the hub: the provider's answer record's Kafka timestamp to "
            "the commit of the batch that routed it back to the requester.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r,
        )  # fmt: skip
        r.register(_Collector(self))

    # -- observed as batches commit (the loop's callbacks) ---------------------------------

    def committed(self, trace: BatchTrace) -> None:
        """A batch committed: count it and observe its timings."""
        records = len(trace.records)
        self.batches += 1
        self.records_in += records
        self.written.update(trace.topics)
        self.records_out += sum(trace.topics.values())
        self._batch_records.observe(records)
        self._handle.observe(trace.handled_s - trace.polled_s)
        self._commit_wait.observe(trace.committed_s - trace.handled_s)
        self._poll_to_commit.observe(trace.committed_s - trace.polled_s)
        self._commit.observe(trace.commit_s)

    def transactions_aborted(self, count: int) -> None:
        """``count`` more transactions aborted."""
        self.aborted += count

    def answers(self, timestamps_ms: list[int]) -> None:
        """A batch that routed these answers back committed (their records' timestamps)."""
        now = time.time()
        observe = self._exchange.observe
        for timestamp_ms in timestamps_ms:
            observe(max(0.0, now - timestamp_ms / 1000))  # another machine's clock may lead

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def kind(self, topic: str) -> str:
        kind = self._kinds.get(topic)
        if kind is None:
            kind = self._kinds[topic] = output_kind(self._topics, topic)
        return kind


class _Collector(Collector):
    """Reads the counters the hub already keeps, at scrape time."""

    def __init__(self, metrics: HubMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m, snap = self._m, self._m._read()
        yield from _flow_metrics(snap)
        yield from _loop_metrics(m)
        yield _labelled("renkei_hub_kafka_requests", "Kafka protocol requests sent.", "kind",
                        snap.kafka_requests)  # fmt: skip
        if snap.signatures is not None:
            yield _counter("renkei_hub_signatures_checked", "Signatures checked (verifier).",
                           snap.signatures.get("checked", 0))  # fmt: skip
            yield _counter("renkei_hub_signature_failures", "Signatures failed (verifier).",
                           snap.signatures.get("failed", 0))  # fmt: skip
        info = GaugeMetricFamily("renkei_hub_info", "The worker's identity.", labels=list(m._info))
        info.add_metric(list(m._info.values()), 1)
        yield info
        yield _gauge("renkei_hub_ready", "1 while /healthz says ready.", int(snap.ready))
        yield _gauge("renkei_hub_partitions_owned", "Input partitions (partitioned: buckets) "
                     "this worker owns.", snap.partitions_owned)  # fmt: skip
        yield _gauge("renkei_hub_restore_remaining_records", "State records (offsets) still "
                     "to restore.", snap.restore_remaining)  # fmt: skip
        yield _gauge("renkei_hub_pending_requests", "Requests forwarded, not yet answered or "
                     "expired.", snap.pending_requests)  # fmt: skip
        lag = GaugeMetricFamily("renkei_agency_inbox_lag_records", "Records each agency's "
                                "inbox groups have not consumed.", labels=["agency"])  # fmt: skip
        for agency, records in sorted(snap.inbox_lag.items()):
            lag.add_metric([agency], records)
        yield lag
        if snap.under_replicated is not None:
            yield _gauge("renkei_kafka_under_replicated_partitions", "Partitions of the hub's "
                         "topics whose ISR is smaller than their replicas.",
                         snap.under_replicated)  # fmt: skip
        yield _counter("renkei_hub_lag_errors", "Failed reads of the lag or the replicas.",
                       snap.lag_errors)  # fmt: skip


def _flow_metrics(snap: Snapshot) -> Iterator[Metric]:
    flows = snap.flows
    inputs = dict(snap.inputs)
    if flows.get("oversize"):  # refused before it is decoded: its type is unknown
        inputs["oversize"] = flows["oversize"]
    yield _labelled("renkei_hub_inputs", "Inputs handled, by message type.", "type", inputs)
    refusals: Counter[str] = Counter()
    notices: dict[str, int] = {}
    for key, value in flows.items():
        if key.startswith(_REFUSALS):
            refusals[key.rpartition(".")[2]] += value
        elif key.startswith("notices."):
            notices[key[len("notices.") :]] = value
    yield _labelled("renkei_hub_refusals", "Inputs refused, by error code.", "code", refusals)
    yield _labelled("renkei_hub_notices", "Life-event notices sent, by kind.", "kind", notices)
    for name, key, help_text in (
        ("renkei_hub_deadlines_expired", "timed_out", "Requests that timed out."),
        ("renkei_hub_requests_forwarded", "forwarded", "Requests forwarded to a provider."),
        ("renkei_hub_answers", "answered", "Answers routed back to a requester."),
        ("renkei_hub_late_answers", "late_answers", "Answers after their deadline."),
    ):
        yield _counter(name, help_text, flows.get(key, 0))


def _loop_metrics(m: HubMetrics) -> Iterator[Metric]:
    kinds: Counter[str] = Counter()
    for topic, records in m.written.items():
        kinds[m.kind(topic)] += records
    yield _labelled("renkei_hub_outputs", "Records committed, by kind.", "type", kinds)
    yield _counter("renkei_hub_dead_letters", "Records dead-lettered.", kinds["dead_letter"])
    yield _counter("renkei_hub_audit_records", "Audit records written.", kinds["audit"])
    # Each head is written to hub.audit and, the same bytes, to hub.audit.heads: count those.
    yield _counter("renkei_hub_tree_heads", "Signed audit tree heads written.",
                   kinds["tree_head"])  # fmt: skip
    yield _counter("renkei_hub_batches", "Batches committed.", m.batches)
    yield _counter("renkei_hub_transactions_aborted", "Transactions aborted.", m.aborted)
    yield _counter("renkei_hub_records_in", "Records consumed (committed).", m.records_in)
    yield _counter("renkei_hub_records_out", "Records produced (committed).", m.records_out)


def _counter(name: str, help_text: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(name, help_text, value=value)


def _gauge(name: str, help_text: str, value: int) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def _labelled(name: str, help_text: str, label: str, values: Mapping[str, int]) -> Metric:
    family = CounterMetricFamily(name, help_text, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family
