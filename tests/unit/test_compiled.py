"""Compiled writers (schemas/compiled.py) write byte for byte what the codec writes.

Every sample and variant whose type compiles, and thousands of schema-valid rewrites of
them (one field replaced by a hostile value of its type), encode to the same bytes through
``Codec.writer`` as through ``Codec.encode``; the split at the signature is where the
signature splice finds it; values over the contract's limits are refused typed.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings

from renkei.errors import EncodeError
from schemas import limits
from schemas.codec import default_codec
from schemas.models import (
    AttributeResponse,
    AuditRecord,
    ForwardedRequest,
    HubError,
    Message,
)
from tests.samples import sample_messages, sample_variants
from tests.security.fuzzing import entropy, rewrite

CODEC = default_codec()
SAMPLES = sample_messages() + sample_variants()
HOT = (ForwardedRequest, AttributeResponse, AuditRecord, HubError)


def _compiles(model: type[Message]) -> bool:
    try:
        CODEC.writer(model)
    except EncodeError:
        return False
    return True


COMPILED = [m for m in SAMPLES if _compiles(type(m))]
PALETTE: list[Any] = ["jps", "city-shinagawa", "S-0001", "x" * 64, "\u3042" * 10, b"", b"k" * 32]


def compiled_bytes(message: Message) -> bytes:
    datum = message.model_dump()
    header = datum.pop("header")
    return CODEC.writer(type(message)).encode(header, header["signature"], **datum)


def test_the_hub_s_hot_types_compile() -> None:
    for model in HOT:
        assert _compiles(model), model.avro_name


@pytest.mark.parametrize("message", COMPILED, ids=[type(m).__name__ for m in COMPILED])
def test_a_compiled_writer_writes_what_the_codec_writes(message: Message) -> None:
    assert compiled_bytes(message) == CODEC.encode(message)


@pytest.mark.parametrize("message", COMPILED, ids=[type(m).__name__ for m in COMPILED])
def test_the_split_is_where_the_signature_goes(message: Message) -> None:
    datum = message.model_dump()
    header = datum.pop("header")
    head, tail = CODEC.writer(type(message)).write(header, **datum)
    unsigned = head + b"\x00" + tail
    field, content, end = CODEC.signature_span(unsigned)
    assert (field, content, end) == (len(head), len(head) + 1, len(head) + 1)
    assert CODEC.join_signature(unsigned, b"s" * 64) == CODEC.writer(type(message)).join(
        head, tail, b"s" * 64
    )


@settings(max_examples=3000, derandomize=True, database=None, deadline=None)
@given(entropy())
def test_rewritten_messages_write_what_the_codec_writes(rng: random.Random) -> None:
    changed = rewrite(rng, rng.choice(COMPILED), PALETTE)
    if changed is not None:
        assert compiled_bytes(changed) == CODEC.encode(changed)


def test_a_default_is_written_when_a_field_is_left_out() -> None:
    record = next(m for m in SAMPLES if isinstance(m, AuditRecord))
    datum = record.model_dump()
    header = datum.pop("header")
    for name in ("audit_key", "requester", "linkage_score", "disclosable"):
        datum.pop(name, None)
    expected = record.model_copy(
        update={"audit_key": None, "requester": None, "linkage_score": None, "disclosable": True}
    )
    assert CODEC.writer(AuditRecord).encode(header, header["signature"], **datum) == (
        CODEC.encode(expected)
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor", "x" * (limits.TOPIC_NAME + 1)),
        ("items", ("x",) * (limits.ITEMS + 1)),
        ("items", ("x" * (limits.ITEM_CODE + 1),)),
        ("prev_hash", b"h" * (limits.HASH + 1)),
        ("step", "NOT_A_STEP"),
        ("disclosable", 1),
        ("occurred_at", 2**63),
    ],
)
def test_a_value_against_the_contract_is_refused_typed(field: str, value: Any) -> None:
    record = next(m for m in SAMPLES if isinstance(m, AuditRecord))
    datum = record.model_dump()
    header = datum.pop("header")
    datum[field] = value
    with pytest.raises(EncodeError):
        CODEC.writer(AuditRecord).encode(header, **datum)
