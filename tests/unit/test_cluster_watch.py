"""The cluster id check asks for no topic's metadata: on a broker of many topics, every
topic's metadata costs the hub's event loop tens of milliseconds each time."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from hub_stream.cluster import ClusterWatch
from renkei.errors import ClusterChangedError


class _Admin:
    def __init__(self) -> None:
        self.asked: list[list[str] | None] = []
        self.cluster = "c-1"

    async def _get_cluster_metadata(self, topics: list[str] | None = None) -> Any:
        self.asked.append(topics)
        return SimpleNamespace(cluster_id=self.cluster)

    async def describe_cluster(self) -> dict[str, Any]:
        raise AssertionError("describe_cluster reads every topic's metadata")


async def test_the_cluster_id_is_read_without_any_topic() -> None:
    watch = ClusterWatch({})
    admin = _Admin()
    watch._admin = admin
    watch.cluster_id = await watch._describe()
    await watch.check()
    assert watch.cluster_id == "c-1"
    assert admin.asked == [[], []]
    admin.cluster = "c-2"
    with pytest.raises(ClusterChangedError, match="c-2"):
        await watch.check()
