"""Replays: a message the hub has handled is refused as DUPLICATE, once and typed.

The replay memory itself (staging, savepoints, restore, expiry) and what the hub does with
a copy of each kind of message: never a second forward, enrolment or answer; and a batch
processed again after an aborted transaction produces the very same outputs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from hub_stream.control import RotateKey, control_topic
from hub_stream.replays import ReplayMemory
from schemas.codec import default_codec
from schemas.models import (
    AttributeResponse,
    AuditRecord,
    AuditStep,
    DeadLetter,
    DeenrolmentRequest,
    EnrolmentResult,
    ErrorCode,
    ForwardedRequest,
    Header,
    HubError,
    Message,
)
from tests.unit.hub_world import NUMBERS, Record, World, codes_of

CODEC = default_codec()
HOUR = 3_600_000


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "keys")


def copy(world: World, record: Record) -> Record:
    """The same bytes again, a little later on the same topic."""
    again = world.record(record.topic, record.value or b"")
    return dataclasses.replace(again, key=record.key)


def audit_of(world: World, outputs: list[Any]) -> list[AuditRecord]:
    found = [CODEC.decode(o.value) for o in outputs if o.topic == world.topics.audit]
    return [a for a in found if isinstance(a, AuditRecord)]


def duplicates(messages: list[Message]) -> list[HubError]:
    return [m for m in messages if isinstance(m, HubError) and m.code is ErrorCode.DUPLICATE]


def enrolled_pair(world: World) -> tuple[str, str]:
    world.run(world.registration("10000000000", NUMBERS[0]))
    (city,) = codes_of(world.run(world.enrolment("city-shinagawa", NUMBERS[0])))
    (jps,) = codes_of(world.run(world.enrolment("jps", NUMBERS[0])))
    return city, jps


# -- the memory ---------------------------------------------------------------------------


def test_an_id_is_new_once_staged_or_committed() -> None:
    memory = ReplayMemory("seen", window_ms=HOUR)
    assert memory.first_time("jps", "a" * 32, 0)
    assert not memory.first_time("jps", "a" * 32, 0)  # staged: visible to the batch
    assert memory.first_time("nta", "a" * 32, 0)  # another sender's id is another id
    memory.commit()
    assert not memory.first_time("jps", "a" * 32, 1)
    assert len(memory) == 2


def test_rollback_and_savepoints_forget_what_they_cover() -> None:
    memory = ReplayMemory("seen", window_ms=HOUR)
    memory.first_time("jps", "a" * 32, 0)
    mark = memory.savepoint()
    memory.first_time("jps", "b" * 32, 0)
    memory.rollback_to(mark)
    assert memory.first_time("jps", "b" * 32, 0)
    memory.rollback()
    assert memory.first_time("jps", "a" * 32, 0)
    assert len(memory) == 0


def test_one_record_per_bucket_and_a_restore_remembers_it() -> None:
    memory = ReplayMemory("seen", window_ms=HOUR, bucket_ms=60_000)
    for i in range(5):
        memory.first_time("jps", f"{i:032x}", 0)
    memory.first_time("jps", "f" * 32, 120_000)  # two buckets later
    changes = memory.changes()
    assert len(changes) == 2
    assert sum(len(c.value or b"") for c in changes) == 6 * 16
    memory.commit()
    restored = ReplayMemory("seen", window_ms=HOUR, bucket_ms=60_000)
    for change in changes:
        assert change.key is not None
        restored.load(change.key, change.value)
    restored.load(b"\xff not a bucket", b"x" * 16)  # skipped, not fatal
    assert len(restored) == 6
    assert not restored.first_time("jps", "f" * 32, 200_000)
    assert restored.first_time("jps", "e" * 32, 200_000)


def test_expired_buckets_are_forgotten_with_tombstones() -> None:
    memory = ReplayMemory("seen", window_ms=HOUR, bucket_ms=60_000)
    memory.first_time("jps", "a" * 32, 0)
    memory.commit()
    assert not memory.expire(HOUR)  # remembered for the whole window
    memory.rollback()
    assert memory.expire(HOUR + 60_000)
    tombstones = memory.changes()
    assert [t.value for t in tombstones] == [None]
    memory.rollback()  # an aborted transaction forgets nothing
    assert not memory.first_time("jps", "a" * 32, HOUR)
    memory.rollback()
    memory.expire(HOUR + 60_000)
    memory.commit()
    assert len(memory) == 0
    restored = ReplayMemory("seen", window_ms=HOUR, bucket_ms=60_000)
    key = tombstones[0].key
    assert key is not None
    restored.load(key, (b"a" * 16))
    restored.load(key, None)
    assert len(restored) == 0


# -- the hub --------------------------------------------------------------------------------


def test_a_replayed_request_is_forwarded_once_and_refused_typed(world: World) -> None:
    city, _ = enrolled_pair(world)
    request = world.request(city)
    first = world.run(request)
    outputs = world.hub.handle([copy(world, request)])
    world.hub.commit()
    second = list(world.decoded(outputs))
    assert [type(m) for m in first] == [ForwardedRequest]
    (refusal,) = second
    assert isinstance(refusal, HubError)
    assert refusal.code is ErrorCode.DUPLICATE
    # Not the answer to the call: no request id, no correlation id.
    assert refusal.request_id is None
    assert refusal.header.correlation_id is None
    assert not refusal.retriable
    assert [(a.step, a.error_code, a.request_id) for a in audit_of(world, outputs)] == [
        (AuditStep.REFUSED, "DUPLICATE", None)
    ]
    assert len(world.hub.pending) == 1
    (forwarded,) = first
    assert isinstance(forwarded, ForwardedRequest)
    answers = world.run(world.answer(forwarded))
    assert [type(m) for m in answers] == [AttributeResponse]
    now = int(world.hub.context.now().timestamp() * 1000)
    after_the_deadline = list(world.decoded(world.hub.tick(now + 2 * HOUR)))
    assert not [m for m in after_the_deadline if isinstance(m, HubError)]  # no TIMEOUT


def test_two_copies_in_one_batch(world: World) -> None:
    city, _ = enrolled_pair(world)
    request = world.request(city)
    messages = world.run(request, copy(world, request))
    assert [type(m) for m in messages] == [ForwardedRequest, HubError]
    assert len(duplicates(messages)) == 1


def test_a_batch_processed_again_after_an_abort_gives_the_same_outputs(world: World) -> None:
    city, _ = enrolled_pair(world)
    batch = [world.request(city, "r1"), world.request(city, "r2")]
    aborted = world.hub.handle(batch)
    world.hub.rollback()
    again = world.hub.handle(batch)
    world.hub.commit()
    ids = [m.header.message_id for m in world.decoded(aborted)]
    assert ids == [m.header.message_id for m in world.decoded(again)]
    assert not duplicates(list(world.decoded(again)))


def test_a_restarted_hub_remembers_what_it_committed(world: World, tmp_path: Path) -> None:
    city, _ = enrolled_pair(world)
    request = world.request(city)
    outputs = world.hub.handle([request])
    world.hub.commit()
    restarted = World(world.key_dir)
    for out in outputs:
        if out.topic == world.topics.state("seen") and out.key is not None:
            restarted.hub.replays.load(out.key, out.value)
    assert len(restarted.hub.replays) >= 1
    messages = restarted.run(copy(restarted, request))
    assert len(duplicates(messages)) == 1


def test_replayed_enrolment_deenrolment_and_answer_are_refused(world: World) -> None:
    city, jps = enrolled_pair(world)
    enrolment = world.enrolment("jasso", NUMBERS[0])
    assert codes_of(world.run(enrolment))
    assert len(duplicates(world.run(copy(world, enrolment)))) == 1
    (forwarded,) = world.run(world.request(city))
    assert isinstance(forwarded, ForwardedRequest)
    answer = world.answer(forwarded)
    world.run(answer)
    late = world.run(copy(world, answer))
    assert len(duplicates(late)) == 1  # not a second answer to the requester
    assert not [m for m in late if isinstance(m, AttributeResponse)]
    deenrol = DeenrolmentRequest(header=Header.new("jps"), record_ref="jps-x", link_code=jps)
    record = world.signed(world.topics.agency_out("jps"), deenrol, "jps")
    assert [type(m) for m in world.run(record)] == [EnrolmentResult]
    assert len(duplicates(world.run(copy(world, record)))) == 1


def test_a_repeated_registry_event_is_skipped_silently(world: World) -> None:
    registration = world.registration("10000000000", NUMBERS[0])
    world.run(registration)
    outputs = world.hub.handle([copy(world, registration)])
    assert not [o for o in outputs if o.topic in (world.topics.audit, world.topics.deadletter)]
    assert world.hub.metrics["registry.duplicate"] == 1


def test_a_replayed_command_and_an_old_one_are_refused(world: World) -> None:
    command = world.rotation("jps")
    world.run(command)
    assert world.hub.keyring.current_version("jps") == 2
    window = world.hub.replays.window_ms
    stale = RotateKey(
        agency_id="jps", grace_ms=0, requested_at_ms=world.clock - window - 60_000
    ).signed(world.keys("operator").signing)
    outputs = world.hub.handle([
        copy(world, command), world.record(control_topic(world.topics), stale.to_bytes()),
    ])  # fmt: skip
    world.hub.commit()
    letters = [
        CODEC.decode_as(o.value, DeadLetter)
        for o in outputs if o.topic == world.topics.deadletter and o.value
    ]  # fmt: skip
    assert [letter.reason for letter in letters] == [ErrorCode.DUPLICATE] * 2
    assert [(a.step, a.error_code) for a in audit_of(world, outputs)] == [
        (AuditStep.REFUSED, "DUPLICATE")
    ] * 2
    assert world.hub.keyring.current_version("jps") == 2


def test_the_tick_forgets_ids_past_the_window(world: World) -> None:
    city, _ = enrolled_pair(world)
    world.run(world.request(city))
    remembered = len(world.hub.replays)
    assert remembered >= 3
    now = int(world.hub.context.now().timestamp() * 1000)
    later = now + world.hub.replays.window_ms + world.hub.replays.bucket_ms * 2
    outputs = world.hub.tick(later)
    world.hub.commit()
    seen = [o for o in outputs if o.topic == world.topics.state("seen")]
    assert seen
    assert all(o.value is None for o in seen)
    assert len(world.hub.replays) == 0
