"""`renkei hub` as operators run it: readiness signals, its data folder, losing its cluster."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from infra.kafka import LocalCluster
from renkei.operator.directory_file import load_directory_file
from renkei.operator.publish import init_keys
from renkei.topics import Topics
from tests.conftest import _free_base_port
from tests.integration.principals import Principals


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_hub(
    broker: str | Principals, topics: Topics, tmp_path: Path, *args: str, **env: str
) -> subprocess.Popen[bytes]:
    """``renkei hub ARGS`` under the ``hub`` principal (on a secure broker, its login)."""
    principals = broker if isinstance(broker, Principals) else Principals(broker)
    key_dir = tmp_path / "keys"
    if not key_dir.exists():
        init_keys(key_dir)
    environment = {
        **os.environ,
        **principals.environment("hub"),
        "RENKEI_HOME": str(tmp_path / "home"),
        "RENKEI_HUB_TOPIC_PREFIX": topics.prefix,
        "RENKEI_HUB_KEY_DIR": str(key_dir),
        "RENKEI_HUB_GROUP_ID": f"{topics.prefix}hub",
        **env,
    }
    with (tmp_path / "hub.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "renkei", "hub", *args],
            env=environment, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def wait_for(
    check: Callable[[], bool], process: subprocess.Popen[bytes] | None, log: Path
) -> None:
    """Until ``check()`` holds; fail at once if ``process`` exits, or after 120 s."""
    deadline = asyncio.get_running_loop().time() + 120
    while not check():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the hub exited {process.returncode}:\n{tail(log)}")
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met in time:\n{tail(log)}")
        await asyncio.sleep(0.1)


def tail(log: Path) -> str:
    return log.read_text()[-3000:]


def data_folders(where: Path) -> list[str]:
    return sorted(p.name for p in where.glob("*-data"))


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


async def test_ready_file_and_health_endpoint_follow_the_hub(
    principals: Principals, topics: Topics, tmp_path: Path
) -> None:
    ready, port = tmp_path / "run" / "hub.ready", _free_port()
    if principals.secure:  # faust's control app and the data plane, both as `hub`
        await principals.grant(load_directory_file(), topics)
    hub = start_hub(principals, topics, tmp_path, "--ready-file", str(ready),
                    "--health-port", str(port))  # fmt: skip
    try:
        await wait_for(ready.exists, hub, tmp_path / "hub.log")
        report = json.loads(ready.read_text())
        assert report["ready"] is True
        assert report["pid"] == hub.pid
        assert report["cluster_id"]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            assert response.status == 200
            body = await response.json()
        assert body["ready"] is True
        assert body["worker_id"] == "worker-1"
    finally:
        code = stop(hub)
    assert code == 0
    assert not ready.exists(), "the ready file outlived the hub"
    # faust's data folder lives under RENKEI_HOME, not in the working directory.
    assert data_folders(tmp_path) == []
    assert data_folders(tmp_path / "home" / "hub") == [f"{topics.prefix}hub-control-worker-1-data"]


@pytest.mark.slow
async def test_a_hub_whose_cluster_is_replaced_stops_with_a_clear_error(
    topics: Topics, tmp_path: Path
) -> None:
    """A new cluster started on the same port (another cluster id) must not be used."""
    base = _free_base_port()
    first = LocalCluster(tmp_path / "first" / "kafka", base_port=base)
    bootstrap = await asyncio.to_thread(first.up, timeout_s=120)  # it runs its own loop
    ready, log = tmp_path / "hub.ready", tmp_path / "hub.log"
    second: LocalCluster | None = None
    hub = start_hub(bootstrap, topics, tmp_path, "--ready-file", str(ready),
                    RENKEI_HUB_CLUSTER_CHECK_MS="500")  # fmt: skip
    try:
        await wait_for(ready.exists, hub, log)
        first_id = json.loads(ready.read_text())["cluster_id"]
        await asyncio.to_thread(first.down)
        second = LocalCluster(tmp_path / "second" / "kafka", base_port=base)
        assert await asyncio.to_thread(second.up, timeout_s=120) == bootstrap
        await wait_for(lambda: hub.poll() is not None, None, log)
    finally:
        code = stop(hub)
        for cluster in (first, second):
            if cluster is not None:
                await asyncio.to_thread(cluster.down)
    text = log.read_text()
    assert code != 0, text[-3000:]
    assert f"not {first_id} that this hub started on" in text
    assert "ClusterChangedError" in text
    assert not ready.exists()
