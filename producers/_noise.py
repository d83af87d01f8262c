"""How agencies write the same basic-4 differently: the variations of :func:`agency_view`.

Each function takes the registry's spelling and returns another spelling of the same
fact, choosing each variation with probability ``p``. Only writing changes, never content.

.. py:currentmodule:: producers.population
"""

from __future__ import annotations

import random
import re
import unicodedata
from typing import Final

from producers._names import VARIANT_FORMS

__all__ = ["address", "kana", "kanji_numeral", "name"]

_STANDARD_OF: Final = {v: s for s, forms in VARIANT_FORMS.items() for v in forms}

_SMALL_TO_LARGE: Final = str.maketrans("ァィゥェォッャュョヮ", "アイウエオツヤユヨワ")
_TO_HIRAGANA: Final = str.maketrans({chr(c): chr(c - 0x60) for c in range(0x30A1, 0x30F7)})
_FULL_WIDTH_DIGITS: Final = str.maketrans("0123456789", "０１２３４５６７８９")
_DIGITS: Final = "〇一二三四五六七八九"
_DASHES: Final = ("-", "－", "‐", "−", "ー", "―")
_SPACES: Final = (" ", "\u3000", "", "  ")


def _half_width_table() -> dict[int, str]:
    """Full-width katakana → half-width, voiced kana as base + ﾞ (ｶﾞ)."""
    table: dict[int, str] = {}
    for code in range(0xFF66, 0xFFA0):
        half = chr(code)
        full = unicodedata.normalize("NFKC", half)
        if len(full) == 1:
            table[ord(full)] = half
    marks = {"\u3099": "ﾞ", "\u309a": "ﾟ"}
    for code in range(0x30A1, 0x30FB):
        decomposed = unicodedata.normalize("NFD", chr(code))
        if len(decomposed) == 2 and ord(decomposed[0]) in table and decomposed[1] in marks:
            table[code] = table[ord(decomposed[0])] + marks[decomposed[1]]
    return table


_TO_HALF_WIDTH: Final = _half_width_table()
_DETACHED: Final = {
    chr(code): unicodedata.normalize("NFD", chr(code))[0]
    + {"\u3099": "゛", "\u309a": "゜"}[unicodedata.normalize("NFD", chr(code))[1]]
    for code in range(0x30A1, 0x30FB)
    if len(unicodedata.normalize("NFD", chr(code))) == 2
}

# The 丁目 numeral is read in standard notation only, so a town ending in a numeral
# (前弥六) keeps it.
_JUKYO: Final = re.compile(
    r"^(.*?)((?:[二三四五六七八九]?十)?[一二三四五六七八九]|[二三四五六七八九]?十)"
    r"丁目(\d+)番(\d+)号(.*)$"
)
_CHIBAN: Final = re.compile(r"^(.*?)(\d+)番地(\d+)(.*)$")


def kanji_numeral(value: int) -> str:
    """Write 1..99 as 住民票 do: 一, 十, 十二, 二十, 二十三."""
    if not 0 < value < 100:
        raise ValueError("only 1..99 are written in kanji here")
    tens, ones = divmod(value, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _DIGITS[tens] + "十")
    return head + (_DIGITS[ones] if ones else "")


def _variant_kanji(text: str, rng: random.Random, p: float) -> str:
    out = []
    for char in text:
        if char in VARIANT_FORMS and rng.random() < p:
            out.append(rng.choice(VARIANT_FORMS[char]))
        elif char in _STANDARD_OF and rng.random() < p:
            out.append(_STANDARD_OF[char])
        else:
            out.append(char)
    return "".join(out)


def _space(text: str, rng: random.Random, p: float) -> str:
    return text.replace(" ", rng.choice(_SPACES)) if rng.random() < p else text


def name(text: str, rng: random.Random, p: float) -> str:
    """A kanji name with another separator and variant kanji."""
    return _space(_variant_kanji(text, rng, p), rng, p)


def kana(text: str, rng: random.Random, p: float) -> str:
    """A reading in hiragana or half-width katakana, large kana, detached voiced marks."""
    if rng.random() < p:
        text = text.translate(_SMALL_TO_LARGE)
    if rng.random() < p:
        text = "".join(_DETACHED.get(c, c) for c in text)
    if rng.random() < p:
        text = text.translate(_TO_HIRAGANA if rng.random() < 0.5 else _TO_HALF_WIDTH)
    return _space(text, rng, p)


def _number(value: str, rng: random.Random, p: float) -> str:
    return value.translate(_FULL_WIDTH_DIGITS) if rng.random() < p else value


def address(text: str, rng: random.Random, p: float) -> str:
    """An address with another block notation, widths, dashes, spaces and variants."""
    text = _variant_kanji(text, rng, p)
    if rng.random() < p:
        text = text.translate(str.maketrans("ケヶ", "ヶケ"))
    digits = rng.random() < p
    if m := _JUKYO.match(text):
        head, chome, ban, gou, tail = m.groups()
        if rng.random() < p:
            chome = str(_kanji_value(chome))
        if digits:
            chome, ban, gou = (_number(x, rng, p) for x in (chome, ban, gou))
        if rng.random() < p:
            dash = rng.choice(_DASHES)
            # 2-3-4, or 二丁目3-4: both are everyday notations of the same block.
            prefix = f"{chome}{dash}" if chome.isdigit() else f"{chome}丁目"
            text = f"{head}{prefix}{ban}{dash}{gou}{tail}"
        else:
            text = f"{head}{chome}丁目{ban}番{gou}号{tail}"
    elif m := _CHIBAN.match(text):
        head, lot, sub, tail = m.groups()
        if digits:
            lot, sub = _number(lot, rng, p), _number(sub, rng, p)
        sep = rng.choice(("番地", "-", "－", "番地の", "番")) if rng.random() < p else "番地"
        text = f"{head}{lot}{sep}{sub}{tail}"
    if rng.random() < p:
        text = _space_after_municipality(text, rng)
    return text


def _kanji_value(numeral: str) -> int:
    if "十" not in numeral:
        return _DIGITS.index(numeral)
    tens, _, ones = numeral.partition("十")
    return (_DIGITS.index(tens) if tens else 1) * 10 + (_DIGITS.index(ones) if ones else 0)


def _space_after_municipality(text: str, rng: random.Random) -> str:
    # Forms split the address into prefecture / municipality / rest; some systems keep
    # the split as spaces.
    for marker in ("都", "道", "府", "県"):
        index = text.find(marker)
        if 0 < index < 4:
            return text[: index + 1] + rng.choice(_SPACES[:2]) + text[index + 1 :]
    return text
