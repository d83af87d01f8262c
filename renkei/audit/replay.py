"""``renkei audit replay``: the trail's records, decoded and filtered, in the order they happened.

The same stream of :class:`Entry` feeds the projections (:mod:`.projections`), the state
rebuild (:mod:`.rebuild`), ``trace`` and the portal's index: one way to read the log.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from renkei.crypto import KeyRing, LinkCodes, audit_key
from renkei.errors import AuditError, ContractError, CryptoError
from schemas.codec import Codec
from schemas.models import AuditRecord

from .reader import read_topic

__all__ = [
    "COLUMNS",
    "Entry",
    "Filter",
    "audit_key_of_link_code",
    "entries",
    "format_csv",
    "format_jsonl",
    "ms",
    "row",
]


@dataclass(frozen=True, slots=True)
class Entry:
    """One audit record and where it is in the trail."""

    partition: int
    offset: int
    record: AuditRecord
    value: bytes  # the record's bytes as read (the chain hashes these)

    @property
    def occurred_ms(self) -> int:
        return ms(self.record.occurred_at)


def ms(moment: datetime) -> int:
    """Milliseconds since the epoch, as Avro carries time."""
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class Filter:
    """Which records to keep; every criterion given must hold.

    :param since_ms: occurred at or after.
    :param until_ms: occurred before.
    :param agency: the agency is the actor, the requester or the provider.
    :param scenario_id: the exchange's scenario.
    :param audit_keys: the person (one or more audit keys).
    :param steps: step names (``FORWARDED``, …).
    :param request_id: the requester's request id or the hub's request id.
    """

    since_ms: int | None = None
    until_ms: int | None = None
    agency: str | None = None
    scenario_id: str | None = None
    audit_keys: frozenset[str] | None = None
    steps: frozenset[str] | None = None
    request_id: str | None = None

    def matches(self, record: AuditRecord) -> bool:
        when = ms(record.occurred_at)
        if self.since_ms is not None and when < self.since_ms:
            return False
        if self.until_ms is not None and when >= self.until_ms:
            return False
        if self.agency is not None and self.agency not in (
            record.actor,
            record.requester,
            record.provider,
        ):
            return False
        if self.scenario_id is not None and record.scenario_id != self.scenario_id:
            return False
        if self.audit_keys is not None and record.audit_key not in self.audit_keys:
            return False
        if self.steps is not None and str(record.step) not in self.steps:
            return False
        return self.request_id is None or self.request_id in (
            record.request_id,
            record.hub_request_id,
        )


async def entries(
    kafka: dict[str, Any],
    topic: str,
    codec: Codec,
    where: Filter | None = None,
    **read: Any,
) -> AsyncIterator[Entry]:
    """Every audit record of ``topic`` that ``where`` keeps, partition by partition.

    Checkpoints are skipped; a value that does not decode is an error here (``verify``
    is the tool that judges a damaged trail).

    :param read: passed to :func:`~renkei.audit.reader.read_topic` (``follow``, …).
    """
    if where is not None and where.since_ms is not None:
        # Kafka timestamps are the hub's write time, never before occurred_at.
        read.setdefault("since_ms", where.since_ms)
    async for batch in read_topic(kafka, topic, **read):
        for raw in batch:
            if raw.value is None:
                continue
            try:
                message = codec.decode(raw.value)
            except ContractError as exc:
                raise AuditError(
                    f"{topic}@{raw.partition}:{raw.offset} does not decode ({exc}); "
                    "run `renkei audit verify`"
                ) from exc
            if not isinstance(message, AuditRecord):
                continue
            if where is None or where.matches(message):
                yield Entry(raw.partition, raw.offset, message, raw.value)


def audit_key_of_link_code(keyring: KeyRing, agency: str, link_code: str) -> str:
    """The audit key of the person ``agency`` knows by ``link_code`` (needs the master key).

    :raises AuditError: the code does not open under that agency's key.
    """
    try:
        id_code = LinkCodes(keyring).open(agency, link_code, datetime.now(UTC))
    except CryptoError as exc:
        raise AuditError(f"not a link code of {agency}: {exc}") from exc
    return audit_key(keyring, id_code)


COLUMNS = (
    "occurred_at",
    "partition",
    "offset",
    "step",
    "actor",
    "requester",
    "provider",
    "scenario_id",
    "legal_basis",
    "items",
    "request_id",
    "hub_request_id",
    "error_code",
    "disclosable",
    "audit_key",
    "linkage_run",
    "linkage_score",
    "reviewed_by",
)


def row(entry: Entry) -> dict[str, Any]:
    """One entry as flat, JSON-ready columns (:data:`COLUMNS`)."""
    r = entry.record
    return {
        "occurred_at": r.occurred_at.isoformat(timespec="milliseconds"),
        "partition": entry.partition,
        "offset": entry.offset,
        "step": str(r.step),
        "actor": r.actor,
        "requester": r.requester,
        "provider": r.provider,
        "scenario_id": r.scenario_id,
        "legal_basis": r.legal_basis,
        "items": list(r.items),
        "request_id": r.request_id,
        "hub_request_id": r.hub_request_id,
        "error_code": r.error_code,
        "disclosable": r.disclosable,
        "audit_key": r.audit_key,
        "linkage_run": r.linkage_run,
        "linkage_score": r.linkage_score,
        "reviewed_by": r.reviewed_by,
    }


def format_jsonl(rows: Iterable[dict[str, Any]]) -> Iterable[str]:
    for r in rows:
        yield json.dumps(r, ensure_ascii=False, separators=(",", ":"))


def format_csv(rows: Iterable[dict[str, Any]]) -> Iterable[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    yield buffer.getvalue()
    for r in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow({**r, "items": " ".join(r["items"])})
        yield buffer.getvalue()
