"""What Renkei's Prometheus runs with: its binaries, rules, config and files, and its errors.

Errors::

    RenkeiError
    └── PrometheusError          Prometheus answered an error, or cannot be reached
        ├── PrometheusMissing    the prometheus or promtool binary is not installed
        ├── PrometheusStartError it exited, or never got ready (``log_tail`` says why)
        └── BadTargetError       a scrape target that is not HOST:PORT
"""

from __future__ import annotations

import json
import os
import re
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from infra.kafka.processes import alive
from renkei.errors import RenkeiError

__all__ = [
    "HUB_JOB",
    "LISTEN_FLAG",
    "BadTargetError",
    "PrometheusError",
    "PrometheusMissing",
    "PrometheusStartError",
    "alert_rules",
    "check_target",
    "cmdline",
    "config_text",
    "find_prometheus",
    "find_promtool",
    "job_of",
    "our_pid",
    "write_atomically",
]

HUB_JOB = "renkei-hub"
LISTEN_FLAG = "--web.listen-address=127.0.0.1:"
_INSTALL_HINT = "`apt-get install prometheus` (Debian; `make setup` does it), or put it on PATH"
_TARGET = re.compile(r"^(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})$")


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


def check_target(target: str) -> str:
    """``target`` if it is ``HOST:PORT``, else :class:`BadTargetError`."""
    match = _TARGET.match(target)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise BadTargetError(f"scrape target {target!r} is not HOST:PORT (e.g. 127.0.0.1:8081)")
    return target


def job_of(group: dict[str, Any]) -> str:
    """The job a file_sd target group feeds (the scrape config's own when it names none)."""
    return str(group.get("labels", {}).get("job", HUB_JOB))


def config_text(targets_file: Path) -> str:
    """``prometheus.yml``: one-second scrapes of the hub job from ``targets_file``, our rules."""
    config = {
        # A demo lasts minutes: one-second resolution shows each step as it happens.
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(alert_rules())],
        "scrape_configs": [
            {
                "job_name": HUB_JOB,
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "1s"}],
            }
        ],
    }
    # JSON is YAML: no YAML library is needed at run time.
    return json.dumps(config, indent=2) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` aside and rename it over ``path``: Prometheus never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text)
    os.replace(partial, path)


def cmdline(pid: int) -> list[str]:
    """The command line of process ``pid`` (empty if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def our_pid(directory: Path) -> int | None:
    """PID in ``directory``'s ``prometheus.pid`` if that process runs its ``prometheus.yml``."""
    try:
        pid = int((directory / "prometheus.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    # A PID can be reused after a reboot: it is ours only if it runs our config file.
    config = f"--config.file={directory / 'prometheus.yml'}"
    if not alive(pid) or config not in cmdline(pid):
        return None
    return pid
