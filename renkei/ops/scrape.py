"""Which workers ``renkei top`` scrapes, and scraping them.

Targets are ``HOST:PORT`` of each worker's health port (``RENKEI_HUB_HEALTH_PORT``), named
on the command line or read from the file_sd list ``renkei ops`` keeps for Prometheus
(``$RENKEI_HOME/ops/prometheus/targets.json``: ``[{"targets": [...], "labels": {...}}]``).
A target that does not answer becomes a :class:`~renkei.ops.snapshot.Snapshot` with an
``error``, never an exception: one dead worker must not blank the dashboard.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from renkei.errors import ConfigurationError

from .prometheus import HUB_JOB
from .snapshot import Snapshot, parse_metrics

__all__ = ["parse_target", "read_targets", "scrape", "scrape_all", "targets_file"]


def targets_file(home: Path) -> Path:
    """Where ``renkei ops`` keeps the file_sd list of targets under ``RENKEI_HOME``."""
    return home / "ops" / "prometheus" / "targets.json"


def parse_target(text: str) -> str:
    """Check a ``HOST:PORT`` target and return it stripped.

    :raises ConfigurationError: no port, or a port that is not a number in 1-65535.
    """
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"target {text!r} is not HOST:PORT (a worker's health port)")
    return f"{host}:{port}"


def read_targets(path: Path, job: str = HUB_JOB) -> list[str]:
    """The targets of ``job`` in a Prometheus file_sd JSON file, in order, without repeats.

    A group without a ``job`` label counts as ``job``'s: Prometheus gives it the job of
    the scrape config that reads the file, which for this file is the hub's.

    :raises ConfigurationError: the file is unreadable or not a file_sd list.
    """
    try:
        groups = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the targets file {path}: {exc}") from exc
    if not isinstance(groups, list) or not all(
        isinstance(g, dict) and isinstance(g.get("targets"), list) for g in groups
    ):
        raise ConfigurationError(
            f"{path} is not a Prometheus file_sd list ([{{'targets': [...]}}, ...])"
        )
    seen: dict[str, None] = {}
    for group in groups:
        labels = group.get("labels")
        if isinstance(labels, dict) and labels.get("job", job) != job:
            continue
        for target in group["targets"]:
            seen[parse_target(str(target))] = None
    return list(seen)


async def scrape(session: aiohttp.ClientSession, target: str, timeout_s: float) -> Snapshot:
    """Fetch and parse ``http://TARGET/metrics``; a failure is a snapshot with ``error``."""
    try:
        async with asyncio.timeout(timeout_s):
            async with session.get(f"http://{target}/metrics") as response:
                if response.status != 200:
                    return Snapshot(target, time.monotonic(), error=f"HTTP {response.status}")
                text = await response.text()
        return parse_metrics(target, time.monotonic(), text)
    except TimeoutError:
        return Snapshot(target, time.monotonic(), error=f"no answer in {timeout_s:g} s")
    except aiohttp.ClientConnectorError as exc:
        # The OS error's name ("ConnectionRefusedError") says it all; its message only
        # repeats the address already in the row.
        return Snapshot(target, time.monotonic(), error=type(exc.os_error).__name__)
    except aiohttp.ClientError as exc:
        return Snapshot(target, time.monotonic(), error=f"{type(exc).__name__}: {exc}")
    except ConfigurationError as exc:
        return Snapshot(target, time.monotonic(), error=str(exc))


async def scrape_all(
    session: aiohttp.ClientSession, targets: Sequence[str], timeout_s: float
) -> dict[str, Snapshot]:
    """Scrape every target at once; the result keeps the targets' order."""
    snapshots = await asyncio.gather(*(scrape(session, t, timeout_s) for t in targets))
    return dict(zip(targets, snapshots, strict=True))
