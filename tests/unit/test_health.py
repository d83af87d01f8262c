"""Readiness: the ready file and GET /healthz follow the hub's phase."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from hub_stream.health import HealthServer, Readiness


async def _get(port: int) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/healthz") as response,
    ):
        return response.status, await response.json()


async def test_the_endpoint_answers_503_until_ready_then_200_then_503_on_failure(
    tmp_path: Path,
) -> None:
    readiness = Readiness(tmp_path / "ready", lambda: {"worker_id": "w-1"})
    server = HealthServer(readiness, port=0)
    await server.start()
    try:
        assert server.port != 0
        readiness.enter("restoring")
        status, body = await _get(server.port)
        assert (status, body["ready"], body["phase"]) == (503, False, "restoring")
        readiness.set_ready()
        status, body = await _get(server.port)
        assert (status, body["ready"], body["worker_id"]) == (200, True, "w-1")
        readiness.fail(RuntimeError("another cluster"))
        status, body = await _get(server.port)
        assert (status, body["phase"], body["error"]) == (503, "failed", "another cluster")
    finally:
        await server.stop()


def test_the_ready_file_appears_whole_when_ready_and_goes_on_stop(tmp_path: Path) -> None:
    path = tmp_path / "run" / "hub.ready"
    path.parent.mkdir()
    path.write_text("left by a killed hub\n")
    readiness = Readiness(path, lambda: {"cluster_id": "abc"})
    readiness.enter("starting")
    assert not path.exists(), "a stale file must not claim readiness"
    readiness.set_ready()
    report = json.loads(path.read_text())
    assert report["ready"] is True
    assert report["cluster_id"] == "abc"
    assert [p.name for p in path.parent.iterdir()] == ["hub.ready"], "no temporary left"
    readiness.enter("stopping")
    assert not path.exists()
    readiness.set_ready()  # a poll after stop began must not bring it back
    assert not path.exists()
