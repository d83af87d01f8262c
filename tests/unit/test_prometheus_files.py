"""renkei.ops.prometheus without a process: targets, config, finding the binaries, stale PIDs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import renkei.ops
from renkei.ops.prometheus import (
    BadTargetError,
    Prometheus,
    PrometheusMissing,
    alert_rules,
    find_prometheus,
    find_promtool,
    running,
)


def test_set_targets_replaces_one_job_and_keeps_the_others(tmp_path: Path) -> None:
    prometheus = Prometheus(tmp_path)
    prometheus.set_targets(["127.0.0.1:8081", "hub-2:8081"])
    prometheus.set_targets(["127.0.0.1:8091"], job="renkei-verifier")
    prometheus.set_targets(["[::1]:8082"])
    assert prometheus.targets() == ["[::1]:8082"]
    assert prometheus.targets("renkei-verifier") == ["127.0.0.1:8091"]
    groups = json.loads(prometheus.targets_file.read_text())
    assert {g["labels"]["job"] for g in groups} == {"renkei-hub", "renkei-verifier"}
    prometheus.set_targets([])
    assert prometheus.targets() == []
    assert not list(prometheus.directory.glob("*.tmp"))


@pytest.mark.parametrize("target", ["8081", "127.0.0.1", "127.0.0.1:0", "h:65536", "a b:1", ""])
def test_a_target_that_is_not_host_port_is_refused(tmp_path: Path, target: str) -> None:
    prometheus = Prometheus(tmp_path)
    prometheus.set_targets(["127.0.0.1:8081"])
    with pytest.raises(BadTargetError, match="HOST:PORT"):
        prometheus.set_targets(["127.0.0.1:8082", target])
    assert prometheus.targets() == ["127.0.0.1:8081"]


def test_missing_binaries_name_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(PrometheusMissing, match="apt-get install prometheus"):
        find_prometheus()
    with pytest.raises(PrometheusMissing, match="promtool"):
        find_promtool()


def test_a_stale_or_foreign_pid_is_not_taken_for_ours(tmp_path: Path) -> None:
    prometheus = Prometheus(tmp_path)
    assert running(tmp_path) is None
    prometheus.directory.mkdir(parents=True)
    # This test's own process is alive but is no Prometheus of this home.
    prometheus.pid_file.write_text(f"{os.getpid()}\n")
    assert prometheus.pid() is None
    assert running(tmp_path) is None
    assert prometheus.stop() is None
    assert not prometheus.pid_file.exists()


def test_the_rules_are_packaged_beside_their_tests() -> None:
    assert alert_rules().is_file()
    assert alert_rules().with_name("alerts_test.yml").is_file()


def test_the_public_surface() -> None:
    assert set(renkei.ops.__all__) <= set(dir(renkei.ops))
    assert "Prometheus" in renkei.ops.__all__
