"""Life events without a broker: a person's history, fan-out rules, rotation, the subscriber."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from consumers.lifecycle import LifecycleSubscriber
from hub_stream import history
from hub_stream.control import CommandError, RotateKey, control_topic, parse_command
from hub_stream.ids import derive_id
from hub_stream.records import KeyStateRecord, PersonState
from hub_stream.rotation import StagedKeyRing
from hub_stream.splice import Template
from renkei.crypto import LinkCodes, MasterSecret, SigningKey, keystore
from renkei.envelope import sign_message
from renkei.errors import SignatureError
from renkei.operator.publish import init_keys
from renkei.topics import Topics
from schemas.codec import default_codec
from schemas.models import (
    EnrolmentOutcome,
    EnrolmentResult,
    EventAction,
    EventBody,
    EventKind,
    Header,
    LifeEventNotice,
    LinkCodeRemap,
    NumberReissued,
    PersonDied,
    PersonMoved,
    PersonRegistered,
    PersonRenamed,
    RegistryEvent,
)
from tests.unit.hub_world import B4, DAY, NUMBER, NUMBERS, World, codes_of, event


def moved(event_id: str, address: str) -> RegistryEvent:
    return event(event_id, EventKind.MOVED, PersonMoved(address=address))


def fix(event_id: str, target: str, kind: EventKind, body: EventBody | None) -> RegistryEvent:
    action = EventAction.ANNULMENT if body is None else EventAction.CORRECTION
    return event(event_id, kind, body, action, target)


@pytest.fixture
def person() -> PersonState:
    registered = PersonRegistered(my_number=NUMBER, basic4=B4)
    return history.register("00" * 16, event("reg", EventKind.REGISTERED, registered))


# -- history -----------------------------------------------------------------------------


def test_annulled_move_restores_the_address_before_it(person: PersonState) -> None:
    person = history.apply_original(person, moved("m1", "住所1"), ("jps",))
    person = history.apply_original(person, moved("m2", "住所2"), ("jps", "city-osaka"))
    person, annulled = history.annul(person, fix("a", "m2", EventKind.MOVED, None))
    assert person.basic4.address == "住所1"
    assert annulled.notified == ("jps", "city-osaka")
    person, _ = history.annul(person, fix("b", "m1", EventKind.MOVED, None))
    assert person.basic4.address == "住所0"
    assert [e.event_id for e in person.history] == ["reg"]


def test_annulling_or_correcting_a_superseded_event_keeps_the_current_facts(
    person: PersonState,
) -> None:
    person = history.apply_original(person, moved("m1", "住所1"), ())
    person = history.apply_original(person, moved("m2", "住所2"), ())
    person, _ = history.correct(person, fix("c", "m1", EventKind.MOVED, PersonMoved(address="1'")))
    assert person.basic4.address == "住所2"
    # m1's correction is what annulling m2 now falls back to.
    after_m2, _ = history.annul(person, fix("a", "m2", EventKind.MOVED, None))
    assert after_m2.basic4.address == "1'"
    # Annul m1 instead: m2 stands, and annulling m2 later returns to the registered address.
    person, _ = history.annul(person, fix("b", "m1", EventKind.MOVED, None))
    assert person.basic4.address == "住所2"
    person, _ = history.annul(person, fix("d", "m2", EventKind.MOVED, None))
    assert person.basic4.address == "住所0"


def test_death_name_and_number_are_undone_by_annulment(person: PersonState) -> None:
    died = event("d", EventKind.DIED, PersonDied(date_of_death=DAY))
    renamed = event("r", EventKind.RENAMED, PersonRenamed(name="花子", name_kana="ハナコ"))
    reissued = event("n", EventKind.NUMBER_REISSUED, NumberReissued(my_number="000000000019"))
    for e in (died, renamed, reissued):
        person = history.apply_original(person, e, ())
    assert (person.died_on, person.basic4.name, person.my_number) == (DAY, "花子", "000000000019")
    person, _ = history.annul(person, fix("x", "d", EventKind.DIED, None))
    person, _ = history.annul(person, fix("y", "r", EventKind.RENAMED, None))
    person, _ = history.annul(person, fix("z", "n", EventKind.NUMBER_REISSUED, None))
    assert (person.died_on, person.basic4.name, person.basic4.name_kana, person.my_number) == (
        None, "山田太郎", "ヤマダタロウ", NUMBER,
    )  # fmt: skip
    corrected_death = PersonDied(date_of_death=date(2026, 3, 31))
    person = history.apply_original(person, died, ())
    person, _ = history.correct(person, fix("w", "d", EventKind.DIED, corrected_death))
    assert person.died_on == date(2026, 3, 31)


def test_a_registration_correction_changes_only_what_no_later_event_replaced(
    person: PersonState,
) -> None:
    person = history.apply_original(person, moved("m1", "住所1"), ())
    b4 = B4.model_copy(update={"address": "住所0'", "name": "山田太朗", "birth_date": DAY})
    corrected = PersonRegistered(my_number=NUMBER, basic4=b4)
    person, _ = history.correct(person, fix("c", "reg", EventKind.REGISTERED, corrected))
    assert (person.basic4.address, person.basic4.name, person.basic4.birth_date) == (
        "住所1", "山田太朗", DAY,
    )  # fmt: skip
    person, _ = history.annul(person, fix("a", "m1", EventKind.MOVED, None))
    assert person.basic4.address == "住所0'"  # the corrected registration's address


def test_the_row_refuses_what_it_cannot_place(person: PersonState) -> None:
    person = history.apply_original(person, moved("m1", "住所1"), ())
    with pytest.raises(history.HistoryError, match="unknown"):
        history.annul(person, fix("a", "nope", EventKind.MOVED, None))
    with pytest.raises(history.HistoryError, match="is MOVED, not DIED"):
        history.annul(person, fix("a", "m1", EventKind.DIED, None))
    with pytest.raises(history.HistoryError, match="registration cannot be annulled"):
        history.annul(person, fix("a", "reg", EventKind.REGISTERED, None))


def test_history_keeps_the_latest_events_of_each_kind_and_round_trips(
    person: PersonState,
) -> None:
    for i in range(history.HISTORY_PER_KIND + 4):
        person = history.apply_original(person, moved(f"m{i}", f"住所{i}"), ("jps",))
    person = history.apply_original(
        person, event("d", EventKind.DIED, PersonDied(date_of_death=DAY)), ()
    )
    kept = [e.event_id for e in person.history]
    latest = [f"m{i}" for i in range(4, history.HISTORY_PER_KIND + 4)]
    assert kept == ["reg", *latest, "d"]
    assert PersonState.from_bytes(person.to_bytes()) == person
    # Annulling the oldest kept move still restores what it replaced.
    person, _ = history.annul(person, fix("a", latest[0], EventKind.MOVED, None))
    assert person.basic4.address == f"住所{history.HISTORY_PER_KIND + 3}"


# -- the control command -----------------------------------------------------------------


def test_rotate_command_is_signed_and_checked() -> None:
    operator, other = SigningKey.generate(), SigningKey.generate()
    command = RotateKey(agency_id="jps", grace_ms=2000).signed(operator)
    again = parse_command(command.to_bytes())
    again.verify(operator.public_bytes)
    with pytest.raises(SignatureError):
        again.verify(other.public_bytes)
    with pytest.raises(SignatureError):
        again.model_copy(update={"grace_ms": 10**12}).verify(operator.public_bytes)
    for bad in (b"", b"{}", b"not json", b'{"command": "drop-tables"}'):
        with pytest.raises(CommandError):
            parse_command(bad)


# -- the hub, fed records by hand ----------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path / "keys")
    w.run(*(w.registration(f"1000000000{i}", n) for i, n in enumerate(NUMBERS)))
    return w


def test_rotation_remaps_every_holding_including_one_staged_in_the_same_batch(
    world: World,
) -> None:
    before = codes_of(world.run(*(world.enrolment("jps", n) for n in NUMBERS[:2])))
    other = codes_of(world.run(world.enrolment("jasso", NUMBERS[0])))
    out = world.run(
        world.enrolment("jps", NUMBERS[2]),  # staged, then rotated, in one batch
        world.rotation("jps"),
        world.enrolment("jps", NUMBERS[0]),  # after the rotation: the new code at once
    )
    staged, again = codes_of(out)
    remaps = [m for m in out if isinstance(m, LinkCodeRemap)]
    assert sorted(r.old_link_code for r in remaps) == sorted([*before, staged])
    assert {LinkCodes.version_of(r.new_link_code) for r in remaps} == {2}
    assert again == next(r.new_link_code for r in remaps if r.old_link_code == before[0])
    assert world.hub.keyring.current_version("jps") == 2
    assert world.hub.keyring.current_version("jasso") == 1
    assert codes_of(world.run(world.enrolment("jasso", NUMBERS[0]))) == other
    assert world.hub.metrics["remaps"] == 3


def test_an_aborted_rotation_leaves_no_trace(world: World) -> None:
    (code,) = codes_of(world.run(world.enrolment("jps", NUMBERS[0])))
    out = world.run(world.rotation("jps"), world.enrolment("jps", NUMBERS[0]), commit=False)
    assert codes_of(out) != [code]  # inside the batch the new version was in force
    assert world.hub.keyring.current_version("jps") == 1
    assert world.hub.keys.get("jps") is None
    assert codes_of(world.run(world.enrolment("jps", NUMBERS[0]))) == [code]


def test_a_command_is_applied_once_and_only_if_the_operators_signed_it(world: World) -> None:
    world.run(world.enrolment("jps", NUMBERS[0]))
    command = RotateKey(agency_id="jps", grace_ms=0).signed(world.keys("operator").signing)
    first = world.run(world.record(control_topic(world.topics), command.to_bytes()))
    second = world.run(world.record(control_topic(world.topics), command.to_bytes()))
    assert [type(m) for m in first] == [LinkCodeRemap]
    assert second == []
    state = world.hub.keys.get("jps")
    assert isinstance(state, KeyStateRecord)
    assert (state.state.current_version, state.remapped) == (2, 1)
    forged = RotateKey(agency_id="jps", grace_ms=0).signed(world.keys("jps").signing)
    outputs = world.hub.handle([world.record(control_topic(world.topics), forged.to_bytes())])
    world.hub.commit()
    assert any(o.topic == world.topics.deadletter for o in outputs)
    assert world.hub.metrics["control_refused.BAD_SIGNATURE"] == 1
    assert world.hub.keyring.current_version("jps") == 2


# -- the subscriber ------------------------------------------------------------------------


async def test_subscriber_dispatches_by_kind_skips_the_rest_and_deduplicates(
    tmp_path: Path,
) -> None:
    init_keys(tmp_path)
    handled: list[LifeEventNotice] = []
    failures = [RuntimeError("database down")]

    async def on_death(notice: LifeEventNotice) -> None:
        if failures:
            raise failures.pop()
        handled.append(notice)

    # Messages built here, unsigned: routing is the subject (signatures: test_inbox.py).
    subscriber = LifecycleSubscriber(
        "jps", keystore.load(tmp_path, "jps"), {}, Topics(), {EventKind.DIED: on_death},
        verify_hub=False,
    )  # fmt: skip
    death = LifeEventNotice(
        header=Header.new("hub"), link_code="c", event_id="e", kind=EventKind.DIED,
        action=EventAction.ORIGINAL, effective_date=DAY, body=PersonDied(date_of_death=DAY),
    )  # fmt: skip
    move = death.model_copy(
        update={"header": Header.new("hub"), "kind": EventKind.MOVED,
                "body": PersonMoved(address="x")}
    )  # fmt: skip
    result = EnrolmentResult(
        header=Header.new("hub"),
        record_ref="r",
        outcome=EnrolmentOutcome.NO_MATCH,
        link_code=None,
        detail="",
    )
    with pytest.raises(RuntimeError):
        await subscriber.dispatch(death)
    assert await subscriber.dispatch(death)  # not remembered while its handler failed
    assert not await subscriber.dispatch(death)  # now it is
    assert not await subscriber.dispatch(move)
    assert not await subscriber.dispatch(result)
    remap = LinkCodeRemap(
        header=Header.new("hub"), old_link_code="a", new_link_code="b", key_version=2,
        old_codes_valid_until=death.header.sent_at,
    )  # fmt: skip
    assert not await subscriber.dispatch(remap)
    assert (subscriber.notices, subscriber.unhandled, subscriber.ignored) == (1, 2, 1)
    assert subscriber.duplicates_dropped == 1
    assert handled == [death]


def test_subscriber_refuses_another_agencys_keys(tmp_path: Path) -> None:
    init_keys(tmp_path)
    keys: Any = keystore.load(tmp_path, "jasso")
    with pytest.raises(Exception, match="jasso"):
        LifecycleSubscriber("jps", keys, {}, Topics(), {}, verify_hub=False)


# -- spliced encodings ---------------------------------------------------------------------


def test_spliced_copies_are_byte_for_byte_what_the_codec_and_signer_write() -> None:
    codec = default_codec()
    hub_key = SigningKey.generate()
    links = LinkCodes(StagedKeyRing(MasterSecret(bytes(range(32)))))
    bodies: list[EventBody | None] = [
        PersonMoved(address="東京都品川区広町二丁目1番36号"), None,
        PersonRenamed(name="山田花子", name_kana="ヤマダハナコ"),
    ]  # fmt: skip
    for i, body in enumerate(bodies):
        action = EventAction.ANNULMENT if body is None else EventAction.ORIGINAL
        kind = {"PersonMoved": EventKind.MOVED, "PersonRenamed": EventKind.RENAMED}.get(
            type(body).__name__, EventKind.MOVED
        )
        slots = (derive_id("slot", str(i)), "z" * 53)
        notice = LifeEventNotice(
            header=Header.new("hub", "c" * 32, message_id=slots[0]), link_code=slots[1],
            event_id=f"e{i}", kind=kind, action=action,
            corrects_event_id=None if body else "e0", effective_date=DAY, body=body,
        )  # fmt: skip
        template = Template.build(codec, notice, slots)
        assert template is not None
        for agency in ("jps", "city-osaka"):
            code = links.mint(agency, bytes(range(16)))
            message_id = derive_id("n", str(i), agency)
            header = notice.header.model_copy(update={"message_id": message_id})
            copy = notice.model_copy(update={"header": header, "link_code": code})
            unsigned = template.fill((message_id, code))
            assert unsigned == codec.encode(copy)
            assert unsigned is not None
            signed = template.sign(unsigned, hub_key.sign(unsigned))
            assert signed == codec.encode(sign_message(copy, hub_key, codec))
            assert template.fill((message_id, code + "a")) is None  # another length
    # A placeholder that also occurs in the body cannot be located: no template.
    clash = notice.model_copy(update={"body": PersonMoved(address="z" * 53)})
    assert Template.build(codec, clash, slots) is None
