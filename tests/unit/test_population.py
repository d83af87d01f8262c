"""The synthetic population: deterministic, well-formed, and resolvable through its noise."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import re

import pytest

from hub_stream.matching import PersonIndex, normalise_basic4
from hub_stream.normalize import normalise_name
from producers import population
from producers._names import VARIANT_FORMS
from producers.population import (
    REFERENCE_DATE,
    Person,
    agency_view,
    duplicate_groups,
    generate_population,
)
from renkei import mynumber

ADDRESS = re.compile(
    r"^(東京都|北海道|(?:大阪|京都)府|.{2,3}県)"  # prefecture
    r".+?[市区町村]"  # municipality
    r".+?"  # town
    r"(?:[一二三四五六七八九]丁目\d{1,2}番\d{1,2}号(?: \S+\d{3,4}号室)?"  # 住居表示
    r"|\d{1,4}番地\d{1,2})$"  # 地番
)


@pytest.fixture(scope="module")
def people() -> list[Person]:
    return generate_population(5000, seed=42)


def test_same_seed_same_people_other_seed_other_people(people: list[Person]) -> None:
    assert generate_population(5000, seed=42) == people
    assert generate_population(5000, seed=43) != people
    # A prefix is not promised: n is part of the draw. Only (n, seed) pins the result.
    assert generate_population(0, seed=1) == []


def test_codes_and_numbers_are_unique_and_well_formed(people: list[Person]) -> None:
    assert len({p.resident_code for p in people}) == len(people)
    assert len({p.my_number for p in people}) == len(people)
    for p in people:
        assert re.fullmatch(r"[0-9]{11}", p.resident_code)
        assert mynumber.validate(p.my_number) == p.my_number


def test_names_and_readings_correspond(people: list[Person]) -> None:
    pools = population._pools()
    family = {normalise_name(k): kana for k, kana in pools.family}
    given = dict((*pools.male, *pools.female))
    male = {k for k, _ in pools.male}
    female = {k for k, _ in pools.female}
    for p in people:
        surname, first = p.name.split(" ")
        surname_kana, first_kana = p.name_kana.split(" ")
        # A registered variant (髙橋) reads like its standard form (高橋).
        assert family[normalise_name(surname)] == surname_kana
        assert given[first] == first_kana
        assert re.fullmatch(r"[ァ-ヶー]+", surname_kana + first_kana)
        assert first in (male if p.sex == "MALE" else female)


def test_the_pools_are_large_and_consistent() -> None:
    pools = population._pools()
    assert len(pools.family) >= 200
    assert len(pools.male) + len(pools.female) >= 200
    for kanji, kana in (*pools.family, *pools.male, *pools.female):
        assert kanji
        assert re.fullmatch(r"[ァ-ヶー]+", kana), (kanji, kana)
    # One spelling, one reading: a pair list that disagrees with itself is a typo.
    for group in (pools.family, pools.male, pools.female):
        readings: dict[str, str] = {}
        for kanji, kana in group:
            assert readings.setdefault(kanji, kana) == kana, kanji


def test_some_registered_names_use_variant_kanji(people: list[Person]) -> None:
    variants = {v for forms in VARIANT_FORMS.values() for v in forms}
    assert any(set(p.name) & variants for p in people)


def test_addresses_look_like_addresses(people: list[Person]) -> None:
    for p in people:
        assert ADDRESS.match(p.address), p.address
    assert any("丁目" in p.address for p in people)
    assert any("番地" in p.address for p in people)
    assert any("号室" in p.address for p in people)


def test_birth_dates_and_sexes_are_plausible(people: list[Person]) -> None:
    oldest = REFERENCE_DATE - dt.timedelta(days=101 * 366)
    assert all(oldest < p.birth_date <= REFERENCE_DATE for p in people)
    assert sum(p.birth_date.year >= 2010 for p in people) > 300  # children exist
    assert sum(p.birth_date.year < 1946 for p in people) > 150  # so do the very old
    sexes = [p.sex for p in people]
    assert 0.45 < sexes.count("MALE") / len(sexes) < 0.55
    assert set(sexes) == {"MALE", "FEMALE"}


def test_noise_zero_is_the_registry_spelling(people: list[Person]) -> None:
    rng = random.Random(1)
    for p in people[:200]:
        view = agency_view(p, rng, 0.0)
        assert (view.name, view.name_kana, view.birth_date, view.sex, view.address) == (
            p.name,
            p.name_kana,
            p.birth_date,
            p.sex,
            p.address,
        )


@pytest.mark.parametrize("noise", [0.2, 0.6, 1.0])
def test_every_agency_view_normalises_to_its_person(people: list[Person], noise: float) -> None:
    rng = random.Random(int(noise * 10))
    changed = 0
    for p in people:
        view = agency_view(p, rng, noise)
        assert normalise_basic4(view) == normalise_basic4(p), (p, view)
        assert view.birth_date == p.birth_date
        assert view.sex == p.sex
        changed += (view.name, view.name_kana, view.address) != (p.name, p.name_kana, p.address)
    # The views must actually exercise normalisation.
    assert changed > len(people) * min(0.5, noise * 2)


def test_full_noise_uses_every_kind_of_variation(people: list[Person]) -> None:
    rng = random.Random(9)
    views = [agency_view(p, rng, 1.0) for p in people[:2000]]
    kana = "".join(v.name_kana for v in views)
    address = "".join(v.address for v in views)
    name = "".join(v.name for v in views)
    assert re.search(r"[ぁ-ゖ]", kana)  # hiragana
    assert re.search(r"[ｦ-ﾟ]", kana)  # half-width
    assert "゛" in kana  # detached voiced mark
    assert "\u3000" in name + kana + address
    assert re.search(r"[０-９]", address)  # full-width digits
    assert re.search(r"\d[-－‐−ー―]\d", address)  # dashed block numbers
    variants = {v for forms in VARIANT_FORMS.values() for v in forms}
    assert set(name) & variants


def test_agency_views_link_through_the_index(people: list[Person]) -> None:
    index = PersonIndex()
    for i, p in enumerate(people):
        index.add(i.to_bytes(16, "big"), p, p.my_number)
    assert not duplicate_groups(people)  # accidental basic-4 twins would blur the check
    rng = random.Random(2)
    for i, p in enumerate(people):
        result = index.resolve(None, agency_view(p, rng, 0.5))
        assert result.outcome == "LINKED"
        assert result.person_id == i.to_bytes(16, "big")


def test_deliberate_duplicates_are_ambiguous_by_basic4_and_linked_by_number() -> None:
    people = generate_population(1000, seed=7, duplicates=10)
    groups = duplicate_groups(people)
    assert len(groups) == 10
    assert all(len(group) == 2 for group in groups)
    # Duplicates share the basic-4 but remain different persons.
    for a, b in groups:
        assert a.resident_code != b.resident_code
        assert a.my_number != b.my_number
    index = PersonIndex()
    ids = {p.resident_code: p.resident_code.encode() for p in people}
    for p in people:
        index.add(ids[p.resident_code], p, p.my_number)
    rng = random.Random(0)
    for a, b in groups:
        assert index.resolve(None, agency_view(a, rng, 0.5)).outcome == "AMBIGUOUS"
        by_number = index.resolve(b.my_number, agency_view(b, rng, 0.5))
        assert by_number.outcome == "LINKED"
        assert by_number.person_id == ids[b.resident_code]


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="negative"):
        generate_population(-1, seed=1)
    with pytest.raises(ValueError, match="duplicates"):
        generate_population(10, seed=1, duplicates=6)
    person = generate_population(1, seed=1)[0]
    with pytest.raises(ValueError, match="noise"):
        agency_view(person, random.Random(1), 1.5)


def test_records_are_frozen(people: list[Person]) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        people[0].name = "x"  # type: ignore[misc]  # the point of the test


def test_public_surface() -> None:
    for name in population.__all__:
        assert hasattr(population, name), name
