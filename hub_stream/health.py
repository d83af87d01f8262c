"""When is the hub ready? A ready file and an HTTP health endpoint say so.

The hub is **ready** once its state tables and the directory are restored from Kafka,
its transactional loop has started, and the loop holds its input partitions and has
polled them: from then on a message sent to it is processed. It stops being ready when
it stops, or halts on an error (another cluster, say).

* ``--ready-file PATH`` (``RENKEI_HUB_READY_FILE``): written atomically (a temporary file
  renamed over it) when the hub becomes ready, with the JSON of :meth:`Readiness.report`;
  removed when it stops. A supervisor or a test waits for the file to exist.
* ``--health-port N`` (``RENKEI_HUB_HEALTH_PORT``): ``GET /healthz`` answers 200 with that
  JSON while ready, 503 with ``"ready": false`` and the phase (``starting``,
  ``restoring``, ``joining``, ``stopping``, ``failed``) otherwise. ``GET /metrics`` on the
  same port answers the worker's Prometheus metrics (:mod:`.metrics`), ready or not.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from .metrics import CONTENT_TYPE

__all__ = ["HealthServer", "Readiness"]

log = logging.getLogger(__name__)


class Readiness:
    """The hub's phase, the ready file that mirrors it, and what the endpoint reports.

    :param ready_file: where to write the ready file, or ``None``.
    :param details: called for extra fields of the report (worker id, cluster id, counters).
    """

    def __init__(
        self, ready_file: Path | None = None, details: Callable[[], dict[str, Any]] | None = None
    ) -> None:
        self.ready_file = ready_file
        self._details = details
        self.phase = "starting"
        self.error: str | None = None
        self.ready_since: float | None = None

    @property
    def ready(self) -> bool:
        return self.phase == "ready"

    def enter(self, phase: str) -> None:
        """Move to a phase that is not ready (``restoring``, ``joining``, ``stopping``).

        Removes the ready file, also one a killed predecessor left behind.
        """
        self.phase = phase
        self.ready_since = None
        self._remove_file()

    def set_ready(self) -> None:
        """The hub processes what it is sent; write the ready file."""
        if self.ready or self.phase in ("stopping", "failed"):
            return
        self.phase = "ready"
        self.ready_since = time.time()
        log.info("hub ready: %s", self.report())
        if self.ready_file is not None:
            _write_atomically(self.ready_file, json.dumps(self.report()) + "\n")

    def fail(self, error: BaseException) -> None:
        """The hub halted on ``error``: not ready, and the report says why."""
        self.enter("failed")
        self.error = str(error)

    def report(self) -> dict[str, Any]:
        """What the ready file holds and ``/healthz`` answers."""
        report: dict[str, Any] = {"ready": self.ready, "phase": self.phase, "pid": os.getpid()}
        if self.ready_since is not None:
            report["ready_since"] = round(self.ready_since, 3)
        if self.error is not None:
            report["error"] = self.error
        if self._details is not None:
            report.update(self._details())
        return report

    def _remove_file(self) -> None:
        if self.ready_file is not None:
            self.ready_file.unlink(missing_ok=True)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(temporary, path)  # a reader sees no file or the whole file
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class HealthServer:
    """``GET /healthz`` (and ``GET /metrics``) on ``host:port`` (loopback by default).

    :param readiness: what to report.
    :param port: the TCP port; 0 picks a free one (see :attr:`port` after start).
    :param host: the address to listen on.
    :param metrics: renders the Prometheus text exposition; ``None``: no ``/metrics``.
    """

    def __init__(
        self,
        readiness: Readiness,
        port: int,
        host: str = "127.0.0.1",
        metrics: Callable[[], bytes] | None = None,
    ) -> None:
        self.readiness = readiness
        self.host = host
        self.port = port
        self._metrics = metrics
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        if self._metrics is not None:
            app.router.add_get("/metrics", self._serve_metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        if runner.addresses:  # the port 0 picked
            self.port = int(runner.addresses[0][1])
        log.info("health endpoint on http://%s:%d/healthz", self.host, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        assert self._metrics is not None
        # Rendered on the event loop: a few hundred lines, and the counters it reads are
        # the loop's own, so no batch is half-counted.
        return web.Response(body=self._metrics(), headers={"Content-Type": CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.Response:
        report = self.readiness.report()
        return web.json_response(report, status=200 if report["ready"] else 503)
