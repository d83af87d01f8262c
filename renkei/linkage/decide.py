"""From scored candidates to one decision per record: linked, review or not found.

A wrong link is worse than a review, so a record is ``LINKED`` only when *all* hold:

1. the best candidate's match probability is at least ``link_probability``;
2. it is unique: the runner-up's match weight is at least ``margin_bits`` lower (the
   best is 2^margin times likelier), and no other candidate holds the record's number;
3. the record's My Number, when given, does not contradict the best candidate (a family
   member's number copied from the same form disagrees with the person's own);
4. enough independent items agree at a strong level:

   - the birth date — exactly, or one typo or day and month swapped (then it is not
     counted among the items); a missing birth date only when the My Number agrees;
   - the name or the reading;
   - the address (current, without building, or a former one) or the My Number: name,
     reading, birth date and sex alone are shared by strangers often enough in a
     national registry that they never link — except within one town, with every
     other item agreeing and the birth date exactly;
   - at least ``min_items`` of the six items. A My Number that agrees is *confirmed*
     only when at least ``min_items - 1`` of the other items agree too: it never links
     alone.

Otherwise the record goes to ``REVIEW`` with its candidates (best first) and the first
rule it failed, unless nothing is even plausible: no candidate at all, or none with a
probability of ``review_probability`` and no agreeing My Number → ``NOT_FOUND``. (The
scorer drops pairs below ``review_probability`` before they reach here.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["Candidate", "Decision", "Outcome", "Policy", "decide"]

Outcome = Literal["LINKED", "REVIEW", "NOT_FOUND"]

# Gamma values that count as "this item agrees" (model.LEVELS: higher is stronger).
_STRONG: Final = {"name": 3, "kana": 4, "birth": 3, "sex": 1, "address": 2, "my_number": 1}
_TOWN: Final = 1  # model.LEVELS["address"]: same town, another block
_BIRTH_EXACT: Final = 3  # model.LEVELS["birth"]
_MAX_CANDIDATES: Final = 5


@dataclass(frozen=True, slots=True)
class Policy:
    """The thresholds of the rules above (defaults: conservative)."""

    link_probability: float = 0.9999
    margin_bits: float = 8.0
    review_probability: float = 0.01
    min_items: int = 4


@dataclass(frozen=True, slots=True)
class Candidate:
    """One scored registry person for a record.

    :param gammas: the comparison levels (``model.LEVELS``; -1 missing) by comparison.
    """

    resident_code: str
    weight: float
    probability: float
    gammas: dict[str, int]

    def agrees(self, item: str) -> bool:
        """Whether ``item`` agrees at a strong level."""
        return self.gammas.get(item, -1) >= _STRONG[item]


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one record."""

    outcome: Outcome
    resident_code: str = ""
    score: float = 0.0
    candidates: tuple[str, ...] = ()
    reason: str = ""


def _moved_in_town(best: Candidate) -> bool:
    """Same town, another block — and every other item agrees, the birth date exactly.

    A stranger who shares name, reading, sex and birth date is rare in a country and
    rarer still in one town, while moves within a town are common.
    """
    strong = all(best.agrees(i) for i in ("name", "kana", "sex"))
    exact_birth = best.gammas.get("birth") == _BIRTH_EXACT
    return best.gammas.get("address") == _TOWN and exact_birth and strong


def _unconfirmed(best: Candidate, policy: Policy) -> str:
    """The item rule (4) the best candidate fails, or ''."""
    born = best.gammas.get("birth", -1)
    if born == 0:
        return "birth date different"
    if born < 0 and not best.agrees("my_number"):
        return "birth date missing and no My Number confirms the person"
    if not (best.agrees("name") or best.agrees("kana")):
        return "neither name nor reading agrees"
    if not (best.agrees("address") or best.agrees("my_number") or _moved_in_town(best)):
        return "address differs and no My Number confirms the person"
    others = sum(best.agrees(i) for i in ("name", "kana", "birth", "sex", "address"))
    if best.agrees("my_number"):
        if others < policy.min_items - 1:
            return "My Number agrees but too few other items confirm it"
    elif others < policy.min_items:
        return f"only {others} items agree"
    return ""


_DEFAULT: Final = Policy()


def decide(candidates: Sequence[Candidate], policy: Policy = _DEFAULT) -> Decision:
    """Decide one record from its candidates (any order); see the module docstring."""
    if not candidates:
        return Decision("NOT_FOUND", reason="no likely candidate in the registry")
    ranked = sorted(candidates, key=lambda c: (-c.weight, c.resident_code))
    best = ranked[0]
    codes = tuple(c.resident_code for c in ranked[:_MAX_CANDIDATES])
    number_holders = [c for c in ranked if c.gammas.get("my_number", -1) == 1]
    if best.probability < policy.review_probability and not number_holders:
        return Decision("NOT_FOUND", reason=f"no likely candidate (best p={best.probability:.3f})")

    def review(reason: str) -> Decision:
        return Decision("REVIEW", score=best.probability, candidates=codes, reason=reason)

    if best.gammas.get("my_number", -1) == 0:
        return review("the record's My Number is not the best candidate's")
    if number_holders and number_holders[0] is not best:
        return review("My Number points at another candidate")
    if best.probability < policy.link_probability:
        return review(f"score below the link threshold (p={best.probability:.4f})")
    if len(ranked) > 1 and best.weight - ranked[1].weight < policy.margin_bits:
        return review("another candidate scores close to the best")
    if problem := _unconfirmed(best, policy):
        return review(problem)
    return Decision("LINKED", best.resident_code, best.probability, codes)
