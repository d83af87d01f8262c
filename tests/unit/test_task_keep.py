"""A bucket's task kept across a rebalance only when nobody wrote its bucket meanwhile.

The decision (:func:`hub_stream.watermarks.why_restore`) on fake offsets, how the reader
proves the offsets are the task's own, and what the :class:`~hub_stream.tasks.TaskManager`
does with each bucket of an eager rebalance: given back and unchanged → kept, given back
and written by someone else → restored by a new task, not given back → dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import ProducerFenced

import hub_stream.tasks as tasks_module
from hub_stream.tasks import TaskManager
from hub_stream.watermarks import (
    OwnershipUnprovenError,
    WatermarkReader,
    Watermarks,
    why_restore,
)
from renkei.topics import Topics

PERSONS = TopicPartition("u.hub.state.persons", 1)
AUDIT = TopicPartition("u.hub.audit", 1)
ROUTE = TopicPartition("u.hub.route", 1)


def marks(persons: int = 10, audit: int = 20, position: int = 5) -> Watermarks:
    return Watermarks({PERSONS: persons, AUDIT: audit}, position)


# -- the decision ---------------------------------------------------------------------------


def test_unchanged_offsets_keep_the_task() -> None:
    assert why_restore(marks(), marks()) is None


@pytest.mark.parametrize(
    ("now", "named"),
    [
        (marks(persons=12), "u.hub.state.persons[1]"),  # another owner's rows and marker
        (marks(audit=21), "u.hub.audit[1]"),  # a zombie's aborted write moved it too
        (marks(position=9), "hub.route"),  # another owner consumed the bucket's input
    ],
)
def test_any_moved_offset_means_restore(now: Watermarks, named: str) -> None:
    why = why_restore(marks(), now)
    assert why is not None
    assert named in why


def test_unknown_or_other_partitions_mean_restore() -> None:
    assert why_restore(None, marks()) is not None
    assert why_restore(marks(), None) is not None
    fewer = Watermarks({PERSONS: 10}, 5)
    assert why_restore(marks(), fewer) is not None


# -- the reader: the offsets, then the proof ----------------------------------------------


class _Offsets:
    """A consumer's offset look-ups, answering from dicts."""

    def __init__(self, ends: dict[TopicPartition, int], committed: int | None) -> None:
        self.ends = ends
        self.committed_at = committed
        self.calls: list[str] = []

    async def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        self.calls.append("end_offsets")
        return {tp: self.ends[tp] for tp in partitions}

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.committed_at

    async def beginning_offsets(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return dict.fromkeys(partitions, 3)


class _Writer:
    def __init__(
        self, calls: list[str], fail: BaseException | None = None, retry: bool = False
    ) -> None:
        self.calls = calls
        self.fail = fail
        self.retry = retry
        self.aborted = 0
        self.commit_s = 0.0
        self.written: list[dict[TopicPartition, int]] = []

    async def write(
        self, outputs: list[Any], offsets: dict[TopicPartition, int], group: str
    ) -> None:
        self.calls.append("write")
        assert outputs == []
        assert group == "u.hub-tasks"
        if self.fail is not None:
            raise self.fail
        if self.retry:
            self.aborted += 1  # the writer restarted its producer and tried again
        self.written.append(offsets)


def _reader(offsets: _Offsets) -> WatermarkReader:
    return WatermarkReader(offsets, "u.hub-tasks", "u.hub.route")


async def test_record_reads_then_commits_the_route_offset_unchanged() -> None:
    offsets = _Offsets({PERSONS: 10, AUDIT: 20}, committed=5)
    writer = _Writer(offsets.calls)
    left = await _reader(offsets).record(1, [PERSONS, AUDIT], writer)  # type: ignore[arg-type]
    assert left == marks()
    assert offsets.calls == ["end_offsets", "write"]  # read first: the commit proves it
    assert writer.written == [{ROUTE: 5}]


async def test_a_bucket_never_committed_counts_from_its_beginning() -> None:
    offsets = _Offsets({PERSONS: 0, AUDIT: 0}, committed=None)
    now = await _reader(offsets).read(1, [PERSONS, AUDIT])
    assert now.position == 3


async def test_a_fenced_or_retried_proof_is_no_proof() -> None:
    offsets = _Offsets({PERSONS: 10, AUDIT: 20}, committed=5)
    fenced = _Writer(offsets.calls, fail=ProducerFenced())
    with pytest.raises(ProducerFenced):
        await _reader(offsets).record(1, [PERSONS, AUDIT], fenced)  # type: ignore[arg-type]
    retried = _Writer(offsets.calls, retry=True)
    with pytest.raises(OwnershipUnprovenError):
        await _reader(offsets).record(1, [PERSONS, AUDIT], retried)  # type: ignore[arg-type]


# -- the manager through an eager rebalance ------------------------------------------------


class _Member:
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def subscribe(self, topics: Sequence[str], listener: Any) -> None: ...

    def pause(self, *partitions: Any) -> None: ...


class _Marks:
    """The manager's watermark reader: the offsets each bucket has now."""

    def __init__(self) -> None:
        self.now: dict[int, Watermarks] = {}

    async def read(self, bucket: int, watched: Sequence[TopicPartition]) -> Watermarks:
        return self.now[bucket]


class _Task:
    def __init__(self, bucket: int, left: Watermarks | None = None) -> None:
        self.bucket = bucket
        self.left = left
        self.failure: BaseException | None = None
        self.events: list[str] = []

    def watched(self) -> list[TopicPartition]:
        return []

    def start(self) -> None:
        self.events.append("start")

    async def pause(self, marks: Any) -> Watermarks | None:
        self.events.append("pause")
        return self.left

    def drop(self) -> None:
        self.events.append("drop")

    async def reopen(self) -> None:
        self.events.append("reopen")

    def resume(self) -> None:
        self.events.append("resume")

    async def stop(self) -> None:
        self.events.append("stop")


def _tps(*buckets: int) -> list[TopicPartition]:
    return [TopicPartition("u.hub.route", b) for b in buckets]


async def test_a_rebalance_keeps_what_is_unchanged_and_restores_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks_module, "committed_reader", lambda *_, **__: _Member())
    created: list[_Task] = []

    def new_task(bucket: int) -> _Task:
        created.append(_Task(bucket, left=marks()))
        return created[-1]

    manager = TaskManager({}, Topics("u.", 5), "u.hub-tasks", new_task)  # type: ignore[arg-type]
    fake = _Marks()
    manager.marks = fake  # type: ignore[assignment]
    await manager.on_partitions_assigned(_tps(0, 1, 2, 3, 4))
    first: dict[int, _Task] = dict(manager.tasks)  # type: ignore[arg-type]
    now: dict[int, object] = manager.tasks  # type: ignore[assignment]  # the fakes, as objects
    assert manager.restores == dict.fromkeys(range(5), 1)
    first[4].left = None  # it was still restoring when revoked: nothing to keep

    fake.now = {0: marks(), 1: marks(persons=11), 3: marks(), 4: marks()}
    await manager.on_partitions_revoked(_tps(0, 1, 2, 3, 4))
    assert manager.owned() == []
    assert all(t.events[-1] == "pause" for t in first.values())
    await manager.on_partitions_assigned(_tps(0, 1, 3, 4))

    assert manager.owned() == [0, 1, 3, 4]
    assert now[0] is first[0]
    assert now[3] is first[3]
    assert first[0].events == ["start", "pause", "reopen", "resume"]
    assert first[1].events == ["start", "pause", "reopen", "stop"]
    assert now[1] is not first[1]  # a new task restores it
    assert now[4] is not first[4]
    assert first[2].events == ["start", "pause", "drop"]  # moved away: its store closed
    assert manager.restores == {0: 1, 1: 2, 2: 1, 3: 1, 4: 2}
    assert manager.kept == {0: 1, 3: 1}
