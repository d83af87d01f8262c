"""``renkei top`` as an operator sees it: a real terminal (a tmux pane) and a worker's /metrics.

The worker is a fake served from the test (aiohttp and a prometheus_client registry with the
catalogue's names), so the test moves its counters itself and reads what the pane shows.
Every wait polls ``tmux capture-pane`` until the frame shows what is expected, or fails at
a deadline; nothing is timed. Last, ``--once`` against a real hub worker's health port.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from renkei.errors import HubRefusedError
from renkei.topics import Topics
from tests.integration.hub_env import HubEnv, hub_env
from tests.integration.principals import Principals
from tests.integration.test_exchange import answering_jps, client, one_person_to_ask_about

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 30.0
TMUX = shutil.which("tmux")
needs_tmux = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (make setup does it)")


@dataclass
class FakeWorker:
    """A hub worker's /metrics with the catalogue's names, moved by the test.

    ``each_scrape`` runs each time /metrics is read (count inputs, observe batches), so a
    steady rate or latency holds on the dashboard for as long as the test needs to see
    it, however slow the machine: a one-off burst would show for one refresh only, and
    a poll could miss it.
    """

    registry: CollectorRegistry
    inputs: Counter
    refusals: Counter
    dead_letters: Counter
    stage: Histogram
    pending: Gauge
    lag: Gauge
    each_scrape: Callable[[], None] | None = None
    runner: web.AppRunner | None = None
    target: str = ""

    async def serve(self) -> None:
        """Serve GET /metrics on a free loopback port (``target``)."""

        async def metrics(_: web.Request) -> web.Response:
            if self.each_scrape is not None:
                self.each_scrape()
            return web.Response(body=generate_latest(self.registry), content_type="text/plain")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        host, port = self.runner.addresses[0][:2]
        self.target = f"{host}:{port}"

    async def stop(self) -> None:
        """Stop answering: the port is closed."""
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def worker() -> AsyncIterator[FakeWorker]:
    registry = CollectorRegistry()
    Gauge("renkei_hub_ready", "ready", registry=registry).set(1)
    labels = ["worker", "role", "topology", "signatures"]
    info = Gauge("renkei_hub_info", "who", labels, registry=registry)
    info.labels("w-top", "hub", "partitioned", "strict").set(1)
    Gauge("renkei_hub_partitions_owned", "owned", registry=registry).set(4)
    Gauge("renkei_hub_restore_remaining_records", "restore", registry=registry).set(0)
    fake = FakeWorker(
        registry=registry,
        inputs=Counter("renkei_hub_inputs", "in", ["type"], registry=registry),
        refusals=Counter("renkei_hub_refusals", "refused", ["code"], registry=registry),
        dead_letters=Counter("renkei_hub_dead_letters", "dead", registry=registry),
        stage=Histogram("renkei_hub_stage_seconds", "stage", ["stage"], registry=registry),
        pending=Gauge("renkei_hub_pending_requests", "pending", registry=registry),
        lag=Gauge("renkei_agency_inbox_lag_records", "lag", ["agency"], registry=registry),
    )
    await fake.serve()
    yield fake
    await fake.stop()


class Pane:
    """A detached 160x50 tmux session on a server socket of the test's own."""

    def __init__(self) -> None:
        assert TMUX is not None
        self.tmux = [TMUX, "-L", f"renkei-top-{uuid.uuid4().hex[:8]}"]
        self.started = False

    def start(self, *args: str) -> None:
        """Run ``python -m renkei ARGS`` in the pane."""
        session = [*self.tmux, "new-session", "-d", "-s", "top", "-x", "160", "-y", "50"]
        # Under pytest the pane inherits COLUMNS=80, which rich would believe over the
        # pane's real size: unset it so rich asks the terminal, as in a real shell.
        env = ["env", "-u", "COLUMNS", "-u", "LINES", "LANG=C.UTF-8"]
        command = [sys.executable, "-m", "renkei", *args]
        subprocess.run([*session, "-c", str(ROOT), *env, *command], check=True)
        self.started = True
        # Keep the pane after the command exits, so a crash's traceback stays readable.
        subprocess.run([*self.tmux, "set-option", "-t", "top", "remain-on-exit", "on"], check=True)

    def capture(self) -> str:
        """What the pane shows now."""
        done = subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-t", "top"],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    async def until(self, what: str, ok: Callable[[str], bool]) -> str:
        """Poll the pane until ``ok(screen)``; fail with the last screen at the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        screen = ""
        while loop.time() < deadline:
            screen = await asyncio.to_thread(self.capture)
            if ok(screen):
                return screen
            await asyncio.sleep(0.1)  # between polls only; the condition decides, not time
        pytest.fail(f"the pane never showed {what}; last screen:\n{screen}")

    def kill(self) -> None:
        """Kill the session (and its tmux server)."""
        if self.started:
            subprocess.run([*self.tmux, "kill-server"], check=False)


@pytest.fixture
def pane() -> Iterator[Pane]:
    one = Pane()
    yield one
    one.kill()


def _row(screen: str, target: str) -> list[str]:
    """The cells of the worker row for ``target`` (split on blanks), or [] if not shown."""
    for line in screen.splitlines():
        cells = line.split()
        if cells and cells[0] == target:
            return cells
    return []


def _line(screen: str, first: str) -> list[str]:
    for line in screen.splitlines():
        cells = line.split()
        if first in cells:
            return cells[cells.index(first) :]
    return []


@needs_tmux
async def test_top_shows_a_worker_its_rates_and_down(worker: FakeWorker, pane: Pane) -> None:
    pane.start("top", "--target", worker.target, "--interval", "0.3")

    def row(screen: str) -> list[str]:
        # target state worker role parts in/s out/s p50 p99 pending restore
        return _row(screen, worker.target)

    identity = ["ready", "w-top", "hub", "4"]
    await pane.until("the worker ready", lambda s: row(s)[1:5] == identity)
    # Nothing counted yet: a known rate of zero once two scrapes are in, not "-".
    await pane.until("in/s 0.0", lambda s: row(s)[5:6] == ["0.0"])

    def busy() -> None:
        worker.inputs.labels("AttributeRequest").inc(100)
        for _ in range(10):
            worker.stage.labels("poll_to_commit").observe(0.02)

    worker.each_scrape = busy
    worker.refusals.labels("BAD_SIGNATURE").inc(3)
    worker.dead_letters.inc(7)
    worker.pending.set(12)
    worker.lag.labels("mhlw").set(345)
    screen = await pane.until("inputs coming in", lambda s: row(s)[5:6] not in ([], ["0.0"]))
    assert float(row(screen)[5].replace(",", "")) > 0
    await pane.until("the refusal code", lambda s: "BAD_SIGNATURE" in s)
    await pane.until("7 dead letters", lambda s: _line(s, "dead")[:3] == ["dead", "letters", "7"])
    await pane.until("the inbox lag", lambda s: _line(s, "mhlw")[:2] == ["mhlw", "345"])
    await pane.until("12 pending", lambda s: row(s)[-2:] == ["12", "0"])
    # Batches of 20 ms fall in the (0.01, 0.025] bucket; the quantiles interpolate inside
    # it as histogram_quantile does: 0.01 + 0.015 * 0.5 and 0.01 + 0.015 * 0.99.
    quantiles = ["17.5", "ms", "24.9", "ms"]
    await pane.until("p50 17.5 ms, p99 24.9 ms", lambda s: row(s)[7:11] == quantiles)
    # Work stops: the rate falls back to zero, the latency to unknown; the totals stay.
    worker.each_scrape = None
    # (out/s stays "-": this fake does not export renkei_hub_outputs_total.)
    await pane.until("in/s back to 0.0", lambda s: row(s)[5:9] == ["0.0", "-", "-", "-"])
    assert _line(pane.capture(), "dead")[:3] == ["dead", "letters", "7"]

    await worker.stop()
    await pane.until(
        "DOWN, connection refused",
        lambda s: row(s)[1:3] == ["DOWN", "ConnectionRefusedError"],
    )


async def _once(*targets: str) -> str:
    """``renkei top --once`` on ``targets``: what it printed (it must exit 0)."""
    args = [arg for target in targets for arg in ("--target", target)]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "renkei", "top", "--once", "--interval", "0.2", *args,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_once_prints_one_frame_with_rates_and_exits(worker: FakeWorker) -> None:
    worker.inputs.labels("LifeEvent").inc(10)
    screen = await _once(worker.target, "127.0.0.1:9")  # the discard port: nobody listens
    assert _row(screen, worker.target)[1:6] == ["ready", "w-top", "hub", "4", "0.0"]
    assert _row(screen, "127.0.0.1:9")[1:2] == ["DOWN"]


@pytest.fixture
async def hub(principals: Principals, topics: Topics, tmp_path: Path) -> AsyncIterator[HubEnv]:
    # Port 0: a free one; the lag read every 100 ms, so that it is there by the first frame.
    async with hub_env(
        principals, topics, tmp_path / "keys", health_port=0, lag_check_ms=100
    ) as running:
        yield running


async def test_once_reads_a_real_hub_worker(hub: HubEnv) -> None:
    city_code, scenario, items = await one_person_to_ask_about(hub, 31)
    provider = answering_jps(hub)
    async with provider, client(hub, "city-shinagawa") as city:
        await city.request(
            link_code=city_code, provider="jps", scenario_id=scenario, items=items[:1]
        )
        with pytest.raises(HubRefusedError):
            await city.request(
                link_code=city_code, provider="jps", scenario_id="S999", items=items[:1]
            )
        assert hub.hub.health is not None
        target = f"127.0.0.1:{hub.hub.health.port}"

        # The worker counts a refusal once its batch commits, a moment after the answer,
        # and reads the lag every 100 ms: poll until both are on the frame.
        def shown(screen: str) -> bool:
            return "UNKNOWN_SCENARIO" in screen and _line(screen, "jps")[1:2] == ["0"]

        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        while not shown(screen := await _once(target)):
            assert loop.time() < deadline, f"the refusal and the lag never showed:\n{screen}"
    assert _row(screen, target)[1:4] == ["ready", "worker-1", "hub"]
    assert _line(screen, "UNKNOWN_SCENARIO")[:2] == ["UNKNOWN_SCENARIO", "0.0"]
