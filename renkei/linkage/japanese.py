"""Japanese-aware keys for *probabilistic* linkage: names, readings and addresses.

:mod:`hub_stream.normalize` folds only differences of writing, because the hub links on
an exact key. Bulk linkage scores evidence instead, so it may also use *coarser* keys: a
coarse key agreeing is weaker evidence than the exact one, and the model (EM) learns how
much weaker from the data. Each function here starts from the hub's normalisation and
folds further; none changes the hub's exact matcher.

- :func:`name_key`: the hub's name form, then every kanji outside JIS X 0208 (the set
  legacy systems store) degenerated through the National Tax Agency's JIS map and the
  Ministry of Justice's mappings in the MJ map (MJ縮退マップ, through ``jntajis``), and
  the hub's own variant table; Latin names (foreign residents) upper-cased with their
  words sorted (SMITH JOHN = JOHN SMITH); characters a legacy system could not store
  (〓, ?, ■ …) become ``_``, which the comparison reads as "any one character".
- :func:`other_names`: the 通称 (alias) written inside a name, e.g. ``JOHN SMITH（通称
  山田太郎）``, plus the registry's former names.
- :func:`kana_key` (exact reading) and :func:`kana_fold` (coarse: voicing dropped,
  ヂ/ジ ヅ/ズ ヲ/オ merged, long vowels — ー, オウ, オオ, エイ … — collapsed).
- :func:`address_keys`: the hub's address form, variants folded, without the prefecture
  (so a missing one agrees) or a county before its town, with ケ/ヶ/が merged between
  kanji and 大字/字 dropped; also the address without building and room, and the town
  part before the first block number.

Licences: the MJ map is CC BY-SA 2.1 JP (文字情報技術促進協議会 / IPA), shipped inside
``jntajis-python`` (BSD-3-Clause) with the National Tax Agency's JIS map (CC BY 4.0).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Final, NamedTuple

import jntajis

from hub_stream.normalize import VARIANT_KANJI, normalise_address, normalise_kana

__all__ = [
    "LEGACY_PLACEHOLDERS",
    "PREFECTURES",
    "AddressKeys",
    "address_keys",
    "fold_kanji",
    "kana_fold",
    "kana_key",
    "name_key",
    "other_names",
]

LEGACY_PLACEHOLDERS: Final = "〓?■□●◆◇〇〼"
"""Marks legacy systems wrote for a character they could not store (after NFKC)."""

PREFECTURES: Final = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県",
    "栃木県", "群馬県", "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県",
    "石川県", "福井県", "山梨県", "長野県", "岐阜県", "静岡県", "愛知県", "三重県",
    "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県", "鳥取県", "島根県",
    "岡山県", "広島県", "山口県", "徳島県", "香川県", "愛媛県", "高知県", "福岡県",
    "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)  # fmt: skip
"""The 47 prefectures, as written at the start of an address."""

# Of the MJ map's schemes, the Ministry of Justice's (告示582号, the family-register act
# notices): the published degenerations of characters a system cannot store.
_MJ_COMBO: Final = (
    jntajis.MJShrinkSchemeCombo.MOJ_FAMILY_REGISTER_ACT_RELATED_NOTICE
    | jntajis.MJShrinkSchemeCombo.MOJ_NOTICE_582
)


def _in_jis_x0208(char: str) -> bool:
    """Whether ``char`` is in JIS X 0208, the set every legacy system can store."""
    try:
        encoded = char.encode("euc_jp")
    except UnicodeEncodeError:
        return False
    return len(encoded) == 2 and encoded[0] >= 0xA1


def _degenerate(char: str) -> str:
    """A character outside JIS X 0208 as the published maps degenerate it, else itself.

    The National Tax Agency's JIS map first (JIS X 0213 → 0208), then the MJ map; only
    a single character that is itself in JIS X 0208 is taken. A character already in
    JIS X 0208 is never degenerated: the maps are for what a system cannot store, and
    applied to characters it can they join distinct ones (切→功, 書→昼, 玉→王).
    """
    if _in_jis_x0208(char):
        return char
    shrunk = jntajis.jnta_shrink_translit(char, passthrough=True)
    if len(shrunk) == 1 and shrunk != char and _in_jis_x0208(shrunk):
        return shrunk
    for candidate in jntajis.mj_shrink_candidates(char, _MJ_COMBO, 8):
        folded = unicodedata.normalize("NFKC", candidate)
        if len(folded) == 1 and _in_jis_x0208(folded):
            return folded
    return char


class _KanjiFolds(dict[int, str]):
    """A ``str.translate`` table filled on first sight of each character (cheap later)."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        folded = VARIANT_KANJI.get(char, char)
        if code >= 0x3400 and not 0xFF00 <= code <= 0xFFEF:
            # Degenerated, then the hub's table once more: it merges variants that are
            # both in JIS X 0208 (邊/辺, 澤/沢), which the maps leave alone.
            folded = _degenerate(folded)
            folded = VARIANT_KANJI.get(folded, folded)
        self[code] = folded
        return folded


_FOLDS: Final = _KanjiFolds()
_SELECTORS: Final = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_SPACE: Final = re.compile(r"\s+")
_LATIN: Final = re.compile(r"[A-Z]")
_NAME_PUNCT: Final = re.compile(r"[・,.\'’\"()（）「」\-‐=＝_%]")
_PLACEHOLDER: Final = re.compile(f"[{re.escape(LEGACY_PLACEHOLDERS)}]")
_ALIAS: Final = re.compile(r"[（(]\s*(?:通称|通稱|ALIAS)\s*[:：]?\s*([^）)]+)[）)]")


def _nfkc(text: str) -> str:
    text = text.replace("\u309b", "\u3099").replace("\u309c", "\u309a")
    return _SELECTORS.sub("", unicodedata.normalize("NFKC", text))


def fold_kanji(text: str) -> str:
    """Fold every variant kanji (異体字, 旧字体) in ``text`` to its common form."""
    return text.translate(_FOLDS)


@lru_cache(maxsize=1 << 18)  # names repeat: a common one is typed thousands of times
def name_key(name: str) -> str:
    """The comparison key of one name (no alias): see the module docstring."""
    text = _ALIAS.sub("", _nfkc(name).upper()).strip()
    if not text:
        return ""
    if _LATIN.search(text):
        words = sorted(w for w in _SPACE.split(_NAME_PUNCT.sub(" ", text)) if w)
        return "".join(words)
    text = _PLACEHOLDER.sub("_", _NAME_PUNCT.sub("", _SPACE.sub("", text)))
    return fold_kanji(text)


def other_names(name: str, former_names: str = "") -> list[str]:
    """Keys of a person's other names: the 通称 inside ``name`` and ``former_names``.

    :param former_names: earlier names, separated by ``;`` (the registry's column).
    """
    if not former_names and "(" not in name and "（" not in name:
        return []  # most people: no alias, no earlier name
    found = [name_key(alias) for alias in _ALIAS.findall(_nfkc(name).upper())]
    found += [name_key(old) for old in former_names.split(";")]
    primary = name_key(name)
    return list(dict.fromkeys(k for k in found if k and k != primary))


_KANA_PUNCT: Final = re.compile(r"[^ァ-ヺーA-Z0-9]")


@lru_cache(maxsize=1 << 18)
def kana_key(kana: str) -> str:
    """A reading as large full-width katakana, without spaces or punctuation."""
    return _KANA_PUNCT.sub("", normalise_kana(kana))


_UNVOICED: Final = str.maketrans(
    "ガギグゲゴザジズゼゾダヂヅデドバビブベボパピプペポヴヲヱヰ",
    "カキクケコサシスセソタシステトハヒフヘホハヒフヘホフオエイ",
)
_VOWEL_OF: Final = {
    **dict.fromkeys("アカサタナハマヤラワ", "A"),
    **dict.fromkeys("イキシチニヒミリ", "I"),
    **dict.fromkeys("ウクスツヌフムユル", "U"),
    **dict.fromkeys("エケセテネヘメレ", "E"),
    **dict.fromkeys("オコソトノホモヨロ", "O"),
}
# Which vowel kana lengthen the vowel before them, as readings are spelled: オオタ,
# オウタ, オータ and オタ are one surname to a clerk typing what they hear.
_LENGTHENS: Final = {"A": "ア", "I": "イ", "U": "ウ", "E": "イエ", "O": "ウオ"}


@lru_cache(maxsize=1 << 18)
def kana_fold(kana: str) -> str:
    """A coarse reading: voicing dropped and long vowels collapsed (オオタ = オータ = オタ)."""
    text = kana_key(kana).translate(_UNVOICED)
    out: list[str] = []
    vowel = ""
    for char in text:
        if char == "ー" or (vowel and char in _LENGTHENS[vowel]):
            continue
        out.append(char)
        vowel = _VOWEL_OF.get(char, "")
    return "".join(out)


class AddressKeys(NamedTuple):
    """An address at three grains: all of it, without building/room, and the town."""

    full: str
    base: str
    town: str


_PREFECTURE: Final = re.compile("^(?:" + "|".join(PREFECTURES) + ")")
_KE: Final = re.compile(r"(?<=[\u3400-\u9fff])[ヶケがガヵカ](?=[\u3400-\u9fff])")
_AZA: Final = re.compile(r"大字|字")
# A county (郡) before its town or village is often left out; 郡山市 has none before it.
_COUNTY: Final = re.compile(r"^[^\d郡市区]{1,4}郡(?=[^\d]+?[町村])")
_BASE: Final = re.compile(r"^(\D*\d+(?:-\d+)*)")
_TOWN: Final = re.compile(r"^(\D*?)(?:\d|$)")


@lru_cache(maxsize=1 << 18)  # a household shares its address
def address_keys(address: str) -> AddressKeys:
    """The comparison keys of an address (module docstring); empty for no address."""
    # Variants folded first: 広嶋県 and 廣島県 are 広島県, which is then dropped.
    text = _PREFECTURE.sub("", fold_kanji(_SPACE.sub("", _nfkc(address))))
    text = _AZA.sub("", _KE.sub("ケ", text))
    text = _COUNTY.sub("", text)
    full = fold_kanji(normalise_address(text))
    base = m[1] if (m := _BASE.match(full)) else full
    town = m[1] if (m := _TOWN.match(full)) else full
    return AddressKeys(full, base, town)
