"""The decision rules: a wrong link is worse than a review."""

from __future__ import annotations

from renkei.linkage.decide import Candidate, Policy, decide

# Gammas at their strongest level (model.LEVELS), and "missing" (-1).
ALL = {"name": 5, "kana": 5, "birth": 3, "sex": 1, "address": 4, "my_number": -1}


def cand(code: str, weight: float = 30.0, probability: float = 1.0, **gammas: int) -> Candidate:
    return Candidate(code, weight, probability, {**ALL, **gammas})


def test_a_clear_unique_match_links() -> None:
    d = decide([cand("R1"), cand("R2", weight=-3.0, probability=0.1, name=0, kana=0)])
    assert (d.outcome, d.resident_code, d.candidates) == ("LINKED", "R1", ("R1", "R2"))


def test_no_candidate_is_not_found() -> None:
    assert decide([]).outcome == "NOT_FOUND"


def test_an_unlikely_candidate_is_not_found() -> None:
    assert decide([cand("R1", weight=-6.0, probability=0.015 / 2)]).outcome == "NOT_FOUND"


def test_two_close_candidates_go_to_review() -> None:
    # Twins: same surname, birth date and address; the given name tells them apart only weakly.
    d = decide([cand("R1", weight=20.0), cand("R2", weight=15.0)])
    assert d.outcome == "REVIEW"
    assert d.candidates == ("R1", "R2")
    assert "close" in d.reason


def test_a_score_below_the_threshold_goes_to_review() -> None:
    d = decide([cand("R1", weight=10.0, probability=0.999)])
    assert d.outcome == "REVIEW"
    assert decide([cand("R1", weight=10.0, probability=0.999)], Policy(0.99)).outcome == "LINKED"


def test_a_family_members_number_never_links() -> None:
    # The record is the mother's (all her items agree) but carries her son's number.
    mother = cand("R1", weight=25.0, my_number=0)
    son = cand("R2", weight=2.0, probability=0.8, name=2, kana=0, birth=0, my_number=1)
    d = decide([mother, son])
    assert d.outcome == "REVIEW"
    assert "My Number" in d.reason


def test_a_number_held_by_another_candidate_never_links() -> None:
    d = decide([cand("R1", weight=40.0), cand("R2", weight=5.0, probability=0.9, my_number=1)])
    assert d.outcome == "REVIEW"


def test_a_my_number_alone_never_links() -> None:
    # Only the number agrees: the record's name, reading and address are someone else's.
    alone = cand("R1", weight=25.0, name=0, kana=0, address=0, my_number=1)
    assert decide([alone]).outcome == "REVIEW"
    # A twin's number: birth date, sex and address agree, the given name is one
    # character apart and the reading differs — the number is not confirmed.
    twin = cand("R1", weight=25.0, name=2, kana=0, my_number=1)
    assert decide([twin]).outcome == "REVIEW"


def test_a_number_confirmed_by_three_items_links_a_moved_person() -> None:
    moved = cand("R1", weight=40.0, kana=0, address=0, my_number=1)
    assert decide([moved]).outcome == "LINKED"  # name, birth date and sex confirm it
    thinner = cand("R1", weight=40.0, kana=0, sex=-1, address=0, my_number=1)
    assert decide([thinner]).outcome == "REVIEW"


def test_name_birth_date_and_sex_without_address_or_number_never_link() -> None:
    # A stranger with the same name, reading, sex and birth date, or a move: a person decides.
    d = decide([cand("R1", weight=30.0, address=0)])
    assert d.outcome == "REVIEW"
    assert "address" in d.reason
    assert decide([cand("R1", weight=30.0, address=-1)]).outcome == "REVIEW"


def test_a_move_within_the_town_links_only_when_everything_else_agrees() -> None:
    assert decide([cand("R1", address=1)]).outcome == "LINKED"
    assert decide([cand("R1", address=1, birth=2)]).outcome == "REVIEW"
    assert decide([cand("R1", address=1, sex=-1)]).outcome == "REVIEW"
    assert decide([cand("R1", address=1, kana=4)]).outcome == "LINKED"  # coarse reading


def test_a_former_address_counts_as_an_address() -> None:
    assert decide([cand("R1", address=2)]).outcome == "LINKED"


def test_the_birth_date_must_agree() -> None:
    assert decide([cand("R1", birth=0)]).outcome == "REVIEW"
    assert decide([cand("R1", birth=-1)]).outcome == "REVIEW"
    # A missing birth date, but the number and four other items agree: confirmed.
    assert decide([cand("R1", birth=-1, my_number=1)]).outcome == "LINKED"
    assert decide([cand("R1", birth=0, my_number=1)]).outcome == "REVIEW"  # contradicts
    assert decide([cand("R1", birth=2)]).outcome == "LINKED"  # one typo
    assert decide([cand("R1", birth=1)]).outcome == "LINKED"  # day and month swapped
    # A near birth date is not counted as an item: four others must still agree.
    assert decide([cand("R1", birth=2, sex=-1)]).outcome == "REVIEW"


def test_name_or_reading_must_agree() -> None:
    assert decide([cand("R1", name=2, kana=2)]).outcome == "REVIEW"  # one character apart
    assert decide([cand("R1", name=1, kana=1)]).outcome == "REVIEW"  # the given names only
    assert decide([cand("R1", name=0)]).outcome == "LINKED"  # a kana-only legacy record


def test_decisions_do_not_depend_on_candidate_order() -> None:
    a, b = cand("R1", weight=30.0), cand("R2", weight=30.0)
    assert decide([a, b]) == decide([b, a])
    assert decide([a, b]).outcome == "REVIEW"


def test_levels_named_by_the_model_match_the_rules() -> None:
    from renkei.linkage.model import LEVELS

    assert LEVELS["address"][1] == "town"
    assert LEVELS["birth"][3] == "exact"
    assert LEVELS["name"][3] == "legacy"
    assert LEVELS["kana"][4] == "coarse"


def test_a_married_name_links_on_the_earlier_name_and_the_given_reading() -> None:
    # Name through a former name (4), reading agrees on the given name only (3).
    assert decide([cand("R1", name=4, kana=3)]).outcome == "LINKED"
    assert decide([cand("R1", name=4, kana=3, sex=-1)]).outcome == "REVIEW"  # not an item
