"""Every field has a limit; the models, the table, the hub and the contract agree on it.

For each limit of :mod:`schemas.limits`: a value at the limit decodes, one past it is a
``DecodeError`` that does not repeat the value. The hub refuses a record over the
whole-record limits before reading it, and its refusals stay small.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hub_stream.outputs import Output
from hub_stream.unwritable import StandIns
from renkei.errors import DecodeError
from renkei.topics import Topics
from schemas import limits
from schemas.codec import default_codec
from schemas.limits import FIELD_LIMITS, LIMITS, Limit, clip
from schemas.models import (
    RECORD_TYPES,
    AttributeRequest,
    AuditRecord,
    AvroRecord,
    DeadLetter,
    DeenrolmentRequest,
    EnrolmentRequest,
    ErrorCode,
    EventKind,
    Header,
    HpkeSuite,
    HubError,
    Message,
    ProviderResponse,
    RegistryEvent,
)
from tests.samples import sample_messages, sample_variants
from tests.unit.hub_world import NUMBERS, World, codes_of

CODEC = default_codec()
SAMPLES = sample_messages() + sample_variants()
CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
Path_ = tuple[str | int, ...]


def _max_length(annotation: Any) -> tuple[Any, int | None, Any]:
    """(the base type, its max_length, the item annotation of a tuple) of a field."""
    found: int | None = None
    while typing.get_origin(annotation) is typing.Annotated:
        annotation, *metadata = typing.get_args(annotation)
        # StringConstraints and annotated_types.MaxLen both carry max_length
        for m in metadata:  # a Field() nested in a union keeps its MaxLen in .metadata
            for part in (m, *getattr(m, "metadata", ())):
                found = getattr(part, "max_length", None) or found
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _max_length(inner[0]) if len(inner) == 1 else (typing.Union, None, None)
    if typing.get_origin(annotation) is tuple:
        return tuple, found, typing.get_args(annotation)[0]
    return annotation, found, None


def _fields() -> Iterator[tuple[str, type, int | None, Any]]:
    for model in RECORD_TYPES:
        for name, info in model.model_fields.items():
            base, most, item = _max_length(_annotation(info))
            yield f"{model.__name__}.{name}", base, most, item


def _annotation(info: Any) -> Any:
    if info.metadata:
        return typing.Annotated[(info.annotation, *info.metadata)]
    return info.annotation


def test_every_string_bytes_and_array_field_has_its_limit_from_the_table() -> None:
    wrong = []
    for key, base, most, item in _fields():
        if base in (str, bytes, tuple):
            limit = FIELD_LIMITS.get(key)
            if limit is None or most != limit.maximum:
                wrong.append((key, most, limit and limit.maximum))
        if item is not None and _max_length(item)[0] is str:
            items = FIELD_LIMITS.get(f"{key}[]")
            if items is None or _max_length(item)[1] != items.maximum:
                wrong.append((f"{key}[]", _max_length(item)[1], items and items.maximum))
    assert wrong == []


def test_the_table_names_only_fields_that_exist() -> None:
    known = {key for key, *_ in _fields()}
    assert {f.removesuffix("[]") for f in FIELD_LIMITS} <= known


# -- each limit, at and past it ---------------------------------------------------------


def _cases() -> dict[str, tuple[Message, Path_]]:
    """One sample message and the path to a field, for every field the table limits."""
    cases: dict[str, tuple[Message, Path_]] = {}

    def walk(record: AvroRecord, path: Path_, message: Message) -> None:
        for name in type(record).model_fields:
            value = getattr(record, name)
            key = f"{type(record).__name__}.{name}"
            if key in FIELD_LIMITS and value is not None:  # a null may be required
                cases.setdefault(key, (message, (*path, name)))
            if f"{key}[]" in FIELD_LIMITS and value:
                cases.setdefault(f"{key}[]", (message, (*path, name)))
            if isinstance(value, AvroRecord):
                walk(value, (*path, name), message)
            if isinstance(value, tuple) and value and isinstance(value[0], AvroRecord):
                walk(value[0], (*path, name, 0), message)  # an array of records: its first

    for message in SAMPLES:
        walk(message, (), message)
    for message in SAMPLES:  # a field no sample sets: set it where it is null
        for name in type(message).model_fields:
            key = f"{type(message).__name__}.{name}"
            if key in FIELD_LIMITS:
                cases.setdefault(key, (message, (name,)))
    return cases


CASES = _cases()


def _with(record: Any, path: Path_, value: Any) -> Any:
    """``record`` with the field at ``path`` replaced, validation bypassed (a rogue writer)."""
    head, *rest = path
    if isinstance(head, int):  # an item of an array of records
        items = list(record)
        items[head] = value if not rest else _with(items[head], tuple(rest), value)
        return tuple(items)
    new = value if not rest else _with(getattr(record, head), tuple(rest), value)
    return record.model_copy(update={head: new})


def _value(key: str, size: int, current: Any, wide: bool = False) -> Any:
    char = "𠀋" if wide else "0"  # 4 bytes in UTF-8 against a pattern-free field
    if key.endswith("[]"):
        if isinstance(current, tuple) and current and isinstance(current[0], bytes):
            return (b"\x00" * size,)
        return (char * size,)
    if isinstance(current, bytes):
        return b"\x00" * size
    if current is None and key == "DeadLetter.key":
        return b"\x00" * size
    if isinstance(current, tuple):
        return (current[0] if current else EventKind.MOVED,) * size
    return char * size


def test_every_limited_field_is_exercised() -> None:
    assert set(CASES) == set(FIELD_LIMITS)


@pytest.mark.parametrize("key", sorted(FIELD_LIMITS))
def test_at_the_limit_decodes_and_past_it_is_refused(key: str) -> None:
    message, path = CASES[key]
    current: Any = message
    for name in path:
        current = current[name] if isinstance(name, int) else getattr(current, name)
    maximum = FIELD_LIMITS[key].maximum
    at = _with(message, path, _value(key, maximum, current))
    assert CODEC.decode(CODEC.encode(at)) == at
    past = CODEC.encode(_with(message, path, _value(key, maximum + 1, current)))
    with pytest.raises(DecodeError, match=f"at most {maximum} ") as refused:
        CODEC.decode(past)
    assert "0" * 16 not in str(refused.value)  # the value is not repeated


INBOUND = (EnrolmentRequest, DeenrolmentRequest, AttributeRequest, ProviderResponse, RegistryEvent)


def _largest(record: AvroRecord) -> Any:
    """``record`` with every limited field at its limit, in 4-byte characters where free."""
    update: dict[str, Any] = {}
    for name, info in type(record).model_fields.items():
        value = getattr(record, name)
        key = f"{type(record).__name__}.{name}"
        if isinstance(value, AvroRecord):
            update[name] = _largest(value)
        elif key in FIELD_LIMITS and value is not None:
            patterned = "pattern" in repr(info.metadata) or "pattern" in repr(info.annotation)
            most = FIELD_LIMITS[key].maximum
            if f"{key}[]" in FIELD_LIMITS:
                item_most = FIELD_LIMITS[f"{key}[]"].maximum
                is_bytes = bool(value) and isinstance(value[0], bytes)
                item: Any = b"\x00" * item_most if is_bytes else "𠀋" * item_most
                update[name] = (item,) * most
            else:
                update[name] = _value(key, most, value, wide=not patterned)
    return record.model_copy(update=update)


@pytest.mark.parametrize("kind", INBOUND, ids=lambda k: k.__name__)
def test_the_largest_message_an_agency_may_send_fits_the_record_limit(kind: type) -> None:
    sizes = [len(CODEC.encode(_largest(m))) for m in SAMPLES if type(m) is kind]
    assert sizes
    assert max(sizes) <= limits.MESSAGE_BYTES, (kind.__name__, max(sizes))


def test_the_contract_lists_every_limit() -> None:
    text = CONTRACT.read_text(encoding="utf-8")
    rows = re.findall(
        r"^\| `([A-Z_]+)` \| ([0-9,]+) (bytes|characters|items) \| (.+?) \|", text, re.M
    )
    documented = {
        name: (int(most.replace(",", "")), unit, fields) for name, most, unit, fields in rows
    }
    for limit in LIMITS:
        assert limit.name in documented, limit.name
        most, unit, fields = documented[limit.name]
        assert (most, unit) == (limit.maximum, limit.unit), limit.name
        assert set(re.findall(r"`([^`]+)`", fields)) == set(limit.fields), limit.name
    assert set(documented) == {limit.name for limit in LIMITS}


def test_clip_bounds_a_text_and_says_so() -> None:
    assert clip("short") == "short"
    long = clip("x" * 5000)
    assert len(long) == limits.DETAIL
    assert long.endswith("[…]")
    assert all(isinstance(limit, Limit) for limit in LIMITS)


# -- the hub ------------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "keys")


def _outputs(world: World, record: Any) -> list[tuple[str, bytes]]:
    outputs = world.hub.handle([record])
    world.hub.commit()
    return [(o.topic, o.value) for o in outputs if o.value is not None]


def _only(outputs: list[tuple[str, bytes]], topic: str) -> list[Message]:
    return [CODEC.decode(v) for t, v in outputs if t == topic]


@pytest.mark.parametrize("size", [limits.MESSAGE_BYTES + 1, 900_000])
def test_a_record_over_the_limit_is_refused_unread(world: World, size: int) -> None:
    topic = world.topics.agency_out("city-shinagawa")
    request = EnrolmentRequest(
        header=Header.new("city-shinagawa"), record_ref="r", my_number=NUMBERS[0], capacity="",
    )  # fmt: skip
    value = CODEC.encode(request.model_copy(update={"record_ref": "R" * size}))
    assert len(value) > limits.MESSAGE_BYTES
    outputs = _outputs(world, world.record(topic, value))
    (error,) = _only(outputs, world.topics.agency_in("city-shinagawa"))
    assert isinstance(error, HubError)
    assert error.code is ErrorCode.MALFORMED_MESSAGE
    assert f"over the limits of {limits.MESSAGE_BYTES}" in error.detail
    assert "RRRR" not in error.detail
    (letter,) = _only(outputs, world.topics.deadletter)
    assert isinstance(letter, DeadLetter)
    assert len(letter.value) <= limits.KEPT_BYTES + 2_048  # a prefix (sealed, or not)
    (audit,) = [m for m in _only(outputs, world.topics.audit) if isinstance(m, AuditRecord)]
    assert audit.error_code == ErrorCode.MALFORMED_MESSAGE
    assert all(len(v) < 4_000 for _, v in outputs)
    assert world.hub.metrics["oversize"] == 1


def test_an_oversized_key_is_refused_unread(world: World) -> None:
    record = world.record(world.topics.registry_events, b"not even a message")
    record.key = b"k" * (limits.KEY_BYTES + 1)
    outputs = _outputs(world, record)
    (letter,) = _only(outputs, world.topics.deadletter)
    assert isinstance(letter, DeadLetter)
    assert "not read" in letter.detail
    assert world.hub.metrics["oversize"] == 1


def test_a_record_at_the_limit_is_read(world: World) -> None:
    # At exactly the limit the hub reads it (and then finds it no message).
    record = world.record(world.topics.registry_events, b"x" * limits.MESSAGE_BYTES)
    (letter,) = _only(_outputs(world, record), world.topics.deadletter)
    assert isinstance(letter, DeadLetter)
    assert "not read" not in letter.detail
    assert world.hub.metrics["oversize"] == 0


def test_a_field_over_its_limit_is_refused_without_echo(world: World) -> None:
    world.run(world.registration("10000000000", NUMBERS[0]))
    request = EnrolmentRequest(
        header=Header.new("city-shinagawa"), record_ref="r", my_number=NUMBERS[0], capacity="",
    )  # fmt: skip
    long_ref = "Q" * (limits.ID + 1)
    record = world.signed(
        world.topics.agency_out("city-shinagawa"),
        request.model_copy(update={"record_ref": long_ref}), "city-shinagawa",
    )  # fmt: skip
    outputs = _outputs(world, record)
    (error,) = _only(outputs, world.topics.agency_in("city-shinagawa"))
    assert isinstance(error, HubError)
    assert error.code is ErrorCode.MALFORMED_MESSAGE
    assert "QQQQ" not in error.detail
    assert error.request_id is None
    assert not codes_of(_only(outputs, world.topics.agency_in("city-shinagawa")))


def test_a_refusal_listing_items_stays_small(world: World) -> None:
    world.run(world.registration("10000000000", NUMBERS[0]))
    (city,) = codes_of(world.run(world.enrolment("city-shinagawa", NUMBERS[0])))
    header = Header.new("city-shinagawa")
    items = tuple(f"x{n:02}." + "y" * (limits.ITEM_CODE - 4) for n in range(limits.ITEMS))
    request = AttributeRequest(
        header=header, request_id="r1", requester_link_code=city, provider="jps",
        scenario_id="S003", items=items, reply_public_key=world.reply.public_bytes,
        hpke_suite=HpkeSuite.X25519, deadline=header.sent_at + timedelta(hours=1),
    )  # fmt: skip
    record = world.signed(world.topics.agency_out("city-shinagawa"), request, "city-shinagawa")
    assert record.value is not None
    outputs = _outputs(world, record)
    [(_, value)] = [(t, v) for t, v in outputs if t == world.topics.agency_in("city-shinagawa")]
    error = CODEC.decode(value)
    assert isinstance(error, HubError)
    assert error.code is ErrorCode.ITEM_NOT_PERMITTED
    assert len(error.detail) <= limits.DETAIL
    assert len(value) < 1_500 < len(record.value)


def test_an_unwritable_refusal_is_replaced_not_lost() -> None:
    """The writer's stand-ins cover refusals too: the requester still gets a typed answer."""
    topics = Topics("u.")
    refusal = HubError(
        header=Header.new("hub", "c" * 32), code=ErrorCode.ITEM_NOT_PERMITTED,
        detail=clip("x" * 5_000), request_id="r" * limits.ID, retriable=False,
    )  # fmt: skip
    out = Output(topics.agency_in("jps"), b"key", CODEC.encode(refusal))
    replaced = StandIns(topics, CODEC, lambda m: m)(out, 2, "over the topic's limit")
    letter, error = (CODEC.decode(o.value) for o in replaced if o.value is not None)
    assert isinstance(letter, DeadLetter)
    assert isinstance(error, HubError)
    assert (error.code, error.request_id, replaced[1].partition) == (
        ErrorCode.INTERNAL, refusal.request_id, 2,
    )  # fmt: skip
