"""Agency-side de-duplication: a second copy of a message is dropped, within the bound."""

from __future__ import annotations

import uuid

import pytest

from consumers.dedup import Deduplicator


def test_first_sighting_is_new_second_is_a_counted_duplicate() -> None:
    dedup = Deduplicator(capacity=10)
    message_id = uuid.uuid4().hex
    assert dedup.seen(message_id) is False
    assert dedup.seen(message_id) is True
    assert dedup.seen(message_id) is True
    assert dedup.duplicates == 2
    assert message_id in dedup


def test_hex_and_non_hex_ids_are_both_remembered_and_never_confused() -> None:
    dedup = Deduplicator(capacity=10)
    assert not dedup.seen("0" * 32)
    assert not dedup.seen("0")  # the same integer value, a different id
    assert not dedup.seen("not-a-hex-id")
    assert dedup.seen("not-a-hex-id")
    assert dedup.seen("0" * 32)
    assert dedup.duplicates == 2


def test_the_last_capacity_ids_are_always_remembered() -> None:
    capacity = 100
    dedup = Deduplicator(capacity=capacity)
    ids = [uuid.uuid4().hex for _ in range(10 * capacity)]
    for i, message_id in enumerate(ids):
        assert not dedup.seen(message_id)
        recent = ids[max(0, i - capacity + 1) : i + 1]
        # spot-check the oldest id that must still be remembered
        assert recent[0] in dedup
    assert all(message_id in dedup for message_id in ids[-capacity:])
    assert len(dedup) <= 2 * capacity
    assert dedup.duplicates == 0


def test_ids_far_older_than_the_bound_are_forgotten() -> None:
    dedup = Deduplicator(capacity=10)
    first = uuid.uuid4().hex
    dedup.seen(first)
    for _ in range(25):
        dedup.seen(uuid.uuid4().hex)
    assert first not in dedup
    assert dedup.seen(first) is False


def test_a_replayed_batch_is_dropped_whole() -> None:
    dedup = Deduplicator(capacity=1_000)
    batch = [uuid.uuid4().hex for _ in range(200)]
    assert not any(dedup.seen(m) for m in batch)
    assert all(dedup.seen(m) for m in batch)
    assert dedup.duplicates == 200


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        Deduplicator(capacity=0)
