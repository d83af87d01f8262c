"""Bulk linkage enrolment: an operator's :class:`~.control.EnrolLinked` applied row by row.

``renkei link match`` decides offline which person each of an agency's records is; the
hub does **not** match again (its exact match is what bulk linkage improves on). Each row
names the person by resident code — the person table's key — and the hub, inside the
batch's transaction, for each row:

1. holds the person for the agency, exactly as an agency's own enrolment does
   (:func:`.enrolment.hold`: the reference directory gains the holding unless it has it;
   the link code is the same either way);
2. sends the agency an ``EnrolmentResult(LINKED, link_code, record_ref)`` on its inbox,
   keyed by the code, as for an enrolment it had asked for;
3. audits ``ENROLLED`` with the run (``linkage_run``) and the row's ``linkage_score`` or
   ``reviewed_by``.

A resident code the person table does not have (not registered yet, or never) is
answered ``NO_MATCH`` and audited ``NOT_ENROLLED`` (``error_code = NO_MATCH``), with the
run and score too, so the operators can see which rows to send again. A deceased person
is linked, as by an agency's own enrolment: an agency still holds their record.

Every id is derived from the command's id and the row's ``record_ref``
(:func:`row_cause`), so the command applied again after a crash writes the same ids, and
``renkei link enrol --wait-s`` can find each row's outcome in ``hub.audit``. Replays of the
command itself are refused before this runs (:func:`.rotation.handle_command`).

Reads ``persons`` and ``holdings``; stages ``holdings``; emits results and audit records.
"""

from __future__ import annotations

from collections.abc import Collection

from schemas.limits import clip
from schemas.models import AuditStep, EnrolmentOutcome, EnrolmentResult, Header

from .context import FlowContext
from .control import EnrolLinked, LinkedRow
from .enrolment import hold
from .ids import derive_id
from .outputs import Output

__all__ = ["enrol_linked", "row_cause"]


def row_cause(command_id: str, record_ref: str) -> str:
    """The id the hub's outputs for one row derive from, and their audit records carry
    as ``header.correlation_id``."""
    return derive_id("enrol-linked", command_id, record_ref)


def enrol_linked(
    ctx: FlowContext, command: EnrolLinked, rows: Collection[int] | None = None
) -> list[Output]:
    """Hold every row's person for the agency; answer and audit each row.

    :param rows: the indexes of the rows to handle (a partitioned hub's bucket handles the
        rows of its own persons, :class:`~.control.CommandShare`); ``None``: every row.
    """
    outputs: list[Output] = []
    for i, row in enumerate(command.rows):
        if rows is None or i in rows:
            outputs += _row(ctx, command, row)
    return outputs


def _row(ctx: FlowContext, command: EnrolLinked, row: LinkedRow) -> list[Output]:
    agency, run = command.agency_id, command.linkage_run
    cause = row_cause(command.command_id, row.record_ref)
    header = Header.new("hub", cause, message_id=derive_id("enrol", cause))
    person = ctx.persons.get(row.resident_code)
    if person is None:
        ctx.metrics["bulk_enrolment.NO_MATCH"] += 1
        result = EnrolmentResult(
            header=header, record_ref=row.record_ref, outcome=EnrolmentOutcome.NO_MATCH,
            link_code=None,
            detail=clip(f"bulk linkage run {run}: the registry has no person it names (yet)"),
        )  # fmt: skip
        return [
            ctx.send(ctx.topics.agency_in(agency), row.record_ref, result),
            _audit(
                ctx,
                AuditStep.NOT_ENROLLED,
                cause,
                command,
                row,
                None,
                EnrolmentOutcome.NO_MATCH.value,
            ),
        ]
    person_id = bytes.fromhex(person.id_code)
    link_code, key = hold(
        ctx, agency, person_id, row.record_ref, command.capacity, command.requested_at_ms
    )
    ctx.metrics["bulk_enrolment.LINKED"] += 1
    how = f"reviewed by {row.reviewed_by}" if row.reviewed_by is not None else "matched"
    result = EnrolmentResult(
        header=header, record_ref=row.record_ref, outcome=EnrolmentOutcome.LINKED,
        link_code=link_code, detail=clip(f"bulk linkage run {run}: {how}"),
    )  # fmt: skip
    return [
        ctx.send(ctx.topics.agency_in(agency), link_code, result),
        _audit(ctx, AuditStep.ENROLLED, cause, command, row, key, None),
    ]


def _audit(
    ctx: FlowContext,
    step: AuditStep,
    cause: str,
    command: EnrolLinked,
    row: LinkedRow,
    key: str | None,
    error_code: str | None,
) -> Output:
    # actor = the agency, as for its own enrolment: the trail's holdings projection
    # (renkei audit rebuild) reads who holds whom from the ENROLLED records' actor
    return ctx.audit.record(
        step, cause=cause, actor=command.agency_id, audit_key=key,
        requester=command.agency_id, error_code=error_code, linkage_run=command.linkage_run,
        linkage_score=row.score, reviewed_by=row.reviewed_by,
    )  # fmt: skip
