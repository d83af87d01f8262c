"""The hot-path readers (schemas/fastread.py) agree with the general decoder, or defer to it.

For every input: a reader either returns ``None`` or the very model the general way
(fastavro, then pydantic) returns; and ``Codec.decode`` answers exactly as the general way
does — the same model, or a DecodeError of the same type with the same text. Inputs: the
samples, every field at its limit and one past it (in ASCII and in 4-byte characters), and
mutated bytes.
"""

from __future__ import annotations

import dataclasses
import io
import random
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings

from renkei.errors import DecodeError
from schemas import limits
from schemas.codec import HEADER_SIZE, Codec, default_codec
from schemas.fastread import READERS
from schemas.models import AttributeRequest, Message, ProviderResponse, ResponseStatus
from tests.samples import sample_messages, sample_variants
from tests.security.fuzzing import entropy, mutate

CODEC = default_codec()
GENERAL = Codec()
for _fp, _entry in list(GENERAL._by_fingerprint.items()):
    GENERAL._by_fingerprint[_fp] = dataclasses.replace(_entry, fast=None)
HOT = (AttributeRequest, ProviderResponse)
SAMPLES = [m for m in sample_messages() + sample_variants() if isinstance(m, HOT)]
SEEDS = [CODEC.encode(m) for m in SAMPLES]


def general(data: bytes) -> Message | tuple[type[Exception], str]:
    try:
        return GENERAL.decode(data)
    except DecodeError as exc:
        return type(exc), str(exc)


def fast(data: bytes) -> Message | tuple[type[Exception], str]:
    try:
        return CODEC.decode(data)
    except DecodeError as exc:
        return type(exc), str(exc)


def reader_of(data: bytes) -> Any:
    try:
        return CODEC._lookup(data).fast
    except DecodeError:
        return None


def same(a: Any, b: Any) -> bool:
    if isinstance(a, Message) and isinstance(b, Message):
        return (
            type(a) is type(b)
            and a == b
            and a.model_dump() == b.model_dump()
            and a.model_fields_set == b.model_fields_set
            and repr(a) == repr(b)
            and hash(a) == hash(b)
        )
    return bool(a == b)


def agree(data: bytes) -> None:
    reference = general(data)
    got = fast(data)
    assert same(got, reference), (data.hex(), got, reference)
    if (read := reader_of(data)) is not None:
        direct = read(data, HEADER_SIZE)
        assert direct is None or same(direct, reference), data.hex()


def test_every_hot_type_has_its_reader_bound_to_the_current_schema() -> None:
    # Fails when a hot schema changes: update the reader in schemas/fastread.py with it.
    for model in HOT:
        fingerprint, _ = READERS[model.avro_name]
        assert fingerprint == CODEC.fingerprint(model).hex(), model.avro_name
        assert CODEC._by_type[model].fast is not None


@pytest.mark.parametrize("data", SEEDS, ids=[type(m).__name__ for m in SAMPLES])
def test_the_samples_take_the_fast_path_to_the_same_model(data: bytes) -> None:
    read = reader_of(data)
    assert read is not None
    model = read(data, HEADER_SIZE)
    assert model is not None
    assert same(model, general(data))
    with pytest.raises(Exception, match="frozen"):
        model.header = model.header  # as frozen as a validated one
    assert same(model.model_copy(), model)


def _with(message: Message, **changes: Any) -> bytes:
    """``message`` with fields changed past validation, encoded as a hostile writer would:
    straight through fastavro (a timestamp may be given as an int of milliseconds)."""
    datum = message.model_dump()
    for key, value in changes.items():
        if key.startswith("header_"):
            datum["header"][key.removeprefix("header_")] = value
        elif key == "sealed" and value is not None:
            datum["sealed"] = ("jp.renkei.SealedPayload", value)
        else:
            datum[key] = value
    if isinstance(datum.get("sealed"), dict):
        datum["sealed"] = ("jp.renkei.SealedPayload", datum["sealed"])
    entry = CODEC._by_type[type(message)]
    out = io.BytesIO(entry.prefix)
    out.seek(0, io.SEEK_END)
    fastavro.schemaless_writer(out, entry.writer, datum)
    return out.getvalue()


def _texts(maximum: int) -> list[str]:
    return ["x" * maximum, "x" * (maximum + 1), "\U0001f600" * maximum,
            "\U0001f600" * (maximum + 1), ""]  # fmt: skip


BOUNDARIES: list[tuple[str, dict[str, Any]]] = []
for _text in [*_texts(limits.MESSAGE_ID), "0" * 31 + "G", "0" * 32 + "\n"]:
    BOUNDARIES.append(("message_id", {"header_message_id": _text}))
for _text in [*_texts(limits.AGENCY_ID), "-x", "a.b", "x\n"]:
    BOUNDARIES.append(("sender", {"header_sender": _text}))
for _text in _texts(limits.ID):
    BOUNDARIES.append(("correlation_id", {"header_correlation_id": _text}))
for _size in (limits.SIGNATURE, limits.SIGNATURE + 1):
    BOUNDARIES.append(("signature", {"header_signature": b"s" * _size}))
for _ms in (-1, 0, 253_402_300_799_999, 253_402_300_800_000):
    BOUNDARIES.append(("sent_at", {"header_sent_at": _ms}))


def _request_cases() -> list[bytes]:
    base = next(m for m in SAMPLES if isinstance(m, AttributeRequest))
    cases = []
    texts = {"request_id": limits.ID, "requester_link_code": limits.LINK_CODE,
             "provider": limits.AGENCY_ID, "scenario_id": limits.SCENARIO_ID}  # fmt: skip
    for field, maximum in texts.items():
        cases += [_with(base, **{field: t}) for t in _texts(maximum)]
    cases += [_with(base, items=items) for items in (
        (), ("x",) * limits.ITEMS, ("x",) * (limits.ITEMS + 1),
        ("x" * limits.ITEM_CODE,), ("x" * (limits.ITEM_CODE + 1),),
    )]  # fmt: skip
    for size in (0, limits.PUBLIC_KEY, limits.PUBLIC_KEY + 1):
        cases.append(_with(base, reply_public_key=b"k" * size))
    cases += [_with(base, **changes) for _, changes in BOUNDARIES]
    return cases


def _response_cases() -> list[bytes]:
    base = next(m for m in SAMPLES if isinstance(m, ProviderResponse) and m.sealed is not None)
    assert base.sealed is not None
    cases = []
    texts = {"hub_request_id": limits.ID, "provider_link_code": limits.LINK_CODE,
             "detail": limits.DETAIL}  # fmt: skip
    for field, maximum in texts.items():
        cases += [_with(base, **{field: t}) for t in _texts(maximum)]
    for status in ResponseStatus:
        cases += [_with(base, status=status), _with(base, status=status, sealed=None)]
    for field, maximum in (("enc", limits.ENC), ("ciphertext", limits.CIPHERTEXT)):
        for size in (maximum, maximum + 1):
            cases.append(_with(base, sealed={**base.sealed.model_dump(), field: b"c" * size}))
    cases += [_with(base, **changes) for _, changes in BOUNDARIES]
    return cases


@pytest.mark.parametrize("data", _request_cases() + _response_cases())
def test_limits_and_rules_decide_as_the_general_way(data: bytes) -> None:
    agree(data)


def test_a_value_over_a_limit_is_still_refused_typed() -> None:
    base = next(m for m in SAMPLES if isinstance(m, AttributeRequest))
    with pytest.raises(DecodeError, match="request_id"):
        CODEC.decode(_with(base, request_id="x" * (limits.ID + 1)))


def test_cut_bytes_decide_as_the_general_way() -> None:
    for seed in SEEDS:
        for end in range(HEADER_SIZE, len(seed)):
            agree(seed[:end])
        agree(seed + b"\x00")


@settings(max_examples=3000, derandomize=True, database=None, deadline=None)
@given(entropy())
def test_mutated_bytes_decide_as_the_general_way(rng: random.Random) -> None:
    agree(mutate(rng, rng.choice(SEEDS)))
