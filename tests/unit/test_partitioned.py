"""The partitioned hub in memory: buckets, the router's decisions, the buckets' hubs.

A :class:`Partitioned` world runs the records of :class:`~tests.unit.hub_world.World`
through a :class:`~hub_stream.router.Router` and then through the
:class:`~hub_stream.bucket_hub.BucketHub` of each bucket the router chose, as the two
stages do on Kafka — without a broker.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import hub_stream.restore as restore_module
from hub_stream.bucket_hub import BucketHub, confirm
from hub_stream.buckets import Routed, bucket_of, fallback_bucket, route_topic
from hub_stream.control import CommandShare, EnrolLinked, LinkedRow, control_topic
from hub_stream.matching import MatchResult
from hub_stream.outputs import Output
from hub_stream.persons_view import Persons
from hub_stream.restore import restore_tables
from hub_stream.rotation import StagedKeyRing
from hub_stream.router import Router
from hub_stream.settings import HubSettings
from renkei.auditchain import load_or_create_signer
from renkei.crypto import MasterSecret, audit_key, keystore, new_id_code
from renkei.errors import DecodeError
from schemas.models import (
    AttributeResponse,
    AuditRecord,
    EnrolmentOutcome,
    EnrolmentResult,
    ErrorCode,
    EventKind,
    ForwardedRequest,
    HubError,
    LinkCodeRemap,
    Message,
    PersonRegistered,
)
from tests.unit.hub_world import B4, NUMBERS, Record, World, event

BUCKETS = 3


class Partitioned(World):
    """The sample world with a router and one bucket hub per partition."""

    def __init__(self, key_dir: Path) -> None:
        super().__init__(key_dir)
        master = MasterSecret.from_file(key_dir / "master.key")
        self.ring = StagedKeyRing(master)
        settings = HubSettings(signatures="strict", key_dir=key_dir, partitions=BUCKETS)
        roots, hub_key = self.hub.roots, keystore.load_hub_signing_key(key_dir)
        signer = load_or_create_signer(key_dir)
        self.persons = Persons(self.ring, self.topics.state("persons"))
        self.router = Router(self.topics, self.ring, roots, self.persons)
        self.buckets = [
            BucketHub(
                p,
                self.hub.directory,
                self.topics,
                StagedKeyRing(master),
                hub_key,
                settings,
                signer,
                roots,
            )
            for p in range(BUCKETS)
        ]
        self.route_offsets = [0] * BUCKETS
        self.last_routes: list[Output] = []
        self.last_outputs: dict[int, list[Output]] = {}

    def bucket_of_person(self, registration_id: str) -> int:
        key = audit_key(self.ring, new_id_code(self.ring, registration_id))
        return bucket_of(key, BUCKETS)

    def run(self, *records: Record, commit: bool = True) -> list[Message]:
        routes = self.router.handle(records)
        self.router.commit()
        self.last_routes = routes
        by_bucket: dict[int, list[Record]] = {}
        for out in routes:
            assert out.topic == route_topic(self.topics)
            assert out.partition is not None
            offset = self.route_offsets[out.partition]
            self.route_offsets[out.partition] += 1
            by_bucket.setdefault(out.partition, []).append(
                Record(out.topic, out.partition, offset, out.key, out.value)
            )
        messages: list[Message] = []
        self.last_outputs = {}
        for bucket, routed in sorted(by_bucket.items()):
            hub = self.buckets[bucket]
            outputs = hub.handle(routed)
            hub.commit() if commit else hub.rollback()
            self.last_outputs[bucket] = outputs
            messages += self.decoded(outputs)
        return messages


@pytest.fixture
def world(tmp_path: Path) -> Partitioned:
    return Partitioned(tmp_path / "keys")


def routed_to(world: Partitioned) -> list[int]:
    return [out.partition for out in world.last_routes if out.partition is not None]


# -- buckets ---------------------------------------------------------------------------


def test_the_bucket_is_the_audit_keys_first_eight_hex_digits_mod_p() -> None:
    assert bucket_of("0000000a" + "f" * 24, 3) == 10 % 3
    assert bucket_of("ffffffff" + "0" * 24, 48) == 0xFFFFFFFF % 48
    with pytest.raises(ValueError, match="partitions"):
        bucket_of("0" * 32, 0)
    with pytest.raises(ValueError, match="eight hex digits"):
        bucket_of("abc", 3)


def test_the_same_parts_give_the_same_fallback_bucket() -> None:
    assert fallback_bucket(6, "city", "m1") == fallback_bucket(6, "city", "m1")
    assert {fallback_bucket(6, "city", f"m{i}") for i in range(60)} == set(range(6))


def test_a_routed_record_keeps_its_origin_and_match() -> None:
    match = MatchResult("LINKED", b"\x01" * 16, "linked by My Number", "MY_NUMBER")
    routed = Routed("t.agency.jps.out", 2, 41, 1_700_000_000_123, b"k", b"\xc3\x01body", match)
    record = Record("t.hub.route", 1, 7, b"k", routed.to_bytes())
    back = Routed.from_record(record)
    assert back == routed
    origin = back.origin()
    assert (origin.topic, origin.partition, origin.offset, origin.timestamp) == (
        "t.agency.jps.out", 2, 41, 1_700_000_000_123,
    )  # fmt: skip
    assert (origin.key, origin.value) == (b"k", b"\xc3\x01body")
    tombstone = Routed("t.hub.directory", 0, 3, 5, b"agency/x", None)
    assert Routed.from_record(Record("r", 0, 0, b"agency/x", tombstone.to_bytes())) == tombstone


@pytest.mark.parametrize(
    "value", [None, b"", b"RRT1", b"\xc3\x01not routed", b"RRT1" + b"\xff" * 40]
)
def test_a_record_the_router_did_not_write_is_refused(value: bytes | None) -> None:
    with pytest.raises(DecodeError):
        Routed.from_record(Record("t.hub.route", 0, 0, None, value))


def test_confirm_lets_the_bucket_overrule_a_stale_link_but_never_invent_one() -> None:
    x, y = b"x" * 16, b"y" * 16
    linked_x = MatchResult("LINKED", x, "linked", "MY_NUMBER")
    nobody = MatchResult("NO_MATCH", None, "no person")
    several = MatchResult("AMBIGUOUS", None, "several")
    assert confirm(several, linked_x) is several  # the bucket sees only its own persons
    assert confirm(nobody, linked_x) is nobody
    assert confirm(linked_x, linked_x) is linked_x
    assert confirm(linked_x, nobody) is nobody  # the bucket's row of x is fresher
    assert confirm(linked_x, MatchResult("LINKED", y, "linked")).outcome == "AMBIGUOUS"
    assert confirm(None, nobody) is nobody


# -- the router's decisions and the buckets' answers ------------------------------------


def test_a_persons_records_all_go_to_the_bucket_of_their_audit_key(world: Partitioned) -> None:
    bucket = world.bucket_of_person("reg-12345678901")
    world.run(world.registration("12345678901", NUMBERS[0]))
    assert routed_to(world) == [bucket]
    (city,) = world.run(world.enrolment("city-shinagawa", NUMBERS[0]))
    assert routed_to(world) == [bucket]
    world.run(world.enrolment("jps", NUMBERS[0]))
    assert isinstance(city, EnrolmentResult)
    assert city.link_code is not None
    (forwarded,) = world.run(world.request(city.link_code))
    assert routed_to(world) == [bucket]
    assert isinstance(forwarded, ForwardedRequest)
    (answer,) = world.run(world.answer(forwarded))
    assert routed_to(world) == [bucket]
    assert isinstance(answer, AttributeResponse)
    # Only that bucket holds the person, and it wrote its state and audit to its partition.
    assert [len(h.persons) for h in world.buckets] == [int(p == bucket) for p in range(BUCKETS)]
    for out in world.last_outputs[bucket]:
        if out.topic == world.topics.audit or out.topic.startswith(world.topics.state("")):
            assert out.partition == bucket, out.topic


def test_a_code_that_does_not_open_is_refused_once_in_a_fixed_bucket(world: Partitioned) -> None:
    record = world.request("a" * 53, request_id="forged")
    (refusal,) = world.run(record)
    assert isinstance(refusal, HubError)
    assert refusal.code == ErrorCode.INVALID_LINK_CODE
    assert len(routed_to(world)) == 1


def test_undecodable_bytes_are_dead_lettered_by_one_bucket(world: Partitioned) -> None:
    record = world.record(world.topics.agency_out("jps"), b"\xc3\x01garbage")
    (error,) = world.run(record)
    assert isinstance(error, HubError)
    assert error.code == ErrorCode.MALFORMED_MESSAGE
    (bucket,) = routed_to(world)
    letters = [o for o in world.last_outputs[bucket] if o.topic == world.topics.deadletter]
    assert len(letters) == 1


def test_an_oversized_record_reaches_a_bucket_that_refuses_it(world: Partitioned) -> None:
    record = world.record(world.topics.agency_out("jps"), b"\xc3\x01" + b"x" * 70_000)
    (error,) = world.run(record)
    assert isinstance(error, HubError)
    assert "over the limits" in error.detail
    assert all(len(o.value or b"") < 70_000 for o in world.last_routes)  # route stays small


def test_signed_commands_go_to_every_bucket_and_each_remaps_its_own(world: Partitioned) -> None:
    for i, number in enumerate(NUMBERS):
        world.run(world.registration(f"1234567890{i}", number))
        world.run(world.enrolment("jps", number))
    remaps = world.run(world.rotation("jps"))
    assert sorted(routed_to(world)) == list(range(BUCKETS))
    assert len([m for m in remaps if isinstance(m, LinkCodeRemap)]) == len(NUMBERS)
    # Each bucket holds its own copy of the key state, in its partition.
    for bucket, hub in enumerate(world.buckets):
        state = [o for o in world.last_outputs[bucket] if o.topic == world.topics.state("keys")]
        assert [o.partition for o in state] == [bucket]
        assert hub.keyring.current_version("jps") == 2
    # A new-version code is placed by the router at once, though it follows no key table.
    new_code = next(m.new_link_code for m in remaps if isinstance(m, LinkCodeRemap))
    assert world.ring.current_version("jps") == 1
    assert world.router.links.open_claimed("jps", new_code)


def test_an_unsigned_command_is_refused_by_one_bucket(world: Partitioned) -> None:
    world.run(world.record(world.topics.control, b'{"command": "rotate-key"}'))
    assert len(routed_to(world)) == 1


def test_a_basic4_shared_across_buckets_stays_ambiguous(world: Partitioned) -> None:
    first = "12345678901"
    second = next(
        f"2345678{i:04d}"
        for i in range(1000)
        if world.bucket_of_person(f"reg-2345678{i:04d}") != world.bucket_of_person(f"reg-{first}")
    )
    for code, number in ((first, NUMBERS[0]), (second, NUMBERS[1])):
        body = PersonRegistered(my_number=number, basic4=B4)
        e = event(f"reg-{code}", EventKind.REGISTERED, body, resident_code=code)
        world.run(world.signed(world.topics.registry_events, e, "registry"))
    from schemas.models import EnrolmentRequest, Header

    request = EnrolmentRequest(header=Header.new("jps"), record_ref="r", basic4=B4, capacity="")
    (result,) = world.run(world.signed(world.topics.agency_out("jps"), request, "jps"))
    # Each bucket alone sees one person with this basic-4; the router saw both.
    assert isinstance(result, EnrolmentResult)
    assert result.outcome is EnrolmentOutcome.AMBIGUOUS
    audits = [
        world.codec.decode(o.value) for outs in world.last_outputs.values() for o in outs
        if o.topic == world.topics.audit and o.value is not None
    ]  # fmt: skip
    assert any(isinstance(a, AuditRecord) and a.error_code == "AMBIGUOUS" for a in audits)


def test_a_forged_registration_steers_no_enrolment(world: Partitioned) -> None:
    body = PersonRegistered(my_number=NUMBERS[0], basic4=B4)
    e = event("reg-forged", EventKind.REGISTERED, body, resident_code="99999999999")
    world.run(world.signed(world.topics.registry_events, e, "jps"))  # not the registry's key
    assert len(world.persons) == 0
    (result,) = world.run(world.enrolment("jps", NUMBERS[0]))
    assert isinstance(result, EnrolmentResult)
    assert result.outcome is EnrolmentOutcome.NO_MATCH


def test_the_router_learns_rows_committed_by_the_buckets(world: Partitioned) -> None:
    world.run(world.registration("12345678901", NUMBERS[0]))
    other = Persons(world.ring, world.topics.state("persons"))  # another worker's router
    bucket = world.bucket_of_person("reg-12345678901")
    hub = world.buckets[bucket]
    rows = [o for o in world.last_outputs[bucket] if o.topic == world.topics.state("persons")]
    for row in rows:
        assert row.key is not None
        other.arrived(row.key, row.value)
    assert len(other) == 0  # applied between batches only
    other.catch_up()
    assert len(other) == len(hub.persons) == 1
    assert other.indexes.resolve(NUMBERS[0], None).outcome == "LINKED"


# -- restoring one bucket ---------------------------------------------------------------


class _FakeConsumer:
    """Just enough of AIOKafkaConsumer for restore_tables: every topic has 3 partitions,
    each holding one record keyed by its partition number."""

    def __init__(self, *_: Any, **__: Any) -> None:
        self.assigned: list[Any] = []
        self.positions: dict[Any, int] = {}

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1, 2}

    def assign(self, partitions: Sequence[Any]) -> None:
        self.assigned = list(partitions)

    async def seek_to_beginning(self, *partitions: Any) -> None:
        self.positions = dict.fromkeys(partitions, 0)

    async def end_offsets(self, partitions: Sequence[Any]) -> dict[Any, int]:
        return dict.fromkeys(partitions, 1)

    async def getmany(self, *partitions: Any, **_: Any) -> dict[Any, list[Any]]:
        batch = {}
        for tp in partitions:
            if self.positions[tp] == 0:
                self.positions[tp] = 1
                batch[tp] = [Record(tp.topic, tp.partition, 0, str(tp.partition).encode(), b"v")]
        return batch

    async def position(self, tp: Any) -> int:
        return self.positions[tp]


class _Loaded:
    topic = "t"

    def __init__(self) -> None:
        self.keys: list[bytes] = []

    def load(self, key: bytes, value: bytes | None) -> None:
        self.keys.append(key)


async def test_a_bucket_restores_its_own_partition_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(restore_module, "committed_reader", _FakeConsumer)
    mine, everything = _Loaded(), _Loaded()
    assert await restore_tables({}, [mine], only=[1]) == 1
    assert mine.keys == [b"1"]
    assert await restore_tables({}, [everything]) == 3
    assert sorted(everything.keys) == [b"0", b"1", b"2"]


# -- the stage-2 membership ----------------------------------------------------------------


class _Member:
    """A membership consumer that is never given anything to read."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def subscribe(self, topics: Sequence[str], listener: Any) -> None: ...

    def pause(self, *partitions: Any) -> None: ...

    async def getmany(self, **_: Any) -> dict[Any, Any]:
        return {}


class _Task:
    def __init__(self, bucket: int, failure: BaseException | None) -> None:
        self.bucket = bucket
        self.failure = failure
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True


async def test_a_task_that_fails_halts_the_worker_and_a_fenced_one_is_let_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiokafka.errors import ProducerFenced

    import hub_stream.tasks as tasks_module
    from hub_stream.tasks import TaskManager
    from renkei.errors import HubHaltedError
    from renkei.topics import Topics

    monkeypatch.setattr(tasks_module, "committed_reader", lambda *_, **__: _Member())
    manager = TaskManager({}, Topics("u.", 3), "u.hub-tasks", lambda _: None)  # type: ignore[arg-type, return-value]
    await manager.start()
    fenced = _Task(1, ProducerFenced())
    manager.tasks = {0: _Task(0, None), 1: fenced}  # type: ignore[dict-item]

    rounds = 0

    def two_rounds() -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 2:
            manager._running = False

    await manager.run(two_rounds)
    assert fenced.stopped
    assert manager.owned() == [0]
    manager._running = True
    manager.tasks[2] = _Task(2, HubHaltedError("a state row does not open"))  # type: ignore[assignment]
    with pytest.raises(HubHaltedError):
        await manager.run()


# -- operator commands: each row once, each refusal once ---------------------------------


def _enrol_linked(world: Partitioned, *codes: str, agency: str = "jps") -> Record:
    rows = tuple(
        LinkedRow(record_ref=f"ref-{code}", resident_code=code, score=0.99) for code in codes
    )
    command = EnrolLinked(agency_id=agency, linkage_run="run-1", rows=rows).signed(
        world.keys("operator").signing
    )
    return world.record(control_topic(world.topics), command.to_bytes())


def _said(world: Partitioned, topic: str) -> list[Output]:
    return [o for outputs in world.last_outputs.values() for o in outputs if o.topic == topic]


def test_a_command_share_travels_in_the_envelope() -> None:
    share = CommandShare(False, frozenset({0, 7, 999}))
    routed = Routed("t.hub.control", 0, 9, 5, b"enrol/jps", b"{}", share=share)
    assert Routed.from_record(Record("r", 2, 0, b"enrol/jps", routed.to_bytes())) == routed
    whole = Routed("t.hub.control", 0, 9, 5, None, b"{}", share=CommandShare(True))
    assert Routed.from_record(Record("r", 0, 0, None, whole.to_bytes())) == whole


def test_each_linked_row_is_handled_once_in_the_bucket_of_its_person(
    world: Partitioned,
) -> None:
    # One person in each of three buckets (the keys, hence the buckets, are random).
    first: dict[int, str] = {}
    for i in range(10_000):
        first.setdefault(world.bucket_of_person(f"reg-{10_000_000_000 + i}"), str(10**10 + i))
        if len(first) == min(BUCKETS, len(NUMBERS)):
            break
    codes = list(first.values())
    assert len(codes) == BUCKETS
    for code, number in zip(codes, NUMBERS, strict=False):
        world.run(world.registration(code, number))
    unknown = "99999999999"
    results = world.run(_enrol_linked(world, *codes, unknown))
    assert sorted(routed_to(world)) == list(range(BUCKETS))
    by_ref = {m.record_ref: m for m in results if isinstance(m, EnrolmentResult)}
    assert len(by_ref) == len([m for m in results if isinstance(m, EnrolmentResult)])
    assert {ref: r.outcome for ref, r in by_ref.items()} == {
        **{f"ref-{code}": EnrolmentOutcome.LINKED for code in codes},
        f"ref-{unknown}": EnrolmentOutcome.NO_MATCH,
    }
    # Each holding is in its person's bucket, and each row audited once.
    for code in codes:
        owner = world.buckets[world.bucket_of_person(f"reg-{code}")]
        assert len(owner.context.indexes.held_by("jps")) >= 1
    audited = [world.codec.decode(o.value or b"") for o in _said(world, world.topics.audit)]
    steps = sorted(a.step.value for a in audited if isinstance(a, AuditRecord))
    assert steps == sorted(["ENROLLED"] * len(codes) + ["NOT_ENROLLED"])


@pytest.mark.parametrize("why", [ErrorCode.UNKNOWN_AGENCY, ErrorCode.DUPLICATE])
def test_a_command_refused_in_the_buckets_is_refused_once(
    world: Partitioned, why: ErrorCode
) -> None:
    if why is ErrorCode.UNKNOWN_AGENCY:
        record = _enrol_linked(world, "12345678900", agency="no-such-agency")
    else:
        record = world.rotation("jps")
        world.run(record)
        assert record.value is not None
        record = world.record(record.topic, record.value)  # the same command again
    world.run(record)
    assert sorted(routed_to(world)) == list(range(BUCKETS))
    letters = _said(world, world.topics.deadletter)
    assert len(letters) == 1
    audited = [world.codec.decode(o.value or b"") for o in _said(world, world.topics.audit)]
    refused = [a for a in audited if isinstance(a, AuditRecord) and a.step.value == "REFUSED"]
    assert [a.error_code for a in refused] == [why]
    silent = [h.metrics[f"control_refused_silently.{why}"] for h in world.buckets]
    assert sorted(silent) == [0] + [1] * (BUCKETS - 1)
