"""The codec: single-object encoding, fingerprints, round trips, and typed failures."""

from __future__ import annotations

import io
import json
import random
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import avro.schema
import fastavro
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

import schemas
import schemas.models
from renkei.errors import (
    BadMagicError,
    ConfigurationError,
    DecodeError,
    EncodeError,
    TruncatedError,
    UnknownSchemaError,
)
from schemas import (
    HEADER_SIZE,
    MAGIC,
    MESSAGE_TYPES,
    AttributeRequest,
    Codec,
    DeenrolmentRequest,
    EnrolmentOutcome,
    EnrolmentResult,
    ErrorCode,
    EventAction,
    EventKind,
    Header,
    HubError,
    Message,
    PersonDied,
    PersonMoved,
    ProviderResponse,
    RegistryEvent,
    ResponseStatus,
    default_codec,
    new_message_id,
    now_ms,
)
from schemas.loader import (
    RELEASED_DIR,
    SCHEMA_DIR,
    canonical_form,
    fingerprint,
    load_schema_dir,
    resolve,
)
from tests.samples import NOW, sample_messages, sample_variants, signed_header

ALL_SAMPLES = sample_messages() + sample_variants()


def _id(message: Message) -> str:
    return type(message).__name__


@pytest.fixture(scope="module")
def codec() -> Codec:
    return default_codec()


# -- round trips ------------------------------------------------------------------------


def test_samples_cover_every_message_type_once_in_order() -> None:
    assert [type(m) for m in sample_messages()] == list(MESSAGE_TYPES)


@pytest.mark.parametrize("message", ALL_SAMPLES, ids=_id)
def test_round_trip_is_identity_and_re_encoding_is_byte_identical(
    codec: Codec, message: Message
) -> None:
    data = codec.encode(message)
    decoded = codec.decode(data)
    assert type(decoded) is type(message)
    assert decoded == message
    assert codec.encode(decoded) == data


@pytest.mark.parametrize("message", sample_messages(), ids=_id)
def test_wire_layout_is_marker_fingerprint_then_plain_avro_body(
    codec: Codec, message: Message
) -> None:
    """Any Avro library holding the schema reads the body: nothing Renkei-specific in it."""
    data = codec.encode(message)
    schema = codec.schema_for(type(message))
    assert data[:2] == b"\xc3\x01"
    assert data[2:HEADER_SIZE] == fingerprint(schema) == codec.fingerprint(type(message))
    body = io.BytesIO(data[HEADER_SIZE:])
    plain = fastavro.schemaless_reader(body, fastavro.parse_schema(schema), None)
    assert body.tell() == len(data) - HEADER_SIZE
    assert isinstance(plain, dict)
    assert plain["header"]["message_id"] == message.header.message_id
    assert list(plain) == list(type(message).model_fields)


def test_union_branches_decode_to_their_own_model(codec: Codec) -> None:
    # PersonMoved and PersonDied differ only in field names: the wire names the branch
    for body, kind in (
        (PersonMoved(address="京都府京都市"), EventKind.MOVED),
        (PersonDied(date_of_death=NOW.date()), EventKind.DIED),
    ):
        event = RegistryEvent(
            header=signed_header("registry", 99),
            event_id="e-1",
            resident_code="12345678901",
            kind=kind,
            action=EventAction.ORIGINAL,
            effective_date=NOW.date(),
            body=body,
        )
        decoded = codec.decode(codec.encode(event))
        assert isinstance(decoded, RegistryEvent)
        assert type(decoded.body) is type(body)


def test_every_fingerprint_is_distinct(codec: Codec) -> None:
    fingerprints = [codec.fingerprint(t) for t in MESSAGE_TYPES]
    assert len(set(fingerprints)) == len(MESSAGE_TYPES)
    # today's schemas, and the v1 ones that differ from them (ForwardedRequest gained
    # request_id after v1)
    released = {bytes.fromhex(fp) for fp in RELEASED_V1.values()}
    assert set(codec.fingerprints) == set(fingerprints) | released


def test_message_type_of_reads_the_header_only(codec: Codec) -> None:
    data = codec.encode(sample_messages()[4])
    assert codec.message_type_of(data[:HEADER_SIZE]) is AttributeRequest


def test_decode_as_checks_the_type(codec: Codec) -> None:
    data = codec.encode(sample_messages()[4])
    assert codec.decode_as(data, AttributeRequest) == sample_messages()[4]
    with pytest.raises(DecodeError, match=r"expected jp\.renkei\.HubError"):
        codec.decode_as(data, HubError)


def test_schema_for_is_a_copy(codec: Codec) -> None:
    schema = codec.schema_for(HubError)
    schema["fields"].clear()
    assert codec.schema_for(HubError)["fields"]
    json.dumps(codec.schema_for(HubError))  # JSON-ready


def test_default_codec_is_built_once() -> None:
    assert default_codec() is default_codec()


# -- fingerprints -----------------------------------------------------------------------

# From the Avro project's share/test/data/schema-tests.txt (Java-verified, signed longs).
AVRO_VECTORS = [
    ('"null"', '"null"', 7195948357588979594),
    ('{"type":"boolean"}', '"boolean"', -6970731678124411036),
    ('"int"', '"int"', 8247732601305521295),
    ('"string"', '"string"', -8142146995180207161),
    ("[ ]", "[]", -1241056759729112623),
    ('[ "int" , {"type":"boolean"} ]', '["int","boolean"]', 5392556393470105090),
    (
        '{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}',
        '{"name":"x.y.foo","type":"record","fields":[]}',
        5916914534497305771,
    ),
    (
        '{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}',
        '{"name":"a.b.foo","type":"record","fields":[]}',
        -4616218487480524110,
    ),
    (
        # the vector's f1 has "default":"true", a string for a boolean, which fastavro
        # rightly refuses; the canonical form drops defaults, so the expectation holds
        '{"fields":[{"type":"boolean","aliases":[],"name":"f1","default":true},'
        '{"order":"descending","name":"f2","doc":"Hello","type":"int"}],'
        '"type":"record","name":"foo"}',
        '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},'
        '{"name":"f2","type":"int"}]}',
        -4860222112080293046,
    ),
    (
        '{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar",'
        ' "symbols":["A1","A2"]}',
        '{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}',
        -4448647247586288245,
    ),
    (
        '{ "items":{"type":"null"}, "type":"array"}',
        '{"type":"array","items":"null"}',
        -589620603366471059,
    ),
    (
        '{"name":"PigValue","type":"record",'
        '"fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}',
        '{"name":"PigValue","type":"record","fields":[{"name":"value",'
        '"type":["null","int","long","PigValue"]}]}',
        -1759257747318642341,
    ),
]

# The fingerprints of released version 1, as agencies' clients hold them. A released
# schema is frozen, so these never change; today's differ where a field with a default was
# added since (ForwardedRequest.request_id).
RELEASED_V1 = {
    "jp.renkei.RegistryEvent": "fcd70cd829d6ec2a",
    "jp.renkei.EnrolmentRequest": "8f24f5d69b2f183d",
    "jp.renkei.EnrolmentResult": "70f520b5466b680c",
    "jp.renkei.DeenrolmentRequest": "c5e83064fd998fcc",
    "jp.renkei.AttributeRequest": "ebed88a194ad0127",
    "jp.renkei.ForwardedRequest": "12b2f4f67ac43283",
    "jp.renkei.ProviderResponse": "30d69ce5a0b89e97",
    "jp.renkei.AttributeResponse": "72f5535e2eb2a8ea",
    "jp.renkei.LifeEventNotice": "9a1fba34af83b813",
    "jp.renkei.LinkCodeRemap": "d09a20524af72157",
    "jp.renkei.HubError": "2984d8d5e2093bd7",
    "jp.renkei.AuditRecord": "f3f78e864e4c9c9b",
    "jp.renkei.AuditCheckpoint": "d572bf2139af80b6",
    "jp.renkei.AgencyEntry": "89ba55dd3a064c7c",
    "jp.renkei.ScenarioEntry": "43888f98818b870d",
    "jp.renkei.DeadLetter": "fe785b120aa12fb6",
}


def _rabin_table() -> list[int]:
    # The Avro spec's "Schema Fingerprints" appendix, transcribed: the oracle the codec's
    # fastavro fingerprints are checked against
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    return table


_RABIN = _rabin_table()


def _spec_fingerprint(canonical: str) -> bytes:
    fp = 0xC15D213AA4D7A795
    for byte in canonical.encode("utf-8"):
        fp = (fp >> 8) ^ _RABIN[(fp ^ byte) & 0xFF]
    return fp.to_bytes(8, "little")


def _avro_package_canonical_form(resolved: dict[str, object]) -> str:
    # The avro package (1.12.2) writes a logical-type primitive as {"type":"long"} where
    # the spec, Java and fastavro write "long"; apart from that it is an independent PCF.
    # A client fingerprinting with avro-python as it is would miss every Renkei message.
    text = avro.schema.parse(json.dumps(resolved)).canonical_form
    for primitive in ("int", "long"):
        text = text.replace(f'{{"type":"{primitive}"}}', f'"{primitive}"')
    return text


@pytest.mark.parametrize(("schema", "canonical", "java_long"), AVRO_VECTORS)
def test_fingerprint_matches_the_avro_projects_vectors(
    schema: str, canonical: str, java_long: int
) -> None:
    parsed = json.loads(schema)
    assert canonical_form(parsed) == canonical
    # Java's SchemaNormalization.parsingFingerprint64 is the long, little-endian on the wire
    assert fingerprint(parsed) == java_long.to_bytes(8, "little", signed=True)
    assert _spec_fingerprint(canonical) == fingerprint(parsed)


def test_the_spec_fingerprint_of_empty_input_is_the_seed() -> None:
    assert _spec_fingerprint("") == (0xC15D213AA4D7A795).to_bytes(8, "little")


@pytest.mark.parametrize("name", sorted(load_schema_dir(SCHEMA_DIR)))
def test_every_schema_fingerprint_agrees_with_the_avro_package_and_the_spec(name: str) -> None:
    resolved = resolve(name, load_schema_dir(SCHEMA_DIR))
    theirs = _avro_package_canonical_form(resolved)
    assert canonical_form(resolved) == theirs
    assert fingerprint(resolved) == _spec_fingerprint(theirs)
    # the avro package's own Rabin implementation over the same bytes
    assert fingerprint(resolved) == avro.schema._crc_64_fingerprint(theirs.encode())


def test_released_fingerprints_are_pinned(codec: Codec) -> None:
    released = load_schema_dir(RELEASED_DIR / "v1")
    computed = {
        name: _spec_fingerprint(_avro_package_canonical_form(resolve(name, released))).hex()
        for name in RELEASED_V1
    }
    assert computed == RELEASED_V1
    # the codec decodes every one of them, as the type it was released for
    by_name = {model.avro_name: fp.hex() for fp, model in codec.fingerprints.items()}
    assert {name: by_name.get(name) for name in RELEASED_V1} == RELEASED_V1


@pytest.mark.parametrize("model", MESSAGE_TYPES, ids=lambda m: m.__name__)
def test_codec_fingerprint_is_the_independently_computed_one(
    codec: Codec, model: type[Message]
) -> None:
    expected = _spec_fingerprint(_avro_package_canonical_form(codec.schema_for(model)))
    assert codec.fingerprint(model) == expected


# -- typed failures ---------------------------------------------------------------------


@pytest.mark.parametrize("message", ALL_SAMPLES, ids=_id)
def test_every_truncated_body_is_a_truncated_error(codec: Codec, message: Message) -> None:
    data = codec.encode(message)
    for cut in range(HEADER_SIZE, len(data)):
        with pytest.raises(TruncatedError):
            codec.decode(data[:cut])


def test_every_truncated_header_is_a_truncated_error(codec: Codec) -> None:
    data = codec.encode(sample_messages()[0])
    for cut in range(HEADER_SIZE):
        with pytest.raises(TruncatedError):
            codec.decode(data[:cut])


def test_empty_bytes(codec: Codec) -> None:
    with pytest.raises(TruncatedError):
        codec.decode(b"")


@pytest.mark.parametrize(
    "data",
    [b"\xc3\x02" + bytes(20), b'{"header": {}}', b"\x00\xc3\x01", b"x", b"\x01" * 40],
)
def test_wrong_magic(codec: Codec, data: bytes) -> None:
    with pytest.raises(BadMagicError):
        codec.decode(data)


def test_unknown_fingerprint(codec: Codec) -> None:
    data = codec.encode(sample_messages()[0])
    with pytest.raises(UnknownSchemaError):
        codec.decode(MAGIC + b"\x00" * 8 + data[HEADER_SIZE:])


def test_bytes_left_after_the_body(codec: Codec) -> None:
    data = codec.encode(sample_messages()[3])
    with pytest.raises(DecodeError, match="left after the body") as info:
        codec.decode(data + b"\x00")
    assert not isinstance(info.value, TruncatedError)


def test_not_bytes(codec: Codec) -> None:
    with pytest.raises(DecodeError):
        codec.decode(None)  # type: ignore[arg-type]  # a Kafka tombstone's value


def test_values_that_break_the_contract_are_decode_errors(codec: Codec) -> None:
    good = sample_messages()[3]
    assert isinstance(good, DeenrolmentRequest)
    bad_header = good.header.model_copy(update={"message_id": "NOT-HEX"})
    data = codec.encode(good.model_copy(update={"header": bad_header}))  # copies skip checks
    with pytest.raises(DecodeError) as info:
        codec.decode(data)
    assert isinstance(info.value.__cause__, ValidationError)


def test_a_correction_body_contradicting_its_kind_does_not_decode(codec: Codec) -> None:
    event = sample_messages()[0]
    data = codec.encode(event.model_copy(update={"body": PersonMoved(address="x")}))
    with pytest.raises(DecodeError, match="REGISTERED event carries PersonRegistered"):
        codec.decode(data)


@pytest.mark.parametrize("seed", range(300))
def test_random_bytes_raise_only_decode_errors(codec: Codec, seed: int) -> None:
    rng = random.Random(seed)
    data = rng.randbytes(rng.randrange(0, 200))
    with pytest.raises(DecodeError):
        codec.decode(data)


@pytest.mark.parametrize("seed", range(300))
def test_random_bodies_behind_a_valid_header_raise_only_decode_errors(
    codec: Codec, seed: int
) -> None:
    rng = random.Random(seed)
    message_type = rng.choice(MESSAGE_TYPES)
    data = MAGIC + codec.fingerprint(message_type) + rng.randbytes(rng.randrange(0, 400))
    try:
        decoded = codec.decode(data)
    except DecodeError:
        return
    # vanishingly unlikely, but then it must be a real message that re-encodes exactly
    assert codec.encode(decoded) == data


@pytest.mark.parametrize("seed", range(300))
def test_corrupted_messages_raise_only_decode_errors(codec: Codec, seed: int) -> None:
    rng = random.Random(seed)
    data = bytearray(codec.encode(rng.choice(ALL_SAMPLES)))
    for _ in range(rng.randrange(1, 4)):
        data[rng.randrange(HEADER_SIZE, len(data))] = rng.randrange(256)
    try:
        decoded = codec.decode(bytes(data))
    except DecodeError:
        return
    # A flip inside a string can stay valid; so can one in a boolean (any non-zero byte
    # reads as true, as in every Avro library). Re-encoding then gives the canonical
    # bytes, which is why signatures are checked over the re-encoding, never raw input.
    assert codec.decode(codec.encode(decoded)) == decoded


def test_encode_rejects_what_is_not_a_top_level_message(codec: Codec) -> None:
    with pytest.raises(EncodeError):
        codec.encode(Header.new("hub"))  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(EncodeError):
        codec.fingerprint(Header)  # type: ignore[arg-type]


def test_encode_rejects_values_that_do_not_fit_the_schema(codec: Codec) -> None:
    broken = HubError.model_construct(
        header=Header.new("hub"), code="NO_SUCH_CODE", detail="", request_id=None, retriable=False
    )
    with pytest.raises(EncodeError):
        codec.encode(broken)


# -- older released versions ------------------------------------------------------------


def test_bytes_written_with_an_older_release_decode_into_todays_model(tmp_path: Path) -> None:
    """Schema resolution: a v0 HubError without ``request_id`` reads with the default."""
    v0 = tmp_path / "v0"
    v0.mkdir()
    for path in SCHEMA_DIR.glob("*.avsc"):
        schema = json.loads(path.read_text(encoding="utf-8"))
        if schema["name"] == "HubError":
            schema["fields"] = [f for f in schema["fields"] if f["name"] != "request_id"]
        (v0 / path.name).write_text(json.dumps(schema), encoding="utf-8")
    codec = Codec(released_dir=tmp_path)
    old_schema = resolve("jp.renkei.HubError", load_schema_dir(v0))
    old_fp = fingerprint(old_schema)
    assert old_fp != codec.fingerprint(HubError)
    out = io.BytesIO()
    out.write(MAGIC + old_fp)
    header = signed_header("hub", 7)
    datum = {"header": header.model_dump(), "code": "TIMEOUT", "detail": "late", "retriable": True}
    fastavro.schemaless_writer(out, fastavro.parse_schema(old_schema), datum)
    decoded = codec.decode(out.getvalue())
    assert decoded == HubError(
        header=header, code=ErrorCode.TIMEOUT, detail="late", request_id=None, retriable=True
    )


# -- signing ----------------------------------------------------------------------------


@pytest.mark.parametrize("message", sample_messages(), ids=_id)
def test_signing_payload_is_the_encoding_with_an_empty_signature(
    codec: Codec, message: Message
) -> None:
    payload = codec.signing_payload(message)
    assert payload != codec.encode(message)
    unsigned = codec.decode(payload)
    assert unsigned.header.signature == b""
    assert unsigned.model_copy(update={"header": message.header}) == message
    # the signature itself never influences what is signed
    resigned = message.model_copy(
        update={"header": message.header.model_copy(update={"signature": b"\x01" * 64})}
    )
    assert codec.signing_payload(resigned) == payload


def test_ed25519_signature_over_the_signing_payload_verifies(codec: Codec) -> None:
    key = Ed25519PrivateKey.generate()
    message = sample_messages()[4]
    signature = key.sign(codec.signing_payload(message))
    signed = message.model_copy(
        update={"header": message.header.model_copy(update={"signature": signature})}
    )
    received = codec.decode(codec.encode(signed))
    key.public_key().verify(received.header.signature, codec.signing_payload(received))


# -- models -----------------------------------------------------------------------------


def test_now_ms_and_message_ids() -> None:
    now = now_ms()
    assert now.tzinfo is UTC
    assert now.microsecond % 1000 == 0
    assert len({new_message_id() for _ in range(100)}) == 100
    header = Header.new("nenkin", correlation_id="abc")
    assert header.sender == "nenkin"
    assert header.correlation_id == "abc"
    assert header.signature == b""
    assert len(header.message_id) == 32


def test_timestamps_are_normalised_to_utc_milliseconds(codec: Codec) -> None:
    jst = timezone(timedelta(hours=9))
    local = datetime(2025, 4, 1, 18, 30, 15, 123456, tzinfo=jst)
    header = Header.new("hub", sent_at=local)
    assert header.sent_at == datetime(2025, 4, 1, 9, 30, 15, 123000, tzinfo=UTC)
    assert header.sent_at.tzinfo is UTC
    message = HubError(header=header, code=ErrorCode.INTERNAL, detail="", retriable=True)
    assert codec.decode(codec.encode(message)) == message
    with pytest.raises(ValidationError, match="timezone-aware"):
        Header.new("hub", sent_at=datetime(2025, 4, 1, 9, 30))  # naive on purpose


def test_models_are_frozen_and_closed() -> None:
    header = Header.new("hub")
    with pytest.raises(ValidationError):
        header.sender = "nenkin"
    with pytest.raises(ValidationError):
        Header.model_validate({**header.model_dump(), "extra_field": 1})


@pytest.mark.parametrize(
    "bad_sender", ["", "agency.a", "has space", "x" * 65, "-leading-dash", "日本年金機構"]
)
def test_sender_must_be_usable_in_a_topic_name(bad_sender: str) -> None:
    with pytest.raises(ValidationError):
        Header.new(bad_sender)


def test_life_event_rules() -> None:
    base = sample_messages()[0]
    assert isinstance(base, RegistryEvent)
    fields = base.model_dump()
    fields["body"] = base.body
    for update, message in (
        ({"action": EventAction.ANNULMENT, "corrects_event_id": "e"}, "null exactly"),
        ({"body": None}, "null exactly"),
        ({"corrects_event_id": "e"}, "corrects_event_id"),
        ({"action": EventAction.CORRECTION}, "corrects_event_id"),
        ({"kind": EventKind.DIED}, "DIED event carries PersonDied"),
    ):
        with pytest.raises(ValidationError, match=message):
            RegistryEvent(**{**fields, **update})
    # a newer writer's kind is not checked against a body it could not know
    RegistryEvent(**{**fields, "kind": EventKind.UNKNOWN})


def test_response_and_result_rules() -> None:
    provided = sample_messages()[6]
    assert isinstance(provided, ProviderResponse)
    fields = {**provided.model_dump(), "sealed": provided.sealed}
    with pytest.raises(ValidationError, match="sealed"):
        ProviderResponse(**{**fields, "sealed": None})
    with pytest.raises(ValidationError, match="sealed"):
        ProviderResponse(**{**fields, "status": ResponseStatus.NO_DATA})
    with pytest.raises(ValidationError, match="link_code"):
        EnrolmentResult(
            header=Header.new("hub"), record_ref="r", outcome=EnrolmentOutcome.LINKED, detail=""
        )
    # a de-enrolment acknowledgement echoes the ended code without LINKED
    EnrolmentResult(
        header=Header.new("hub"),
        record_ref="r",
        outcome=EnrolmentOutcome.NO_MATCH,
        link_code="x",
        detail="holding ended",
    )


def test_int_fields_are_range_checked_like_avro_int_and_long() -> None:
    checkpoint = sample_messages()[12]
    with pytest.raises(ValidationError):
        checkpoint.model_validate({**checkpoint.model_dump(), "partition": 2**31})
    with pytest.raises(ValidationError):
        checkpoint.model_validate({**checkpoint.model_dump(), "last_offset": 2**63})


# -- public surface ---------------------------------------------------------------------


@pytest.mark.parametrize("module", [schemas, schemas.models], ids=lambda m: m.__name__)
def test_public_surface_is_what_all_says(module: object) -> None:
    names = getattr(module, "__all__")  # noqa: B009  # mypy does not know the attribute
    assert sorted(names) == sorted(set(names))
    for name in names:
        assert hasattr(module, name), name


# -- schema files -----------------------------------------------------------------------


def _copy_schemas(tmp_path: Path) -> Path:
    folder = tmp_path / "avro"
    folder.mkdir()
    for path in SCHEMA_DIR.glob("*.avsc"):
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def test_a_file_must_be_named_after_its_type(tmp_path: Path) -> None:
    folder = _copy_schemas(tmp_path)
    (folder / "jp.renkei.Sex.avsc").rename(folder / "sex.avsc")
    with pytest.raises(ConfigurationError, match=re.escape("name it jp.renkei.Sex.avsc")):
        Codec(schema_dir=folder, released_dir=tmp_path / "none")


def test_a_named_type_must_have_its_own_file(tmp_path: Path) -> None:
    folder = _copy_schemas(tmp_path)
    path = folder / "jp.renkei.Basic4.avsc"
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["fields"][3]["type"] = json.loads(
        (folder / "jp.renkei.Sex.avsc").read_text(encoding="utf-8")
    )
    path.write_text(json.dumps(schema), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="nested named type"):
        Codec(schema_dir=folder, released_dir=tmp_path / "none")


def test_a_reference_to_a_missing_type_is_a_configuration_error(tmp_path: Path) -> None:
    folder = _copy_schemas(tmp_path)
    (folder / "jp.renkei.SealedPayload.avsc").unlink()
    with pytest.raises(
        ConfigurationError, match=re.escape("unknown type 'jp.renkei.SealedPayload'")
    ):
        Codec(schema_dir=folder, released_dir=tmp_path / "none")
