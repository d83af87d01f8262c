"""Indexes derived from the person and holding tables, for the flows to look things up.

* the :class:`~.matching.PersonIndex` (enrolment resolves a record by My Number or
  basic-4, with the person's revoked numbers so that an old number explains itself);
* who holds each person (fan-out), by audit key;
* which resident code an ID code belongs to (rotation finds the people an agency holds).

Each is a function of what the tables' :meth:`~.state.Table.get` returns, so it follows
their staged changes as they are made (:meth:`person_changed`, :meth:`holding_changed`
are the tables' ``on_change``) and their undoing, in reverse, when a record or a batch
rolls back. A registration and an enrolment of that person in one batch therefore link.
"""

from __future__ import annotations

from collections.abc import Iterator, Set

from schemas.models import NumberReissued, PersonRegistered

from .matching import Basic4Like, MatchResult, PersonIndex
from .records import Holding, PersonState

__all__ = ["DerivedIndexes", "former_numbers"]

_NOBODY: frozenset[str] = frozenset()


def former_numbers(person: PersonState) -> list[str]:
    """The My Numbers the person's row shows they held before their current one."""
    numbers = [
        body.my_number
        for entry in person.history
        for body in (entry.body, entry.previous)
        if isinstance(body, PersonRegistered | NumberReissued)
    ]
    return [n for n in dict.fromkeys(numbers) if n != person.my_number]


class DerivedIndexes:
    """The person index, holders by audit key and resident codes by ID code."""

    def __init__(self, index: PersonIndex | None = None) -> None:
        self.index = index if index is not None else PersonIndex()
        self._holders: dict[str, set[str]] = {}  # audit key → agencies holding the person
        self._by_id_code: dict[str, str] = {}  # ID code (hex) → resident code

    # -- what the flows ask --------------------------------------------------------------

    def resolve(self, my_number: str | None, basic4: Basic4Like | None) -> MatchResult:
        """Which person an enrolling record is about (:meth:`.PersonIndex.resolve`)."""
        return self.index.resolve(my_number, basic4)

    def holders(self, audit_key: str) -> Set[str]:
        """The agencies holding the person (read-only)."""
        return self._holders.get(audit_key, _NOBODY)

    def held_by(self, agency: str) -> set[str]:
        """Audit keys of every person ``agency`` holds (a scan: rotations are rare)."""
        return {key for key, agencies in self._holders.items() if agency in agencies}

    def id_codes(self) -> Iterator[str]:
        """The ID code (hex) of every person."""
        return iter(self._by_id_code)

    # -- following the tables ---------------------------------------------------------

    def person_changed(
        self, resident_code: str, old: PersonState | None, new: PersonState | None
    ) -> None:
        """``on_change`` of the persons table. The index goes first: if it refuses the
        row (a number another person holds), nothing has changed."""
        if new is None:
            if old is not None:
                self.index.remove(bytes.fromhex(old.id_code))
                self._by_id_code.pop(old.id_code, None)
            return
        person_id = bytes.fromhex(new.id_code)
        revoked = former_numbers(new)  # the ID code never changes: old had the same one
        if person_id in self.index:
            self.index.update(person_id, new.basic4, new.my_number, revoked=revoked)
        else:
            self.index.add(person_id, new.basic4, new.my_number, revoked=revoked)
        self._by_id_code[new.id_code] = resident_code

    def holding_changed(self, key: str, old: Holding | None, new: Holding | None) -> None:
        """``on_change`` of the holdings table (keys ``<audit key>|<agency>``)."""
        audit_key, agency = key.split("|", 1)
        if new is not None:
            self._holders.setdefault(audit_key, set()).add(agency)
            return
        agencies = self._holders.get(audit_key)
        if agencies is not None:
            agencies.discard(agency)
            if not agencies:
                del self._holders[audit_key]  # a person nobody holds costs nothing
