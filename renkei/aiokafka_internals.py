"""Every private part of aiokafka Renkei touches, in one place.

aiokafka's public API has no knob for these, and each use is measured or needed for
correctness (the reasons are beside each function). An aiokafka upgrade may move or
rename any of them: :func:`check` (run by a unit test and when the hub starts) then fails
with :class:`~renkei.errors.AiokafkaInternalsError` naming what moved, instead of the hub
silently losing its latency fix or mis-sizing record batches.

Nothing outside this module may reach into aiokafka's underscored attributes.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Awaitable, Iterable
from typing import Any

from renkei.errors import AiokafkaInternalsError

__all__ = [
    "RECORD_BATCH_OVERHEAD",
    "add_to_transaction",
    "back_off_concurrent_transactions",
    "can_abort",
    "check",
    "cluster_id",
    "count_requests",
    "force_metadata_update",
    "park_fetches_when_idle",
    "record_size",
]

RECORD_BATCH_OVERHEAD = 61
"""Bytes of a v2 record batch's header (Kafka's ``DefaultRecordBatch.RECORD_BATCH_OVERHEAD``)."""
_EMPTY_RECORD_BOUND = 24


def _missing(what: str, exc: BaseException | None = None) -> AiokafkaInternalsError:
    import aiokafka

    error = AiokafkaInternalsError(
        f"aiokafka {aiokafka.__version__} has no {what}, which Renkei relies on "
        "(renkei/aiokafka_internals.py says why): pin the aiokafka version pyproject.toml "
        "names, or port that module to this version"
    )
    if exc is not None:
        error.__cause__ = exc
    return error


def back_off_concurrent_transactions(first_s: float, most_s: float) -> None:
    """Ask again after CONCURRENT_TRANSACTIONS first in ``first_s``, then twice as long
    each time, up to ``most_s``, until the transaction's partitions are added.

    Right after a commit Kafka answers the next transaction's AddPartitionsToTxn with
    CONCURRENT_TRANSACTIONS until the commit's markers are written. aiokafka waits a fixed
    ``sender.BACKOFF_OVERRIDE`` (20 ms, KAFKA-5477's value) before asking again: alone,
    the markers take ≈ 1 ms here, and 20 ms put a floor under every hub batch. A fixed
    2 ms instead had workers beside others (three replicating brokers on two busy cores,
    where markers take longer) ask 2.5 times a transaction, and up to 12 times in a short
    run, against once alone (docs/benchmarks.md, scale-out): each ask costs the worker
    and the broker CPU. Doubling keeps the quick case as quick and the slow case to a few
    asks; it waits at most twice as long as the markers took.
    """
    from aiokafka.producer import sender

    handler = getattr(sender, "AddPartitionsToTxnHandler", None)
    handle = getattr(handler, "handle_response", None)
    if not isinstance(getattr(sender, "BACKOFF_OVERRIDE", None), int | float):
        raise _missing("aiokafka.producer.sender.BACKOFF_OVERRIDE")
    if not callable(handle):
        raise _missing("aiokafka.producer.sender.AddPartitionsToTxnHandler.handle_response")
    handle = getattr(handle, "_renkei_wrapped", handle)  # set again: wrap aiokafka's own
    # aiokafka returns this very object on that path alone: told apart by identity, as
    # its default backoff may have the same value.
    marker = sender.BACKOFF_OVERRIDE = float(repr(float(first_s)))  # a new float object
    waits: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def handle_response(self: Any, response: Any) -> Any:
        backoff = handle(self, response)
        manager = self._sender._txn_manager
        if backoff is not marker:
            waits.pop(manager, None)  # added, or another error: start short next time
            return backoff
        wait = waits.get(manager, first_s)
        waits[manager] = min(2 * wait, most_s)
        return wait

    handle_response._renkei_wrapped = handle  # type: ignore[attr-defined]
    handler.handle_response = handle_response  # type: ignore[union-attr]


def can_abort(producer: Any) -> bool:
    """Whether ``producer`` (transactional) has a transaction that ``abort_transaction`` accepts.

    aiokafka asserts on an abort outside a transaction (say, after ``begin_transaction``
    itself failed); the public API does not say which state the producer is in.
    """
    from aiokafka.producer.transaction_manager import TransactionState

    try:
        state = producer._txn_manager.state
    except AttributeError as exc:
        raise _missing("AIOKafkaProducer._txn_manager.state", exc) from exc
    return state in (TransactionState.IN_TRANSACTION, TransactionState.ABORTABLE_ERROR)


def add_to_transaction(producer: Any, partitions: Iterable[Any]) -> None:
    """Register ``partitions`` (``TopicPartition``) with ``producer``'s open transaction
    at once, before any record batch is appended.

    aiokafka adds a partition when its first batch is appended, and sends an
    ``AddPartitionsToTxn`` for those pending whenever its sender runs; a transaction whose
    appends yield midway (a second batch for a partition) then sends a second one while
    the first partitions' produce request is in flight. Kafka (≥ 3.6, transaction
    verification) answers such a produce ``NOT_ENOUGH_REPLICAS``, which aiokafka retries
    100 ms later. Registered together, they go in one request, before any produce.
    """
    try:
        add = producer._txn_manager.maybe_add_partition_to_txn
    except AttributeError as exc:
        raise _missing("AIOKafkaProducer._txn_manager.maybe_add_partition_to_txn", exc) from exc
    for tp in partitions:
        add(tp)


async def cluster_id(admin: Any) -> str | None:
    """The id of the cluster ``admin`` (a started ``AIOKafkaAdminClient``) talks to.

    ``describe_cluster()`` asks for the metadata of *every* topic and throws the topics
    away: on a broker of 1,200 topics that is ≈ 40 ms of the caller's event loop decoding,
    which the hub paid every ``RENKEI_HUB_CLUSTER_CHECK_MS``. A metadata request naming
    no topic carries the cluster id alone.
    """
    try:
        request = admin._get_cluster_metadata
    except AttributeError as exc:
        raise _missing("AIOKafkaAdminClient._get_cluster_metadata", exc) from exc
    found = getattr(await request(topics=[]), "cluster_id", None)
    return None if found is None else str(found)


def force_metadata_update(consumer: Any) -> Awaitable[Any]:
    """Ask ``consumer``'s client to refresh its metadata now (a topic created moments ago).

    The public consumer only refreshes every ``metadata_max_age_ms``.
    """
    try:
        client = consumer._client
    except AttributeError as exc:
        raise _missing("AIOKafkaConsumer._client", exc) from exc
    update: Awaitable[Any] = client.force_metadata_update()
    return update


def park_fetches_when_idle(consumer: Any, busy_ms: int, idle_ms: int) -> None:
    """Let ``consumer`` (started) park a fetch ``idle_ms`` when it can stall nothing.

    aiokafka asks each broker with one fetch at a time, and the consumer's one
    ``fetch_max_wait_ms`` for all of them. A parked fetch holds back only a partition it
    does not name, one whose records sit unconsumed in the buffer (or paused) when it was
    sent: drained just after, that partition is not fetched again until the parked fetch
    returns (:data:`~renkei.settings.FETCH_MAX_WAIT_MS`). A fetch sent with nothing
    buffered names every partition, and the broker wakes it when a record or a commit
    marker arrives on any, so it may park long. This sets the wait before aiokafka plans
    each round of fetches: ``busy_ms`` while any partition is buffered or paused,
    ``idle_ms`` otherwise, which spares an idle reader ≈ 100 fetches a second
    (docs/benchmarks.md, "Idle cost of a worker").
    """
    fetcher: Any = getattr(consumer, "_fetcher", None)
    for name in ("_get_actions_per_node", "_records", "_fetch_max_wait_ms"):
        if not hasattr(fetcher, name):
            raise _missing(f"a started AIOKafkaConsumer._fetcher.{name}")
    plan = fetcher._get_actions_per_node

    def planned(assignment: Any) -> Any:
        held = bool(fetcher._records) or any(
            assignment.state_value(tp).paused for tp in assignment.tps
        )
        fetcher._fetch_max_wait_ms = busy_ms if held else idle_ms
        return plan(assignment)

    fetcher._get_actions_per_node = planned


_REQUESTS: Counter[str] = Counter()


def count_requests() -> Counter[str]:
    """The Kafka requests this process has sent, by kind (``"Fetch"``, ``"EndTxn"``, ...).

    Every aiokafka client sends each request through ``AIOKafkaConnection.send``; the
    first call wraps it, once for the process, to count what passes. The figures say
    where a worker's CPU goes per record (fetches and transaction round trips), which
    aiokafka does not report; the cost is one dictionary increment a request.
    """
    from aiokafka.conn import AIOKafkaConnection

    send = getattr(AIOKafkaConnection, "send", None)
    if not callable(send):
        raise _missing("aiokafka.conn.AIOKafkaConnection.send")
    if getattr(send, "_renkei_counted", False):
        return _REQUESTS

    def counted(self: Any, request: Any, expect_response: bool = True) -> Any:
        # Request classes are named "<Kind>Request_v<N>": the kind is what matters.
        _REQUESTS[type(request).__name__.split("Request", 1)[0]] += 1
        return send(self, request, expect_response)

    counted._renkei_counted = True  # type: ignore[attr-defined]
    AIOKafkaConnection.send = counted
    return _REQUESTS


def record_size(key: bytes | None, value: bytes | None) -> int:
    """Upper bound of the bytes one record adds to a v2 record batch (no headers).

    Kafka limits a *batch* (``max.message.bytes``), so a record fits a topic when
    ``RECORD_BATCH_OVERHEAD + record_size(...)`` does. aiokafka computes this in its
    batch builder, whose module is not part of its documented API.
    """
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    try:
        whole: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])
    except AttributeError as exc:
        raise _missing("DefaultRecordBatchBuilder.estimate_size_in_bytes", exc) from exc
    return whole - RECORD_BATCH_OVERHEAD


async def check() -> None:
    """Fail loudly if any internal above moved (an aiokafka upgrade).

    Builds an unstarted producer and consumer (nothing connects) to look at real objects.

    :raises AiokafkaInternalsError: naming the missing piece.
    """
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.producer import sender

    try:
        from aiokafka.producer.transaction_manager import TransactionState
        from aiokafka.record.default_records import DefaultRecordBatchBuilder
    except ImportError as exc:
        raise _missing(f"module {exc.name}", exc) from exc
    if not isinstance(getattr(sender, "BACKOFF_OVERRIDE", None), int | float):
        raise _missing("aiokafka.producer.sender.BACKOFF_OVERRIDE")
    handler = getattr(sender, "AddPartitionsToTxnHandler", None)
    if not callable(getattr(handler, "handle_response", None)):
        raise _missing("aiokafka.producer.sender.AddPartitionsToTxnHandler.handle_response")
    from aiokafka.conn import AIOKafkaConnection

    if not callable(getattr(AIOKafkaConnection, "send", None)):
        raise _missing("aiokafka.conn.AIOKafkaConnection.send")
    for name in ("IN_TRANSACTION", "ABORTABLE_ERROR"):
        if not hasattr(TransactionState, name):
            raise _missing(f"TransactionState.{name}")
    if not callable(getattr(DefaultRecordBatchBuilder, "estimate_size_in_bytes", None)):
        raise _missing("DefaultRecordBatchBuilder.estimate_size_in_bytes")
    # An empty record's bound is Kafka's MAX_RECORD_OVERHEAD (21) plus three length bytes;
    # anything else means the estimate no longer includes the batch header as we assume.
    if record_size(None, None) != _EMPTY_RECORD_BOUND:
        raise _missing(
            f"an estimate_size_in_bytes that counts the {RECORD_BATCH_OVERHEAD}-byte batch header"
        )
    nowhere = "127.0.0.1:9"  # never contacted: neither client is started
    producer = AIOKafkaProducer(bootstrap_servers=nowhere, transactional_id="renkei-check")
    consumer = AIOKafkaConsumer(bootstrap_servers=nowhere)
    try:
        can_abort(producer)
        if not callable(getattr(AIOKafkaAdminClient, "_get_cluster_metadata", None)):
            raise _missing("AIOKafkaAdminClient._get_cluster_metadata")
        if not callable(getattr(producer._txn_manager, "maybe_add_partition_to_txn", None)):
            raise _missing("AIOKafkaProducer._txn_manager.maybe_add_partition_to_txn")
        if not callable(getattr(getattr(consumer, "_client", None), "force_metadata_update", None)):
            raise _missing("AIOKafkaConsumer._client.force_metadata_update")
        from aiokafka.consumer.fetcher import Fetcher

        if not callable(getattr(Fetcher, "_get_actions_per_node", None)):
            raise _missing("aiokafka.consumer.fetcher.Fetcher._get_actions_per_node")
    finally:
        await consumer.stop()
        await producer.stop()
