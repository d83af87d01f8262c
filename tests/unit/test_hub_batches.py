"""One batch, one record at a time: what a record stages is seen by the rest of its batch,
and what a record that fails half-way staged is gone with it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from hub_stream.audit import AuditTrail
from hub_stream.deadlines import Deadlines
from hub_stream.directory import Directory
from hub_stream.outputs import Output
from schemas.models import (
    AttributeResponse,
    AuditStep,
    DeadLetter,
    EnrolmentOutcome,
    EnrolmentResult,
    ErrorCode,
    EventKind,
    ForwardedRequest,
    HubError,
    LifeEventNotice,
    LinkCodeRemap,
    Message,
    NumberReissued,
)
from tests.unit.hub_world import NUMBERS, World, codes_of, event


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "keys")


def outcomes(messages: list[Message]) -> list[EnrolmentOutcome]:
    return [m.outcome for m in messages if isinstance(m, EnrolmentResult)]


def dead_letters(world: World, records: list[Any]) -> list[DeadLetter]:
    outputs = world.hub.handle(records)
    world.hub.commit()
    return [
        world.codec.decode_as(o.value, DeadLetter)
        for o in outputs
        if o.topic == world.topics.deadletter and o.value is not None
    ]


def hours_from_now(hours: int) -> int:
    return int(time.time() * 1000) + hours * 3_600_000


def enrolled(world: World) -> tuple[str, str]:
    """One registered person enrolled at city-shinagawa and jps: their two link codes."""
    world.run(world.registration("10000000000", NUMBERS[0]))
    (city,) = codes_of(world.run(world.enrolment("city-shinagawa", NUMBERS[0])))
    (jps,) = codes_of(world.run(world.enrolment("jps", NUMBERS[0])))
    return city, jps


# -- the same batch sees what earlier records staged ------------------------------------------


def test_a_registration_and_an_enrolment_in_one_batch_link(world: World) -> None:
    registration = world.registration("10000000000", NUMBERS[0])
    first = world.enrolment("jps", NUMBERS[0])
    assert outcomes(world.run(registration, first)) == [EnrolmentOutcome.LINKED]


def test_a_batch_is_handled_in_the_order_its_records_were_produced(world: World) -> None:
    # The registry and an agency write different partitions: the poll may list the
    # agency's partition first. The registration was produced first, so it goes first.
    registration = world.registration("10000000000", NUMBERS[0])
    enrol = world.enrolment("jps", NUMBERS[0])
    assert outcomes(world.run(enrol, registration)) == [EnrolmentOutcome.LINKED]


def test_a_rolled_back_batch_takes_its_persons_out_of_the_index(world: World) -> None:
    world.run(
        world.registration("10000000000", NUMBERS[0]),
        world.enrolment("jps", NUMBERS[0]),
        commit=False,
    )
    assert world.hub.persons.get("10000000000") is None
    assert outcomes(world.run(world.enrolment("jps", NUMBERS[0]))) == [EnrolmentOutcome.NO_MATCH]


def test_a_rotation_remaps_a_person_registered_and_enrolled_in_its_batch(world: World) -> None:
    out = world.run(
        world.registration("10000000000", NUMBERS[0]),
        world.enrolment("jps", NUMBERS[0]),
        world.rotation("jps"),
    )
    (code,) = codes_of(out)
    remaps = [m for m in out if isinstance(m, LinkCodeRemap)]
    assert [r.old_link_code for r in remaps] == [code]


def test_a_holding_staged_in_a_batch_gets_that_batchs_later_notices(world: World) -> None:
    world.run(world.registration("10000000000", NUMBERS[0]))
    out = world.run(world.enrolment("jps", NUMBERS[0]), world.move("10000000000", "住所1"))
    assert [type(m) for m in out] == [EnrolmentResult, LifeEventNotice]


def test_a_rolled_back_enrolment_gets_no_notices(world: World) -> None:
    world.run(world.registration("10000000000", NUMBERS[0]))
    world.run(world.enrolment("jps", NUMBERS[0]), commit=False)
    assert world.run(world.move("10000000000", "住所1")) == []


# -- a record that fails half-way leaves nothing behind ---------------------------------------


def fail_at(
    monkeypatch: pytest.MonkeyPatch, step: AuditStep, times: tuple[int, ...] = (1,)
) -> None:
    """A defect of ours: the ``times``-th audit record of ``step`` raises. Every flow writes
    its audit record last, so everything it stages is staged by then."""
    real = AuditTrail.record
    seen = [0]

    def record(self: AuditTrail, which: AuditStep, **fields: Any) -> Output:
        if which is step:
            seen[0] += 1
            if seen[0] in times:
                raise RuntimeError("a defect of ours")
        return real(self, which, **fields)

    monkeypatch.setattr(AuditTrail, "record", record)


def test_a_request_that_fails_after_staging_its_pending_row_never_times_out(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    city, _ = enrolled(world)
    fail_at(monkeypatch, AuditStep.FORWARDED)
    (letter,) = dead_letters(world, [world.request(city, deadline_s=1)])
    assert letter.reason is ErrorCode.INTERNAL
    assert len(world.hub.pending) == 0
    later = world.hub.tick(hours_from_now(1))
    world.hub.commit()
    assert not [m for m in world.decoded(later) if isinstance(m, HubError)]


def test_an_enrolment_that_fails_after_staging_its_holding_holds_no_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.run(world.registration("10000000000", NUMBERS[0]))
    fail_at(monkeypatch, AuditStep.ENROLLED)
    (letter,) = dead_letters(world, [world.enrolment("jps", NUMBERS[0])])
    assert letter.reason is ErrorCode.INTERNAL
    assert len(world.hub.holdings) == 0
    assert world.run(world.move("10000000000", "住所1")) == []  # nobody to notify


def test_a_registration_that_fails_after_staging_its_person_registers_no_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_at(monkeypatch, AuditStep.REGISTRY_APPLIED)
    (letter,) = dead_letters(world, [world.registration("10000000000", NUMBERS[0])])
    assert letter.reason is ErrorCode.INTERNAL
    assert world.hub.persons.get("10000000000") is None
    assert outcomes(world.run(world.enrolment("jps", NUMBERS[0]))) == [EnrolmentOutcome.NO_MATCH]


def test_a_rotation_that_fails_after_staging_its_key_state_rotates_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    enrolled(world)
    fail_at(monkeypatch, AuditStep.KEY_ROTATED)
    (letter,) = dead_letters(world, [world.rotation("jps")])
    assert letter.reason is ErrorCode.INTERNAL
    assert world.hub.keys.get("jps") is None
    assert world.hub.keyring.current_version("jps") == 1


def test_a_failed_record_leaves_the_rest_of_its_batch_alone(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    city, _ = enrolled(world)
    fail_at(monkeypatch, AuditStep.FORWARDED, times=(2,))
    requests = [world.request(city, f"r{i}") for i in range(3)]
    sent = [world.codec.decode(r.value).header.message_id for r in requests if r.value]
    out = world.run(*requests)
    forwarded = [m for m in out if isinstance(m, ForwardedRequest)]
    assert [f.header.correlation_id for f in forwarded] == [sent[0], sent[2]]
    assert all(world.hub.pending.get(f.hub_request_id) is not None for f in forwarded)
    assert len(world.hub.pending) == 2
    assert len(world.hub.deadlines) == 2


# -- deadlines ---------------------------------------------------------------------------------


def test_answered_requests_leave_the_deadline_index(world: World) -> None:
    city, _ = enrolled(world)
    for batch in range(5):
        out = world.run(*(world.request(city, f"r{batch}-{i}") for i in range(20)))
        forwarded = [m for m in out if isinstance(m, ForwardedRequest)]
        answers = world.run(*(world.answer(f) for f in forwarded))
        assert len([m for m in answers if isinstance(m, AttributeResponse)]) == 20
    # 100 answered requests: nothing is waiting, so (almost) nothing is remembered.
    assert len(world.hub.pending) == 0
    assert world.hub.deadlines.stored <= 1
    still_open = world.run(world.request(city, "open"))
    assert [type(m) for m in still_open] == [ForwardedRequest]
    assert len(world.hub.deadlines) == 1
    timed_out = list(world.decoded(world.hub.tick(hours_from_now(2))))
    world.hub.commit()
    assert [m.code for m in timed_out if isinstance(m, HubError)] == [ErrorCode.TIMEOUT]
    assert len(world.hub.deadlines) == 0


def test_deadlines_hold_no_more_than_twice_what_is_waiting() -> None:
    deadlines = Deadlines()
    for i in range(1000):
        deadlines.arm(f"r{i}", 10_000 + i)
    for i in range(0, 1000, 100):
        deadlines.arm(f"r{i}", 50_000 + i)  # a later deadline: the old entry is dead
    for i in range(1000):
        if i % 100:
            deadlines.disarm(f"r{i}")
        assert deadlines.stored <= 2 * len(deadlines) + 1
    assert len(deadlines) == 10
    assert deadlines.due(49_999) == []  # their first deadlines were replaced
    assert deadlines.due(50_500) == [f"r{i}" for i in range(0, 600, 100)]
    assert len(deadlines) == 4
    deadlines.arm("r0", 50_000)  # a time-out that failed is armed again
    assert deadlines.due(10**9) == ["r0", "r600", "r700", "r800", "r900"]
    assert (len(deadlines), deadlines.stored) == (0, 0)


# -- revoked numbers follow the rows -----------------------------------------------------------


def test_a_rolled_back_reissue_restores_the_old_number_exactly(world: World) -> None:
    world.run(world.registration("10000000000", NUMBERS[0]))
    reissue = event(
        "reissue", EventKind.NUMBER_REISSUED, NumberReissued(my_number=NUMBERS[1]),
        resident_code="10000000000",
    )  # fmt: skip
    world.run(world.signed(world.topics.registry_events, reissue, "registry"), commit=False)
    (old,) = world.run(world.enrolment("jps", NUMBERS[0]))
    (new,) = world.run(world.enrolment("city-osaka", NUMBERS[1]))
    assert isinstance(old, EnrolmentResult)
    assert isinstance(new, EnrolmentResult)
    assert old.outcome is EnrolmentOutcome.LINKED
    assert new.outcome is EnrolmentOutcome.NO_MATCH
    assert "revoked" not in new.detail  # it was never this person's number


def test_revoked_numbers_come_back_with_the_rows_after_a_restart(world: World) -> None:
    world.run(world.registration("10000000000", NUMBERS[0]))
    reissue = event(
        "reissue", EventKind.NUMBER_REISSUED, NumberReissued(my_number=NUMBERS[1]),
        resident_code="10000000000",
    )  # fmt: skip
    world.run(world.signed(world.topics.registry_events, reissue, "registry"))
    restarted = World(world.key_dir)
    for key, row in world.hub.persons.items():
        restarted.hub.persons.load(key.encode(), row.to_bytes())
    (old,) = restarted.run(restarted.enrolment("jps", NUMBERS[0]))
    assert isinstance(old, EnrolmentResult)
    assert old.outcome is EnrolmentOutcome.NO_MATCH
    assert "revoked" in old.detail


def test_a_directory_set_on_the_hub_is_the_one_its_flows_see(world: World) -> None:
    world.run(world.registration("10000000000", NUMBERS[0]))
    world.hub.directory = Directory()  # renkei.audit.rebuild swaps in the one it read
    assert world.run(world.enrolment("jps", NUMBERS[0])) == []  # unknown agency: no answer
    assert world.hub.metrics["refused.UNKNOWN_AGENCY"] == 1
