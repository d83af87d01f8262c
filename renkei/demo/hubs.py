"""The demo's hub: a worker in a process of its own, or in the demo's own event loop.

Both run one :class:`~hub_stream.worker.HubService` (the worker ``renkei hub`` starts)
and answer the same three calls — :meth:`start`, :meth:`state` (the hub's person count,
its counters, its CPU seconds), :meth:`stop` — so the demo runs the same either way.

* :class:`HubProcess` (the default): ``python -m renkei.demo.hub_main`` with the worker's
  settings in ``RENKEI_*`` and ``RENKEI_HUB_*``, as a deployment runs the hub beside its
  agencies: an interpreter and an event loop of its own. The demo talks to it over the
  child's standard input and output, one JSON line each way: the child writes
  ``{"ready": true}`` once the worker runs (or exits non-zero), answers each ``state``
  line, and stops the worker when its input ends.
* :class:`InProcessHub`: the worker in the demo's process, sharing one event loop (and
  one interpreter lock) with the six agencies. It measured the faster of the two only
  with the two cores heavily oversubscribed (``docs/benchmarks.md``), most likely because
  each hop between two processes then waits for the scheduler to run the other.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, Protocol

from renkei.errors import RenkeiError

__all__ = ["DemoHub", "HubProcess", "HubProcessError", "HubState", "InProcessHub", "state_of"]

HubState = dict[str, Any]
"""What :meth:`DemoHub.state` answers: ``persons`` (int), ``metrics`` (``Hub.metrics``) and
``cpu_s`` (the CPU seconds of the process the hub runs in)."""


class HubProcessError(RenkeiError):
    """The demo's hub process failed to start or stopped answering."""


class DemoHub(Protocol):
    """What the demo asks of its hub, wherever it runs."""

    in_process: bool
    """Whether the hub shares the demo's process (and event loop)."""

    async def start(self) -> None:
        """Start the worker; return once its loop runs (state restored)."""

    async def state(self) -> HubState:
        """The hub's person count, counters and CPU seconds, as of now."""

    async def stop(self) -> None:
        """Stop the worker."""


def state_of(service: Any) -> HubState:
    """``state`` of a running :class:`~hub_stream.worker.HubService`."""
    hub = service.hub
    return {"persons": len(hub.persons), "metrics": dict(hub.metrics),
            "cpu_s": time.process_time()}  # fmt: skip


class InProcessHub:
    """The hub worker in this process and event loop.

    :param kafka: the hub principal's aiokafka keyword arguments.
    :param settings: its ``HubSettings``.
    """

    in_process = True

    def __init__(self, kafka: dict[str, Any], settings: Any) -> None:
        from hub_stream.worker import HubService

        self.service = HubService(kafka, settings)

    async def start(self) -> None:
        """Start the worker (state restored, its loop running)."""
        await self.service.start()

    async def state(self) -> HubState:
        """The hub's person count, counters and this process's CPU seconds."""
        return state_of(self.service)

    async def stop(self) -> None:
        """Stop the worker."""
        await self.service.stop()


class HubProcess:
    """Starts the hub worker in a child process; reads its state; stops it.

    :param env: ``RENKEI_*`` variables of the worker (connection, topic prefix, key
        folder), on top of this process's environment.
    """

    in_process = False

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = {**os.environ, **env}
        self._child: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def start(self, timeout_s: float = 120) -> None:
        """Start the worker and wait until it says it runs.

        :raises HubProcessError: it exited, or said nothing within ``timeout_s``.
        """
        self._child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "renkei.demo.hub_main", env=self.env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            answer = await self._read(timeout_s)
            if answer.get("ready") is not True:
                raise HubProcessError(f"the hub process said {answer!r}, not that it is ready")
        except BaseException:
            await self.stop(timeout_s=5)
            raise

    async def state(self, timeout_s: float = 30) -> HubState:
        """The hub's person count, counters and CPU seconds, as of now.

        :raises HubProcessError: the process is not running or did not answer.
        """
        async with self._lock:  # one question, one answer: never interleaved
            child = self._running()
            assert child.stdin is not None
            child.stdin.write(b"state\n")
            await child.stdin.drain()
            return await self._read(timeout_s)

    async def stop(self, timeout_s: float = 30) -> None:
        """Close its input (the worker stops and exits); kill it if it lingers."""
        child, self._child = self._child, None
        if child is None:
            return
        if child.stdin is not None and not child.stdin.is_closing():
            child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), timeout_s)
        except TimeoutError:
            child.kill()
            await child.wait()

    def _running(self) -> asyncio.subprocess.Process:
        if self._child is None or self._child.returncode is not None:
            raise HubProcessError("the hub process is not running")
        return self._child

    async def _read(self, timeout_s: float) -> HubState:
        child = self._running()
        assert child.stdout is not None
        try:
            line = await asyncio.wait_for(child.stdout.readline(), timeout_s)
        except TimeoutError:
            raise HubProcessError(f"the hub process said nothing for {timeout_s:g} s") from None
        if not line:
            code = await child.wait()
            raise HubProcessError(f"the hub process exited ({code}); its log is above")
        try:
            answer: HubState = json.loads(line)
        except ValueError as exc:
            raise HubProcessError(f"the hub process wrote {line[:200]!r}, not JSON") from exc
        return answer
