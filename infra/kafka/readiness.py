"""Waiting for a starting cluster to answer, and showing why it did not."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from renkei.errors import KafkaLaunchError, StartTimeoutError

from .processes import accepts, alive

if TYPE_CHECKING:
    from .cluster import NodeSpec

__all__ = ["tail", "wait_ready"]


async def wait_ready(
    bootstrap: str,
    nodes: list[NodeSpec],
    pids: dict[int, int],
    timeout_s: float,
    kafka: dict[str, Any],
) -> None:
    """Wait until a metadata request lists every broker; fail early if a JVM dies.

    :param kafka: client keyword arguments besides the bootstrap (secure: the admin's).
    """
    from aiokafka.admin import AIOKafkaAdminClient

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for node in nodes:
            if not alive(pids[node.node_id]):
                raise KafkaLaunchError(
                    f"Kafka node {node.node_id} exited during start-up:\n{tail(node)}"
                )
        if not accepts(nodes[0].broker_port):
            await asyncio.sleep(0.2)
            continue
        options = {**kafka, "bootstrap_servers": bootstrap, "request_timeout_ms": 2000}
        admin = AIOKafkaAdminClient(**options)
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            if len(cluster["brokers"]) >= len(nodes):
                return
        except Exception:  # noqa: S110 - not answering yet is the normal case while it starts
            pass
        finally:
            await admin.close()
        await asyncio.sleep(0.25)
    raise StartTimeoutError(
        f"Kafka did not answer on {bootstrap} within {timeout_s:.0f} s:\n{tail(nodes[0])}"
    )


def tail(node: NodeSpec, lines: int = 20) -> str:
    for path in (node.log, node.log.with_name("console.log")):
        if path.exists() and path.stat().st_size:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log written)"
