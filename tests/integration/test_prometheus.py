"""A real Prometheus started by Renkei scrapes a /metrics endpoint and stops without a trace."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from typer.testing import CliRunner

from infra.kafka.processes import alive
from renkei.cli import app
from renkei.demo.ops import free_port
from renkei.ops.prometheus import Prometheus, PrometheusError, PrometheusStartError, running


@pytest.fixture
def worker() -> Iterator[tuple[str, Gauge]]:
    """A stand-in hub worker: a /metrics endpoint with one gauge of the catalogue."""
    registry = CollectorRegistry()
    ready = Gauge("renkei_hub_ready", "1 while ready", registry=registry)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{server.server_port}", ready
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _eventually(prometheus: Prometheus, expr: str, value: str, within_s: float = 60) -> None:
    # Polls until the scrape has happened; the deadline only bounds a failing test.
    deadline = time.monotonic() + within_s
    seen: list[object] = []
    while time.monotonic() < deadline:
        seen = [sample["value"][1] for sample in prometheus.query(expr)]
        if seen == [value]:
            return
        time.sleep(0.2)
    raise AssertionError(f"{expr} stayed {seen}, never [{value!r}]")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    started = Prometheus(tmp_path, free_port())
    try:
        yield started
    finally:
        started.stop()


def test_it_scrapes_the_targets_it_is_given_and_stops_without_a_trace(
    prometheus: Prometheus, worker: tuple[str, Gauge], tmp_path: Path
) -> None:
    target, ready = worker
    ready.set(42)
    prometheus.start()
    pid = prometheus.pid()
    assert pid is not None
    assert running(tmp_path) is not None
    prometheus.set_targets([target])  # after the start: file_sd picks it up while running
    _eventually(prometheus, 'up{job="renkei-hub"}', "1")
    _eventually(prometheus, f'renkei_hub_ready{{instance="{target}"}}', "42")
    with pytest.raises(PrometheusError, match="parse error"):
        prometheus.query("renkei_hub_ready{")
    assert prometheus.stop() == pid
    assert not alive(pid)
    assert running(tmp_path) is None
    assert prometheus.stop() is None


def test_a_prometheus_that_dies_at_start_says_why(prometheus: Prometheus) -> None:
    # Its storage path is a file: Prometheus exits at once, and the log says so.
    prometheus.directory.mkdir(parents=True)
    (prometheus.directory / "data").write_text("not a directory")
    with pytest.raises(PrometheusStartError, match="exited during start-up") as caught:
        prometheus.start()
    assert "data" in caught.value.log_tail
    assert prometheus.pid() is None


def test_a_taken_port_is_refused_before_anything_starts(prometheus: Prometheus) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", prometheus.port))
        holder.listen()
        with pytest.raises(PrometheusStartError, match="already in use"):
            prometheus.start()
    assert not prometheus.pid_file.exists()


def test_ops_up_status_targets_down_through_the_cli(
    tmp_path: Path, worker: tuple[str, Gauge]
) -> None:
    target, _ = worker
    runner, port = CliRunner(), free_port()
    env = {"RENKEI_HOME": str(tmp_path)}
    try:
        result = runner.invoke(app, ["ops", "up", "--port", str(port)], env=env)
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[-1] == f"http://127.0.0.1:{port}"
        result = runner.invoke(app, ["ops", "targets", target], env=env)
        assert result.exit_code == 0, result.output
        prometheus = running(tmp_path)
        assert prometheus is not None
        assert prometheus.port == port
        _eventually(prometheus, 'up{job="renkei-hub"}', "1")
        result = runner.invoke(app, ["ops", "status"], env=env)
        assert result.exit_code == 0, result.output
        assert f"{target}: up" in result.output
        assert runner.invoke(app, ["ops", "down"], env=env).exit_code == 0
        assert running(tmp_path) is None
        assert runner.invoke(app, ["ops", "status"], env=env).exit_code == 1
    finally:
        Prometheus(tmp_path).stop()
