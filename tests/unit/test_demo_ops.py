"""``renkei demo --ops`` without a broker: the hub's settings, the group, the scrape waits."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from hub_stream.settings import HubSettings
from renkei.demo.ops import LAG_CHECK_MS, DemoOps
from renkei.operator.principals import agency_group_prefix
from renkei.ops.prometheus import Prometheus, PrometheusError
from renkei.topics import Topics


class FakePrometheus(Prometheus):
    """Answers the scrape-time query from a list: one answer a call, the last one repeated."""

    def __init__(self, home: Path, answers: list[list[float] | Exception]) -> None:
        super().__init__(home, 19999)
        self.answers = answers
        self.exprs: list[str] = []
        self.targets_set: list[list[str]] = []

    def set_targets(self, targets: list[str], job: str = "renkei-hub") -> None:
        self.targets_set.append(targets)

    def query(self, expr: str) -> list[dict[str, Any]]:
        self.exprs.append(expr)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return [{"metric": {}, "value": [0, str(stamp)]} for stamp in answer]


def test_the_hub_settings_give_it_the_scraped_port(tmp_path: Path) -> None:
    ops = DemoOps(FakePrometheus(tmp_path, [[]]))
    settings = HubSettings().model_copy(update=ops.hub_settings())
    assert settings.health_port == ops.hub_port
    assert settings.lag_check_ms == LAG_CHECK_MS
    assert ops.target == f"127.0.0.1:{ops.hub_port}"
    assert ops.hub_environment() == {
        "RENKEI_HUB_HEALTH_PORT": str(ops.hub_port),
        "RENKEI_HUB_LAG_CHECK_MS": str(LAG_CHECK_MS),
    }


def test_the_inbox_group_is_one_the_agencys_acls_allow() -> None:
    topics = Topics("demo-x.")
    group = DemoOps.inbox_group(topics, "jps")
    assert group.startswith(agency_group_prefix(topics, "jps"))


def test_the_graph_url_plots_the_hubs_inputs(tmp_path: Path) -> None:
    ops = DemoOps(FakePrometheus(tmp_path, [[]]))
    url = urllib.parse.urlsplit(ops.graph_url())
    assert url.path == "/graph"
    assert "renkei_hub_inputs_total" in urllib.parse.parse_qs(url.query)["g0.expr"][0]


async def test_watching_points_prometheus_at_the_hub_and_waits_for_a_scrape(
    tmp_path: Path,
) -> None:
    prometheus = FakePrometheus(tmp_path, [[], PrometheusError("not yet"), [100.0]])
    ops = DemoOps(prometheus)
    await ops.watching()
    assert prometheus.targets_set == [[ops.target]]
    assert len(prometheus.exprs) == 3  # no scrape, an error, then the scrape
    # The sample's own time (a selector's), not the evaluation time `up == 1` would give.
    assert prometheus.exprs[0].startswith(
        f'timestamp(up{{job="renkei-hub", instance="{ops.target}"}})'
    )


async def test_settled_keeps_the_second_scrape_after_the_scenes(tmp_path: Path) -> None:
    prometheus = FakePrometheus(tmp_path, [[1.0], [4e9], [4e9], [4e9 + 1]])
    ops = DemoOps(prometheus)
    await ops.settled()
    assert ops.scraped_at == 4e9 + 1


async def test_settled_gives_up_when_prometheus_never_scrapes(tmp_path: Path) -> None:
    ops = DemoOps(FakePrometheus(tmp_path, [[1.0]]), timeout_s=0)
    await ops.settled()  # returns: a demo never hangs on its monitoring
    assert ops.scraped_at is None
