"""Bulk linkage enrolment (``EnrolLinked`` on ``hub.control``): the command and the hub's flow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hub_stream.bulk_enrolment import row_cause
from hub_stream.control import (
    MAX_LINKED_ROWS,
    CommandError,
    EnrolLinked,
    LinkedRow,
    RotateKey,
    control_topic,
    parse_command,
)
from renkei.auditchain import prev_hash_of
from renkei.crypto import SigningKey
from renkei.errors import SignatureError
from schemas.loader import SCHEMA_DIR
from schemas.models import (
    AuditRecord,
    AuditStep,
    EnrolmentOutcome,
    EnrolmentResult,
    ForwardedRequest,
    Message,
)
from tests.samples import sample_variants
from tests.unit.hub_world import NUMBERS, World, codes_of

RUN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
CODES = [f"1000000000{i}" for i in range(len(NUMBERS))]  # registered in the fixture


def _rows(*rows: tuple[str, str, float | str]) -> tuple[LinkedRow, ...]:
    """(record_ref, resident_code, score or reviewer) each."""
    return tuple(
        LinkedRow(record_ref=ref, resident_code=code, score=how)
        if isinstance(how, float)
        else LinkedRow(record_ref=ref, resident_code=code, reviewed_by=how)
        for ref, code, how in rows
    )


def _command(world: World, agency: str, rows: tuple[LinkedRow, ...], **kw: Any) -> EnrolLinked:
    return EnrolLinked(agency_id=agency, linkage_run=RUN, rows=rows, **kw).signed(
        world.keys("operator").signing
    )


def _apply(world: World, command: EnrolLinked | bytes, commit: bool = True) -> dict[str, Any]:
    """Feed one control record; what reached the agencies, the audit trail, the letters."""
    value = command if isinstance(command, bytes) else command.to_bytes()
    outputs = world.hub.handle([world.record(control_topic(world.topics), value)])
    if commit:
        world.hub.commit()
    else:
        world.hub.rollback()
    audit = [world.codec.decode(o.value or b"") for o in outputs if o.topic == world.topics.audit]
    return {
        "agency": list(world.decoded(outputs)),
        "audit": [a for a in audit if isinstance(a, AuditRecord)],
        "letters": [o for o in outputs if o.topic == world.topics.deadletter],
    }


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path / "keys")
    w.run(*(w.registration(code, n) for code, n in zip(CODES, NUMBERS, strict=True)))
    return w


# -- the command -----------------------------------------------------------------------


def test_the_command_round_trips_signed_and_a_change_breaks_the_signature() -> None:
    operator, other = SigningKey.generate(), SigningKey.generate()
    rows = _rows(("a1", CODES[0], 0.99999), ("a2", CODES[1], "reviewer-7"))
    command = EnrolLinked(agency_id="jps", linkage_run=RUN, rows=rows).signed(operator)
    again = parse_command(command.to_bytes())
    assert again == command
    again.verify(operator.public_bytes)
    with pytest.raises(SignatureError):
        again.verify(other.public_bytes)
    changed = again.model_copy(update={"rows": _rows(("a1", CODES[2], 0.99999))})
    with pytest.raises(SignatureError):
        changed.verify(operator.public_bytes)
    # a rotation still parses as one: the kind is told by the command field
    assert isinstance(parse_command(RotateKey(agency_id="jps", grace_ms=0).to_bytes()), RotateKey)


def _json(**changes: Any) -> bytes:
    base: dict[str, Any] = {
        "command": "enrol-linked", "agency_id": "jps", "linkage_run": RUN,
        "rows": [{"record_ref": "a1", "resident_code": CODES[0], "score": 0.99}],
    }  # fmt: skip
    base.update(changes)
    return json.dumps(base).encode()


def _row(**row: Any) -> dict[str, Any]:
    return {"record_ref": "a", "resident_code": CODES[0], **row}


MALFORMED = {
    "no rows": (_json(rows=[]), "rows: too_short"),
    "neither score nor reviewer": (_json(rows=[_row()]), "value_error"),
    "score and reviewer": (_json(rows=[_row(score=0.9, reviewed_by="x")]), "value_error"),
    "not a resident code": (_json(rows=[_row(resident_code="R0001", score=0.9)]), "pattern"),
    "empty record_ref": (_json(rows=[_row(record_ref="", score=0.9)]), "too_short"),
    "not a probability": (_json(rows=[_row(score=1.5)]), "less_than_equal"),
    "control character": (_json(rows=[_row(reviewed_by="a\nb")]), "pattern"),
    "repeated record_ref": (_json(rows=[_row(score=0.9), _row(score=0.8)]), "value_error"),
    "bad run id": (_json(linkage_run="no spaces please"), "pattern"),
    "unknown kind": (_json(command="enrol-everyone"), "union_tag_invalid"),
    "too many rows": (
        _json(rows=[_row(record_ref=f"a{i}", score=0.9) for i in range(MAX_LINKED_ROWS + 1)]),
        "too_long",
    ),
}


@pytest.mark.parametrize(("value", "problem"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_command_is_a_typed_error_that_does_not_quote_it(
    value: bytes, problem: str
) -> None:
    with pytest.raises(CommandError) as refused:
        parse_command(value)
    assert problem in str(refused.value)
    assert CODES[0] not in str(refused.value)


# -- the hub -----------------------------------------------------------------------------


def test_rows_are_enrolled_answered_and_audited_with_run_score_and_reviewer(
    world: World,
) -> None:
    rows = _rows(
        ("jps-a", CODES[0], 0.999991), ("jps-b", CODES[1], "reviewer-7"),
        ("jps-c", "19999999999", 0.99995),  # not in the hub's person table
    )  # fmt: skip
    command = _command(world, "jps", rows, capacity="pension_recipient")
    out = _apply(world, command)
    results = {m.record_ref: m for m in out["agency"] if isinstance(m, EnrolmentResult)}
    assert [results[r].outcome for r in ("jps-a", "jps-b", "jps-c")] == [
        EnrolmentOutcome.LINKED, EnrolmentOutcome.LINKED, EnrolmentOutcome.NO_MATCH,
    ]  # fmt: skip
    assert results["jps-c"].link_code is None
    # the codes are the agency's own: what its enrolment of the same person gives
    own = codes_of(
        world.run(world.enrolment("jps", NUMBERS[0]), world.enrolment("jps", NUMBERS[1]))
    )
    assert [results["jps-a"].link_code, results["jps-b"].link_code] == own
    audit = {a.header.correlation_id: a for a in out["audit"]}
    by_ref = {ref: audit[row_cause(command.command_id, ref)] for ref in results}
    a, b, c = by_ref["jps-a"], by_ref["jps-b"], by_ref["jps-c"]
    assert (a.step, a.actor, a.linkage_run, a.linkage_score, a.reviewed_by) == (
        AuditStep.ENROLLED, "jps", RUN, 0.999991, None,
    )  # fmt: skip
    assert (b.step, b.linkage_score, b.reviewed_by) == (AuditStep.ENROLLED, None, "reviewer-7")
    assert (c.step, c.error_code, c.audit_key, c.linkage_score) == (
        AuditStep.NOT_ENROLLED, "NO_MATCH", None, 0.99995,
    )  # fmt: skip
    held = [
        world.hub.holdings.get(f"{a.audit_key}|jps"),
        world.hub.holdings.get(f"{b.audit_key}|jps"),
    ]
    assert [(h.record_ref, h.capacity) for h in held if h] == [
        ("jps-a", "pension_recipient"), ("jps-b", "pension_recipient"),
    ]  # fmt: skip
    assert world.hub.metrics["bulk_enrolment.LINKED"] == 2
    assert world.hub.metrics["bulk_enrolment.NO_MATCH"] == 1


def test_a_held_person_keeps_the_holding_and_gets_the_same_code(world: World) -> None:
    (code,) = codes_of(world.run(world.enrolment("jps", NUMBERS[0])))
    out = _apply(world, _command(world, "jps", _rows(("bulk-ref", CODES[0], 0.9999))))
    assert codes_of(out["agency"]) == [code]
    (record,) = out["audit"]
    holding = world.hub.holdings.get(f"{record.audit_key}|jps")
    assert holding is not None
    assert holding.record_ref == f"jps-{NUMBERS[0]}"  # the first holding stays


def test_a_replayed_command_enrols_nothing_twice(world: World) -> None:
    command = _command(world, "jps", _rows(("jps-a", CODES[0], 0.9999)))
    first = _apply(world, command)
    again = _apply(world, command)
    assert len(codes_of(first["agency"])) == 1
    assert again["agency"] == []
    assert [(r.step, r.error_code) for r in again["audit"]] == [(AuditStep.REFUSED, "DUPLICATE")]
    assert len(again["letters"]) == 1
    assert world.hub.metrics["bulk_enrolment.LINKED"] == 1


def test_an_unknown_agency_or_a_forged_command_is_refused_whole(world: World) -> None:
    rows = _rows(("x", CODES[0], 0.9999))
    unknown = _apply(world, _command(world, "no-such-agency", rows))
    forged = EnrolLinked(agency_id="jps", linkage_run=RUN, rows=rows).signed(
        world.keys("jps").signing
    )
    bad = _apply(world, forged)
    for out, code in ((unknown, "UNKNOWN_AGENCY"), (bad, "BAD_SIGNATURE")):
        assert out["agency"] == []
        assert [(r.step, r.actor, r.error_code) for r in out["audit"]] == [
            (AuditStep.REFUSED, "operator", code)
        ]
        assert len(out["letters"]) == 1
    assert world.hub.indexes.held_by("jps") == set()


def test_an_aborted_batch_leaves_no_holding(world: World) -> None:
    _apply(world, _command(world, "jps", _rows(("jps-a", CODES[0], 0.9999))), commit=False)
    assert world.hub.indexes.held_by("jps") == set()


def test_codes_issued_by_bulk_linkage_work_in_an_exchange(world: World) -> None:
    _apply(world, _command(world, "jps", _rows(("jps-a", CODES[0], 0.9999))))
    city = _apply(world, _command(world, "city-shinagawa", _rows(("c-1", CODES[0], 0.9999))))
    (code,) = codes_of(city["agency"])
    forwarded = [m for m in world.run(world.request(code)) if isinstance(m, ForwardedRequest)]
    assert len(forwarded) == 1
    assert forwarded[0].requester == "city-shinagawa"


# -- the audit record --------------------------------------------------------------------


def test_prev_hash_stays_the_last_field_so_verifiers_read_it_off_the_tail(world: World) -> None:
    fields = json.loads((SCHEMA_DIR / "jp.renkei.AuditRecord.avsc").read_text("utf-8"))["fields"]
    assert fields[-1]["name"] == "prev_hash"
    linked: list[Message] = [
        m for m in sample_variants() if isinstance(m, AuditRecord) and m.linkage_run
    ]
    assert len(linked) == 2
    for record in linked:
        assert isinstance(record, AuditRecord)
        assert prev_hash_of(world.codec.encode(record)) == record.prev_hash
