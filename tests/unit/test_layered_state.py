"""State layered by batch, for transactions in flight: the next batch is handled on top of
the previous one's staged changes, each batch writes only its own changes, commits go in
batch order, and an abort takes its batch and every later one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub_stream.replays import ReplayMemory
from hub_stream.state import Table
from hub_stream.store import RocksStores, StoreFactory
from schemas.models import AttributeResponse, ErrorCode, ForwardedRequest, HubError
from tests.unit.hub_world import World
from tests.unit.test_hub_batches import enrolled, hours_from_now


@pytest.fixture(params=["memory", "rocksdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory | None]:
    """Each table test runs against both stores of the committed rows."""
    if request.param == "memory":
        yield None
        return
    stores = RocksStores(tmp_path / "store", cache_rows=2)  # small: most reads miss it
    yield stores
    stores.close()


def table(store: StoreFactory | None, index: dict[str, int] | None = None) -> Table[int]:
    """A table of ints whose derived index (``index``) follows it through ``on_change``."""

    def changed(key: str, old: int | None, new: int | None) -> None:
        if index is None:
            return
        assert index.get(key) == old, "the index saw a change from a value it never had"
        if new is None:
            index.pop(key, None)
        else:
            index[key] = new

    return Table("t", lambda v: str(v).encode(), lambda b: int(b), changed, store)


def written(t: Table[int]) -> dict[str, bytes | None]:
    return {o.key.decode(): o.value for o in t.changes() if o.key is not None}


def test_each_batch_writes_only_its_own_changes(store: StoreFactory | None) -> None:
    t = table(store)
    t.put("a", 1)
    assert written(t) == {"a": b"1"}
    t.seal()  # batch N is written, its transaction in flight
    t.put("b", (t.get("a") or 0) + 1)  # batch N+1 reads what N staged
    assert written(t) == {"b": b"2"}
    t.seal()
    assert written(t) == {}


def test_an_abort_takes_its_batch_and_every_later_one(store: StoreFactory | None) -> None:
    index: dict[str, int] = {}
    t = table(store, index)
    t.put("keep", 0)
    t.commit()
    t.put("a", 1)
    t.seal()
    t.put("b", 2)
    t.put("keep", 9)
    t.seal()
    t.put("c", 3)  # a third batch, handled, not yet written
    t.rollback()  # batch N aborted
    assert [t.get(k) for k in ("a", "b", "c", "keep")] == [None, None, None, 0]
    assert index == {"keep": 0}  # the derived index followed every undoing
    assert t.layers == 0
    assert written(t) == {}


def test_commits_go_oldest_first_and_leave_later_batches_staged(store: StoreFactory | None) -> None:
    index: dict[str, int] = {}
    t = table(store, index)
    t.put("a", 1)
    t.seal()
    t.put("a", 2)  # the same key in the next batch
    t.put("b", 1)
    t.seal()
    t.commit()  # N committed: a = 1 is the table's; N+1 still in flight
    assert dict(t.items()) == {"a": 1}
    assert (t.get("a"), t.get("b")) == (2, 1)
    t.rollback()  # N+1 aborted: back to what N committed, not to before N
    assert (t.get("a"), t.get("b")) == (1, None)
    assert index == {"a": 1}
    assert dict(t.items()) == {"a": 1}


def test_a_delete_then_a_put_in_the_next_batch_commit_in_order(store: StoreFactory | None) -> None:
    t = table(store)
    t.put("a", 0)
    t.commit()
    t.delete("a")
    t.seal()
    t.put("a", 5)
    t.seal()
    t.commit()
    assert (dict(t.items()), t.get("a")) == ({}, 5)
    t.commit()
    assert dict(t.items()) == {"a": 5}
    assert t.layers == 0


def test_a_savepoint_of_the_open_batch_survives_an_older_commit(store: StoreFactory | None) -> None:
    t = table(store)
    t.put("a", 1)
    t.seal()
    t.put("b", 1)
    mark = t.savepoint()
    t.put("b", 2)
    t.put("c", 3)
    t.commit()  # N commits while N+1 is being handled
    t.rollback_to(mark)
    assert (t.get("a"), t.get("b"), t.get("c")) == (1, 1, None)
    assert written(t) == {"b": b"1"}


def test_a_savepoint_cannot_reach_into_a_sealed_batch(store: StoreFactory | None) -> None:
    t = table(store)
    mark = t.savepoint()
    t.put("a", 1)
    t.seal()
    with pytest.raises(ValueError, match="open layer"):
        t.rollback_to(mark)


def test_without_seal_commit_commits_everything_staged(store: StoreFactory | None) -> None:
    t = table(store)
    t.put("a", 1)
    t.put("b", 2)
    t.commit()
    assert dict(t.items()) == {"a": 1, "b": 2}
    assert t.layers == 0


# -- the replay memory follows the same layers ---------------------------------------------


def test_an_id_staged_by_a_batch_in_flight_is_a_duplicate_until_that_batch_aborts() -> None:
    memory = ReplayMemory("seen", window_ms=100_000, bucket_ms=1000)
    assert memory.first_time("jps", "m1", 0)
    first = memory.changes()
    memory.seal()
    assert not memory.first_time("jps", "m1", 10)  # N+1 sees N's id
    assert memory.first_time("jps", "m2", 10)
    second = memory.changes()
    assert len(first) == len(second) == 1
    assert first[0].value != second[0].value  # each batch writes only its own ids
    memory.seal()
    memory.rollback()  # N aborted: both forgotten, so both are new when re-read
    assert memory.first_time("jps", "m1", 20)
    assert memory.first_time("jps", "m2", 20)


def test_ids_commit_in_batch_order() -> None:
    memory = ReplayMemory("seen", window_ms=100_000, bucket_ms=1000)
    memory.first_time("jps", "m1", 0)
    memory.seal()
    memory.first_time("jps", "m2", 0)
    memory.seal()
    memory.commit()
    assert len(memory) == 1
    memory.rollback()
    assert len(memory) == 1
    assert not memory.first_time("jps", "m1", 0)
    assert memory.first_time("jps", "m2", 0)


def test_a_bucket_expiring_in_a_batch_in_flight_is_not_tombstoned_again() -> None:
    memory = ReplayMemory("seen", window_ms=10_000, bucket_ms=1000)
    memory.first_time("jps", "m1", 0)
    memory.commit()
    assert memory.expire(20_000)
    tombstones = [o for o in memory.changes() if o.value is None]
    assert tombstones
    memory.seal()
    assert not memory.expire(20_010)  # N+1: N forgets that bucket already
    memory.seal()
    memory.commit()
    memory.commit()
    assert len(memory) == 0


# -- the hub: deadlines and pending rows across batches in flight ----------------------------


@pytest.fixture(params=["memory", "rocksdb"])
def hub_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The hub's tables in each store (``RENKEI_HUB_STORE``, read by the World's settings)."""
    monkeypatch.setenv("RENKEI_HUB_STORE", request.param)
    monkeypatch.setenv("RENKEI_HUB_STORE_DIR", str(tmp_path / "store"))
    return str(request.param)


def test_a_forward_and_its_answer_in_two_batches_in_flight_abort_together(
    tmp_path: Path, hub_store: str
) -> None:
    world = World(tmp_path / "keys")
    assert (world.hub.stores is not None) == (hub_store == "rocksdb")
    city, _ = enrolled(world)
    hub = world.hub
    forwarded = [
        m
        for m in world.decoded(hub.handle([world.request(city)]))
        if isinstance(m, ForwardedRequest)
    ]
    hub.seal()  # batch N (the forward) in flight
    answered = list(world.decoded(hub.handle([world.answer(forwarded[0])])))
    assert [type(m) for m in answered] == [AttributeResponse]  # N+1 routes by N's pending row
    hub.seal()
    assert len(hub.deadlines) == 0
    hub.rollback()  # N aborted: neither happened
    assert hub.pending.get(forwarded[0].hub_request_id) is None
    assert len(hub.deadlines) == 0
    # Processed again, the request waits and then times out like any other.
    again = list(world.decoded(hub.handle([world.request(city, "r2")])))
    hub.seal()
    hub.commit()
    assert [type(m) for m in again] == [ForwardedRequest]
    timed_out = list(world.decoded(hub.tick(hours_from_now(2))))
    hub.seal()
    hub.commit()
    assert [m.code for m in timed_out if isinstance(m, HubError)] == [ErrorCode.TIMEOUT]
    world.hub.close()


def test_the_answer_batch_commits_after_the_forward_batch(tmp_path: Path, hub_store: str) -> None:
    world = World(tmp_path / "keys")
    city, _ = enrolled(world)
    hub = world.hub
    out = list(world.decoded(hub.handle([world.request(city)])))
    forwarded = next(m for m in out if isinstance(m, ForwardedRequest))
    hub.seal()
    list(world.decoded(hub.handle([world.answer(forwarded)])))
    hub.seal()
    hub.commit()  # the forward's transaction committed: its pending row is committed
    assert hub.pending.get(forwarded.hub_request_id) is None  # N+1 deleted it (staged)
    assert len(hub.pending) == 1
    hub.rollback()  # the answer's transaction aborted: the request waits again
    assert hub.pending.get(forwarded.hub_request_id) is not None
    assert len(hub.deadlines) == 1
    world.hub.close()
