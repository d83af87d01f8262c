"""Birth dates and sex as agencies write them.

Dates: ISO (``1970-03-02``), slashes or dots (``1970/3/2``), compact (``19700302``),
``1970年3月2日``, the Japanese eras in full or abbreviated (``昭和45年3月2日``, ``S45.3.2``,
``平成元年1月8日``, ``昭和四十五年三月二日``), and the seven-digit era code of resident
registry systems (``3450302``: 1 明治, 2 大正, 3 昭和, 4 平成, 5 令和). Width is folded
first, so ``Ｓ４５．３．２`` reads too. An era year is accepted up to that era's last year
(平成31年 is written for early 2019), not beyond.

Sex: ``1``/``2``, ``男``/``女`` (``男性``/``女性``), ``M``/``F``, ``MALE``/``FEMALE``. Anything
else — ``0``, ``9``, ``不明`` or empty — is *missing*, not an error: the matcher then
scores without it.

Both parsers return ``None`` for missing or unreadable input rather than raising: one bad
cell must not stop a run over millions of rows, and the record is still scored on its
other items (:mod:`renkei.linkage.prepare` counts what it could not read).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Final

__all__ = ["ERAS", "parse_birth_date", "parse_sex"]

ERAS: Final = {
    "明治": (1868, 45),
    "大正": (1912, 15),
    "昭和": (1926, 64),
    "平成": (1989, 31),
    "令和": (2019, 99),
}
"""Era → (Gregorian year of its first year, last era year accepted)."""

_ERA_ALIASES: Final = {
    "M": "明治",
    "T": "大正",
    "S": "昭和",
    "H": "平成",
    "R": "令和",
    "明": "明治",
    "大": "大正",
    "昭": "昭和",
    "平": "平成",
    "令": "令和",
    **{name: name for name in ERAS},
    # The seven-digit code of resident registry systems.
    **{str(i): name for i, name in enumerate(ERAS, start=1)},
}

_KANJI_DIGIT: Final = {c: i for i, c in enumerate("〇一二三四五六七八九")}
_KANJI_NUMBER: Final = re.compile("[〇一二三四五六七八九十]+")
_WESTERN: Final = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_ISO: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_COMPACT: Final = re.compile(r"(\d{4})(\d{2})(\d{2})")
_ERA: Final = re.compile(
    r"(明治|大正|昭和|平成|令和|[MTSHR明大昭平令])\.?\s*(\d{1,2})\s*[-/.年]\s*"
    r"(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
)
_ERA_CODE: Final = re.compile(r"([1-5])(\d{2})(\d{2})(\d{2})")
_TRAILER: Final = re.compile(r"(?:生まれ|生)$")


def _kanji_to_digits(match: re.Match[str]) -> str:
    """二〇〇一 (positional) or 四十五 (with 十) as Arabic digits."""
    text = match[0]
    if "十" not in text:
        return "".join(str(_KANJI_DIGIT[c]) for c in text)
    tens, _, ones = text.partition("十")
    value = (_KANJI_DIGIT[tens[-1]] if tens else 1) * 10 + (_KANJI_DIGIT[ones] if ones else 0)
    return str(value)


def _date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def parse_birth_date(text: str | None) -> dt.date | None:
    """Read a birth date in any form of the module docstring; ``None`` if unreadable."""
    if text is None:
        return None
    if len(text) == 10 and text[4] == text[7] == "-" and (m := _ISO.fullmatch(text)):
        return _date(int(m[1]), int(m[2]), int(m[3]))  # the registry's own form: no folding
    value = unicodedata.normalize("NFKC", text).strip().upper()
    value = _TRAILER.sub("", value.replace("元年", "1年")).strip()
    value = _KANJI_NUMBER.sub(_kanji_to_digits, value)
    if not value:
        return None
    if m := _ERA.fullmatch(value):
        era, year, month, day = m.groups()
        return _era_date(_ERA_ALIASES[era], int(year), int(month), int(day))
    if m := _WESTERN.fullmatch(value) or _COMPACT.fullmatch(value):
        return _date(int(m[1]), int(m[2]), int(m[3]))
    if m := _ERA_CODE.fullmatch(value):
        return _era_date(_ERA_ALIASES[m[1]], int(m[2]), int(m[3]), int(m[4]))
    return None


def _era_date(era: str, year: int, month: int, day: int) -> dt.date | None:
    first, last = ERAS[era]
    if not 1 <= year <= last:
        return None
    return _date(first + year - 1, month, day)


_SEXES: Final = {
    **dict.fromkeys(("1", "男", "男性", "M", "MALE", "01"), 1),
    **dict.fromkeys(("2", "女", "女性", "F", "FEMALE", "02"), 2),
}


def parse_sex(text: str | None) -> int | None:
    """``1`` (male), ``2`` (female) or ``None`` (missing or not recorded)."""
    if text is None:
        return None
    return _SEXES.get(unicodedata.normalize("NFKC", text).strip().upper())
