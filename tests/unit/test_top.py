"""``renkei top``'s arithmetic on parsed ``/metrics`` text: rates, quantiles, lag, DOWN."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import renkei.ops.scrape
import renkei.ops.snapshot
import renkei.ops.top
import renkei.ops.top_view
from renkei.cli.app import app
from renkei.errors import ConfigurationError
from renkei.ops.scrape import parse_target, read_targets
from renkei.ops.snapshot import Snapshot, parse_metrics, quantile_from_buckets
from renkei.ops.top import compute_frame
from renkei.ops.top_view import render_frame

BUCKETS = (0.001, 0.01, 0.1, 1.0)


def metrics(
    *,
    inputs: dict[str, int] | None = None,
    refusals: dict[str, int] | None = None,
    stage: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0),
    lag: dict[str, int] | None = None,
    under_replicated: int = 0,
    dead_letters: int = 0,
    ready: int = 1,
) -> str:
    """Prometheus text as a hub worker serves it; ``stage`` is the count in each bucket."""
    lines = [
        "# TYPE renkei_hub_inputs_total counter",
        *(f'renkei_hub_inputs_total{{type="{t}"}} {n}' for t, n in (inputs or {}).items()),
        "# TYPE renkei_hub_refusals_total counter",
        *(f'renkei_hub_refusals_total{{code="{c}"}} {n}' for c, n in (refusals or {}).items()),
        "# TYPE renkei_hub_dead_letters_total counter",
        f"renkei_hub_dead_letters_total {dead_letters}",
        "renkei_hub_dead_letters_created 1.7e9",
        "# TYPE renkei_hub_ready gauge",
        f"renkei_hub_ready {ready}",
        "# TYPE renkei_hub_info gauge",
        'renkei_hub_info{worker="w-1",role="hub",topology="partitioned",signatures="strict"} 1',
        "# TYPE renkei_hub_partitions_owned gauge",
        "renkei_hub_partitions_owned 3",
        "# TYPE renkei_agency_inbox_lag_records gauge",
        *(f'renkei_agency_inbox_lag_records{{agency="{a}"}} {n}' for a, n in (lag or {}).items()),
        "# TYPE renkei_kafka_under_replicated_partitions gauge",
        f"renkei_kafka_under_replicated_partitions {under_replicated}",
        "# TYPE renkei_hub_stage_seconds histogram",
    ]
    cumulative = 0
    for le, count in zip((*BUCKETS, math.inf), stage, strict=True):
        cumulative += count
        bound = "+Inf" if math.isinf(le) else repr(le)
        lines.append(f'renkei_hub_stage_seconds_bucket{{stage="poll_to_commit",le="{bound}"}} ')
        lines[-1] += str(cumulative)
    lines.append(f'renkei_hub_stage_seconds_count{{stage="poll_to_commit"}} {cumulative}')
    lines.append(f'renkei_hub_stage_seconds_sum{{stage="poll_to_commit"}} {cumulative * 0.01}')
    return "\n".join(lines) + "\n"


def test_a_snapshot_sums_label_sets_and_drops_created_timestamps() -> None:
    snap = parse_metrics("h:1", 0.0, metrics(inputs={"AttributeRequest": 4, "LifeEvent": 6}))
    assert snap.value("renkei_hub_inputs_total") == 10
    assert snap.by_label("renkei_hub_inputs_total", "type") == {
        "AttributeRequest": 4,
        "LifeEvent": 6,
    }
    assert snap.info("role") == "hub"
    assert snap.info("worker") == "w-1"
    assert "renkei_hub_dead_letters_created" not in snap.samples
    assert snap.value("renkei_hub_pending_requests") is None  # not exported: unknown, not 0
    # Declared, nothing counted yet (a labelled counter before its first input): 0.
    idle = parse_metrics("h:1", 0.0, metrics())
    assert idle.value("renkei_hub_inputs_total") == 0.0


def test_text_that_is_not_prometheus_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="h:1"):
        parse_metrics("h:1", 0.0, "<html>{not metrics</html>\n")


def test_rates_are_counter_deltas_over_the_gap_between_scrapes() -> None:
    before = {"a:1": parse_metrics("a:1", 10.0, metrics(inputs={"X": 10}, refusals={"BAD": 1}))}
    after = {"a:1": parse_metrics("a:1", 12.0, metrics(inputs={"X": 30}, refusals={"BAD": 5}))}
    frame = compute_frame(before, after)
    assert frame.workers[0].inputs_per_s == 10.0
    assert frame.refusals_per_s == {"BAD": 2.0}
    first = compute_frame({}, after)  # one scrape: gauges known, rates not
    assert first.workers[0].inputs_per_s is None
    assert first.workers[0].partitions == 3


def test_a_counter_that_went_down_restarted_and_counts_from_zero() -> None:
    before = {"a:1": parse_metrics("a:1", 0.0, metrics(inputs={"X": 500}))}
    after = {"a:1": parse_metrics("a:1", 1.0, metrics(inputs={"X": 7}))}
    assert compute_frame(before, after).workers[0].inputs_per_s == 7.0


def test_quantiles_interpolate_inside_the_bucket_like_histogram_quantile() -> None:
    before = {0.1: 0.0, 1.0: 0.0, math.inf: 0.0}
    after = {0.1: 50.0, 1.0: 100.0, math.inf: 100.0}
    assert quantile_from_buckets(0.5, before, after) == pytest.approx(0.1)
    assert quantile_from_buckets(0.75, before, after) == pytest.approx(0.55)
    assert quantile_from_buckets(0.5, after, after) is None  # nothing observed in between
    # A rank in +Inf: the highest finite bound, as Prometheus answers.
    assert quantile_from_buckets(0.99, {}, {0.1: 1.0, math.inf: 10.0}) == 0.1


def test_worker_latency_describes_the_interval_not_the_worker_s_life() -> None:
    # 1,000 slow batches before the first scrape, then 100 fast ones (0.001-0.01 s).
    before = {"a:1": parse_metrics("a:1", 0.0, metrics(stage=(0, 0, 0, 1000, 0)))}
    after = {"a:1": parse_metrics("a:1", 1.0, metrics(stage=(0, 100, 0, 1000, 0)))}
    row = compute_frame(before, after).workers[0]
    assert row.p50_s == pytest.approx(0.0055)
    assert row.p99_s is not None
    assert row.p99_s <= 0.01


def test_inbox_lag_is_the_maximum_over_workers_not_their_sum() -> None:
    now = {
        "a:1": parse_metrics("a:1", 1.0, metrics(lag={"mhlw": 5, "nta": 9}, under_replicated=1)),
        "b:2": parse_metrics("b:2", 1.0, metrics(lag={"mhlw": 7, "nta": 2}, under_replicated=0)),
    }
    frame = compute_frame({}, now)
    assert frame.inbox_lag == {"mhlw": 7, "nta": 9}
    assert frame.under_replicated == 1


def test_a_worker_that_does_not_answer_is_down_and_counts_for_nothing() -> None:
    before = {
        "a:1": parse_metrics("a:1", 0.0, metrics(dead_letters=1, refusals={"BAD": 0})),
        "b:2": parse_metrics("b:2", 0.0, metrics(dead_letters=100, refusals={"BAD": 0})),
    }
    after = {
        "a:1": parse_metrics("a:1", 1.0, metrics(dead_letters=3, refusals={"BAD": 4})),
        "b:2": Snapshot("b:2", 1.0, error="ConnectionRefusedError"),
    }
    frame = compute_frame(before, after)
    assert [row.up for row in frame.workers] == [True, False]
    assert frame.workers[1].error == "ConnectionRefusedError"
    assert frame.down == ["b:2"]
    assert frame.dead_letters == 3
    assert frame.dead_letters_per_s == 2.0
    assert frame.refusals_per_s == {"BAD": 4.0}
    # Back up after being down: no rate across the gap it was away.
    again = compute_frame(after, {"b:2": parse_metrics("b:2", 2.0, metrics(dead_letters=0))})
    assert again.workers[0].up
    assert again.dead_letters_per_s is None


def _text(frame_text: object) -> str:
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(frame_text)
    return out.getvalue()


def test_the_view_shows_down_in_red_and_unknown_as_a_dash() -> None:
    before = {"a:1": parse_metrics("a:1", 0.0, metrics(inputs={"X": 0}))}
    after = {
        "a:1": parse_metrics("a:1", 1.0, metrics(inputs={"X": 42})),
        "b:2": Snapshot("b:2", 1.0, error="ConnectionRefusedError"),
    }
    rendered = render_frame(compute_frame(before, after), 1.0)
    text = _text(rendered)
    row = next(line for line in text.splitlines() if "a:1" in line)
    assert "ready" in row
    assert "42.0" in row
    assert " - " in row
    down = next(line for line in text.splitlines() if line.lstrip().startswith("b:2"))
    assert "DOWN" in down
    assert "ConnectionRefusedError" in down
    coloured = io.StringIO()
    Console(file=coloured, width=160, color_system="truecolor", force_terminal=True).print(rendered)
    assert "\x1b[1;31mDOWN" in coloured.getvalue()  # bold red


def test_targets_are_host_port_and_come_from_a_file_sd_list(tmp_path: Path) -> None:
    assert parse_target(" 127.0.0.1:9101 ") == "127.0.0.1:9101"
    for bad in ("127.0.0.1", ":9101", "host:port", "host:70000"):
        with pytest.raises(ConfigurationError, match="HOST:PORT"):
            parse_target(bad)
    path = tmp_path / "targets.json"
    groups = [{"targets": ["h:1", "h:2"], "labels": {"job": "renkei-hub"}}, {"targets": ["h:1"]}]
    groups.append({"targets": ["other:9"], "labels": {"job": "node"}})
    path.write_text(json.dumps(groups))
    assert read_targets(path) == ["h:1", "h:2"]
    path.write_text('{"targets": []}')
    with pytest.raises(ConfigurationError, match="file_sd"):
        read_targets(path)
    with pytest.raises(ConfigurationError, match="cannot read"):
        read_targets(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "module", [renkei.ops.scrape, renkei.ops.snapshot, renkei.ops.top, renkei.ops.top_view]
)
def test_public_names_exist_and_are_documented(module: object) -> None:
    for name in getattr(module, "__all__"):  # noqa: B009  # mypy does not know the attribute
        assert getattr(module, name).__doc__, f"{module}.{name} lacks a docstring"


def test_top_without_targets_says_where_they_come_from(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["top", "--once", "--home", str(tmp_path)])
    assert result.exit_code == 2
    message = "".join(result.output.split())  # rich wraps it at 80 columns
    assert "pass--targetHOST:PORT" in message
    assert f"{tmp_path}/ops/prometheus/targets.json".replace(" ", "") in message
    bad = CliRunner().invoke(app, ["top", "--once", "--target", "nowhere"])
    assert bad.exit_code == 2
    assert "HOST:PORT" in bad.output


def test_top_reads_the_targets_file_renkei_ops_keeps(tmp_path: Path) -> None:
    path = tmp_path / "ops" / "prometheus" / "targets.json"
    path.parent.mkdir(parents=True)
    # The discard port on loopback: nothing listens, so the frame shows it DOWN.
    path.write_text(json.dumps([{"targets": ["127.0.0.1:9"], "labels": {"job": "renkei-hub"}}]))
    args = ["top", "--once", "--interval", "0.1", "--home", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "127.0.0.1:9 " in line)
    assert row.split()[1] == "DOWN"
