"""Turn registry and agency rows into the comparison columns the model reads.

One output row per input row, keyed ``uid`` (the resident code or the record ref):

| column | from | what |
|---|---|---|
| ``name_n`` | name | :func:`~renkei.linkage.japanese.name_key`; null when absent or kana only |
| ``names`` | name, former_names | every name key of the person (通称, earlier names) |
| ``kana_n`` / ``kana_f`` | name_kana | exact reading / coarse reading |
| ``name_given`` / ``kana_given`` | name, name_kana | the given name: the last word, if any space |
| ``birth`` | birth_date | ``YYYYMMDD``, null when absent or unreadable |
| ``sex`` | sex | 1, 2 or null |
| ``addr_n`` / ``addr_base`` / ``addr_town`` | address | the three grains of an address |
| ``addrs`` | address, former_addresses | every address base of the person |
| ``mynum`` | my_number | the 12 digits when valid, else null (a bad number is no evidence) |
| ``flags`` | | what could not be read: ``my_number``, ``birth_date`` (for the reasons) |

A name written only in kana (legacy systems that stored no kanji) is read as the reading
when the reading column is empty, and never compared with a kanji name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Final, Literal

import pyarrow as pa
import pyarrow.compute as pc

from .dates import parse_birth_date, parse_sex
from .errors import LinkageInputError
from .japanese import address_keys, kana_fold, kana_key, name_key, other_names

__all__ = ["FEATURE_SCHEMA", "Kind", "prepare"]

Kind = Literal["registry", "records"]

FEATURE_SCHEMA: Final = pa.schema(
    [
        ("uid", pa.string()),
        ("name_n", pa.string()),
        ("names", pa.list_(pa.string())),
        ("kana_n", pa.string()),
        ("kana_f", pa.string()),
        ("name_given", pa.string()),
        ("kana_given", pa.string()),
        ("birth", pa.string()),
        ("sex", pa.int8()),
        ("addr_n", pa.string()),
        ("addr_base", pa.string()),
        ("addr_town", pa.string()),
        ("addrs", pa.list_(pa.string())),
        ("mynum", pa.string()),
        ("flags", pa.string()),
    ]
)
"""The columns :func:`prepare` returns."""

_KANA_ONLY: Final = re.compile(r"[\u3041-\u309f\u30a0-\u30ff\s・]+")
_LATIN_NAME: Final = re.compile(r"[A-Za-z]")
_WORDS: Final = re.compile(r"\s+")


def _given(text: str) -> str:
    """The last of two or more words: the given name (a marriage changes the other)."""
    words = _WORDS.split(text.strip())
    return words[-1] if len(words) > 1 else ""


_ID_COLUMN: Final = {"registry": "resident_code", "records": "record_ref"}


def _column(table: pa.Table, name: str) -> list[str]:
    if name not in table.column_names:
        return [""] * table.num_rows
    values: list[str] = table.column(name).to_pylist()
    return values


# renkei.mynumber's presentation characters (dashes, spaces), dropped before the check.
_NUMBER_LAYOUT: Final = "[-‐‑‒–—―−－ーｰ \u3000\t]"
# renkei.mynumber's weights Q_n of the first 11 digits, read from the left.
_WEIGHTS: Final = tuple(reversed((2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6)))
# Check digit by the weighted sum (at most 11 · 9 · 7): 0 if sum mod 11 <= 1, else 11 - it.
_CHECK: Final = pa.array([0 if t % 11 <= 1 else 11 - t % 11 for t in range(11 * 9 * 7 + 1)])


def _numbers(column: pa.ChunkedArray) -> tuple[list[str | None], list[bool]]:
    """Each valid number's 12 digits (else None), and whether one was given but malformed.

    :func:`renkei.mynumber.validate`'s rules, over the whole column at once: a million
    check digits one by one in Python cost more than the rest of a registry row.
    """
    text = column
    for digit in range(10):
        text = pc.replace_substring(text, chr(0xFF10 + digit), str(digit))
    text = pc.replace_substring_regex(text, _NUMBER_LAYOUT, "")
    shaped = pc.match_substring_regex(text, "^[0-9]{12}$")
    safe = pc.if_else(shaped, text, "000000000000")
    digits = [pc.cast(pc.utf8_slice_codeunits(safe, i, i + 1), pa.int64()) for i in range(12)]
    total = pc.multiply(digits[0], _WEIGHTS[0])
    for i in range(1, 11):
        total = pc.add(total, pc.multiply(digits[i], _WEIGHTS[i]))
    valid = pc.and_(shaped, pc.equal(pc.take(_CHECK, total), digits[11]))
    given = pc.not_equal(pc.utf8_trim_whitespace(column), "")
    numbers = pc.if_else(valid, text, pa.scalar(None, pa.string())).to_pylist()
    bad = pc.and_(given, pc.invert(valid)).to_pylist()
    return numbers, bad


def _rows(table: pa.Table, kind: Kind) -> Iterator[tuple[object, ...]]:
    columns = [
        _column(table, c)
        for c in (
            _ID_COLUMN[kind],
            "name",
            "name_kana",
            "birth_date",
            "sex",
            "address",
            "my_number",
            "former_names",
            "former_addresses",
        )
    ]
    numbers, malformed = _numbers(pa.chunked_array([_column(table, "my_number")], pa.string()))
    rows = zip(*columns, numbers, malformed, strict=True)
    for uid, name, kana, born, sex, address, _, former, moved, digits, bad in rows:
        flags = []
        name_text = unicodedata.normalize("NFKC", name)
        if _KANA_ONLY.fullmatch(name_text):
            kana = kana if kana.strip() else name_text
            name_text = ""
        key = name_key(name_text)
        names = [key, *other_names(name_text, former)] if key else other_names("", former)
        kana_n = kana_key(kana)
        name_given = name_key(_given(name_text)) if not _LATIN_NAME.search(name_text) else ""
        kana_given = kana_fold(_given(unicodedata.normalize("NFKC", kana)))
        birth = parse_birth_date(born)
        if birth is None and born.strip():
            flags.append("birth_date")
        if bad:
            flags.append("my_number")
        full, base, town = address_keys(address)
        addrs = [base] if base else []
        if moved:
            addrs += [b for m in moved.split(";") if (b := address_keys(m).base) and b != base]
        yield (
            uid,
            key or None,
            names,
            kana_n or None,
            kana_fold(kana) or None,
            name_given or None,
            kana_given or None,
            None if birth is None else f"{birth.year:04d}{birth.month:02d}{birth.day:02d}",
            parse_sex(sex),
            full or None,
            base or None,
            town or None,
            addrs,
            digits,
            ",".join(flags),
        )


def prepare(table: pa.Table, kind: Kind) -> pa.Table:
    """Return the comparison columns (:data:`FEATURE_SCHEMA`) of registry or record rows.

    :raises LinkageInputError: an id is empty or repeated.
    """
    rows = list(_rows(table, kind))
    ids = [str(r[0]) for r in rows]
    if any(not i.strip() for i in ids):
        raise LinkageInputError(f"{_ID_COLUMN[kind]} is empty on some rows")
    if len(set(ids)) != len(ids):
        raise LinkageInputError(f"{_ID_COLUMN[kind]} repeats on some rows")
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in FEATURE_SCHEMA]
    return pa.table(
        [pa.array(col, type=f.type) for col, f in zip(columns, FEATURE_SCHEMA, strict=True)],
        schema=FEATURE_SCHEMA,
    )
