"""A deterministic synthetic population, and agency records that describe it imperfectly.

:func:`generate_population` plays the resident registry: unique resident codes, valid and
unique My Numbers, names with matching readings, real prefecture/municipality pairs with
Faker's town names, 住民票-style addresses (二丁目3番4号 or 12番地3). The same ``n`` and
``seed`` always give the same people, on any machine: every draw comes from one
``random.Random(seed)`` and pools built once from static data (Faker's ja_JP tables plus
:mod:`producers._names`), never from Faker's own generator or the clock.

:func:`agency_view` plays an agency's records of a person: the same facts written the way
another system writes them (full-width digits, hiragana or half-width readings, an
ideographic space, 髙 for 高, 2-3-4 for 二丁目3番4号). Every such variation is one the
hub's normalisation must absorb, so an agency view always resolves to its person.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Final, Literal

from faker.providers.address.ja_JP import Provider as AddressProvider
from faker.providers.person.ja_JP import Provider as PersonProvider

from producers import _noise
from producers._names import (
    EXTRA_FAMILY_NAMES,
    EXTRA_FEMALE_NAMES,
    EXTRA_MALE_NAMES,
    MUNICIPALITIES,
    VARIANT_FORMS,
)
from renkei import mynumber

__all__ = [
    "REFERENCE_DATE",
    "AgencyBasic4",
    "Person",
    "Sex",
    "agency_view",
    "duplicate_groups",
    "generate_population",
]

Sex = Literal["MALE", "FEMALE", "UNSPECIFIED"]

REFERENCE_DATE: Final = dt.date(2025, 4, 1)
""""Today" for the synthetic registry; fixed so that ages do not drift between runs."""

# Share of registry entries whose surname is itself registered in a variant form (髙橋):
# the registry is not always the standard side of a variant pair.
_REGISTERED_VARIANT_SHARE: Final = 0.02
_BUILDING_SHARE: Final = 0.15
_CHIBAN_SHARE: Final = 0.25  # 地番 (12番地3) rather than 住居表示 (二丁目3番4号)
# Faker lists a few towns with a tower's name attached (丸の内ＪＰタワー); a 丁目 after
# those reads wrong, so they are left out.
_BUILDING_IN_TOWN: Final = re.compile(r"[ァ-ヺー]{2,}|[Ａ-Ｚａ-ｚ]")


@dataclass(frozen=True, slots=True)
class _Basic4:
    """Name, reading, birth date, sex and address: what enrolment by the basic-4 matches."""

    name: str
    """Family and given name in kanji, one ASCII space between (佐藤 花子)."""
    name_kana: str
    """The reading in full-width katakana, one ASCII space between (サトウ ハナコ)."""
    birth_date: dt.date
    sex: Sex
    address: str


@dataclass(frozen=True, slots=True)
class Person(_Basic4):
    """A person as the resident registry knows them: the basic-4, their code and number."""

    resident_code: str
    """住民票コード: 11 digits, unique (no check digit: synthetic)."""
    my_number: str
    """Current My Number: 12 digits, valid check digit, unique."""


@dataclass(frozen=True, slots=True)
class AgencyBasic4(_Basic4):
    """The basic-4 of a person as one agency's records hold it (spelled its own way)."""


@dataclass(frozen=True, slots=True)
class _Pools:
    family: tuple[tuple[str, str], ...]
    family_cum_weights: tuple[float, ...]
    male: tuple[tuple[str, str], ...]
    female: tuple[tuple[str, str], ...]
    towns: tuple[str, ...]
    buildings: tuple[str, ...]
    ages: tuple[int, ...]
    age_cum_weights: tuple[float, ...]


def _unique(pairs: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(dict.fromkeys(pairs))


def _age_weight(age: int) -> float:
    # A rough 2020s pyramid: few children, a bulge from 45 to 75, a thinning tail.
    if age < 15:
        return 0.75
    if age < 45:
        return 0.95
    if age < 75:
        return 1.2
    if age < 90:
        return 0.7
    return 0.15


@cache
def _pools() -> _Pools:
    """Build the draw pools once per process (Faker's tables are static data)."""
    faker_family = [(k, kana) for (k, kana, _roman) in PersonProvider.last_name_pairs]
    family = _unique([*faker_family, *EXTRA_FAMILY_NAMES])
    # Zipf-like frequencies: the commonest surnames (Faker lists them first) dominate.
    cum: list[float] = []
    total = 0.0
    for rank in range(len(family)):
        total += 1.0 / (rank + 8)
        cum.append(total)
    male = _unique(
        [(k, kana) for (k, kana, _r) in PersonProvider.first_name_male_pairs] + [*EXTRA_MALE_NAMES]
    )
    female = _unique(
        [(k, kana) for (k, kana, _r) in PersonProvider.first_name_female_pairs]
        + [*EXTRA_FEMALE_NAMES]
    )
    ages = tuple(range(100))
    age_cum: list[float] = []
    acc = 0.0
    for age in ages:
        acc += _age_weight(age)
        age_cum.append(acc)
    return _Pools(
        family=family,
        family_cum_weights=tuple(cum),
        male=male,
        female=female,
        towns=tuple(t for t in AddressProvider.towns if not _BUILDING_IN_TOWN.search(t)),
        buildings=tuple(AddressProvider.building_names),
        ages=ages,
        age_cum_weights=tuple(age_cum),
    )


def _address(rng: random.Random, pools: _Pools) -> str:
    prefecture, city = rng.choice(MUNICIPALITIES)
    town = rng.choice(pools.towns)
    if rng.random() < _CHIBAN_SHARE:
        lot = rng.randint(1, 2500)
        sub = rng.randint(1, 30)
        return f"{prefecture}{city}{town}{lot}番地{sub}"
    chome = _noise.kanji_numeral(rng.randint(1, 9))
    address = f"{prefecture}{city}{town}{chome}丁目{rng.randint(1, 30)}番{rng.randint(1, 25)}号"
    if rng.random() < _BUILDING_SHARE:
        floor = rng.randint(1, 12)
        address += f" {rng.choice(pools.buildings)}{town}{floor}{rng.randint(1, 12):02d}号室"
    return address


def _registered_variant(rng: random.Random, family: str) -> str:
    for char in family:
        forms = VARIANT_FORMS.get(char)
        if forms:
            return family.replace(char, rng.choice(forms), 1)
    return family


def generate_population(
    n: int,
    seed: int,
    *,
    duplicates: int = 0,
    reference_date: dt.date = REFERENCE_DATE,
) -> list[Person]:
    """Return ``n`` synthetic persons, the same for the same arguments.

    :param n: how many persons.
    :param seed: the seed of every random draw.
    :param duplicates: how many of the ``n`` persons (the last ones) copy the whole
        basic-4 of another, earlier person while keeping their own resident code and My
        Number — the case basic-4 matching must answer ``AMBIGUOUS``. Each copies a
        different source person.
    :param reference_date: "today"; birth dates lie in the 100 years before it.
    :raises ValueError: ``n`` is negative or ``duplicates`` exceeds ``n // 2``.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    if not 0 <= duplicates <= n // 2:
        raise ValueError("duplicates must be between 0 and n // 2")
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible by design
    pools = _pools()
    families = rng.choices(pools.family, cum_weights=pools.family_cum_weights, k=n)
    ages = rng.choices(pools.ages, cum_weights=pools.age_cum_weights, k=n)
    resident_codes = rng.sample(range(10**10, 10**11), n)
    number_bodies = rng.sample(range(10**11), n)
    people: list[Person] = []
    for i in range(n):
        family, family_kana = families[i]
        if rng.random() < _REGISTERED_VARIANT_SHARE:
            family = _registered_variant(rng, family)
        sex: Sex = "MALE" if rng.random() < 0.5 else "FEMALE"
        given, given_kana = rng.choice(pools.male if sex == "MALE" else pools.female)
        first11 = f"{number_bodies[i]:011d}"
        youngest = reference_date.toordinal() - ages[i] * 365 - rng.randrange(365)
        people.append(
            Person(
                resident_code=str(resident_codes[i]),
                my_number=first11 + str(mynumber.check_digit(first11)),
                name=f"{family} {given}",
                name_kana=f"{family_kana} {given_kana}",
                birth_date=dt.date.fromordinal(youngest),
                sex=sex,
                address=_address(rng, pools),
            )
        )
    if duplicates:
        sources = rng.sample(range(n - duplicates), duplicates)
        for offset, source in enumerate(sources):
            s = people[source]
            target = n - duplicates + offset
            people[target] = replace(
                people[target],
                name=s.name,
                name_kana=s.name_kana,
                birth_date=s.birth_date,
                sex=s.sex,
                address=s.address,
            )
    return people


def duplicate_groups(people: Sequence[Person]) -> list[list[Person]]:
    """Return the groups of two or more persons whose basic-4 is literally identical."""
    groups: defaultdict[tuple[str, str, dt.date, str, str], list[Person]] = defaultdict(list)
    for p in people:
        groups[(p.name, p.name_kana, p.birth_date, p.sex, p.address)].append(p)
    return [group for group in groups.values() if len(group) > 1]


def agency_view(person: Person, rng: random.Random, noise: float) -> AgencyBasic4:
    """Return ``person``'s basic-4 as an agency's own records might write it.

    Each way of writing differently (width, script, spacing, variant kanji, address
    notation) is applied with probability ``noise``; ``0`` gives the registry's spelling,
    ``1`` every variation. Birth date and sex are never altered: only writing differs, so
    the view always normalises to the person's key.

    :raises ValueError: ``noise`` is not between 0 and 1.
    """
    if not 0.0 <= noise <= 1.0:
        raise ValueError("noise must be between 0 and 1")
    if noise == 0.0:
        return AgencyBasic4(
            person.name, person.name_kana, person.birth_date, person.sex, person.address
        )
    return AgencyBasic4(
        name=_noise.name(person.name, rng, noise),
        name_kana=_noise.kana(person.name_kana, rng, noise),
        birth_date=person.birth_date,
        sex=person.sex,
        address=_noise.address(person.address, rng, noise),
    )
