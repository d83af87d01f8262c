"""The signature verifier (hub_stream/verifier.py): every input checked, verdicts that tile.

The records are the signed attribute requests of ``benchmarks.profile_hub`` (a hub with
the packaged directory and its keys), some of them spoiled the ways a trust-acl hub would
not notice: a signature of other bytes, a message signed by another agency, bytes that do
not decode. Each verdict must name exactly the spoiled ones, verify under the hub's key,
and the ranges must follow each other.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks import profile_hub
from benchmarks.profile_hub import PROVIDER, REQUESTER, Record
from hub_stream.outputs import Output
from hub_stream.verifier import SignatureVerifier
from renkei.crypto import SigningKey, keystore
from renkei.envelope import encode_signed, verify_bytes
from schemas import limits
from schemas.models import ErrorCode, SignatureVerdict


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> profile_hub.Exchange:
    keys = tmp_path_factory.mktemp("keys")
    from renkei.operator.publish import init_keys

    init_keys(keys)
    return profile_hub.build("trust-acl", 120, keys)


def _verifier(exchange: profile_hub.Exchange) -> SignatureVerifier:
    hub = exchange.hub
    return SignatureVerifier(exchange.topics, lambda: hub.directory, hub.codec, _hub_key(exchange))


def _hub_key(exchange: profile_hub.Exchange) -> SigningKey:
    return keystore.load_hub_signing_key(Path(exchange.keys))


def _verdicts(exchange: profile_hub.Exchange, outputs: list[Output]) -> list[SignatureVerdict]:
    codec = exchange.hub.codec
    verdicts = []
    for out in outputs:
        assert out.topic == exchange.topics.audit_signatures
        assert out.value is not None
        verify_bytes(out.value, _hub_key(exchange).public_bytes, codec)  # signed by the hub
        verdict = codec.decode(out.value)
        assert isinstance(verdict, SignatureVerdict)
        assert out.key == f"{verdict.source_topic}:{verdict.source_partition}".encode()
        verdicts.append(verdict)
    return verdicts


def _spoiled(exchange: profile_hub.Exchange) -> tuple[list[Record], dict[int, ErrorCode]]:
    """The requests with offsets 0..n-1, five of them spoiled; the reason for each."""
    hub, records = exchange.hub, list(exchange.requests[:20])
    # A signature over other bytes: the last signature byte flipped.
    value = records[3].value
    records[3] = replace(records[3], value=value[:-1] + bytes([value[-1] ^ 1]))
    # A well-signed message of another agency, written to the requester's topic.
    jps = keystore.load(exchange.keys, PROVIDER)
    other = hub.codec.decode(records[7].value)
    moved = other.model_copy(
        update={"header": other.header.model_copy(update={"sender": PROVIDER})}
    )
    records[7] = replace(records[7], value=encode_signed(moved, jps.signing, hub.codec))
    # Bytes that are not the wire format, and a record past the contract's size.
    records[11] = replace(records[11], value=b"not avro at all")
    records[12] = replace(records[12], value=b"\xc3\x01" + b"\x00" * limits.MESSAGE_BYTES)
    # Signed by the right agency, but with a key the directory does not have.
    stranger = SigningKey.generate()
    genuine = hub.codec.decode(records[15].value)
    records[15] = replace(records[15], value=encode_signed(genuine, stranger, hub.codec))
    # A tombstone carries nothing to sign: checked, never a failure.
    records[18] = replace(records[18], value=None)  # type: ignore[arg-type]
    reasons = {
        3: ErrorCode.BAD_SIGNATURE,
        7: ErrorCode.BAD_SIGNATURE,
        11: ErrorCode.MALFORMED_MESSAGE,
        12: ErrorCode.MALFORMED_MESSAGE,
        15: ErrorCode.BAD_SIGNATURE,
    }
    return records, reasons


def test_a_verdict_names_every_input_that_fails_and_only_those(
    exchange: profile_hub.Exchange,
) -> None:
    verifier = _verifier(exchange)
    records, reasons = _spoiled(exchange)
    (verdict,) = _verdicts(exchange, verifier.handle(records))
    assert verdict.source_topic == exchange.topics.agency_out(REQUESTER)
    assert (verdict.first_offset, verdict.last_offset, verdict.checked) == (0, 19, 20)
    assert {f.offset: f.reason for f in verdict.failures} == reasons
    by_offset = {f.offset: f for f in verdict.failures}
    assert by_offset[7].sender == PROVIDER
    assert "wrote to agency" in by_offset[7].detail
    assert by_offset[11].message_id is None  # nothing decoded, nothing to name
    original = exchange.hub.codec.decode(exchange.requests[3].value)
    assert (by_offset[3].message_id, by_offset[3].sender) == (original.header.message_id, REQUESTER)
    # Counted once the batch commits: the alarm's figures.
    assert verifier.counts == {}
    verifier.commit()
    assert verifier.counts == {"checked": 20, "failed": 5}


def test_an_aborted_batch_is_not_counted_and_its_verdict_is_written_again_the_same(
    exchange: profile_hub.Exchange,
) -> None:
    verifier = _verifier(exchange)
    records, _ = _spoiled(exchange)
    first = verifier.handle(records)
    verifier.rollback()
    assert verifier.counts == {}
    again = verifier.handle(records)
    verifier.commit()
    # The same range keeps its id: a re-run after a crash is recognised downstream.
    ids = [v.header.message_id for v in _verdicts(exchange, first)]
    assert ids == [v.header.message_id for v in _verdicts(exchange, again)]
    assert verifier.counts == {"checked": 20, "failed": 5}


def test_verdicts_split_after_the_most_failures_one_may_hold_and_still_tile(
    exchange: profile_hub.Exchange,
) -> None:
    verifier = _verifier(exchange)
    records = [replace(r, value=b"junk") for r in exchange.requests[: limits.VERDICT_FAILURES + 15]]
    records += [replace(r, partition=1) for r in exchange.requests[:3]]  # another partition
    verdicts = _verdicts(exchange, verifier.handle(records))
    zero = [v for v in verdicts if v.source_partition == 0]
    assert [len(v.failures) for v in zero] == [limits.VERDICT_FAILURES, 15]
    assert zero[0].first_offset == 0
    assert zero[1].first_offset == zero[0].last_offset + 1  # no gap, no overlap
    assert zero[1].last_offset == limits.VERDICT_FAILURES + 14
    assert sum(v.checked for v in zero) == limits.VERDICT_FAILURES + 15
    (one,) = [v for v in verdicts if v.source_partition == 1]
    assert (one.first_offset, one.last_offset, one.checked, one.failures) == (0, 2, 3, ())


def test_an_agency_not_in_the_directory_fails_every_message(
    exchange: profile_hub.Exchange,
) -> None:
    verifier = _verifier(exchange)
    topic = exchange.topics.agency_out("city-nowhere")
    records = [replace(r, topic=topic) for r in exchange.requests[:2]]
    (verdict,) = _verdicts(exchange, verifier.handle(records))
    assert [f.reason for f in verdict.failures] == [ErrorCode.UNKNOWN_AGENCY] * 2
