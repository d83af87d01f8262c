"""No identifier in clear where it is not needed: dead letters, details, logs, state rows.

A dead letter keeps its input sealed to the operators (only their key opens it, and only
in its own letter); refusal details and log lines describe a failure by kind and place,
never by value; person rows are sealed before they reach Kafka.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import BaseModel, Field, ValidationError, field_validator

from hub_stream import enrolment
from hub_stream.deadletters import LetterSealer, open_letter
from hub_stream.redact import describe_decode_error, describe_exception, withheld_traceback
from hub_stream.sealed_state import MAGIC, persons_table
from renkei.crypto import SealingKeyPair
from renkei.errors import CryptoError, DecodeError, SealingError
from schemas.codec import default_codec
from schemas.models import DeadLetter, EnrolmentRequest, ErrorCode, Header, HubError
from tests.unit.hub_world import B4, NUMBERS, World

CODEC = default_codec()
SECRETS = [NUMBERS[0], B4.name, B4.name_kana, "1980-01-02"]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "keys")


def clear_of_identifiers(data: bytes | str) -> bool:
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    return not any(secret in text for secret in SECRETS)


def broken_enrolment(world: World) -> bytes:
    """An enrolment with a number and a basic-4 whose name is over the contract's limit.

    The bytes decode as Avro; the model refuses the name, and pydantic's message would
    quote it.
    """
    too_long = B4.model_construct(**{**B4.model_dump(), "name": B4.name * 60})
    request = EnrolmentRequest.model_construct(
        header=Header.new("jps"), record_ref="jps-1", my_number=NUMBERS[0], basic4=too_long,
        capacity="",
    )  # fmt: skip
    return CODEC.encode(request)


# -- sealing ----------------------------------------------------------------------------------


def test_a_sealed_letter_opens_with_the_operators_key_only(world: World) -> None:
    operators = world.keys("operator").sealing
    seal = LetterSealer((operators.suite, operators.public_bytes))
    value = seal("a" * 32, "t.agency.jps.out", 1, 7, b"key", b"the input")
    assert clear_of_identifiers(value)
    letter = DeadLetter(
        header=Header.new("hub", message_id="a" * 32), source_topic="t.agency.jps.out",
        source_partition=1, source_offset=7, reason=ErrorCode.MALFORMED_MESSAGE, detail="",
        key=None, value=value,
    )  # fmt: skip
    opened = open_letter(letter, operators)
    assert (opened.key, opened.value) == (b"key", b"the input")
    with pytest.raises(SealingError):
        open_letter(letter, SealingKeyPair.generate())
    moved = letter.model_copy(update={"source_offset": 8})  # onto another letter
    with pytest.raises(SealingError):
        open_letter(moved, operators)
    no_key = seal("a" * 32, "t", 0, 0, None, b"v")
    assert open_letter(letter.model_copy(update={"value": no_key, "source_topic": "t",
                                                  "source_partition": 0, "source_offset": 0}),
                       operators).key is None  # fmt: skip


def test_without_a_sealing_key_nothing_is_kept(world: World) -> None:
    assert LetterSealer(None)("a" * 32, "t", 0, 0, b"k", b"v") == b""
    letter = DeadLetter(
        header=Header.new("hub"), source_topic="t", source_partition=0, source_offset=0,
        reason=ErrorCode.INTERNAL, detail="", key=None, value=b"",
    )  # fmt: skip
    with pytest.raises(SealingError, match="no sealed value"):
        open_letter(letter, world.keys("operator").sealing)


def test_the_hub_parks_an_enrolment_sealed_and_describes_it_without_values(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    raw = broken_enrolment(world)
    record = world.record(world.topics.agency_out("jps"), raw)
    record.key = b"jps-1"
    outputs = world.hub.handle([record])
    (parked,) = [o for o in outputs if o.topic == world.topics.deadletter]
    assert parked.key is None
    assert parked.value is not None
    assert clear_of_identifiers(parked.value)
    letter = CODEC.decode_as(parked.value, DeadLetter)
    assert letter.key is None
    assert "name: string_too_long" in letter.detail  # says where, not what
    opened = open_letter(letter, world.keys("operator").sealing)
    assert (opened.key, opened.value) == (b"jps-1", raw)
    (error,) = [m for m in world.decoded(outputs) if isinstance(m, HubError)]
    assert clear_of_identifiers(error.detail)
    assert clear_of_identifiers(caplog.text)


def test_a_defect_that_quotes_its_input_is_logged_and_parked_without_it(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: object) -> None:
        raise ValueError(f"cannot handle {NUMBERS[0]} ({B4.name})")

    monkeypatch.setattr(enrolment, "enrol", broken)
    caplog.set_level(logging.DEBUG)
    world.run(world.registration("10000000000", NUMBERS[0]))
    outputs = world.hub.handle([world.enrolment("jps", NUMBERS[0])])
    (parked,) = [o for o in outputs if o.topic == world.topics.deadletter]
    assert parked.value is not None
    letter = CODEC.decode_as(parked.value, DeadLetter)
    assert letter.reason is ErrorCode.INTERNAL
    assert letter.detail.startswith("ValueError in broken")
    assert "unexpected ValueError" in caplog.text
    assert "test_dead_letters.py" in caplog.text  # the frames are logged
    assert clear_of_identifiers(caplog.text)
    assert clear_of_identifiers(letter.detail)


# -- describing errors ------------------------------------------------------------------


class _Person(BaseModel):
    my_number: str = Field(pattern=r"^\d{12}$")
    name: str

    @field_validator("name")
    @classmethod
    def _no_tanaka(cls, name: str) -> str:
        if name.startswith("山田"):
            raise ValueError(f"{name} is not allowed")
        return name


def test_a_validation_error_is_described_by_location_and_kind() -> None:
    try:
        _Person(my_number=NUMBERS[0] + "9", name=B4.name)
    except ValidationError as exc:
        wrapped = DecodeError(f"jp.renkei.EnrolmentRequest: {exc}")
        wrapped.__cause__ = exc
    assert NUMBERS[0] in str(wrapped)  # what the library says
    described = describe_decode_error(wrapped)
    assert clear_of_identifiers(described)
    assert described.startswith("jp.renkei.EnrolmentRequest: values break the contract")
    assert "my_number: string_pattern_mismatch" in described
    assert "name: value_error" in described


def test_a_fastavro_failure_is_named_by_its_type_only() -> None:
    try:
        (NUMBERS[0].encode() + b"\xff").decode("utf-8")
    except UnicodeDecodeError as exc:
        wrapped = DecodeError(f"jp.renkei.EnrolmentRequest: body does not decode: {exc!r}")
        wrapped.__cause__ = exc
    assert NUMBERS[0] in str(wrapped)
    described = describe_decode_error(wrapped)
    assert described == "jp.renkei.EnrolmentRequest: does not decode (UnicodeDecodeError)"


def test_the_codecs_framing_errors_are_kept_as_they_are() -> None:
    with pytest.raises(DecodeError) as caught:
        CODEC.decode(b"\xc3\x01" + b"\x07" * 8)
    assert describe_decode_error(caught.value) == str(caught.value)


def test_describing_an_exception_keeps_its_place_and_drops_its_message() -> None:
    def fails() -> None:
        raise KeyError(NUMBERS[0])

    try:
        fails()
    except KeyError as exc:
        caught = exc
    assert describe_exception(caught).startswith("KeyError in fails (test_dead_letters.py:")
    assert describe_exception(RuntimeError(NUMBERS[0])) == "RuntimeError"
    assert clear_of_identifiers(withheld_traceback(caught))
    assert "in fails" in withheld_traceback(caught)


# -- person rows at rest -----------------------------------------------------------------


def test_person_rows_reach_kafka_sealed(world: World) -> None:
    outputs = world.hub.handle([world.registration("10000000000", NUMBERS[0])])
    world.hub.commit()
    (row,) = [o for o in outputs if o.topic == world.topics.state("persons")]
    assert row.value is not None
    assert row.value.startswith(MAGIC)
    assert clear_of_identifiers(row.value)
    restored = persons_table(world.hub.keyring, world.topics.state("persons"))
    restored.load(b"10000000000", row.value)
    person = restored.get("10000000000")
    assert person is not None
    assert person.my_number == NUMBERS[0]
    plain = person.to_bytes()  # a row from before sealing is still read
    restored.load(b"10000000001", plain)
    assert restored.get("10000000001") == person
    other = World(world.key_dir.parent / "other-keys")  # another master secret
    stranger = persons_table(other.hub.keyring, world.topics.state("persons"))
    with pytest.raises(CryptoError):
        stranger.load(b"10000000000", row.value)
