"""Reading the inputs and writing the outputs, as CSV or Parquet (through pyarrow).

Every input column is read as text, whatever it looks like: ``0012`` stays ``0012``, a
date stays as written for :mod:`renkei.linkage.dates`. A Parquet file may hold
``my_number`` as an integer column (a spreadsheet export does that); its leading zeros
are put back. The format is chosen by the file's
suffix (``.parquet`` / ``.pq``, else CSV with a header line, UTF-8).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .errors import LinkageInputError

__all__ = [
    "RECORD_COLUMNS",
    "REGISTRY_COLUMNS",
    "OutputFormat",
    "format_of",
    "read_table",
    "write_table",
]

REGISTRY_COLUMNS: Final = (
    "resident_code",
    "my_number",
    "name",
    "name_kana",
    "birth_date",
    "sex",
    "address",
    "former_names",
)
"""Columns REGISTRY must have; ``former_addresses`` (``;``-separated) is read if present."""

RECORD_COLUMNS: Final = (
    "record_ref",
    "my_number",
    "name",
    "name_kana",
    "birth_date",
    "sex",
    "address",
)
"""Columns RECORDS must have."""

OutputFormat = Literal["csv", "parquet"]


def format_of(path: Path) -> OutputFormat:
    """``parquet`` for a ``.parquet``/``.pq`` file, else ``csv``."""
    return "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"


def read_table(path: Path, required: Sequence[str]) -> pa.Table:
    """Read ``path`` with every column as a non-null string.

    :raises LinkageInputError: the file is missing, unreadable or lacks a required column.
    """
    if not path.is_file():
        raise LinkageInputError(f"{path}: no such file")
    try:
        if format_of(path) == "parquet":
            table = pq.read_table(path)
        else:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                header = next(csv.reader(handle), [])
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(encoding="utf8"),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(header, pa.string()),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
    except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:
        raise LinkageInputError(f"{path}: cannot be read: {exc}") from exc
    # A BOM written by spreadsheet programs would otherwise glue itself to the first name.
    table = table.rename_columns([n.lstrip("\ufeff").strip() for n in table.column_names])
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise LinkageInputError(f"{path}: missing column(s) {', '.join(missing)}")
    columns = {name: _text(name, table.column(name)) for name in table.column_names}
    return pa.table(columns)


def _text(name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column as text; a My Number stored as an integer gets back its leading zeros."""
    text = column.cast(pa.string()).fill_null("")
    if name == "my_number" and pa.types.is_integer(column.type):
        text = pc.utf8_lpad(text, width=12, padding="0")
    return text


def write_table(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` (format by suffix), atomically: a temporary file, renamed."""
    partial = path.with_name(path.name + ".partial")
    if format_of(path) == "parquet":
        pq.write_table(table, partial)
    else:
        pacsv.write_csv(table, partial)
    partial.replace(path)
