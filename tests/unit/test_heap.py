"""The worker's garbage-collector settings after its restore (hub_stream.heap)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from hub_stream import heap


@pytest.fixture
def collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("collector")
def test_settle_freezes_the_restored_state_and_raises_the_young_threshold() -> None:
    restored = [{"row": n} for n in range(1000)]  # what a restore leaves alive
    heap.settle()
    assert gc.get_freeze_count() >= len(restored)
    assert not any(o is restored for o in gc.get_objects(generation=2))  # not walked again
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
