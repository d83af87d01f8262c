"""A Prometheus on loopback, started and stopped by Renkei itself (``renkei ops up|down``).

``Prometheus(home, port).start()`` writes a config under ``<home>/ops/prometheus/``
(scrape every second, the ``renkei-hub`` job reading its targets from ``targets.json``,
the packaged alert rules ``infra/prometheus/alerts.yml``), spawns Debian's
``/usr/bin/prometheus`` detached from the caller, records its PID and waits until it
answers ``/-/ready``. ``stop()`` ends exactly that process and nothing else, as
``renkei kafka down`` does for the broker.

Its files, binaries and errors are in :mod:`renkei.ops.prometheus_files`; the names this
module's callers need are re-exported here.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from infra.kafka.processes import alive, spawn

from .prometheus_files import (
    HUB_JOB,
    LISTEN_FLAG,
    BadTargetError,
    PrometheusError,
    PrometheusMissing,
    PrometheusStartError,
    alert_rules,
    check_target,
    cmdline,
    config_text,
    find_prometheus,
    find_promtool,
    job_of,
    our_pid,
    write_atomically,
)

__all__ = [
    "HUB_JOB",
    "BadTargetError",
    "Prometheus",
    "PrometheusError",
    "PrometheusMissing",
    "PrometheusStartError",
    "alert_rules",
    "find_prometheus",
    "find_promtool",
    "running",
]


class Prometheus:
    """One Prometheus process scraping Renkei's workers, with its files under ``home``.

    :param home: ``RENKEI_HOME``; config, data, log and PID go to ``<home>/ops/prometheus/``.
    :param port: where its web API and UI listen, on 127.0.0.1.
    """

    def __init__(self, home: Path, port: int = 9090) -> None:
        self.home = home.resolve()
        self.port = port
        self.directory = self.home / "ops" / "prometheus"

    @property
    def url(self) -> str:
        """Base URL of its web UI and API."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.directory / "prometheus.yml"

    @property
    def targets_file(self) -> Path:
        return self.directory / "targets.json"

    @property
    def pid_file(self) -> Path:
        return self.directory / "prometheus.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "prometheus.log"

    def pid(self) -> int | None:
        """PID of the Prometheus started from this home if it still runs, else ``None``."""
        return our_pid(self.directory)

    def start(self, timeout_s: float = 30) -> None:
        """Start it unless it already runs here; return once ``/-/ready`` answers 200."""
        binary = find_prometheus()
        current = running(self.home)
        if current is not None:
            if current.port != self.port:
                raise PrometheusStartError(
                    f"Prometheus from {self.home} already runs on port {current.port}",
                    "`renkei ops down` first, or use that port",
                )
            return
        self._require_free()
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.targets_file.exists():
            self._write_targets([])
        self._write_config()
        command = [
            str(binary),
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"{LISTEN_FLAG}{self.port}",
            # A demo's few hours; a long-lived deployment runs its own Prometheus.
            "--storage.tsdb.retention.time=2d",
        ]
        pid = spawn(command, self.log_file)
        self.pid_file.write_text(f"{pid}\n")
        try:
            self._wait_ready(pid, timeout_s)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout_s: float = 30) -> int | None:
        """Stop the Prometheus this home started (SIGTERM, then SIGKILL); return its PID."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                while alive(pid):
                    time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return pid

    def set_targets(self, targets: list[str], job: str = HUB_JOB) -> None:
        """Make ``job`` scrape exactly ``targets`` (``HOST:PORT``); other jobs' stay.

        Prometheus re-reads the file within two seconds; no restart is needed.
        """
        checked = [check_target(target) for target in targets]
        groups: list[dict[str, Any]] = []
        if self.targets_file.exists():
            groups = [g for g in json.loads(self.targets_file.read_text()) if job_of(g) != job]
        if checked:
            # file_sd's `job` label overrides the scrape config's job_name, so one
            # file_sd file can feed several jobs.
            groups.append({"targets": checked, "labels": {"job": job}})
        self._write_targets(groups)

    def targets(self, job: str = HUB_JOB) -> list[str]:
        """The targets ``job`` scrapes, as written by :meth:`set_targets`."""
        if not self.targets_file.exists():
            return []
        groups = json.loads(self.targets_file.read_text())
        return [t for g in groups if job_of(g) == job for t in g["targets"]]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Evaluate ``expr`` now: the ``result`` of ``/api/v1/query``.

        A scalar or string result comes back as one entry without labels, so the caller
        always gets ``[{"metric": {...}, "value": [time, "text"]}, ...]``.
        """
        data = self._api("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        result = data["result"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": result}]
        return list(result)

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts pending or firing now (``/api/v1/alerts``)."""
        return list(self._api("/api/v1/alerts")["alerts"])

    def _api(self, path: str) -> dict[str, Any]:
        try:
            # Our own loopback URL, never one from input: S310's file:// worry does not apply.
            with urllib.request.urlopen(self.url + path, timeout=10) as response:  # noqa: S310
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            # Prometheus answers a bad query with 400 and the reason in a JSON body.
            try:
                body = json.load(exc)
            except ValueError:
                body = {"errorType": f"HTTP {exc.code}", "error": path}
            raise PrometheusError(f"{body.get('errorType')}: {body.get('error')}") from exc
        except OSError as exc:
            raise PrometheusError(f"Prometheus at {self.url} cannot be reached: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"{body.get('errorType')}: {body.get('error')}")
        return dict(body["data"])

    def _wait_ready(self, pid: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not alive(pid):
                raise PrometheusStartError("Prometheus exited during start-up", self._tail())
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1):  # noqa: S310 - ours
                    return
            except OSError:  # refused, or 503 while it replays its WAL: not ready yet
                time.sleep(0.2)
        raise PrometheusStartError(
            f"Prometheus did not get ready on {self.url} within {timeout_s:.0f} s", self._tail()
        )

    def _require_free(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", self.port))
            except OSError as exc:
                raise PrometheusStartError(
                    f"port {self.port} on 127.0.0.1 is already in use",
                    "stop what holds it, or choose another with `renkei ops up --port N`",
                ) from exc

    def _write_config(self) -> None:
        self.config_file.write_text(config_text(self.targets_file))

    def _write_targets(self, groups: list[dict[str, Any]]) -> None:
        write_atomically(self.targets_file, json.dumps(groups, indent=2) + "\n")

    def _tail(self, lines: int = 20) -> str:
        if not self.log_file.exists():
            return "(no log written)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


def running(home: Path) -> Prometheus | None:
    """The Prometheus started from ``home`` if it still runs (its port from its command line)."""
    pid = our_pid(home.resolve() / "ops" / "prometheus")
    if pid is None:
        return None
    for part in cmdline(pid):
        if part.startswith(LISTEN_FLAG):
            return Prometheus(home, int(part.removeprefix(LISTEN_FLAG)))
    return None
