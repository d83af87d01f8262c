"""One scrape of a worker's ``GET /metrics``, parsed, and what two scrapes say together.

Pure functions: :func:`parse_metrics` turns Prometheus text into a :class:`Snapshot`;
:func:`increase` and :func:`quantile_from_buckets` compare two snapshots as Prometheus'
``increase()`` and ``histogram_quantile()`` would over the window between them, so
``renkei top`` needs no Prometheus.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from renkei.errors import ConfigurationError

__all__ = ["Labels", "Snapshot", "increase", "parse_metrics", "quantile_from_buckets"]

Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Snapshot:
    """One scrape of one target: its samples, or why it did not answer.

    :param target: ``HOST:PORT`` scraped.
    :param at: when the scrape finished, in monotonic seconds (rates divide by the gap).
    :param samples: sample name (``renkei_hub_inputs_total``, ``..._bucket``) to the
        value of each label set; empty when the target is down.
    :param error: why the scrape failed, or ``None`` when it answered.
    :param families: the metric families the target declares (``# TYPE`` lines), also
        those with no sample yet: a labelled counter nothing has counted.
    """

    target: str
    at: float
    samples: Mapping[str, Mapping[Labels, float]] = field(default_factory=dict)
    error: str | None = None
    families: frozenset[str] = frozenset()

    @property
    def up(self) -> bool:
        """The target answered with metrics."""
        return self.error is None

    def value(self, name: str) -> float | None:
        """The sum over label sets of ``name``; ``None`` when the worker does not export it.

        A family declared without samples (``renkei_hub_inputs_total{type}`` before the
        first input) is 0: the worker counts it, and has counted nothing.
        """
        values = self.samples.get(name)
        if values:
            return sum(values.values())
        return 0.0 if name.removesuffix("_total") in self.families else None

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """``name`` summed per value of ``label`` (refusals by ``code``, say)."""
        out: dict[str, float] = {}
        for labels, value in self.samples.get(name, {}).items():
            key = dict(labels).get(label, "")
            out[key] = out.get(key, 0.0) + value
        return out

    def info(self, label: str) -> str | None:
        """A label of ``renkei_hub_info`` (``role``, ``worker``), ``None`` if not exported."""
        for labels in self.samples.get("renkei_hub_info", {}):
            found = dict(labels).get(label)
            if found is not None:
                return found
        return None


def parse_metrics(target: str, at: float, text: str) -> Snapshot:
    """Parse a ``/metrics`` body into a snapshot.

    :raises ConfigurationError: the body is not Prometheus text format (the target is
        something other than a metrics endpoint).
    """
    samples: dict[str, dict[Labels, float]] = {}
    families: set[str] = set()
    try:
        for family in text_string_to_metric_families(text):
            families.add(family.name)
            for sample in family.samples:
                # _created carries a timestamp, not a count: summing it would be noise.
                if sample.name.endswith("_created"):
                    continue
                samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = float(
                    sample.value
                )
    except ValueError as exc:
        raise ConfigurationError(f"{target} did not answer Prometheus text: {exc}") from exc
    return Snapshot(target=target, at=at, samples=samples, families=frozenset(families))


def increase(before: float, after: float) -> float:
    """How much a counter grew from ``before`` to ``after``."""
    # A counter that went down was reset by a restart: everything it holds is new.
    return after if after < before else after - before


def quantile_from_buckets(
    q: float, before: Mapping[float, float], after: Mapping[float, float]
) -> float | None:
    """The ``q`` quantile of what a histogram observed between two scrapes.

    ``before`` and ``after`` map each bucket's upper bound (``le``, ``math.inf`` last) to
    its cumulative count. Interpolates linearly inside the bucket, as Prometheus'
    ``histogram_quantile`` does; a rank in the ``+Inf`` bucket yields the highest finite
    bound. ``None`` when nothing was observed in between.
    """
    bounds = sorted(after)
    deltas = [increase(before.get(le, 0.0), after[le]) for le in bounds]
    if not bounds or deltas[-1] <= 0:
        return None
    rank = q * deltas[-1]
    lower, below = 0.0, 0.0
    for le, count in zip(bounds, deltas, strict=True):
        if count >= rank and count > below:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * (rank - below) / (count - below)
        lower, below = le, count
    return lower
