"""The loop with transactions in flight, over fake producers and a fake consumer: the next
batch is handled while one commits, commits go in batch order, an abort takes every later
batch and reads their input again, a rebalance waits for what is in flight."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import ProducerFenced

from hub_stream.outputs import Output
from hub_stream.pipeline import TransactionalLoop
from hub_stream.state import Table
from hub_stream.writer import InTurn, TransactionAborted
from renkei.errors import ConfigurationError

P0, P1 = TopicPartition("in", 0), TopicPartition("in", 1)


def record(tp: TopicPartition, offset: int, value: str) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        tp.topic, tp.partition, offset, 0, 0, b"k", value.encode(), None, 1, len(value), ()
    )


def batch(*records: ConsumerRecord[bytes, bytes]) -> dict[TopicPartition, list[Any]]:
    polled: dict[TopicPartition, list[Any]] = {}
    for r in records:
        polled.setdefault(TopicPartition(r.topic, r.partition), []).append(r)
    return polled


class Handler:
    """Each record's value v stages ``v → <how many keys were visible>``."""

    def __init__(self) -> None:
        self.table: Table[int] = Table("state", lambda v: str(v).encode(), int)
        self.commits = 0
        self.rollbacks = 0

    def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Output]:
        for r in records:
            assert r.value is not None
            seen = sum(1 for k in "abcdefgh" if self.table.get(k) is not None)
            self.table.put(r.value.decode(), seen)
        return [Output("out", r.value, r.value) for r in records] + self.table.changes()

    def tick(self, now_ms: int) -> list[Output]:
        return []

    def seal(self) -> None:
        self.table.seal()

    def commit(self) -> None:
        self.commits += 1
        self.table.commit()

    def rollback(self) -> None:
        self.rollbacks += 1
        self.table.rollback()


class Unlayered(Handler):
    seal = None  # type: ignore[assignment]


class Writer:
    """A transactional producer that follows its turn as the real one does, and whose
    transactions can be held open or made to fail."""

    def __init__(self, log: list[tuple[str, str]]) -> None:
        self.log = log
        self.aborted = self.replaced = 0
        self.commit_s = 0.0
        self.plan: deque[tuple[asyncio.Event | None, BaseException | None]] = deque()
        self.acks: deque[asyncio.Event] = deque()
        """Set: the next transaction's records are acknowledged only once it is set."""

    async def stop(self) -> None: ...

    async def write(
        self, outputs: list[Output], offsets: dict[TopicPartition, int], group: str,
        turn: InTurn | None,
    ) -> None:  # fmt: skip
        assert turn is not None
        name = ",".join(o.key.decode() for o in outputs if o.topic == "out" and o.key)
        gate, error = self.plan.popleft() if self.plan else (None, None)
        try:
            await turn.may_send()
            if self.acks:
                await self.acks.popleft().wait()
            self.log.append(("sent", name))
            turn.sent()
            if gate is not None:
                await gate.wait()
            if error is not None:
                raise error
            await turn.may_commit()
        except TransactionAborted:
            self.aborted += 1
            self.log.append(("aborted", name))
            raise
        self.log.append(("committed", name))


class Consumer:
    def __init__(self) -> None:
        self.seeks: dict[TopicPartition, int] = {}
        self.polls: deque[dict[TopicPartition, list[Any]]] = deque()
        self.polled = 0
        self.blocked: asyncio.Event | None = None
        """Set: getmany waits for it, as aiokafka's does while a rebalance is under way."""
        self.waiting = asyncio.Event()

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        self.polled += 1
        if self.blocked is not None:
            self.waiting.set()
            await self.blocked.wait()
            self.blocked = None
        if self.polls:
            return self.polls.popleft()
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    def assignment(self) -> set[TopicPartition]:
        return {P0, P1}

    async def stop(self) -> None: ...


async def loop_of(
    handler: Handler, in_flight: int
) -> tuple[TransactionalLoop, list[Writer], Consumer]:
    loop = TransactionalLoop(
        kafka={"bootstrap_servers": "127.0.0.1:1"},  # never connected: fakes below
        group_id="g", transactional_id="t", pattern="^in$", handler=handler,
        replace=lambda output, partition, reason: [], in_flight=in_flight, poll_ms=1,
    )  # fmt: skip
    log: list[tuple[str, str]] = []
    writers = [Writer(log) for _ in range(in_flight)]
    consumer = Consumer()
    for real in loop._transactions.writers:
        await real.stop()  # never started; closed so that nothing leaks
    await loop._consumer.stop()
    loop._transactions.writers = writers  # type: ignore[assignment]
    loop._consumer = consumer
    return loop, writers, consumer


async def test_the_next_batch_is_handled_while_one_commits_and_commits_after_it() -> None:
    handler = Handler()
    loop, (first, _), _ = await loop_of(handler, 2)
    gate = asyncio.Event()
    first.plan.append((gate, None))  # batch 1's commit is slow
    await loop.process(batch(record(P0, 0, "a")))
    await loop.process(batch(record(P0, 1, "b")))  # handled at once, on batch 1's state
    assert handler.table.get("b") == 1
    await asyncio.sleep(0.01)
    assert first.log == [("sent", "a"), ("sent", "b")], "b waits for a's commit"
    gate.set()
    await loop.drain()
    assert first.log[2:] == [("committed", "a"), ("committed", "b")]
    assert handler.commits == 2
    assert dict(handler.table.items()) == {"a": 0, "b": 1}
    assert loop.stats.batches == 2


async def test_one_transaction_in_flight_commits_before_process_returns() -> None:
    handler = Handler()
    loop, (writer,), _ = await loop_of(handler, 1)
    await loop.process(batch(record(P0, 0, "a")))
    assert writer.log == [("sent", "a"), ("committed", "a")]
    assert dict(handler.table.items()) == {"a": 0}


async def test_an_abort_takes_every_later_batch_and_reads_their_input_again() -> None:
    handler = Handler()
    loop, (first, _), consumer = await loop_of(handler, 2)
    gate = asyncio.Event()
    first.plan.append((gate, TransactionAborted("broker said no")))
    await loop.process(batch(record(P0, 5, "a")))
    await loop.process(batch(record(P0, 6, "b"), record(P1, 9, "c")))
    gate.set()
    await loop.drain()
    assert ("committed", "b,c") not in first.log
    assert [e for e in first.log if e[0] == "aborted"] == [("aborted", "a"), ("aborted", "b,c")]
    assert handler.rollbacks == 1
    assert handler.commits == 0
    assert [handler.table.get(k) for k in "abc"] == [None, None, None]
    assert consumer.seeks == {P0: 5, P1: 9}, "each partition from the first record held"
    # Read again, the same records are handled on the state from before the abort.
    await loop.process(batch(record(P0, 5, "a")))
    await loop.drain()
    assert dict(handler.table.items()) == {"a": 0}


async def test_a_batch_after_a_committed_one_aborts_alone() -> None:
    handler = Handler()
    loop, (_, second), consumer = await loop_of(handler, 2)
    second.plan.append((None, TransactionAborted("lost the coordinator")))
    await loop.process(batch(record(P0, 0, "a")))
    await loop.process(batch(record(P1, 3, "b")))
    await loop.drain()
    assert dict(handler.table.items()) == {"a": 0}
    assert handler.table.get("b") is None
    assert consumer.seeks == {P1: 3}


async def test_a_fenced_producer_halts_the_loop_and_commits_nothing_after() -> None:
    handler = Handler()
    loop, (first, _), consumer = await loop_of(handler, 2)
    consumer.polls.extend([batch(record(P0, 0, "a")), batch(record(P0, 1, "b"))])
    first.plan.append((None, ProducerFenced()))
    loop._running = True
    with pytest.raises(ProducerFenced):
        await loop.run()
    assert handler.commits == 0
    assert ("committed", "b") not in first.log
    assert handler.table.get("a") is None
    assert consumer.seeks == {}, "a halted loop reads nothing again"


async def test_a_rebalance_waits_until_the_running_loop_has_settled_every_batch() -> None:
    handler = Handler()
    loop, (first, _), consumer = await loop_of(handler, 2)
    gate = asyncio.Event()
    first.plan.append((gate, None))
    consumer.polls.append(batch(record(P0, 0, "a")))
    loop._running = True
    running = asyncio.create_task(loop.run())
    while not first.log:  # noqa: ASYNC110 - the fake has no event for "sent"
        await asyncio.sleep(0.001)
    revoked = asyncio.create_task(loop.drain())  # what on_partitions_revoked does
    await asyncio.sleep(0.01)
    assert not revoked.done(), "batch a is still in flight"
    gate.set()
    await revoked
    assert handler.commits == 1
    await loop.stop()
    await running


async def test_transactions_in_flight_need_a_layered_handler() -> None:
    with pytest.raises(ConfigurationError, match="seal"):
        await loop_of(Unlayered(), 2)
    with pytest.raises(ConfigurationError, match="in_flight"):
        await loop_of(Handler(), 5)


async def test_a_rebalance_drains_while_the_poll_waits_for_the_new_assignment() -> None:
    handler = Handler()
    loop, (first, _), consumer = await loop_of(handler, 2)
    gate = asyncio.Event()
    first.plan.append((gate, None))
    consumer.polls.append(batch(record(P0, 0, "a")))
    loop._running = True
    running = asyncio.create_task(loop.run())
    while not first.log:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    consumer.blocked = asyncio.Event()  # the group is rebalancing: no poll returns
    await consumer.waiting.wait()
    revoked = asyncio.create_task(loop.drain())
    gate.set()
    await asyncio.wait_for(revoked, 5)  # settled without the poll returning
    assert handler.commits == 1
    consumer.blocked.set()
    await loop.stop()
    await running


async def test_a_batch_polled_before_an_abort_seeks_back_is_read_again_not_handled() -> None:
    handler = Handler()
    loop, (first, _), consumer = await loop_of(handler, 2)
    gate = asyncio.Event()
    first.plan.append((gate, TransactionAborted("lost the coordinator")))
    consumer.polls.append(batch(record(P0, 5, "a")))
    loop._running = True
    running = asyncio.create_task(loop.run())
    while not first.log:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    # The next poll returns records after a's, fetched before the abort is known...
    consumer.blocked = asyncio.Event()
    consumer.polls.append(batch(record(P0, 6, "b"), record(P1, 2, "c")))
    await consumer.waiting.wait()
    gate.set()
    await loop.drain()  # ...and the abort is settled while that poll is out
    assert consumer.seeks == {P0: 5}
    consumer.blocked.set()
    while consumer.seeks == {P0: 5}:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    await loop.stop()
    await running
    assert consumer.seeks == {P0: 5, P1: 2}, "a's offset stands; c is read again too"
    assert [handler.table.get(k) for k in "abc"] == [None, None, None]
    assert handler.commits == 0


async def test_the_next_poll_waits_until_the_batch_before_has_its_records_acknowledged() -> None:
    handler = Handler()
    loop, (first, _), consumer = await loop_of(handler, 2)
    acked = asyncio.Event()
    first.acks.append(acked)
    consumer.polls.append(batch(record(P0, 0, "a")))
    loop._running = True
    running = asyncio.create_task(loop.run())
    while not loop._transactions:  # noqa: ASYNC110 - batch a is written
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.01)
    assert consumer.polled == 1, "no poll while a's records are not acknowledged"
    acked.set()
    while consumer.polled < 2:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    await loop.stop()
    await running
    assert handler.commits == 1


async def test_a_batch_polled_before_a_rebalance_revokes_is_read_again_not_handled() -> None:
    # aiokafka rebalances in its own task: a poll can return records fetched before the
    # revocation, which the partitions' next owner will read from the committed offsets.
    handler = Handler()
    loop, _, consumer = await loop_of(handler, 2)
    consumer.blocked = asyncio.Event()
    consumer.polls.append(batch(record(P0, 7, "a"), record(P1, 3, "b")))
    loop._running = True
    running = asyncio.create_task(loop.run())
    await consumer.waiting.wait()
    await loop._listener.on_partitions_revoked({P0, P1})
    consumer.blocked.set()
    # Until it is put back or handled (the fakes have no event for either).
    while not consumer.seeks and handler.table.get("a") is None:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    await loop.stop()
    await running
    assert consumer.seeks == {P0: 7, P1: 3}, "put back where it began"
    assert [handler.table.get(k) for k in "ab"] == [None, None], "handled after the revocation"
    assert handler.commits == 0
