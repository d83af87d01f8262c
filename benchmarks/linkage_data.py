"""Synthetic data for the linkage benchmark: a registry and an agency's file, with the truth.

    python -m benchmarks.linkage_data DIR [--people 1000000] [--records 200000] [--seed 7]

writes ``DIR/registry.csv``, ``DIR/records.csv`` (the formats of ``renkei link match``) and
``DIR/truth.csv`` (``record_ref,resident_code``, empty for a person not in the registry).

The registry is built household by household, so it has what makes linkage hard in
Japan: surnames and given names drawn with Zipf-like weights from the population
generator's pools (:mod:`producers.population`), couples and children at one address,
twins (same birth date, surname and address), married women with their maiden name in
``former_names``, households that moved (``former_addresses``), foreign residents
(registered Latin name, sometimes a 通称), and people who share name, sex and birth date
by chance or by construction.

Each agency record is a registry person (a few twice) or someone not in the registry —
some of those share a registry person's name, sex and birth date — written with the
noise of real files: notation (:mod:`producers._noise`: widths, hiragana, variant kanji,
block notations), date and sex formats (ISO, ``1970/3/2``, ``19700302``, eras), long-vowel
spellings of readings, typos, kana-only names, legacy ``〓``, missing items, old
addresses, maiden names, no prefecture, no building, a family member's My Number and
malformed numbers. The rates are the ``_P_*`` constants below.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from producers import _noise
from producers._names import MUNICIPALITIES
from producers.population import _pools
from renkei import mynumber
from renkei.linkage.dates import ERAS

__all__ = ["Person", "generate", "main", "write"]

TODAY: Final = dt.date(2025, 4, 1)
_P_NOT_IN_REGISTRY: Final = 0.03
_P_CLONE: Final = 0.002  # a registry person whose name, sex and birth date another shares
_P_FOREIGN: Final = 0.02
_P_MOVED_HOUSEHOLD: Final = 0.08
_P_TWIN: Final = 0.02
_P_NOTATION: Final = 0.3
_P_NUMBER: Final = 0.6
_SIZES: Final = (1, 2, 3, 4, 5)
_SIZE_WEIGHTS: Final = (35, 28, 17, 14, 6)
_FOREIGN_FAMILY: Final = (
    ("SMITH", "スミス"), ("KIM", "キム"), ("LEE", "イ"), ("NGUYEN", "グエン"), ("TRAN", "チャン"),
    ("WANG", "ワン"), ("ZHANG", "チャン"), ("GARCIA", "ガルシア"), ("SILVA", "シルバ"),
    ("SANTOS", "サントス"), ("PARK", "パク"), ("CHEN", "チェン"), ("REYES", "レイエス"),
)  # fmt: skip
_FOREIGN_GIVEN: Final = (
    ("JOHN", "ジョン"), ("MARY", "メアリー"), ("MINH", "ミン"), ("ANH", "アイン"),
    ("WEI", "ウェイ"), ("MARIA", "マリア"), ("JOSE", "ホセ"), ("LING", "リン"),
    ("JIHO", "ジホ"), ("ANA", "アナ"),
)  # fmt: skip
_LONG_VOWELS: Final = (("オウ", "オー"), ("ユウ", "ユー"), ("オオ", "オー"), ("エイ", "エー"),
                       ("ョウ", "ョー"), ("ュウ", "ュー"), ("ウ", "ー"))  # fmt: skip
_KANA: Final = (
    "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン"
)


@dataclass(slots=True)
class Person:
    """One registry person, with what the generator knows beyond the registry's columns."""

    code: str
    number: str
    family: tuple[str, str]
    given: tuple[str, str]
    birth: dt.date
    sex: int
    address: str
    household: int
    maiden: tuple[str, str] | None = None
    former_address: str = ""
    alias: tuple[str, str] | None = None
    foreign: bool = False
    members: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The name as the registry writes it."""
        if self.foreign:
            alias = f"（通称 {self.alias[0]}）" if self.alias else ""
            return f"{self.family[0]} {self.given[0]}{alias}"
        return f"{self.family[0]}\u3000{self.given[0]}"

    @property
    def kana(self) -> str:
        """The reading as the registry writes it."""
        return f"{self.family[1]}\u3000{self.given[1]}"


class _Draw:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.pools = _pools()
        self.numbers: set[str] = set()

    def family(self) -> tuple[str, str]:
        p = self.pools
        return self.rng.choices(p.family, cum_weights=p.family_cum_weights)[0]

    def given(self, sex: int) -> tuple[str, str]:
        return self.rng.choice(self.pools.male if sex == 1 else self.pools.female)

    def age(self, low: int, high: int) -> int:
        p = self.pools
        while True:
            age: int = self.rng.choices(p.ages, cum_weights=p.age_cum_weights)[0]
            if low <= age <= high:
                return age

    def birth(self, age: int) -> dt.date:
        return TODAY - dt.timedelta(days=age * 365 + self.rng.randrange(365))

    def number(self) -> str:
        while (n := mynumber.generate(self.rng)) in self.numbers:
            pass
        self.numbers.add(n)
        return n

    def address(self) -> str:
        rng, p = self.rng, self.pools
        prefecture, city = rng.choice(MUNICIPALITIES)
        town = rng.choice(p.towns)
        if rng.random() < 0.25:
            return f"{prefecture}{city}{town}{rng.randint(1, 2500)}番地{rng.randint(1, 30)}"
        chome = _noise.kanji_numeral(rng.randint(1, 9))
        text = f"{prefecture}{city}{town}{chome}丁目{rng.randint(1, 30)}番{rng.randint(1, 25)}号"
        if rng.random() < 0.2:
            text += f" {rng.choice(p.buildings)}{rng.randint(1, 12)}{rng.randint(1, 12):02d}号室"
        return text


def _household(draw: _Draw, persons: list[Person], hid: int, size: int) -> None:
    rng = draw.rng
    address = draw.address()
    former = draw.address() if rng.random() < _P_MOVED_HOUSEHOLD else ""
    foreign = rng.random() < _P_FOREIGN
    family = rng.choice(_FOREIGN_FAMILY) if foreign else draw.family()
    members: list[int] = []

    def add(sex: int, birth: dt.date, **extra: object) -> Person:
        given = rng.choice(_FOREIGN_GIVEN) if foreign else draw.given(sex)
        code = f"R{len(persons):08d}"
        person = Person(code, draw.number(), family, given, birth, sex, address, hid,
                        former_address=former, foreign=foreign, members=members, **extra)  # type: ignore[arg-type]  # fmt: skip
        if foreign and rng.random() < 0.4:
            person.alias = (f"{draw.family()[0]}{draw.given(sex)[0]}", "")
        persons.append(person)
        members.append(len(persons) - 1)
        return person

    head_sex = rng.choice((1, 2))
    head_age = draw.age(20, 99)
    add(head_sex, draw.birth(head_age))
    if size >= 2 and rng.random() < 0.8:
        age = max(18, min(99, head_age + rng.randint(-5, 5)))
        # Most couples take the husband's surname; a few the wife's; some kept records.
        takes = 0.95 if head_sex == 1 else 0.05
        maiden = draw.family() if not foreign and rng.random() < 0.7 * takes else None
        add(3 - head_sex, draw.birth(age), maiden=maiden)
    while len(members) < size:
        born = draw.birth(draw.age(0, max(0, head_age - 20)))
        add(rng.choice((1, 2)), born)
        if len(members) < size and rng.random() < _P_TWIN:
            add(rng.choice((1, 2)), born)  # a twin: same birth date, surname and address


def generate_registry(n: int, seed: int) -> list[Person]:
    """``n`` registry persons (:class:`Person`), drawn from ``seed``."""
    draw = _Draw(random.Random(seed))
    persons: list[Person] = []
    hid = 0
    while len(persons) < n:
        size = min(n - len(persons), draw.rng.choices(_SIZES, weights=_SIZE_WEIGHTS)[0])
        _household(draw, persons, hid, size)
        hid += 1
    for i in draw.rng.sample(range(n), int(n * _P_CLONE)):
        twin = persons[draw.rng.randrange(n)]
        if not twin.foreign and not persons[i].foreign:
            persons[i].given, persons[i].family = twin.given, twin.family
            persons[i].birth, persons[i].sex = twin.birth, twin.sex
    return persons


def _era_text(born: dt.date, rng: random.Random) -> str:
    for era, (first, _last) in reversed(ERAS.items()):
        if born >= dt.date(first, 1, 1) and not (era == "令和" and born < dt.date(2019, 5, 1)):
            year = born.year - first + 1
            if era == "平成" and born < dt.date(1989, 1, 8):
                continue
            if era == "昭和" and born < dt.date(1926, 12, 25):
                continue
            if rng.random() < 0.5:
                y = "元" if year == 1 else str(year)
                return f"{era}{y}年{born.month}月{born.day}日"
            return f"{'MTSHR'[list(ERAS).index(era)]}{year}.{born.month}.{born.day}"
    return born.isoformat()


def _date_text(born: dt.date, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.4:
        return born.isoformat()
    if r < 0.6:
        return f"{born.year}/{born.month}/{born.day}"
    if r < 0.75:
        return born.strftime("%Y%m%d")
    return _era_text(born, rng)


def _typo_date(born: dt.date, rng: random.Random) -> dt.date:
    text = born.strftime("%Y%m%d")
    for _ in range(20):
        i = rng.randrange(2, 8)
        candidate = text[:i] + str(rng.randrange(10)) + text[i + 1 :]
        try:
            typo = dt.datetime.strptime(candidate, "%Y%m%d").date()
        except ValueError:
            continue
        if typo != born:
            return typo
    return born


def _long_vowel(kana: str, rng: random.Random) -> str:
    for written, other in rng.sample(_LONG_VOWELS, len(_LONG_VOWELS)):
        if written in kana:
            return kana.replace(written, other, 1)
    return kana


def _typo(text: str, alphabet: str, rng: random.Random) -> str:
    chars = [i for i, c in enumerate(text) if not c.isspace()]
    if not chars:
        return text
    i = rng.choice(chars)
    return text[:i] + rng.choice(alphabet) + text[i + 1 :]


_SEX: Final = (("1", "2"), ("男", "女"), ("M", "F"))


def _record(p: Person, persons: Sequence[Person], draw: _Draw, ref: str) -> dict[str, str]:
    rng, q = draw.rng, _P_NOTATION
    family, given = p.family, p.given
    if p.maiden and rng.random() < 0.3:
        family = p.maiden  # the agency still has the name before marriage
    if p.foreign:
        if p.alias and rng.random() < 0.4:
            name, kana = p.alias[0], ""
        else:
            words = [family[0], given[0]]
            name = " ".join(words[::-1] if rng.random() < 0.5 else words)
            name = name.title() if rng.random() < 0.2 else name
            kana = f"{family[1]} {given[1]}"
    else:
        name = _noise.name(f"{family[0]} {given[0]}", rng, q)
        kana = _noise.kana(f"{family[1]} {given[1]}", rng, q) if rng.random() > 0.03 else ""
        if rng.random() < 0.05:
            kana = _long_vowel(kana, rng)
        if rng.random() < 0.01:
            kana = _typo(kana, _KANA, rng)
        if rng.random() < 0.01:
            name = _typo(name, "".join(g[0][0] for g in draw.pools.male[:40]), rng)
        if rng.random() < 0.005:
            name = _typo(name, "〓", rng)
        if rng.random() < 0.01:
            name = f"{family[1]} {given[1]}"  # a legacy file that kept no kanji
    born = p.birth
    if rng.random() < 0.01:
        born = _typo_date(born, rng)
    elif rng.random() < 0.003 and born.day <= 12:
        born = dt.date(born.year, born.day, born.month)
    address = p.address
    if p.former_address and rng.random() < 0.5:
        address = p.former_address
    elif rng.random() < 0.03:
        address = draw.address()  # moved, and the registry has no trace of the old one
    if rng.random() < 0.1:
        address = address.split(" ")[0]  # no building or room
    address = _noise.address(address, rng, q)
    if rng.random() < 0.1:
        for prefecture, _city in MUNICIPALITIES:
            address = address.removeprefix(prefecture)
    number = p.number if rng.random() < _P_NUMBER else ""
    if number and len(p.members) > 1 and rng.random() < 0.005:
        number = persons[rng.choice([m for m in p.members if persons[m] is not p])].number
    elif number and rng.random() < 0.005:
        number = number[:11] + str((int(number[11]) + 1) % 10)  # a wrong check digit
    sex = rng.choices(_SEX, weights=(60, 25, 15))[0][p.sex - 1]
    if rng.random() < 0.002:
        sex = rng.choice(_SEX)[2 - p.sex]
    row = {
        "record_ref": ref,
        "my_number": number,
        "name": name,
        "name_kana": kana,
        "birth_date": _date_text(born, rng),
        "sex": sex,
        "address": address,
    }
    for column, rate in (("name", 0.005), ("birth_date", 0.005), ("sex", 0.02), ("address", 0.02)):
        if rng.random() < rate:
            row[column] = ""
    return row


def _outsider(persons: Sequence[Person], draw: _Draw, i: int) -> Person:
    """Someone not in the registry: a new person, or one who shares a registry name."""
    scratch: list[Person] = []
    _household(draw, scratch, -1, 1)
    person = scratch[0]
    person.code, person.former_address = "", ""
    if draw.rng.random() < 0.05:
        twin = persons[draw.rng.randrange(len(persons))]
        person.family, person.given, person.birth, person.sex = (
            twin.family, twin.given, twin.birth, twin.sex)  # fmt: skip
    return person


def generate(
    people: int, records: int, seed: int
) -> tuple[list[Person], list[dict[str, str]], list[str]]:
    """The registry, the agency's rows and each row's true resident code ('' if none)."""
    persons = generate_registry(people, seed)
    draw = _Draw(random.Random(seed + 1))
    draw.numbers = {p.number for p in persons}
    rows, truth = [], []
    for i in range(records):
        ref = f"A{i:09d}"
        if draw.rng.random() < _P_NOT_IN_REGISTRY:
            person = _outsider(persons, draw, i)
        else:
            person = persons[draw.rng.randrange(people)]
        rows.append(_record(person, persons, draw, ref))
        truth.append(person.code)
    return persons, rows, truth


def write(directory: Path, people: int, records: int, seed: int) -> None:
    """Generate and write ``registry.csv``, ``records.csv`` and ``truth.csv`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    persons, rows, truth = generate(people, records, seed)
    with (directory / "registry.csv").open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(("resident_code", "my_number", "name", "name_kana", "birth_date", "sex",
                      "address", "former_names", "former_addresses"))  # fmt: skip
        for p in persons:
            former = f"{p.maiden[0]}\u3000{p.given[0]}" if p.maiden else ""
            out.writerow((p.code, p.number, p.name, p.kana, p.birth.isoformat(), p.sex,
                          p.address, former, p.former_address))  # fmt: skip
    with (directory / "records.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["record_ref"])
        writer.writeheader()
        writer.writerows(rows)
    with (directory / "truth.csv").open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(("record_ref", "resident_code"))
        out.writerows((row["record_ref"], code) for row, code in zip(rows, truth, strict=True))


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments of the module docstring and write the files."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.linkage_data")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    write(args.directory, args.people, args.records, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
