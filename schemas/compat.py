"""Schema evolution guard: today's schemas and every released version must read each other.

For each named type of each released version ``schemas/avro/released/v<N>/`` and its
current counterpart, Avro's own ``ReaderWriterCompatibilityChecker`` decides:

- **backward**: the current schema reads bytes written with the released one (a hub
  upgraded first still reads agencies that are not);
- **forward**: the released schema reads bytes written with the current one (an agency
  not yet upgraded still reads what an upgraded hub sends).

The rules that follow (``docs/contract.md``, "Evolution"): add fields only with a default,
never remove or retype a field without a default, add enum symbols only to enums that have
a default symbol, never rename. One rule goes beyond Avro's: an enum symbol, once released,
is never removed. Avro lets a reader map it to the enum's default, but then an old
``TIMEOUT`` would silently read as ``UNKNOWN``.

Needs the ``avro`` package (the ``dev`` extra); the codec does not import this module.
Run ``python -m schemas.compat`` for a report.

A caveat of the checker: it compares physical types only, so ``int`` and ``int``/``date``
pass as compatible; changing a logical type is a review question, not a test result.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from pydantic import BaseModel, ConfigDict

from schemas.loader import RELEASED_DIR, SCHEMA_DIR, load_schema_dir, released_versions, resolve

__all__ = ["Direction", "Incompatibility", "check_compatibility", "check_pair", "main"]


class Direction(StrEnum):
    """Which side reads which."""

    BACKWARD = "backward"
    """The current schema reads data written with a released one."""
    FORWARD = "forward"
    """A released schema reads data written with the current one."""


class Incompatibility(BaseModel):
    """One way in which the current schemas break a released version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """Full name of the Avro type."""
    version: int
    """The released version broken."""
    direction: Direction
    """Which reading fails."""
    messages: tuple[str, ...]
    """The checker's explanations."""
    locations: tuple[str, ...]
    """JSON-pointer-like paths of the offending parts."""


def _parse(schema: dict[str, Any]) -> Any:
    return avro.schema.parse(json.dumps(schema))


def check_pair(reader: dict[str, Any], writer: dict[str, Any]) -> tuple[str, ...]:
    """Why ``reader`` cannot read data written with ``writer``; empty when it can.

    :param reader: a resolved schema (every named type inlined once).
    :param writer: a resolved schema.
    """
    # avro annotates get_compatibility but not the constructor
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(_parse(reader), _parse(writer))
    if result.compatibility is SchemaCompatibilityType.compatible:
        return ()
    found = sorted(result.messages) + [f"at {loc}" for loc in sorted(result.locations)]
    return tuple(found) or ("incompatible",)


def check_compatibility(
    current_dir: Path = SCHEMA_DIR, released_dir: Path = RELEASED_DIR
) -> list[Incompatibility]:
    """Every incompatibility between the current schemas and every released version.

    A type that a released version has and the current schemas lack counts as a backward
    incompatibility: data written with it could no longer be read.

    :param current_dir: folder of the current ``.avsc`` files.
    :param released_dir: folder holding ``v<N>/`` folders of released ``.avsc`` files.
    """
    current = load_schema_dir(current_dir)
    found: list[Incompatibility] = []
    for version, folder in released_versions(released_dir):
        released = load_schema_dir(folder)
        for name in sorted(released):
            if name not in current:
                found.append(
                    Incompatibility(
                        name=name,
                        version=version,
                        direction=Direction.BACKWARD,
                        messages=("type removed",),
                        locations=("/",),
                    )
                )
                continue
            removed = set(released[name].get("symbols", ())) - set(current[name].get("symbols", ()))
            if removed:
                found.append(
                    Incompatibility(
                        name=name,
                        version=version,
                        direction=Direction.BACKWARD,
                        messages=(f"released symbols removed: {sorted(removed)}",),
                        locations=("/symbols",),
                    )
                )
            new, old = resolve(name, current), resolve(name, released)
            for direction, reader, writer in (
                (Direction.BACKWARD, new, old),
                (Direction.FORWARD, old, new),
            ):
                problems = check_pair(reader, writer)
                if problems:
                    found.append(
                        Incompatibility(
                            name=name,
                            version=version,
                            direction=direction,
                            messages=tuple(p for p in problems if not p.startswith("at ")),
                            locations=tuple(p[3:] for p in problems if p.startswith("at ")),
                        )
                    )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Print every incompatibility; exit status 1 if there is any.

    :param argv: optional ``[current_dir, released_dir]``.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    current = Path(args[0]) if args else SCHEMA_DIR
    released = Path(args[1]) if len(args) > 1 else RELEASED_DIR
    problems = check_compatibility(current, released)
    versions = [v for v, _ in released_versions(released)]
    for problem in problems:
        print(
            f"{problem.name} v{problem.version} {problem.direction}: "
            f"{'; '.join(problem.messages)} ({', '.join(problem.locations)})"
        )
    if not problems:
        print(f"compatible with released versions {versions}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
