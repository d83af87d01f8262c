"""Avro writers compiled from the schemas: plain values in, single-object encoding out.

The hub writes a forwarded request, an answer and an audit record for every message it
handles. Building a pydantic model for each, dumping it to a dict and handing that to
fastavro costs ≈ 20 µs a record here; most of it is generic work — validating values the
hub built itself, walking the schema again for every record. :func:`compile_writer` turns a
message's resolved schema into the Python source of one function that takes the field
values as arguments and appends their Avro encoding, field by field in schema order, to a
list of byte strings — the way :mod:`dataclasses` writes an ``__init__`` — and compiles it
once. Encoding a record is then a few µs, and the function follows the schema: a field
added with a default is written with its default until a caller names it.

What it still checks, because the hub's own messages obey the contract like everyone's
(``docs/contract.md``, "Limits"): every string, bytes and array field against its limit in
:data:`schemas.limits.FIELD_LIMITS`, ``int`` and ``long`` ranges, and enum symbols. A value
that breaks one raises :class:`~renkei.errors.EncodeError`.

A writer returns the encoding split at ``header.signature`` (``head``, ``tail``), so a
signer signs ``head + b"\\x00" + tail`` and splices the signature in without encoding
again (:meth:`MessageWriter.join`). ``tests/unit/test_compiled.py`` holds every writer to
byte equality with :meth:`schemas.codec.Codec.encode`.
"""

from __future__ import annotations

import keyword
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from renkei.errors import ConfigurationError, EncodeError
from schemas.limits import FIELD_LIMITS
from schemas.wire import encode_long

__all__ = ["MessageWriter", "compile_writer"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SMALL: Final = tuple(encode_long(n) for n in range(64))  # one byte each: lengths, counts


def _long(value: int) -> bytes:
    if 0 <= value < 64:
        return _SMALL[value]
    if not -(2**63) <= value < 2**63:
        raise EncodeError(f"{value} does not fit an Avro long")
    return encode_long(value)


def _int(value: int) -> bytes:
    if not -(2**31) <= value < 2**31:
        raise EncodeError(f"{value} does not fit an Avro int")
    return encode_long(value)


_RECENT: dict[int, bytes] = {}  # timestamps recur: every record of a batch is sent "now"


def _millis(value: int | datetime) -> bytes:
    if type(value) is int and (known := _RECENT.get(value)) is not None:
        return known
    if type(value) is not int:
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise EncodeError("a timestamp is milliseconds or an aware datetime")
        delta = value - _EPOCH  # as fastavro converts it
        value = (delta.days * 86_400 + delta.seconds) * 1000 + int(delta.microseconds / 1000)
    encoded = _long(value)
    if len(_RECENT) >= 1024:
        _RECENT.clear()
    _RECENT[value] = encoded
    return encoded


_DOUBLE: Final = struct.Struct("<d").pack  # what fastavro writes: little-endian IEEE 754
_FLOAT: Final = struct.Struct("<f").pack


def _too_long(where: str, maximum: int) -> EncodeError:
    return EncodeError(f"{where}: over its limit of {maximum}")


def _no_symbol(where: str, value: object) -> bytes:
    raise EncodeError(f"{where}: {value!r} is not one of its symbols")


@dataclass(frozen=True, slots=True)
class MessageWriter:
    """The compiled writer of one top-level message type.

    :param prefix: ``C3 01`` and the schema's fingerprint.
    :param write: ``write(header, **fields) -> (head, tail)``: ``header`` maps the
        header's field names to values (``signature`` is not read: it goes between
        ``head`` and ``tail``); every field of the message is a keyword argument, those
        with a schema default may be left out. Timestamps are milliseconds (or aware
        datetimes), enums their symbols, nested records mappings, arrays sequences.
    :param source: the generated Python source, for the curious.
    """

    prefix: bytes
    write: Callable[..., tuple[bytes, bytes]]
    source: str

    def encode(self, header: Mapping[str, Any], signature: bytes = b"", **fields: Any) -> bytes:
        """The whole single-object encoding, with ``signature`` in the header."""
        head, tail = self.write(header, **fields)
        return self.join(head, tail, signature)

    @staticmethod
    def join(head: bytes, tail: bytes, signature: bytes = b"") -> bytes:
        """``head``, the signature as Avro bytes, ``tail``."""
        size = len(signature)
        return head + (_SMALL[size] if size < 64 else encode_long(size)) + signature + tail


class _Compiler:
    """Writes the source of one writer; names the constants it refers to."""

    def __init__(self, record: str) -> None:
        self.record = record
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {
            "_SMALL": _SMALL, "_long": _long, "_int": _int, "_millis": _millis,
            "encode_long": encode_long, "_too_long": _too_long, "EncodeError": EncodeError,
            "_DOUBLE": _DOUBLE, "_FLOAT": _FLOAT, "_no_symbol": _no_symbol,
        }  # fmt: skip
        self.named: dict[str, dict[str, Any]] = {}
        self._serial = 0

    def constant(self, value: Any) -> str:
        self._serial += 1
        name = f"_c{self._serial}"
        self.constants[name] = value
        return name

    def var(self) -> str:
        self._serial += 1
        return f"v{self._serial}"

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def local(self, expr: str, indent: int) -> str:
        """``expr`` as a local variable, evaluated once."""
        if _NAME.fullmatch(expr):
            return expr
        name = self.var()
        self.emit(indent, f"{name} = {expr}")
        return name

    def value(self, schema: Any, expr: str, where: str, indent: int) -> None:
        """Lines appending the encoding of ``expr`` (of type ``schema``) to ``a``."""
        if isinstance(schema, str) and schema in self.named:
            schema = self.named[schema]
        kind = schema.get("type") if isinstance(schema, dict) else schema
        if isinstance(schema, dict) and "name" in schema and kind in ("record", "enum"):
            self.named[schema["name"]] = schema
            if "namespace" in schema:
                self.named[f"{schema['namespace']}.{schema['name']}"] = schema
        if isinstance(schema, list):
            self.union(schema, expr, where, indent)
        elif kind in ("string", "bytes"):
            self.sized(kind, expr, where, indent)
        elif (
            kind == "long"
            and isinstance(schema, dict)
            and schema.get("logicalType") == ("timestamp-millis")
        ):
            self.emit(indent, f"a(_millis({expr}))")
        elif kind == "long" and not (isinstance(schema, dict) and "logicalType" in schema):
            self.emit(indent, f"a(_long({expr}))")
        elif kind == "int" and not (isinstance(schema, dict) and "logicalType" in schema):
            self.emit(indent, f"a(_int({expr}))")
        elif kind in ("double", "float") and not isinstance(schema, dict):
            self.emit(indent, f"a({'_DOUBLE' if kind == 'double' else '_FLOAT'}({expr}))")
        elif kind == "boolean":
            self.emit(indent, f"if {expr} is True: a(b'\\x01')")
            self.emit(indent, f"elif {expr} is False: a(b'\\x00')")
            self.emit(indent, f"else: raise EncodeError({where + ': not a boolean'!r})")
        elif kind == "enum":
            table = self.constant({s: encode_long(i) for i, s in enumerate(schema["symbols"])})
            self.emit(indent, f"a({table}.get({expr}) or _no_symbol({where!r}, {expr}))")
        elif kind == "array":
            self.array(schema["items"], expr, where, indent)
        elif kind == "record":
            record = self.local(expr, indent)
            for field in schema["fields"]:
                self.value(field["type"], f"{record}[{field['name']!r}]",
                           f"{schema['name']}.{field['name']}", indent)  # fmt: skip
        else:
            raise ConfigurationError(f"{where}: no compiled writer for {schema!r}")

    def sized(self, kind: str, expr: str, where: str, indent: int) -> None:
        value = self.local(expr, indent)
        raw = value
        if kind == "string":
            raw = self.var()
            self.emit(indent, f"{raw} = {value}.encode()")
        if (limit := FIELD_LIMITS.get(where)) is not None:  # characters, or bytes
            self.emit(indent, f"if len({value}) > {limit.maximum}: "
                              f"raise _too_long({where!r}, {limit.maximum})")  # fmt: skip
        self.emit(indent, f"n = len({raw})")
        self.emit(indent, "a(_SMALL[n] if n < 64 else encode_long(n))")
        self.emit(indent, f"a({raw})")

    def array(self, items: Any, expr: str, where: str, indent: int) -> None:
        value, item = self.local(expr, indent), self.var()
        if (limit := FIELD_LIMITS.get(where)) is not None:
            self.emit(indent, f"if len({value}) > {limit.maximum}: "
                              f"raise _too_long({where!r}, {limit.maximum})")  # fmt: skip
        self.emit(indent, f"if {value}:")
        self.emit(indent + 1, f"a(_long(len({value})))")
        self.emit(indent + 1, f"for {item} in {value}:")
        self.value(items, item, f"{where}[]", indent + 2)
        self.emit(indent, "a(b'\\x00')")

    def union(self, branches: list[Any], expr: str, where: str, indent: int) -> None:
        others = [i for i, b in enumerate(branches) if b != "null"]
        if "null" not in branches or len(branches) != 2:
            raise ConfigurationError(f"{where}: only unions of null and one type compile")
        null, other = branches.index("null"), others[0]
        value = self.local(expr, indent)
        self.emit(indent, f"if {value} is None: a({encode_long(null)!r})")
        self.emit(indent, "else:")
        self.emit(indent + 1, f"a({encode_long(other)!r})")
        self.value(branches[other], value, where, indent + 1)


def compile_writer(schema: dict[str, Any], prefix: bytes) -> MessageWriter:
    """The writer of a top-level message (``header`` first, as every message has).

    :param schema: the message's resolved schema (:func:`schemas.loader.resolve`).
    :param prefix: marker and fingerprint to put in front.
    :raises ConfigurationError: a shape this compiler does not write (a union of two
        non-null types, a logical type other than ``timestamp-millis``, a name that is no
        Python identifier); the codec's general encoder still writes such messages.
    """
    name = schema["name"]
    fields = schema["fields"]
    if not fields or fields[0]["name"] != "header" or fields[0]["type"].get("type") != "record":
        raise ConfigurationError(f"{name}: the first field is not an inline header record")
    params = []
    for field in fields[1:]:
        if not _NAME.fullmatch(field["name"]) or keyword.iskeyword(field["name"]):
            raise ConfigurationError(f"{name}.{field['name']}: not a Python identifier")
        if "default" in field:
            default = field["default"]
            if isinstance(default, dict | list):
                raise ConfigurationError(f"{name}.{field['name']}: a default of {default!r}")
            params.append(f"{field['name']}={default!r}")
        else:
            params.append(field["name"])
    c = _Compiler(name)
    c.emit(0, f"def write(header, *, {', '.join(params)}):")
    c.emit(1, "parts = [_prefix]")
    c.emit(1, "a = parts.append")
    header_record = fields[0]["type"]["name"]
    for field in fields[0]["type"]["fields"]:
        where = f"{header_record}.{field['name']}"
        if field["name"] == "signature":
            c.emit(1, "head = b''.join(parts)")
            c.emit(1, "parts = []")
            c.emit(1, "a = parts.append")
            continue
        c.value(field["type"], f"header[{field['name']!r}]", where, 1)
    for field in fields[1:]:
        c.value(field["type"], field["name"], f"{name}.{field['name']}", 1)
    c.emit(1, "return head, b''.join(parts)")
    source = "\n".join(c.lines) + "\n"
    namespace = {**c.constants, "_prefix": prefix}
    # The source is made from our own schema files, never from input.
    exec(compile(source, f"<writer of {name}>", "exec"), namespace)  # noqa: S102
    return MessageWriter(prefix, namespace["write"], source)
