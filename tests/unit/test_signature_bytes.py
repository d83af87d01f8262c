"""Signatures cover the bytes as sent: old writers and old checkpoints verify after a
compatible schema change, in the hub, the agency SDK, ``renkei audit verify`` and the portal.

The tests build a real v2 in a temporary folder: today's schemas plus an optional field
with a default on ``AttributeRequest`` and on ``AuditCheckpoint``, with models that carry
it. v1 is ``schemas/avro/released/v1``. Re-encoding a decoded message (the old
``verify_message`` on a received message) fails across the change; the bytes verify.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from consumers.dispatch import Dispatcher
from renkei.audit.verify import PartitionVerifier
from renkei.auditchain import GENESIS, AuditSigner, TrustedKeys, chain_hash
from renkei.crypto import SealingKeyPair, SigningKey
from renkei.envelope import encode_signed, verify_bytes, verify_message
from renkei.errors import SignatureError
from renkei.portal.trail import TrailVerifier
from schemas.codec import Codec, message_types_in
from schemas.loader import RELEASED_DIR, SCHEMA_DIR
from schemas.models import (
    MESSAGE_TYPES,
    RECORD_TYPES,
    AttributeRequest,
    AuditCheckpoint,
    AuditRecord,
    AuditStep,
    ErrorCode,
    Header,
    HpkeSuite,
    HubError,
    Message,
    ScenarioEntry,
)
from tests.unit.hub_world import NUMBERS, World, codes_of

V1 = RELEASED_DIR / "v1"
KEY = SigningKey.generate()
NOTE: dict[str, Any] = {
    "name": "note",
    "type": ["null", "string"],
    "default": None,
    "doc": "A field v2 adds.",
}


class RequestV2(AttributeRequest):
    """AttributeRequest as a v2 reader's model has it."""

    note: str | None = None


class CheckpointV2(AuditCheckpoint):
    """AuditCheckpoint as a v2 reader's model has it."""

    note: str | None = None


def _schemas_v2(root: Path) -> Path:
    folder = root / "v2"
    shutil.copytree(SCHEMA_DIR, folder, ignore=shutil.ignore_patterns("released"))
    for name in ("AttributeRequest", "AuditCheckpoint"):
        path = folder / f"jp.renkei.{name}.avsc"
        schema = json.loads(path.read_text(encoding="utf-8"))
        schema["fields"].append(NOTE)
        path.write_text(json.dumps(schema), encoding="utf-8")
    return folder


def _swap(types: tuple[Any, ...]) -> tuple[Any, ...]:
    new = {AttributeRequest: RequestV2, AuditCheckpoint: CheckpointV2}
    return tuple(new.get(t, t) for t in types)


@dataclasses.dataclass(frozen=True)
class Versions:
    v1: Codec
    """Writes v1; reads v1, and v2 as a released version it was given."""
    v2: Codec
    """Writes v2; reads v2 and v1 (released)."""


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Versions:
    root = tmp_path_factory.mktemp("schemas")
    v2 = _schemas_v2(root)
    released_v1, released_v2 = root / "released-v1", root / "released-v2"
    shutil.copytree(V1, released_v1 / "v1")
    shutil.copytree(v2, released_v2 / "v2")
    return Versions(
        v1=Codec(V1, released_v2, message_types_in(V1)),
        v2=Codec(v2, released_v1, _swap(MESSAGE_TYPES), _swap(RECORD_TYPES)),
    )


def _request(
    model: type[AttributeRequest] = AttributeRequest,
    requester_link_code: str = "a" * 53,
    **extra: Any,
) -> AttributeRequest:
    header = Header.new("city-shinagawa")
    return model(
        header=header, request_id="req-1", requester_link_code=requester_link_code,
        provider="jps", scenario_id="S003", items=("pension.benefit_status",),
        reply_public_key=SealingKeyPair.generate().public_bytes, hpke_suite=HpkeSuite.X25519,
        deadline=header.sent_at + timedelta(hours=1), **extra,
    )  # fmt: skip


def test_the_two_versions_name_different_schemas(versions: Versions) -> None:
    old = versions.v1.fingerprint(AttributeRequest)
    assert old != versions.v2.fingerprint(RequestV2)
    assert versions.v2.fingerprints[old] is RequestV2  # v2 reads v1
    assert versions.v1.fingerprints[versions.v2.fingerprint(RequestV2)] is AttributeRequest


def test_an_old_writers_request_verifies_after_the_change(versions: Versions) -> None:
    value = encode_signed(_request(), KEY, versions.v1)
    received = versions.v2.decode(value)
    assert isinstance(received, RequestV2)
    assert received.note is None
    with pytest.raises(SignatureError):  # what re-encoding with the reader's schema did
        verify_message(received, KEY.public_bytes, versions.v2)
    verify_bytes(value, KEY.public_bytes, versions.v2)


def test_a_new_writers_request_verifies_at_an_old_reader(versions: Versions) -> None:
    value = encode_signed(_request(RequestV2, note="v2 only"), KEY, versions.v2)
    received = versions.v1.decode(value)
    assert type(received) is AttributeRequest  # the new field dropped by resolution
    with pytest.raises(SignatureError):
        verify_message(received, KEY.public_bytes, versions.v1)
    verify_bytes(value, KEY.public_bytes, versions.v1)


def test_a_changed_byte_still_fails(versions: Versions) -> None:
    value = bytearray(encode_signed(_request(), KEY, versions.v1))
    value[-12] ^= 1  # inside the deadline
    with pytest.raises(SignatureError):
        verify_bytes(bytes(value), KEY.public_bytes, versions.v2)
    with pytest.raises(SignatureError, match="no signature can be read"):
        verify_bytes(b"\xc3\x01" + bytes(8), KEY.public_bytes, versions.v2)


async def test_the_agency_sdk_verifies_an_old_hubs_message(versions: Versions) -> None:
    error = HubError(
        header=Header.new("hub"), code=ErrorCode.TIMEOUT, detail="", request_id="r",
        retriable=True,
    )  # fmt: skip
    handled: list[Message] = []

    async def handle(message: Message) -> bool:
        handled.append(message)
        return True

    reader = Dispatcher("agency.jps.in", codec=versions.v2, hub_public_key=KEY.public_bytes)
    reader.route(HubError, handle)
    old = encode_signed(_request(), KEY, versions.v1)
    reader.route(RequestV2, handle)  # any message type: the signature is what counts
    records = [_Rec(0, encode_signed(error, KEY, versions.v1)), _Rec(1, old)]
    assert await reader.handle_batch({"tp": records}) == {"tp": 2}
    assert reader.bad_signatures == 0
    assert len(handled) == 2


@dataclasses.dataclass(frozen=True)
class _Rec:
    offset: int
    value: bytes


def _old_trail(versions: Versions, signer: AuditSigner) -> list[bytes]:
    """Two audit records and a checkpoint over them, written by a v1 hub."""
    values: list[bytes] = []
    prev = GENESIS
    for n in range(2):
        record = AuditRecord(
            header=Header.new("hub", message_id=f"{n:032x}"), step=AuditStep.FORWARDED,
            actor="city-shinagawa", items=(), occurred_at=Header.new("hub").sent_at,
            prev_hash=prev,
        )  # fmt: skip
        values.append(versions.v1.encode(record))
        prev = chain_hash(values[-1])
    checkpoint = AuditCheckpoint(
        header=Header.new("hub", message_id="c" * 32), partition=0, first_offset=0,
        last_offset=1, record_count=2, chain_hash=prev, key_id=signer.key_id,
    )  # fmt: skip
    unsigned = versions.v1.encode(checkpoint)  # as hub_stream/checkpoints.py signs
    values.append(versions.v1.join_signature(unsigned, signer.sign(unsigned)))
    return values


def test_old_checkpoints_verify_in_audit_verify_after_the_change(versions: Versions) -> None:
    signer = AuditSigner(SigningKey.generate())
    trusted = TrustedKeys({signer.key_id: signer.key.public_bytes})
    values = _old_trail(versions, signer)
    verifier = PartitionVerifier(0, trusted, versions.v2)
    for offset, value in enumerate(values):
        verifier.add(offset, value)
    result = verifier.finish()
    assert result.findings == []
    assert result.checkpoints == 1
    forged = bytearray(values[-1])
    forged[-3] ^= 1  # the key id
    verifier = PartitionVerifier(0, TrustedKeys({f"{signer.key_id[:-1]}x": b""}), versions.v2)
    verifier.add(0, bytes(forged))
    assert [f.kind for f in verifier.finish().findings] == ["unknown-key"]


def test_old_checkpoints_release_records_in_the_portal_after_the_change(
    versions: Versions,
) -> None:
    signer = AuditSigner(SigningKey.generate())
    trail = TrailVerifier(TrustedKeys({signer.key_id: signer.key.public_bytes}), versions.v2)
    shown: list[AuditRecord] = []
    for offset, value in enumerate(_old_trail(versions, signer)):
        shown += trail.add(0, offset, 1_775_000_000_000, value)
    assert [r.header.message_id for r in shown] == [f"{n:032x}" for n in range(2)]
    assert trail.stats.bad_checkpoints == 0


def test_the_hub_accepts_an_old_writers_request(tmp_path: Path, versions: Versions) -> None:
    world = World(tmp_path / "keys")
    world.run(world.registration("10000000000", NUMBERS[0]))
    (city,) = codes_of(world.run(world.enrolment("city-shinagawa", NUMBERS[0])))
    world.run(world.enrolment("jps", NUMBERS[0]))
    world.hub.codec = versions.v2  # the hub upgraded first; the agency still writes v1
    world.hub.context = dataclasses.replace(world.hub.context, codec=versions.v2)
    old = _request(requester_link_code=city)
    value = encode_signed(old, world.keys("city-shinagawa").signing, versions.v1)
    out = world.run(world.record(world.topics.agency_out("city-shinagawa"), value))
    assert [type(m).__name__ for m in out] == ["ForwardedRequest"], out
    assert world.hub.metrics[f"refused.{ErrorCode.BAD_SIGNATURE}"] == 0


def test_directory_entries_still_verify_as_built(versions: Versions) -> None:
    """``verify_message`` stays right for what this process built and encodes."""
    entry = ScenarioEntry(
        header=Header.new("operator"), scenario_id="S003", legal_basis="法", duty="d",
        duty_ja="d", requester="a", provider="b", items=("x.y",), active=True,
    )  # fmt: skip
    value = encode_signed(entry, KEY, versions.v2)
    verify_message(versions.v2.decode(value), KEY.public_bytes, versions.v2)
    verify_bytes(value, KEY.public_bytes, versions.v2)
