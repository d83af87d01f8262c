"""What the transactional loop drives, and what it reports back.

A :class:`BatchHandler` turns a polled batch into outputs and stages its state changes;
the loop (:mod:`.pipeline`) makes them permanent or forgets them once the batch's
transaction has committed or aborted (:mod:`.settling`). The loop's counters
(:class:`LoopStats`) and each committed batch's timings (:class:`BatchTrace`) are what
dashboards, the metrics (:mod:`.metrics`) and the latency benchmark read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from aiokafka import ConsumerRecord

from .outputs import Output

__all__ = ["BatchHandler", "BatchTrace", "LayeredHandler", "LoopStats"]


class BatchHandler(Protocol):
    """What the loop drives. ``handle`` may stage state changes; ``commit`` or ``rollback``
    then makes them permanent or forgets them, after the transaction's fate is known."""

    def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Output]: ...

    def tick(self, now_ms: int) -> list[Output]: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


@runtime_checkable
class LayeredHandler(BatchHandler, Protocol):
    """A handler whose state is layered by batch, for transactions in flight: ``seal``
    ends a batch, ``commit`` commits the oldest batch sealed, ``rollback`` forgets the
    oldest and every later one (:class:`~.hub.Hub`, over :class:`~.state.Table`)."""

    def seal(self) -> None: ...


@dataclass
class LoopStats:
    """Counters a dashboard reads (``replaced``: records Kafka refused, written as stand-ins)."""

    batches: int = 0
    records_in: int = 0
    records_out: int = 0
    aborted: int = 0
    replaced: int = 0
    last_batch_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class BatchTrace:
    """When one batch passed each stage (``time.monotonic()``, the same clock in every
    process of a machine), for the latency profile (``benchmarks/hops.py``)."""

    polled_s: float
    handled_s: float
    committed_s: float
    records: tuple[tuple[str, int, int], ...]
    """(topic, partition, offset) of each input record."""
    commit_s: float = 0.0
    """Seconds its transaction spent committing: its offsets sent and EndTxn, not the wait
    for the transaction before it."""
    topics: Mapping[str, int] = field(default_factory=dict)
    """Records written, by topic (the metrics' outputs by kind)."""
