"""The private aiokafka parts Renkei relies on still exist, and their loss is reported clearly."""

from __future__ import annotations

import pathlib
import re

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.producer import sender

from renkei import aiokafka_internals
from renkei.errors import AiokafkaInternalsError

ROOT = pathlib.Path(__file__).resolve().parents[2]


async def test_the_installed_aiokafka_has_every_internal_we_use() -> None:
    await aiokafka_internals.check()


async def test_a_renamed_internal_fails_with_a_message_that_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(sender, "BACKOFF_OVERRIDE")
    with pytest.raises(AiokafkaInternalsError, match=r"sender\.BACKOFF_OVERRIDE.*pin the aiokafka"):
        await aiokafka_internals.check()
    with pytest.raises(AiokafkaInternalsError, match=r"BACKOFF_OVERRIDE"):
        aiokafka_internals.back_off_concurrent_transactions(0.002, 0.020)


class _Manager:
    """What AddPartitionsToTxnHandler.handle_response reads of a transaction manager."""

    txn_partitions: tuple[()] = ()  # none added yet: the CONCURRENT_TRANSACTIONS path
    transactional_id = "t"

    def partition_added(self, tp: object) -> None:
        pass


def _response(error_code: int) -> object:
    return type("Response", (), {"errors": [("topic", [(0, error_code)])]})()


def test_concurrent_transactions_is_asked_again_sooner_first_then_doubling() -> None:
    handler_type = sender.AddPartitionsToTxnHandler
    handle, override = handler_type.handle_response, sender.BACKOFF_OVERRIDE
    original = getattr(handle, "_renkei_wrapped", handle)  # aiokafka's own
    try:
        aiokafka_internals.back_off_concurrent_transactions(0.002, 0.020)
        handler = handler_type.__new__(handler_type)
        handler._sender = type("Sender", (), {"_txn_manager": _Manager()})()
        handler._default_backoff = 0.002  # the same value, another path  # type: ignore[attr-defined]
        concurrent, added = _response(51), _response(0)
        waits = [handler.handle_response(concurrent) for _ in range(6)]
        assert waits == [0.002, 0.004, 0.008, 0.016, 0.020, 0.020]
        assert handler.handle_response(added) is None
        assert handler.handle_response(concurrent) == 0.002  # the next transaction starts short
        not_coordinator = _response(16)
        handler._sender._coordinator_dead = lambda _: None
        assert handler.handle_response(not_coordinator) is handler._default_backoff
        # Set again, it wraps aiokafka's own handler, not its own wrapper.
        aiokafka_internals.back_off_concurrent_transactions(0.002, 0.020)
        assert handler_type.handle_response._renkei_wrapped is original
    finally:
        handler_type.handle_response, sender.BACKOFF_OVERRIDE = handle, override


async def test_a_producer_without_its_transaction_manager_is_reported() -> None:
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9", transactional_id="x")
    try:
        assert aiokafka_internals.can_abort(producer) is False  # not in a transaction yet
        del producer._txn_manager
        with pytest.raises(AiokafkaInternalsError, match=r"_txn_manager"):
            aiokafka_internals.can_abort(producer)
    finally:
        producer._txn_manager = None
        await producer.stop()


def test_record_size_bounds_what_a_record_adds_to_a_batch() -> None:
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    for key, value in [(None, b""), (b"k", b"v" * 10), (b"key" * 30, b"x" * 100_000)]:
        builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, 0, 10_000_000)
        builder.append(0, 0, key, value, [])
        exact = len(builder.build())
        bound = aiokafka_internals.RECORD_BATCH_OVERHEAD + aiokafka_internals.record_size(
            key, value
        )
        assert exact <= bound <= exact + 32


async def test_count_requests_counts_each_request_by_kind_through_one_wrapper() -> None:
    from aiokafka.conn import AIOKafkaConnection
    from aiokafka.errors import KafkaConnectionError
    from aiokafka.protocol.metadata import MetadataRequest

    counts = aiokafka_internals.count_requests()
    wrapped = AIOKafkaConnection.send
    assert aiokafka_internals.count_requests() is counts  # once per process
    assert AIOKafkaConnection.send is wrapped
    before = counts["Metadata"]
    unconnected = AIOKafkaConnection("127.0.0.1", 9)
    with pytest.raises(KafkaConnectionError):  # aiokafka's own send still runs after it
        unconnected.send(MetadataRequest([]))
    assert counts["Metadata"] == before + 1


def test_no_other_module_reaches_into_aiokafka_privates() -> None:
    # The attributes this module wraps; any use of them elsewhere bypasses its check.
    private = re.compile(
        r"_txn_manager|BACKOFF_OVERRIDE|(consumer|producer)\._client\b|_crecords|_fetcher\b"
    )
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("renkei", "hub_stream", "producers", "consumers", "infra", "benchmarks")
        for path in (ROOT / package).rglob("*.py")
        if path.name != "aiokafka_internals.py" and private.search(path.read_text())
    ]
    assert offenders == []
