"""A Prometheus on loopback, started and stopped by Renkei itself (``renkei ops up|down``).

``Prometheus(home, port).start()`` writes a config under ``<home>/ops/prometheus/``
(scrape every second, the ``renkei-hub`` job reading its targets from ``targets.json``,
the packaged alert rules ``infra/prometheus/alerts.yml``), spawns Debian's
``/usr/bin/prometheus`` detached from the caller, records its PID and waits until it
answers ``/-/ready``. ``stop()`` ends exactly that process and nothing else, as
``renkei kafka down`` does for the broker.

Errors::

    RenkeiError
    └── PrometheusError          Prometheus answered an error, or cannot be reached
        ├── PrometheusMissing    the prometheus or promtool binary is not installed
        ├── PrometheusStartError it exited, or never got ready (``log_tail`` says why)
        └── BadTargetError       a scrape target that is not HOST:PORT
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

from infra.kafka.processes import alive, spawn
from renkei.errors import RenkeiError

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

HUB_JOB = "renkei-hub"
_INSTALL_HINT = "`apt-get install prometheus` (Debian; `make setup` does it), or put it on PATH"
_TARGET = re.compile(r"^(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})$")
_LISTEN = "--web.listen-address=127.0.0.1:"


class PrometheusError(RenkeiError):
    """Prometheus answered an error status, or could not be reached."""


class PrometheusMissing(PrometheusError):
    """The ``prometheus`` or ``promtool`` binary is not installed."""


class PrometheusStartError(PrometheusError):
    """Prometheus exited during start-up or did not get ready in time."""

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(f"{message}:\n{log_tail}")
        self.log_tail = log_tail


class BadTargetError(PrometheusError):
    """A scrape target that is not ``HOST:PORT``."""


def _find(name: str) -> Path:
    found = shutil.which(name)
    if found is None:
        raise PrometheusMissing(f"{name} is not installed: {_INSTALL_HINT}")
    return Path(found)


def find_prometheus() -> Path:
    """The ``prometheus`` binary on PATH, or :class:`PrometheusMissing` with the install hint."""
    return _find("prometheus")


def find_promtool() -> Path:
    """The ``promtool`` binary on PATH, or :class:`PrometheusMissing` with the install hint."""
    return _find("promtool")


def alert_rules() -> Path:
    """The packaged alert rules, ``infra/prometheus/alerts.yml``."""
    return Path(str(resources.files("infra") / "prometheus" / "alerts.yml"))


def _check_target(target: str) -> str:
    match = _TARGET.match(target)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise BadTargetError(f"scrape target {target!r} is not HOST:PORT (e.g. 127.0.0.1:8081)")
    return target


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
        return _our_pid(self.home)

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
            f"{_LISTEN}{self.port}",
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
        checked = [_check_target(target) for target in targets]
        groups: list[dict[str, Any]] = []
        if self.targets_file.exists():
            groups = [g for g in json.loads(self.targets_file.read_text()) if _job(g) != job]
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
        return [t for g in groups if _job(g) == job for t in g["targets"]]

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
        config = {
            # A demo lasts minutes: one-second resolution shows each step as it happens.
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(alert_rules())],
            "scrape_configs": [
                {
                    "job_name": HUB_JOB,
                    "file_sd_configs": [
                        {"files": [str(self.targets_file)], "refresh_interval": "1s"}
                    ],
                }
            ],
        }
        # JSON is YAML: no YAML library is needed at run time.
        self.config_file.write_text(json.dumps(config, indent=2) + "\n")

    def _write_targets(self, groups: list[dict[str, Any]]) -> None:
        # Written aside and renamed: Prometheus must never read half a file.
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = self.targets_file.with_suffix(".json.tmp")
        partial.write_text(json.dumps(groups, indent=2) + "\n")
        os.replace(partial, self.targets_file)

    def _tail(self, lines: int = 20) -> str:
        if not self.log_file.exists():
            return "(no log written)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


def _job(group: dict[str, Any]) -> str:
    return str(group.get("labels", {}).get("job", HUB_JOB))


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _our_pid(home: Path) -> int | None:
    pid_file = home.resolve() / "ops" / "prometheus" / "prometheus.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    # A PID can be reused after a reboot: it is ours only if it runs our config file.
    config = f"--config.file={pid_file.with_name('prometheus.yml')}"
    if not alive(pid) or config not in _cmdline(pid):
        return None
    return pid


def running(home: Path) -> Prometheus | None:
    """The Prometheus started from ``home`` if it still runs (its port from its command line)."""
    pid = _our_pid(home)
    if pid is None:
        return None
    for part in _cmdline(pid):
        if part.startswith(_LISTEN):
            return Prometheus(home, int(part.removeprefix(_LISTEN)))
    return None
