"""The raw header parser: where the signature is, and typed errors for every bad header."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renkei.crypto import SigningKey
from renkei.envelope import encode_signed, sign_message
from renkei.errors import ConfigurationError, DecodeError, EncodeError, TruncatedError
from schemas.codec import HEADER_SIZE, default_codec
from schemas.loader import SCHEMA_DIR, load_schema_dir, resolve
from schemas.models import HubError, Message
from schemas.wire import encode_long, header_layout, read_long, signature_span
from tests.samples import sample_messages, sample_variants

CODEC = default_codec()
KEY = SigningKey.generate()
SAMPLES = sample_messages() + sample_variants()
SIGNED = [encode_signed(m, KEY, CODEC) for m in SAMPLES]
LAYOUT = header_layout(resolve("jp.renkei.HubError", load_schema_dir(SCHEMA_DIR)))
# Property tests: deterministic, and no example database left in the work tree.
PROPERTY = settings(
    database=None, derandomize=True, max_examples=300,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_split_gives_the_signing_payload_and_the_signature(message: Message) -> None:
    signed = sign_message(message, KEY, CODEC)
    value = CODEC.encode(signed)
    assert encode_signed(message, KEY, CODEC) == value
    payload, signature = CODEC.split_signature(value)
    assert payload == CODEC.signing_payload(message)
    assert signature == signed.header.signature
    assert CODEC.join_signature(payload, signature) == value


def test_the_hub_layout_is_the_headers_fields_before_the_signature() -> None:
    # message_id (string), correlation_id (null | string), sender (string), sent_at (long)
    assert LAYOUT == ("length", ("null", "length"), "length", "long")


def test_joining_into_bytes_that_carry_a_signature_is_refused() -> None:
    with pytest.raises(EncodeError):
        CODEC.join_signature(SIGNED[0], b"x" * 64)


def test_an_unknown_fingerprint_or_marker_is_a_decode_error() -> None:
    value = SIGNED[0]
    with pytest.raises(DecodeError, match="fingerprint"):
        CODEC.split_signature(value[:2] + bytes(8) + value[10:])
    with pytest.raises(DecodeError, match="marker"):
        CODEC.split_signature(b"\x00\x00" + value[2:])


@pytest.mark.parametrize(
    ("data", "kind", "value"),
    [(b"\x00", "long", 0), (b"\x01", "long", -1), (b"\x80\x01", "long", 64),
     (encode_long(2**63 - 1), "long", 2**63 - 1), (encode_long(-(2**63)), "long", -(2**63)),
     (b"\xff\xff\xff\xff\x0f", "int", -(2**31))],
)  # fmt: skip
def test_varints_read_back(data: bytes, kind: str, value: int) -> None:
    assert read_long(data, 0, kind) == (value, len(data))


@pytest.mark.parametrize(
    ("data", "kind", "error"),
    [(b"\x80" * 10 + b"\x00", "long", "longer than 10"), (b"\x80" * 5 + b"\x00", "int", "longer"),
     (b"\xff" * 9 + b"\x02", "long", "overflows"), (b"\xff\xff\xff\xff\x1f", "int", "overflows")],
)  # fmt: skip
def test_overlong_and_overflowing_varints_are_refused(data: bytes, kind: str, error: str) -> None:
    with pytest.raises(DecodeError, match=error) as caught:
        read_long(data, 0, kind)
    assert not isinstance(caught.value, TruncatedError)


def test_a_varint_cut_short_is_truncated() -> None:
    with pytest.raises(TruncatedError):
        read_long(b"\x80\x80", 0)


def _body(*parts: bytes) -> bytes:
    return b"\x00" * HEADER_SIZE + b"".join(parts)


def test_a_negative_length_is_refused() -> None:
    with pytest.raises(DecodeError, match="negative length"):
        signature_span(_body(encode_long(-3)), HEADER_SIZE, LAYOUT)


def test_a_union_branch_that_does_not_exist_is_refused() -> None:
    with pytest.raises(DecodeError, match="branch 2"):
        signature_span(_body(b"\x02a", encode_long(2)), HEADER_SIZE, LAYOUT)


def test_a_length_past_the_end_is_truncated() -> None:
    with pytest.raises(TruncatedError):
        signature_span(_body(encode_long(1_000_000), b"abc"), HEADER_SIZE, LAYOUT)


def test_a_boolean_must_be_zero_or_one() -> None:
    layout = ("boolean",)
    assert signature_span(_body(b"\x01", b"\x00"), HEADER_SIZE, layout) == (11, 12, 12)
    with pytest.raises(DecodeError, match="no boolean"):
        signature_span(_body(b"\x02", b"\x00"), HEADER_SIZE, layout)


def test_a_header_the_splice_cannot_walk_is_a_configuration_error() -> None:
    named = load_schema_dir(SCHEMA_DIR)
    schema = resolve("jp.renkei.HubError", named)
    header = schema["fields"][0]["type"]
    header["fields"].insert(0, {"name": "tags", "type": {"type": "array", "items": "string"}})
    with pytest.raises(ConfigurationError, match="cannot skip"):
        header_layout(schema)
    schema["fields"][0]["type"] = {"type": "record", "name": "H", "fields": []}
    with pytest.raises(ConfigurationError, match="no signature"):
        header_layout(schema)
    schema["fields"].reverse()
    with pytest.raises(ConfigurationError, match="first field"):
        header_layout(schema)


@pytest.mark.parametrize("index", range(len(SIGNED)))
def test_every_cut_inside_the_header_is_a_typed_error(index: int) -> None:
    value = SIGNED[index]
    end = CODEC.signature_span(value)[2]
    for cut in range(end):
        with pytest.raises(DecodeError):
            CODEC.split_signature(value[:cut])


@PROPERTY
@given(st.binary(max_size=200))
def test_random_bodies_give_a_span_or_a_decode_error(body: bytes) -> None:
    data = b"\x00" * HEADER_SIZE + body
    try:
        field, content, end = signature_span(data, HEADER_SIZE, LAYOUT)
    except DecodeError:
        return
    assert HEADER_SIZE <= field < content <= end <= len(data)


@PROPERTY
@given(st.sampled_from(SIGNED), st.binary(max_size=40), st.integers(0, 400))
def test_corrupted_values_never_raise_anything_but_decode_errors(
    value: bytes, noise: bytes, at: int
) -> None:
    at = min(at, len(value))
    corrupted = value[:at] + noise + value[at + len(noise) :]
    try:
        signed, signature = CODEC.split_signature(corrupted)
    except DecodeError:
        return
    assert len(signed) == len(corrupted) - len(encode_long(len(signature))) - len(signature) + 1


@PROPERTY
@given(st.text(max_size=40), st.none() | st.text(max_size=40), st.binary(min_size=0, max_size=80))
def test_any_header_values_are_found_again(
    detail: str, correlation: str | None, signature: bytes
) -> None:
    error = HubError.model_construct(
        header=SAMPLES[10].header.model_copy(
            update={"correlation_id": correlation, "signature": b""}
        ),
        code=SAMPLES[10].code,  # type: ignore[attr-defined]
        detail=detail,
        request_id=None,
        retriable=False,
    )
    unsigned = CODEC.encode(error)
    value = CODEC.join_signature(unsigned, signature)
    assert CODEC.split_signature(value) == (unsigned, signature)
