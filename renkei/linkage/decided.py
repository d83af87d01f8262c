"""What a finished ``renkei link match`` run hands to ``renkei link enrol``.

* :func:`run_identity` — the run's id, written into every audit record of its enrolments:
  32 hex digits of SHA-256 over ``OUT/.work/manifest.json`` (the inputs, the batch size,
  the policy) and ``OUT/.work/model.json`` (the trained model). The same folder always
  gives the same id; another model, policy or input gives another. An auditor recomputes
  it from the folder the operators kept.
* :func:`linked_rows` — ``linked.csv`` (``record_ref,resident_code,score``) as rows of the
  hub's :class:`~hub_stream.control.EnrolLinked` command.
* :func:`reviewed_rows` — a file of rows a person confirmed after review
  (``record_ref,resident_code,reviewer``); each record must be one the run sent to review
  or found nothing for, so that a reviewed row always belongs to its run.

Every row is checked here, with its line, before anything is sent: the hub's contract
wants an 11-digit resident code, a record_ref of 1 to 128 characters, a probability.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pyarrow as pa
from pydantic import ValidationError

from hub_stream.control import LinkedRow

from .errors import LinkageInputError
from .tables import read_table

__all__ = ["LINKED_COLUMNS", "REVIEWED_COLUMNS", "linked_rows", "reviewed_rows", "run_identity"]

LINKED_COLUMNS: Final = ("record_ref", "resident_code", "score")
"""Columns of ``linked.csv``."""

REVIEWED_COLUMNS: Final = ("record_ref", "resident_code", "reviewer")
"""Columns of a reviewed file."""

_DOMAIN: Final = b"renkei-linkage-run/1\x00"


def run_identity(out: Path) -> str:
    """The identity of the run whose outputs are in ``out``.

    :raises LinkageInputError: ``out/.work`` lacks the manifest or the model (no finished
        run there, or its work folder was removed).
    """
    work = out / ".work"
    digest = hashlib.sha256(_DOMAIN)
    for name in ("manifest.json", "model.json"):
        path = work / name
        if not path.is_file():
            raise LinkageInputError(
                f"{path}: no such file; the run's identity needs its work folder "
                f"(renkei link match --out {out} writes it)"
            )
        data = path.read_bytes()
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()[:32]


def linked_rows(path: Path) -> list[LinkedRow]:
    """The rows of ``linked.csv`` (or ``.parquet``), in file order.

    :raises LinkageInputError: unreadable, a column missing, or a row the hub would refuse.
    """
    rows = []
    for line, row in _lines(read_table(path, LINKED_COLUMNS)):
        score = _probability(path, line, row["score"])
        rows.append(_row(path, line, row, score=score))
    _unique(path, rows)
    return rows


def reviewed_rows(path: Path, out: Path) -> list[LinkedRow]:
    """The rows of a reviewed file; each ``record_ref`` must be in the run's ``review`` or
    ``not_found`` output in ``out``.

    :raises LinkageInputError: as :func:`linked_rows`, or a record the run did not leave
        to a person.
    """
    undecided = _refs(out, "review") | _refs(out, "not_found")
    rows = []
    for line, row in _lines(read_table(path, REVIEWED_COLUMNS)):
        if row["record_ref"] not in undecided:
            raise LinkageInputError(
                f"{path} line {line}: the run in {out} did not send this record to review"
            )
        rows.append(_row(path, line, row, reviewed_by=row["reviewer"].strip() or None))
    _unique(path, rows)
    return rows


def _lines(table: pa.Table) -> Iterator[tuple[int, dict[str, str]]]:
    # line numbers as a person reads the CSV: the header is line 1
    for index, row in enumerate(table.to_pylist()):
        yield index + 2, row


def _probability(path: Path, line: int, text: str) -> float:
    try:
        score = float(text)
    except ValueError:
        score = math.nan
    if not 0.0 <= score <= 1.0:  # NaN fails this too
        raise LinkageInputError(f"{path} line {line}: score is not a probability")
    return score


def _row(
    path: Path,
    line: int,
    row: dict[str, str],
    score: float | None = None,
    reviewed_by: str | None = None,
) -> LinkedRow:
    try:
        return LinkedRow(
            record_ref=row["record_ref"], resident_code=row["resident_code"].strip(),
            score=score, reviewed_by=reviewed_by,
        )  # fmt: skip
    except ValidationError as exc:
        # kinds and places only: the values are personal data
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['type']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise LinkageInputError(f"{path} line {line}: {problems}") from None


def _unique(path: Path, rows: list[LinkedRow]) -> None:
    if len({r.record_ref for r in rows}) != len(rows):
        raise LinkageInputError(f"{path}: record_ref repeats on some rows")


def _refs(out: Path, name: str) -> set[str]:
    for suffix in ("csv", "parquet"):
        path = out / f"{name}.{suffix}"
        if path.is_file():
            return set(read_table(path, ("record_ref",)).column("record_ref").to_pylist())
    return set()
