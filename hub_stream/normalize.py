"""Normalisation of the basic-4 (基本4情報) for exact matching.

Agencies write the same name and address in many ways: full- or half-width characters,
hiragana or katakana readings, an ideographic space or none, 髙 or 高, 二丁目3番4号 or
2-3-4. Matching is *exact* on the normalised form, never fuzzy: normalisation only removes
differences of writing, never differences of content, so a normalised match is as safe as
a literal one. What is folded, per field:

- every field: Unicode NFKC (width), all white space removed, variation selectors removed,
  ASCII letters upper-cased;
- name and address: variant kanji (異体字) folded to the standard form (:data:`VARIANT_KANJI`);
- name kana: hiragana → katakana, half-width → full-width (NFKC), detached voiced marks
  (゛ ゜) joined to their kana, small kana → large (キョウ = キヨウ, as many legacy systems
  cannot store small kana);
- address: kanji numerals (standard notation: 三, 十二, 百五) before 丁目/番地/番/号 →
  digits; 丁目/番地/番/号/号室/の/ー after a number, every dash variant, and white space
  between two numbers → '-'; a dash not between two numbers dropped (so 3号 コーポ = 3 コーポ
  and 101号室 = 101); ヶ/ヵ → ケ/カ. The prefecture is kept: an address without it does not
  match one with it.

Normalisation only has to be *consistent* (both sides go through it), not pretty: 一番町
becomes 1町 on every side alike.

Not folded (deliberately, each is a difference a person must look at): long-vowel marks
(オオタ ≠ オータ), ヂ/ジ and ヅ/ズ, 々 against the repeated kanji, a building or room present
on one side only, a missing prefecture, old addresses, UNSPECIFIED sex against a recorded
one.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, NamedTuple, Protocol

__all__ = [
    "SEXES",
    "VARIANT_KANJI",
    "Basic4",
    "Basic4Like",
    "MatchKey",
    "normalise_address",
    "normalise_basic4",
    "normalise_kana",
    "normalise_name",
]

SEXES: Final = frozenset({"MALE", "FEMALE", "UNSPECIFIED"})
"""The values ``sex`` may take, as in the Avro contract."""


class Basic4Like(Protocol):
    """Anything that carries the basic-4: the Avro models, :class:`Basic4`, a registry row.

    Read-only properties so that frozen models satisfy the protocol.
    """

    @property
    def name(self) -> str: ...
    @property
    def name_kana(self) -> str: ...
    @property
    def birth_date(self) -> dt.date: ...
    @property
    def sex(self) -> str: ...
    @property
    def address(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Basic4:
    """A plain basic-4 record (name, reading, birth date, sex, address)."""

    name: str
    name_kana: str
    birth_date: dt.date
    sex: str
    address: str


# A starting point, not a complete table: the common 旧字体/異体字 of surnames, given names
# and place names, folded to the form in the 常用漢字表 (or the usual 人名用 form where
# the 常用 table has none). Extend it when linkage reports show a new pair; every entry
# must be a pure writing variant. 斉 is folded with 斎/齋/齊 because 斉藤/斎藤 records are
# routinely keyed either way; the other three basic-4 fields still have to agree exactly.
# 籠 is itself 常用 (since 2010), so its 俗字 篭 folds to it, not the reverse.
VARIANT_KANJI: Final[Mapping[str, str]] = MappingProxyType(
    {
        "髙": "高",
        "﨑": "崎",
        "嵜": "崎",
        "齋": "斎",
        "齊": "斎",
        "斉": "斎",
        "邊": "辺",
        "邉": "辺",
        "澤": "沢",
        "濱": "浜",
        "濵": "浜",
        "國": "国",
        "廣": "広",
        "櫻": "桜",
        "嶋": "島",
        "嶌": "島",
        "冨": "富",
        "眞": "真",
        "惠": "恵",
        "德": "徳",
        "瀨": "瀬",
        "篭": "籠",
        "藏": "蔵",
        "實": "実",
        "龍": "竜",
        "舘": "館",
        "峯": "峰",
        "桒": "桑",
        "寳": "宝",
        "槇": "槙",
        "渕": "淵",
        "萬": "万",
        "條": "条",
        "圓": "円",
        "澁": "渋",
        "壽": "寿",
        "榮": "栄",
        "與": "与",
        "豐": "豊",
        "關": "関",
        "會": "会",
        "靜": "静",
        "淺": "浅",
        "戶": "戸",
        "曾": "曽",
        "當": "当",
        "兒": "児",
    }
)

_VARIANTS: Final = str.maketrans(dict(VARIANT_KANJI))

# Detached voiced/semi-voiced marks: NFKC turns them into "space + combining mark", which
# would then be lost with the spaces; make them combining first so NFKC composes カ゛ → ガ.
_DETACHED_MARKS: Final = str.maketrans({"\u309b": "\u3099", "\u309c": "\u309a"})

# Variation selectors (IVS/SVS) pick a glyph, not a character: 葛󠄀 and 葛 are one name.
_SELECTORS: Final = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_SPACE: Final = re.compile(r"\s+")

_HIRAGANA_TO_KATAKANA: Final = str.maketrans(
    {chr(c): chr(c + 0x60) for c in (*range(0x3041, 0x3097), 0x309D, 0x309E)}
)
_SMALL_TO_LARGE: Final = str.maketrans("ァィゥェォッャュョヮヵヶ", "アイウエオツヤユヨワカケ")

_KANJI_DIGITS: Final = {c: i for i, c in enumerate("一二三四五六七八九", start=1)}
_KANJI_UNITS: Final = {"十": 10, "百": 100, "千": 1000}
# A kanji numeral in the standard (multiplicative) notation of 住民票: 三, 十二, 二十,
# 百五. Only a well-formed numeral is read, so the town in 前弥六二丁目 keeps its 六.
_M: Final = "[二三四五六七八九]?"
_KANJI_NUMBER_MARKER: Final = re.compile(
    rf"(?=[一二三四五六七八九十百千])((?:{_M}千)?(?:{_M}百)?(?:{_M}十)?[一二三四五六七八九]?)"
    r"(丁目|番地|番|号)"
)
# 丁目/番地/番/号/号室, the の of 3番の2, and ー typed for a dash, after a number: one
# '-'. (ー elsewhere is a long vowel, as in コーポ, and stays.)
_NUMBER_MARKER: Final = re.compile(r"(?<=\d)(?:丁目|番地|番|号室|号|の|ー)+")
_SPACE_BETWEEN_NUMBERS: Final = re.compile(r"(?<=\d)\s+(?=\d)")
_LONE_DASH: Final = re.compile(r"-(?!\d)|(?<!\d)-")
_DASHES: Final = re.compile(r"[-‐‑‒–—―−﹣－]+")
_ADDRESS_KANA: Final = str.maketrans("ヶヵ", "ケカ")


def _base(text: str) -> str:
    """NFKC, no white space, no variation selectors, ASCII letters upper-cased."""
    return _bare(_width(text))


def _width(text: str) -> str:
    return unicodedata.normalize("NFKC", text.translate(_DETACHED_MARKS))


def _bare(text: str) -> str:
    return _SELECTORS.sub("", _SPACE.sub("", text)).upper()


def normalise_name(name: str) -> str:
    """Normalise a name written in kanji (or kana, or Latin letters for some foreigners)."""
    return _base(name).translate(_VARIANTS)


def normalise_kana(kana: str) -> str:
    """Normalise a name reading to large full-width katakana without spaces."""
    return _base(kana).translate(_HIRAGANA_TO_KATAKANA).translate(_SMALL_TO_LARGE)


def _kanji_to_int(numeral: str) -> int:
    """Read 二十三, 百五 or 十 as an integer."""
    total = 0
    pending = 0
    for char in numeral:
        unit = _KANJI_UNITS.get(char)
        if unit is None:
            pending = _KANJI_DIGITS[char]
        else:
            total += (pending or 1) * unit
            pending = 0
    return total + pending


def normalise_address(address: str) -> str:
    """Normalise an address so that 二丁目3番4号, 2丁目3-4 and ２－３－４ agree."""
    # A space between two numbers separates them (1-2-3 101号室); elsewhere it is layout.
    text = _bare(_SPACE_BETWEEN_NUMBERS.sub("-", _width(address)))
    text = text.translate(_VARIANTS).translate(_ADDRESS_KANA)
    text = _KANJI_NUMBER_MARKER.sub(lambda m: f"{_kanji_to_int(m[1])}{m[2]}", text)
    text = _DASHES.sub("-", _NUMBER_MARKER.sub("-", text))
    # Only a dash between two numbers carries meaning: 3号 コーポ and 3 コーポ agree.
    return _LONE_DASH.sub("", text)


class MatchKey(NamedTuple):
    """The normalised basic-4: equal keys mean the same written person."""

    name: str
    name_kana: str
    birth_date: str
    sex: str
    address: str

    def canonical(self) -> bytes:
        """The key as one byte string (unit separator between fields), for hashing."""
        return "\x1f".join(self).encode()


def normalise_basic4(b: Basic4Like) -> MatchKey:
    """Return the normalised match key of a basic-4 record.

    :raises ValueError: ``sex`` is not one of :data:`SEXES`, or ``birth_date`` is not a
        date.
    """
    if b.sex not in SEXES:
        raise ValueError(f"sex must be one of {sorted(SEXES)}, got {b.sex!r}")
    born = b.birth_date
    if not isinstance(born, dt.date):
        raise ValueError(f"birth_date must be a date, got {type(born).__name__}")
    # A datetime would otherwise carry its time of day into the key.
    birth = f"{born.year:04d}-{born.month:02d}-{born.day:02d}"
    return MatchKey(
        name=normalise_name(b.name),
        name_kana=normalise_kana(b.name_kana),
        birth_date=birth,
        sex=str(b.sex),  # a StrEnum member's str() is its value
        address=normalise_address(b.address),
    )
