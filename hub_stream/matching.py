"""Resolve an agency's record to a person: by My Number, else by the normalised basic-4.

Enrolment (紐付け) and bulk initial linkage both ask the :class:`PersonIndex` one question:
*which person is this record about?* The answer is a :class:`MatchResult`; it is never a
guess. The rules, in order:

1. A My Number that is present but malformed (wrong length, letters, wrong check digit)
   → ``INVALID``. A blank string counts as absent. Neither a number nor a basic-4 →
   ``INVALID``.
2. A valid My Number is looked up among *current* numbers only. After a reissue the old
   number resolves to no one (``NO_MATCH``, and the detail says it was revoked): a
   revoked number is exactly what a leak hands to someone else, so it must not keep
   opening the door. A number that resolves to no one is not rescued by the basic-4
   either: the record then disagrees with the registry, and a person has to look.
3. Number and basic-4 both given: if the basic-4 matches persons and none of them is the
   number's person → ``AMBIGUOUS`` (a conflict). If the basic-4 matches no one (an old
   address, a name before marriage) the number decides → ``LINKED``, ``matched_by``
   ``MY_NUMBER``.
4. Basic-4 only: exact match on the normalised key (:mod:`hub_stream.normalize`). One
   person → ``LINKED``; several → ``AMBIGUOUS``; none → ``NO_MATCH``.

Deceased persons stay in the index and resolve like anyone else: agencies must still link
a death to their records. Call :meth:`PersonIndex.remove` only when a registration is
annulled. Details never contain the number, a name or an address: they go to logs, audit
records and the agency.

The index may hold millions of persons, so it keeps no basic-4 text: a 16-byte BLAKE2b
digest of the normalised key and the number as an ``int``, about 300 bytes per person.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from hub_stream.normalize import Basic4, Basic4Like, MatchKey, normalise_basic4
from renkei import mynumber
from renkei.errors import InvalidMyNumberError

__all__ = [
    "DIGEST_SIZE",
    "Basic4",
    "Basic4Like",
    "MatchKey",
    "MatchResult",
    "MatchedBy",
    "Outcome",
    "PersonIndex",
    "normalise_basic4",
]

DIGEST_SIZE: Final = 16
"""Bytes of the basic-4 digest the index stores per person (collision odds ~n²/2¹²⁹)."""

Outcome = Literal["LINKED", "NO_MATCH", "AMBIGUOUS", "INVALID"]
MatchedBy = Literal["MY_NUMBER", "BASIC4", "MY_NUMBER_AND_BASIC4"]

# Bytes that hold a My Number (< 10**12 < 2**40) in an index entry.
_NUMBER_BYTES: Final = 5


@dataclass(frozen=True, slots=True)
class MatchResult:
    """The answer to "which person is this record about?".

    :param outcome: ``LINKED`` (``person_id`` is set), ``NO_MATCH``, ``AMBIGUOUS`` or
        ``INVALID``.
    :param person_id: the person's ID code when ``LINKED``, else ``None``.
    :param detail: a sentence for the agency and the audit trail; never personal data.
    :param matched_by: what linked the record, when ``LINKED``.
    """

    outcome: Outcome
    person_id: bytes | None
    detail: str
    matched_by: MatchedBy | None = None


def _no(outcome: Outcome, detail: str) -> MatchResult:
    return MatchResult(outcome=outcome, person_id=None, detail=detail)


class PersonIndex:
    """In-memory index of persons by current My Number and by basic-4 digest.

    :param digest_key: optional BLAKE2b key for the basic-4 digests, so that a dumped
        index cannot be searched with guessed names and birth dates without the key.
    """

    __slots__ = ("_by_key", "_by_number", "_digest_key", "_entries", "_former", "_revoked")

    def __init__(self, *, digest_key: bytes = b"") -> None:
        self._digest_key = digest_key
        self._by_number: dict[int, bytes] = {}
        # A digest almost always names one person; the rare shared key holds a tuple.
        self._by_key: dict[bytes, bytes | tuple[bytes, ...]] = {}
        # person id → digest ‖ number (5 bytes, absent when the person has none), so that
        # remove/update find the old keys without storing the basic-4.
        self._entries: dict[bytes, bytes] = {}
        # Revoked numbers, each with the person it was revoked from (few persons have any).
        self._revoked: dict[int, bytes] = {}
        self._former: dict[bytes, tuple[int, ...]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, person_id: object) -> bool:
        return person_id in self._entries

    def digest(self, basic4: Basic4Like) -> bytes:
        """Return the index's digest of the normalised ``basic4``.

        :raises ValueError: the basic-4 has an unknown sex or no date of birth.
        """
        key = normalise_basic4(basic4).canonical()
        return hashlib.blake2b(key, digest_size=DIGEST_SIZE, key=self._digest_key).digest()

    def add(
        self,
        person_id: bytes,
        basic4: Basic4Like,
        my_number: str | None,
        *,
        revoked: Iterable[str] = (),
    ) -> None:
        """Index a new person.

        :param revoked: the person's former (revoked) numbers, so that resolving one
            explains itself instead of looking like a typo.
        :raises ValueError: ``person_id`` is already indexed, or another person holds
            ``my_number`` (the registry never issues one number twice).
        :raises InvalidMyNumberError: ``my_number`` or a revoked number is malformed.
        """
        if person_id in self._entries:
            raise ValueError("person is already indexed; use update()")
        digest, number = self._prepare(person_id, basic4, my_number)
        former = _numbers(revoked, number)
        self._link(person_id, digest, number)
        self._set_former(person_id, former)

    def update(
        self,
        person_id: bytes,
        basic4: Basic4Like,
        my_number: str | None,
        *,
        revoked: Iterable[str] | None = None,
    ) -> None:
        """Replace a person's basic-4 and number (move, name change, number reissue).

        :param revoked: the person's former numbers, replacing those the index knew; by
            default a number that changes is added to them.
        :raises KeyError: ``person_id`` is not indexed.
        :raises ValueError: another person holds ``my_number``.
        :raises InvalidMyNumberError: ``my_number`` or a revoked number is malformed.
        """
        old = self._entries.get(person_id)
        if old is None:
            raise KeyError("person is not indexed; use add()")
        digest, number = self._prepare(person_id, basic4, my_number)
        if revoked is None:
            old_number = self._number_of(old)
            kept = self._former.get(person_id, ())
            former = _numbers((), number, (*kept, *(() if old_number is None else (old_number,))))
        else:
            former = _numbers(revoked, number)
        self._unlink(person_id, old)
        self._link(person_id, digest, number)
        self._set_former(person_id, former)

    def remove(self, person_id: bytes) -> bool:
        """Forget a person (an annulled registration); return whether it was indexed."""
        entry = self._entries.get(person_id)
        if entry is None:
            return False
        self._unlink(person_id, entry)
        self._set_former(person_id, ())
        return True

    def resolve(self, my_number: str | None, basic4: Basic4Like | None) -> MatchResult:
        """Say which person a record is about (rules in the module docstring)."""
        number: int | None = None
        if my_number is not None and my_number.strip():
            try:
                number = int(mynumber.validate(my_number))
            except InvalidMyNumberError as exc:
                return _no("INVALID", str(exc))
        digest: bytes | None = None
        if basic4 is not None:
            try:
                digest = self.digest(basic4)
            except ValueError as exc:
                return _no("INVALID", f"the basic-4 cannot be used: {exc}")
        if number is None:
            if digest is None:
                return _no("INVALID", "neither a My Number nor the basic-4 was given")
            return self._resolve_basic4(digest)
        return self._resolve_number(number, digest)

    def _resolve_number(self, number: int, digest: bytes | None) -> MatchResult:
        person_id = self._by_number.get(number)
        if person_id is None:
            if number in self._revoked:
                return _no(
                    "NO_MATCH",
                    "this My Number was revoked when the person's number was reissued; "
                    "enrol with the current number",
                )
            return _no("NO_MATCH", "no person currently holds this My Number")
        if digest is None:
            return MatchResult("LINKED", person_id, "linked by My Number", "MY_NUMBER")
        candidates = self._candidates(digest)
        if person_id in candidates:
            return MatchResult(
                "LINKED",
                person_id,
                "linked by My Number, confirmed by the basic-4",
                "MY_NUMBER_AND_BASIC4",
            )
        if candidates:
            return _no(
                "AMBIGUOUS",
                "the My Number and the basic-4 point at different persons; "
                "check the record by hand",
            )
        return MatchResult(
            "LINKED",
            person_id,
            "linked by My Number; the basic-4 given matches no current registry entry "
            "(an old address or name?)",
            "MY_NUMBER",
        )

    def _resolve_basic4(self, digest: bytes) -> MatchResult:
        candidates = self._candidates(digest)
        if not candidates:
            return _no("NO_MATCH", "no person has this basic-4")
        if len(candidates) > 1:
            return _no(
                "AMBIGUOUS",
                f"{len(candidates)} persons share this basic-4; enrol with the My Number",
            )
        return MatchResult("LINKED", candidates[0], "linked by basic-4", "BASIC4")

    def _candidates(self, digest: bytes) -> tuple[bytes, ...]:
        found = self._by_key.get(digest)
        if found is None:
            return ()
        return (found,) if isinstance(found, bytes) else found

    def _prepare(
        self, person_id: bytes, basic4: Basic4Like, my_number: str | None
    ) -> tuple[bytes, int | None]:
        """Check everything before touching the index, so a refusal changes nothing."""
        if not isinstance(person_id, bytes):
            raise TypeError(f"person_id must be bytes, not {type(person_id).__name__}")
        number = None if my_number is None else int(mynumber.validate(my_number))
        if number is not None:
            holder = self._by_number.get(number)
            if holder is not None and holder != person_id:
                raise ValueError("another person already holds this My Number")
        return self.digest(basic4), number

    def _set_former(self, person_id: bytes, numbers: tuple[int, ...]) -> None:
        for number in self._former.pop(person_id, ()):
            if self._revoked.get(number) == person_id:
                del self._revoked[number]
        if numbers:
            self._former[person_id] = numbers
            for number in numbers:
                self._revoked[number] = person_id

    def _link(self, person_id: bytes, digest: bytes, number: int | None) -> None:
        if number is None:
            self._entries[person_id] = digest
        else:
            self._entries[person_id] = digest + number.to_bytes(_NUMBER_BYTES, "big")
            self._by_number[number] = person_id
        found = self._by_key.get(digest)
        if found is None:
            self._by_key[digest] = person_id
        elif isinstance(found, bytes):
            self._by_key[digest] = (found, person_id)
        else:
            self._by_key[digest] = (*found, person_id)

    def _unlink(self, person_id: bytes, entry: bytes) -> None:
        del self._entries[person_id]
        number = self._number_of(entry)
        if number is not None:
            del self._by_number[number]
        digest = entry[:DIGEST_SIZE]
        rest = tuple(p for p in self._candidates(digest) if p != person_id)
        if not rest:
            del self._by_key[digest]
        else:
            self._by_key[digest] = rest[0] if len(rest) == 1 else rest

    @staticmethod
    def _number_of(entry: bytes) -> int | None:
        if len(entry) == DIGEST_SIZE:
            return None
        return int.from_bytes(entry[DIGEST_SIZE:], "big")


def _numbers(
    texts: Iterable[str], current: int | None, known: Iterable[int] = ()
) -> tuple[int, ...]:
    """Former numbers, validated, without the current one and without repeats."""
    numbers = [*known, *(int(mynumber.validate(t)) for t in texts)]
    return tuple(dict.fromkeys(n for n in numbers if n != current))
