"""Bulk linkage enrolment, offline half: rows packed into commands, and the progress kept.

A linkage run's rows (:class:`~hub_stream.control.LinkedRow`) go to the hub as
:class:`~hub_stream.control.EnrolLinked` commands on ``hub.control``. Each command holds
at most :data:`~hub_stream.control.MAX_LINKED_ROWS` rows and stays, signed, under the
record limit the hub reads (:data:`schemas.limits.MESSAGE_BYTES`, with :data:`HEADROOM`
to spare): the rows are measured as the command will carry them, so a command is never
refused as oversize.

**Resuming without enrolling twice.** ``OUT/.enrol/<agency>.json`` (:class:`EnrolProgress`)
names a *session* and which commands Kafka has acknowledged. A command's id derives from
the session and its position, and packing is deterministic, so the same rows started
again skip what was acknowledged, and a command sent but not yet noted when the process
died goes again with the same id — which the hub refuses as a ``DUPLICATE`` (its replay
memory keeps command ids for ``RENKEI_HUB_MAX_DEADLINE_MS`` plus a margin, 25 h by
default). Other rows, another run or capacity refuse to resume; ``--restart`` starts a new
session, whose commands are new: rows enrolled before are enrolled again, harmlessly (the
same holding and link code; a second ``ENROLLED`` audit record).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from hub_stream.control import MAX_LINKED_ROWS, EnrolLinked, LinkedRow
from hub_stream.ids import derive_id
from renkei.errors import ConfigurationError
from schemas import limits

__all__ = ["HEADROOM", "EnrolProgress", "pack", "progress_path"]

HEADROOM: Final = 1_024
"""Bytes each command leaves below the record limit."""

_SIGNATURE_CHARS: Final = 88  # base64 of a 64-byte Ed25519 signature


def pack(
    agency: str,
    run: str,
    rows: Sequence[LinkedRow],
    *,
    session: str,
    capacity: str = "",
    budget: int = limits.MESSAGE_BYTES - HEADROOM,
    max_rows: int = MAX_LINKED_ROWS,
) -> list[EnrolLinked]:
    """``rows`` in order, cut into unsigned commands of at most ``budget`` bytes signed.

    :raises ConfigurationError: the agency id, run or capacity is not what a command
        may carry.
    """
    if not rows:
        return []
    sizes = [len(row.model_dump_json().encode()) for row in rows]

    def command(index: int, chunk: Sequence[LinkedRow]) -> EnrolLinked:
        try:
            return EnrolLinked(
                command_id=derive_id("renkei-link-enrol", session, str(index)),
                agency_id=agency, linkage_run=run, capacity=capacity, rows=tuple(chunk),
            )  # fmt: skip
        except ValidationError as exc:
            where = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors()}))
            raise ConfigurationError(f"not a valid bulk enrolment: {where}") from None

    # what a command weighs besides its rows: measured on one, signature included
    probe = command(0, rows[:1]).model_copy(update={"signature": "A" * _SIGNATURE_CHARS})
    overhead = len(probe.to_bytes()) - sizes[0]
    commands: list[EnrolLinked] = []
    chunk: list[LinkedRow] = []
    weight = overhead
    for row, size in zip(rows, sizes, strict=True):
        if chunk and (weight + size + 1 > budget or len(chunk) == max_rows):
            commands.append(command(len(commands), chunk))
            chunk, weight = [], overhead
        chunk.append(row)
        weight += size + 1  # and a comma
    commands.append(command(len(commands), chunk))
    return commands


def progress_path(out: Path, agency: str) -> Path:
    """Where the enrolment of ``out``'s rows for ``agency`` keeps its progress."""
    return out / ".enrol" / f"{agency}.json"


class EnrolProgress(BaseModel):
    """Which commands of one enrolment Kafka has acknowledged, and their session."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["renkei-link-enrol/1"] = "renkei-link-enrol/1"
    work: str
    """Digest of what is enrolled (:meth:`digest`): resuming needs the same."""
    session: str
    commands: int
    sent: list[int] = []

    @staticmethod
    def digest(agency: str, run: str, capacity: str, rows: Sequence[LinkedRow]) -> str:
        """What identifies the work: agency, run, capacity and every row, in order, and how
        they are packed (a position must name the same command when resumed)."""
        packing = [limits.MESSAGE_BYTES - HEADROOM, MAX_LINKED_ROWS]
        h = hashlib.sha256(json.dumps([agency, run, capacity, packing]).encode())
        for row in rows:
            h.update(row.model_dump_json().encode() + b"\n")
        return h.hexdigest()

    @classmethod
    def open(cls, path: Path, work: str, restart: bool) -> EnrolProgress:
        """The progress in ``path``, or a new session's when there is none or ``restart``.

        :raises ConfigurationError: ``path`` holds the progress of other work.
        """
        if path.is_file() and not restart:
            try:
                found = cls.model_validate_json(path.read_bytes())
            except ValidationError as exc:
                raise ConfigurationError(f"{path} is not an enrolment's progress") from exc
            if found.work != work:
                raise ConfigurationError(
                    f"{path} holds the progress of enrolling other rows (another file, run, "
                    "agency or capacity); pass --restart to start a new session"
                )
            return found
        return cls(work=work, session=secrets.token_hex(16), commands=0)

    def save(self, path: Path) -> None:
        """Write atomically: a crash leaves the previous progress, never half of it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(self.model_dump_json(indent=1), encoding="utf-8")
        partial.replace(path)
