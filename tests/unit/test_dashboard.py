"""The committed Grafana dashboard is the generator's output, and reads only real metrics."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.grafana import dashboard

CATALOGUE = frozenset({
    # counters
    "renkei_hub_inputs_total", "renkei_hub_outputs_total", "renkei_hub_refusals_total",
    "renkei_hub_dead_letters_total", "renkei_hub_notices_total",
    "renkei_hub_deadlines_expired_total", "renkei_hub_requests_forwarded_total",
    "renkei_hub_answers_total", "renkei_hub_late_answers_total", "renkei_hub_batches_total",
    "renkei_hub_transactions_aborted_total", "renkei_hub_records_in_total",
    "renkei_hub_records_out_total", "renkei_hub_audit_records_total",
    "renkei_hub_signatures_checked_total", "renkei_hub_signature_failures_total",
    "renkei_hub_kafka_requests_total",
    # histograms (their _bucket, _sum and _count series)
    "renkei_hub_batch_records", "renkei_hub_stage_seconds",
    "renkei_hub_transaction_commit_seconds", "renkei_hub_exchange_seconds",
    # gauges
    "renkei_hub_ready", "renkei_hub_info", "renkei_hub_partitions_owned",
    "renkei_hub_restore_remaining_records", "renkei_hub_pending_requests",
    "renkei_agency_inbox_lag_records", "renkei_kafka_under_replicated_partitions",
})  # fmt: skip
"""The metric catalogue of issue 12 (docs/operations.md), the names the workers export."""

PROMETHEUS_OWN = frozenset({"up"})
"""Series Prometheus writes itself for each target."""

_NOT_METRICS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset",
})  # fmt: skip
_HISTOGRAM_SERIES = re.compile(r"_(bucket|sum|count)$")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (histograms by their base name)."""
    bare = re.sub(r'"[^"]*"', "", expr)  # label values
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", bare)  # matchers, range windows
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    names = set()
    for match in re.finditer(r"(?<![\w:.])[A-Za-z_:][\w:]*(?![\w:])(?!\s*\()", bare):
        name = match.group()
        if name not in _NOT_METRICS and not name[0].isdigit():
            names.add(_HISTOGRAM_SERIES.sub("", name) if name not in CATALOGUE else name)
    return names


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel with queries (rows hold none: their panels follow them on the grid)."""
    return [p for p in board["panels"] if p["type"] != "row"]


def test_the_committed_json_is_the_generators_output() -> None:
    """Nobody hand-edits renkei.json: ``make dashboard`` regenerates it from the code."""
    committed = dashboard.OUTPUT.read_text(encoding="utf-8")
    assert committed == dashboard.render(), "run `make dashboard` and commit renkei.json"


def test_every_panel_reads_catalogue_metrics() -> None:
    board = json.loads(dashboard.render())
    found = panels(board)
    assert len(found) == len(dashboard.PANELS) >= 18
    for panel in found:
        names = [metric_names(t["expr"]) for t in panel["targets"]]
        assert names, panel["title"]
        assert all(n for n in names), (panel["title"], names)
        assert any(n <= CATALOGUE for n in names), (panel["title"], names)
        assert all(n <= CATALOGUE | PROMETHEUS_OWN for n in names), (panel["title"], names)
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])


def test_panel_ids_are_unique() -> None:
    ids = [p["id"] for p in json.loads(dashboard.render())["panels"]]
    assert len(ids) == len(set(ids))
    assert 0 not in ids


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("sum by (type) (rate(renkei_hub_inputs_total[$__rate_interval]))",
         {"renkei_hub_inputs_total"}),
        ('histogram_quantile(0.9, sum by (le) (rate(renkei_hub_stage_seconds_bucket{s="x"}[1m])))',
         {"renkei_hub_stage_seconds"}),
        ("renkei_hub_ready * on (instance) group_left (worker) renkei_hub_info",
         {"renkei_hub_ready", "renkei_hub_info"}),
        ("max by (agency) (renkei_hub_inbox_lag)", {"renkei_hub_inbox_lag"}),
        ('up{job="renkei-hub"}', {"up"}),
    ],
)  # fmt: skip
def test_metric_names_finds_what_a_query_reads(expr: str, names: set[str]) -> None:
    """The check above can fail: a misspelt name is found, and is not in the catalogue."""
    assert metric_names(expr) == names
