"""The demo's hub process: a worker that cannot start is a typed error, never a hang."""

from __future__ import annotations

from pathlib import Path

import pytest

from renkei.demo.hubs import HubProcess, HubProcessError


async def test_a_hub_process_that_cannot_start_is_an_error(tmp_path: Path) -> None:
    # No master secret in the key folder: the worker refuses to start, before any Kafka.
    hub = HubProcess({"RENKEI_HUB_KEY_DIR": str(tmp_path), "RENKEI_MASTER_KEY": "",
                      "RENKEI_BOOTSTRAP": "127.0.0.1:1"})  # fmt: skip
    with pytest.raises(HubProcessError, match="exited"):
        await hub.start(timeout_s=60)
    with pytest.raises(HubProcessError, match="not running"):
        await hub.state()
    await hub.stop()  # a no-op once it is gone
