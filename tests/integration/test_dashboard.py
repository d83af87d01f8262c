"""Every panel of the Grafana dashboard shows something for a demo run, in a real Prometheus.

The demo runs with its ``--ops`` machinery (:class:`renkei.demo.ops.DemoOps`: the hub's
health port, Prometheus told to scrape it) against a Prometheus of the test's own, on a
free port under ``tmp_path``. Each target of each panel of ``infra/grafana/renkei.json``
is then evaluated as an instant query at the hub's last scrape — after the scenes, before
it stopped, so the gauges are still there — with ``$__rate_interval`` replaced by a window
the whole run fits in. A panel that returns nothing fails, by name; the traffic panels
must show more than zero.
"""

from __future__ import annotations

import io
import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from infra.grafana.dashboard import OUTPUT
from renkei.demo import Demo
from renkei.demo.ops import DemoOps, free_port
from renkei.ops.prometheus import Prometheus
from renkei.topics import Topics
from tests.integration.principals import Principals
from tests.integration.test_demo import check, demo_connections

WINDOW = "[10m]"
"""Stands for Grafana's ``$__rate_interval``: longer than any demo run of 40 people, so a
rate is the run's average (Prometheus extrapolates from the samples it has)."""

TRAFFIC = (
    "Hub workers up / ready", "Inputs/s by type", "Outputs/s by kind",
    "Kafka requests/s by kind", "Stage latency p50 / p99", "Exchange p50 / p99",
    "Transaction commit p50 / p99", "Batch size",
)  # fmt: skip
"""Panels that a run with traffic cannot show at zero: every one of their queries has a
series above 0 (a labelled series that appeared only in the run's last second may rate 0,
so notices and refusals are only required to be there)."""


def nonzero(targets: list[list[dict[str, Any]]]) -> bool:
    """Whether each target's result has a value above zero (NaN is not)."""
    return all(any(float(r["value"][1]) > 0 for r in result) for result in targets)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    """A Prometheus of this test's own: its files under ``tmp_path``, a free port."""
    prometheus = Prometheus(tmp_path, free_port())
    prometheus.start()
    try:
        yield prometheus
    finally:
        prometheus.stop()


def instant(prometheus: Prometheus, expr: str, at: float) -> list[dict[str, Any]]:
    """``expr`` evaluated at ``at`` (Prometheus.query evaluates now only)."""
    query = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
    with urllib.request.urlopen(f"{prometheus.url}/api/v1/query?{query}", timeout=10) as r:  # noqa: S310 - loopback
        body = json.load(r)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


@pytest.mark.parametrize("hub_in_process", [False, True], ids=["hub-process", "in-process"])
async def test_every_panel_shows_the_demo_run(
    principals: Principals, topics: Topics, tmp_path: Path, prometheus: Prometheus,
    hub_in_process: bool,
) -> None:  # fmt: skip
    """Its own process (as ``renkei demo`` runs it) or the demo's: /metrics either way."""
    connections = demo_connections(principals)
    ops = DemoOps(prometheus)
    demo = Demo(connections, tmp_path, 40, Console(file=io.StringIO(), width=200),
                prefix=topics.prefix, exchanges=60, rate=20.0, hub_in_process=hub_in_process,
                ops=ops)  # fmt: skip
    summary = await demo.run()
    check(summary, 40)
    assert prometheus.targets() == [ops.target]
    assert ops.scraped_at is not None, "Prometheus never scraped the hub after the scenes"

    board = json.loads(OUTPUT.read_text(encoding="utf-8"))
    empty: list[str] = []
    results: dict[str, list[list[dict[str, Any]]]] = {}
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        title = panel["title"]
        results[title] = []
        for target in panel["targets"]:
            expr = target["expr"].replace("[$__rate_interval]", WINDOW)
            assert "$" not in expr, f"{title}: a Grafana variable the test cannot stand in for"
            found = instant(prometheus, expr, ops.scraped_at)
            results[title].append(found)
            if not found:
                empty.append(f"{title}: {expr}")
    assert not empty, "panels with no data after a demo run:\n" + "\n".join(empty)
    flat = [title for title in TRAFFIC if not nonzero(results[title])]
    assert not flat, f"traffic panels at zero after a demo run: {flat}"
