"""``python -m renkei.demo.hub_main``: the child side of :class:`~renkei.demo.hubs.HubProcess`.

Runs one hub worker with its settings from ``RENKEI_*`` and ``RENKEI_HUB_*``; writes
``{"ready": true}`` once it runs, answers each ``state`` line of its input with the
hub's state (:func:`~renkei.demo.hubs.state_of`) as one JSON line, and stops the worker
when its input ends. Its output is the protocol: the worker's log goes to stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from renkei.demo.hubs import HubState, state_of

__all__ = ["serve"]


async def serve() -> None:
    """Run the worker; answer ``state`` lines until the input ends."""
    from hub_stream.settings import HubSettings
    from hub_stream.worker import HubService
    from renkei.settings import KafkaSettings

    service = HubService(KafkaSettings().kafka_kwargs(), HubSettings())
    await service.start()
    out = sys.stdout.buffer

    def answer(value: HubState) -> None:
        out.write(json.dumps(value).encode() + b"\n")
        out.flush()

    try:
        answer({"ready": True})
        loop = asyncio.get_running_loop()
        # A blocking read in a thread: the worker's loop never waits on the demo.
        while line := await loop.run_in_executor(None, sys.stdin.buffer.readline):
            if line.strip() == b"state":
                answer(state_of(service))
    finally:
        await service.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    asyncio.run(serve())
