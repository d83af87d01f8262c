"""Parsing Canonical Form and the CRC-64-AVRO (Rabin) fingerprint, as the Avro spec defines them.

Written out here rather than borrowed, because the fingerprint is the wire format's schema
id: a Java or Go client computes the same 8 bytes from the same text. Tests check it
against the Avro project's own vectors (``share/test/data/schema-tests.txt``), against
``avro.schema.Schema.fingerprint`` and against fastavro.

The fingerprint travels little-endian, as Java's ``SchemaNormalization`` and the
single-object encoding use it.
"""

from __future__ import annotations

import json
from typing import Any

from schemas.loader import PRIMITIVES, fullname

__all__ = ["EMPTY64", "crc64_avro", "fingerprint", "parsing_canonical_form"]

EMPTY64 = 0xC15D213AA4D7A795
"""The Rabin fingerprint of empty input; also the polynomial of the table."""


def _make_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY64 & -(fp & 1))
        table.append(fp)
    return tuple(table)


_TABLE = _make_table()
# keys of a schema object that survive canonicalisation, in the order the spec fixes
_COMPLEX = frozenset({"record", "error", "enum", "fixed", "array", "map"})
_KEPT = ("name", "type", "fields", "symbols", "items", "values", "size")


def crc64_avro(data: bytes) -> bytes:
    """The CRC-64-AVRO fingerprint of ``data``: 8 bytes, little-endian."""
    fp = EMPTY64
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp.to_bytes(8, "little")


def parsing_canonical_form(schema: Any) -> str:
    """The Parsing Canonical Form of a resolved schema (spec: "Transforming into PCF").

    :param schema: JSON-like schema whose named types are defined at first use, as
        :func:`schemas.loader.resolve` returns.
    """
    return _pcf(schema, None)


def _pcf(schema: Any, namespace: str | None) -> str:
    if isinstance(schema, str):
        # [FULLNAMES]: a reference to a named type is written with its full name
        return json.dumps(schema if schema in PRIMITIVES else fullname(schema, namespace))
    if isinstance(schema, list):
        return "[" + ",".join(_pcf(branch, namespace) for branch in schema) + "]"
    kind = schema["type"]
    if kind in PRIMITIVES:
        # [PRIMITIVES]: {"type":"int","logicalType":"date"} is just "int"
        return json.dumps(kind)
    if not isinstance(kind, str) or kind not in _COMPLEX:
        return _pcf(kind, namespace)
    parts: list[str] = []
    inner = namespace
    for key in _KEPT:
        if key not in schema:
            continue
        value = schema[key]
        if key == "name":
            full = fullname(value, schema.get("namespace", namespace))
            inner = full.rpartition(".")[0] or None
            text = json.dumps(full, ensure_ascii=False)
        elif key == "type":
            text = json.dumps("record" if value == "error" else value)
        elif key == "fields":
            text = (
                "["
                + ",".join(
                    '{"name":' + json.dumps(f["name"]) + ',"type":' + _pcf(f["type"], inner) + "}"
                    for f in value
                )
                + "]"
            )
        elif key == "symbols":
            text = "[" + ",".join(json.dumps(s, ensure_ascii=False) for s in value) + "]"
        elif key in ("items", "values"):
            text = _pcf(value, inner)
        else:  # size: [INTEGERS], no leading zeros
            text = str(int(value))
        parts.append(json.dumps(key) + ":" + text)
    return "{" + ",".join(parts) + "}"


def fingerprint(schema: Any) -> bytes:
    """CRC-64-AVRO of the UTF-8 Parsing Canonical Form of ``schema``: 8 bytes, little-endian."""
    return crc64_avro(parsing_canonical_form(schema).encode("utf-8"))
