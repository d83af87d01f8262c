"""What ``renkei top`` shows, computed from two scrapes of every worker.

Pure functions: :func:`compute_frame` turns the previous and the current
:class:`~renkei.ops.snapshot.Snapshot` of every target into a :class:`Frame` of the numbers
the dashboard prints. Rates come from counter deltas between the two scrapes, quantiles
from histogram bucket deltas, so they describe the last refresh interval, not the
worker's whole life. The metric names are the catalogue's (docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .snapshot import Snapshot, increase, quantile_from_buckets

__all__ = ["Frame", "WorkerRow", "compute_frame"]


def _buckets(snapshot: Snapshot, name: str, match: Mapping[str, str]) -> dict[float, float]:
    """Cumulative counts by upper bound of the ``name`` histogram's series that ``match``."""
    out: dict[float, float] = {}
    for labels, value in snapshot.samples.get(f"{name}_bucket", {}).items():
        as_dict = dict(labels)
        if "le" in as_dict and all(as_dict.get(k) == v for k, v in match.items()):
            # float() reads "+Inf" as math.inf, which sorts last as the quantile needs.
            le = float(as_dict["le"])
            out[le] = out.get(le, 0.0) + value
    return out


@dataclass(frozen=True)
class WorkerRow:
    """One worker's line of the dashboard; ``None`` where a number is not known (yet)."""

    target: str
    up: bool
    error: str | None = None
    ready: bool | None = None
    worker: str | None = None
    role: str | None = None
    partitions: float | None = None
    inputs_per_s: float | None = None
    outputs_per_s: float | None = None
    p50_s: float | None = None
    p99_s: float | None = None
    pending: float | None = None
    restore_remaining: float | None = None


@dataclass(frozen=True)
class Frame:
    """Everything one refresh of the dashboard prints.

    Totals are summed over the workers that answered; rates over those that answered
    both scrapes. Lag and under-replication are read from the brokers by every worker,
    so they are the maximum over workers (a sum would count them once per worker).
    """

    workers: list[WorkerRow]
    stage: str
    refusals_per_s: dict[str, float]
    dead_letters: float | None
    dead_letters_per_s: float | None
    notices: dict[str, float]
    notices_per_s: dict[str, float]
    deadlines_expired: float | None
    deadlines_expired_per_s: float | None
    signature_failures: float | None
    signature_failures_per_s: float | None
    inbox_lag: dict[str, float]
    under_replicated: float | None

    @property
    def down(self) -> list[str]:
        """The targets that did not answer."""
        return [row.target for row in self.workers if not row.up]


def _pair(previous: Snapshot | None, current: Snapshot) -> Snapshot | None:
    # A rate needs the same target up at both ends of a positive gap.
    if previous is None or not previous.up or not current.up or current.at <= previous.at:
        return None
    return previous


def _rate(previous: Snapshot | None, current: Snapshot, name: str) -> float | None:
    before = _pair(previous, current)
    now = current.value(name)
    if before is None or now is None:
        return None
    return increase(before.value(name) or 0.0, now) / (current.at - before.at)


def _rates_by(
    previous: Snapshot | None, current: Snapshot, name: str, label: str
) -> dict[str, float]:
    before = _pair(previous, current)
    if before is None:
        return {}
    then = before.by_label(name, label)
    gap = current.at - before.at
    return {
        k: increase(then.get(k, 0.0), v) / gap for k, v in current.by_label(name, label).items()
    }


def _worker_row(previous: Snapshot | None, current: Snapshot, stage: str) -> WorkerRow:
    if not current.up:
        return WorkerRow(target=current.target, up=False, error=current.error)
    before = _pair(previous, current)
    p50 = p99 = None
    if before is not None:
        then = _buckets(before, "renkei_hub_stage_seconds", {"stage": stage})
        now = _buckets(current, "renkei_hub_stage_seconds", {"stage": stage})
        p50, p99 = quantile_from_buckets(0.5, then, now), quantile_from_buckets(0.99, then, now)
    ready = current.value("renkei_hub_ready")
    return WorkerRow(
        target=current.target,
        up=True,
        ready=None if ready is None else ready >= 1,
        worker=current.info("worker"),
        role=current.info("role"),
        partitions=current.value("renkei_hub_partitions_owned"),
        inputs_per_s=_rate(previous, current, "renkei_hub_inputs_total"),
        outputs_per_s=_rate(previous, current, "renkei_hub_outputs_total"),
        p50_s=p50,
        p99_s=p99,
        pending=current.value("renkei_hub_pending_requests"),
        restore_remaining=current.value("renkei_hub_restore_remaining_records"),
    )


def _sum_maps(maps: Iterable[Mapping[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for one in maps:
        for key, value in one.items():
            out[key] = out.get(key, 0.0) + value
    return out


def _sum_known(values: Iterable[float | None]) -> float | None:
    # None (no worker exports it) stays distinct from 0 (exported, nothing counted yet).
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def compute_frame(
    previous: Mapping[str, Snapshot],
    current: Mapping[str, Snapshot],
    stage: str = "poll_to_commit",
) -> Frame:
    """The dashboard's numbers from each target's previous and current snapshot.

    :param previous: the last scrape of each target (empty on the first refresh: then
        the rates and quantiles are unknown, the gauges and totals shown).
    :param current: this scrape of each target, in the order the rows are shown.
    :param stage: the ``stage`` label of ``renkei_hub_stage_seconds`` whose p50/p99
        the worker rows show.
    """
    pairs = [(previous.get(target), now) for target, now in current.items()]
    up = [(before, now) for before, now in pairs if now.up]

    def total(name: str) -> float | None:
        return _sum_known(now.value(name) for _, now in up)

    def rate(name: str) -> float | None:
        return _sum_known(_rate(before, now, name) for before, now in up)

    lag: dict[str, float] = {}
    for _, now in up:
        for agency, value in now.by_label("renkei_agency_inbox_lag_records", "agency").items():
            lag[agency] = max(lag.get(agency, value), value)
    under = [now.value("renkei_kafka_under_replicated_partitions") for _, now in up]
    known_under = [v for v in under if v is not None]
    return Frame(
        workers=[_worker_row(before, now, stage) for before, now in pairs],
        stage=stage,
        refusals_per_s=_sum_maps(
            _rates_by(b, n, "renkei_hub_refusals_total", "code") for b, n in up
        ),
        dead_letters=total("renkei_hub_dead_letters_total"),
        dead_letters_per_s=rate("renkei_hub_dead_letters_total"),
        notices=_sum_maps(n.by_label("renkei_hub_notices_total", "kind") for _, n in up),
        notices_per_s=_sum_maps(_rates_by(b, n, "renkei_hub_notices_total", "kind") for b, n in up),
        deadlines_expired=total("renkei_hub_deadlines_expired_total"),
        deadlines_expired_per_s=rate("renkei_hub_deadlines_expired_total"),
        signature_failures=total("renkei_hub_signature_failures_total"),
        signature_failures_per_s=rate("renkei_hub_signature_failures_total"),
        inbox_lag=lag,
        under_replicated=max(known_under) if known_under else None,
    )
