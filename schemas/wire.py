"""Find ``header.signature`` in the bytes of a message, without decoding the message.

A signature covers the bytes as sent (``docs/contract.md``, "Signatures"): the received
value with the signature's bytes replaced by an empty ``bytes`` (one ``00``). Re-encoding
the decoded message instead would break as soon as the reader's schema differs from the
writer's: a field the writer did not know gets its default, and the bytes differ.

The :class:`~schemas.models.Header` is the first field of every top-level message, so the
signature sits right after the header's other fields. :func:`header_layout` turns the
writer schema's header into a few skip operations (computed once per schema by the
codec); :func:`signature_span` walks them over the raw body with strict bounds: a varint
longer than its type allows, a negative length, a union branch that does not exist or
bytes that end early raise a typed :class:`~renkei.errors.DecodeError`.
"""

from __future__ import annotations

from typing import Any, Final

from renkei.errors import ConfigurationError, DecodeError, TruncatedError

__all__ = ["HeaderLayout", "encode_long", "header_layout", "read_long", "signature_span"]

# Skip operations: one per header field before the signature.
_NULL: Final = "null"
_BOOLEAN: Final = "boolean"
_INT: Final = "int"
_LONG: Final = "long"
_FLOAT: Final = "float"
_DOUBLE: Final = "double"
_LENGTH: Final = "length"  # bytes and string: a long length, then that many bytes

_Op = str | tuple[str, ...]  # a union: one op per branch, picked by the branch index
HeaderLayout = tuple[_Op, ...]
"""How to skip the header fields that precede ``signature``."""

_PLAIN: Final = {
    "null": _NULL,
    "boolean": _BOOLEAN,
    "int": _INT,
    "long": _LONG,
    "float": _FLOAT,
    "double": _DOUBLE,
    "bytes": _LENGTH,
    "string": _LENGTH,
}
_MAX_VARINT: Final = {_INT: 5, _LONG: 10}  # ceil(32 / 7), ceil(64 / 7)


def _op(schema: Any, where: str) -> _Op:
    if isinstance(schema, dict) and "logicalType" in schema:
        schema = schema["type"]  # a logical type is its primitive on the wire
    if isinstance(schema, str) and schema in _PLAIN:
        return _PLAIN[schema]
    if isinstance(schema, list):
        branches = tuple(_op(branch, where) for branch in schema)
        if any(isinstance(branch, tuple) for branch in branches):
            raise ConfigurationError(f"{where}: a union inside a union")
        return branches  # type: ignore[return-value]  # a tuple of plain ops
    raise ConfigurationError(f"{where}: a header field the signature splice cannot skip")


def header_layout(resolved: dict[str, Any]) -> HeaderLayout:
    """The skip operations of a top-level message's header, up to its signature.

    :param resolved: the message's resolved writer schema (:func:`schemas.loader.resolve`).
    :raises ConfigurationError: the first field is not a ``Header`` record with a
        ``signature`` of type ``bytes`` after fields of primitive types (or unions of them).
    """
    name = resolved.get("name", "?")
    fields = resolved.get("fields") or [{}]
    header = fields[0].get("type")
    if fields[0].get("name") != "header" or not isinstance(header, dict):
        raise ConfigurationError(f"{name}: the first field is not an inline header record")
    ops: list[_Op] = []
    for field in header.get("fields", []):
        where = f"{name}.header.{field.get('name')}"
        if field.get("name") == "signature":
            if field.get("type") != "bytes":
                raise ConfigurationError(f"{where}: not of type bytes")
            return tuple(ops)
        ops.append(_op(field.get("type"), where))
    raise ConfigurationError(f"{name}: the header has no signature field")


def read_long(data: bytes, at: int, kind: str = _LONG) -> tuple[int, int]:
    """The zig-zag varint at ``data[at:]`` and the offset after it.

    :param kind: ``"long"`` (at most 10 bytes, 64 bits) or ``"int"`` (5 bytes, 32 bits).
    :raises TruncatedError: the bytes end inside the varint.
    :raises DecodeError: the varint is longer than its type allows, or overflows it.
    """
    most = _MAX_VARINT[kind]
    bits = 64 if kind == _LONG else 32
    n = 0
    for i in range(most):
        if at + i >= len(data):
            raise TruncatedError(f"a varint at byte {at} runs past the end")
        byte = data[at + i]
        n |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if n >> bits:
                raise DecodeError(f"the {kind} at byte {at} overflows {bits} bits")
            return (n >> 1) ^ -(n & 1), at + i + 1
    raise DecodeError(f"the {kind} at byte {at} is longer than {most} bytes")


def encode_long(value: int) -> bytes:
    """Avro ``long``: zig-zag, then a little-endian base-128 varint (shortest form)."""
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _skip(data: bytes, at: int, op: _Op) -> int:
    if isinstance(op, tuple):
        branch, at = read_long(data, at)
        if not 0 <= branch < len(op):
            raise DecodeError(f"union branch {branch} at byte {at} does not exist")
        return _skip(data, at, op[branch])
    if op == _NULL:
        return at
    if op == _BOOLEAN:
        if at >= len(data):
            raise TruncatedError(f"a boolean at byte {at} runs past the end")
        if data[at] > 1:
            raise DecodeError(f"byte {at} is no boolean: {data[at]:#04x}")
        return at + 1
    if op in _MAX_VARINT:
        return read_long(data, at, op)[1]
    if op == _LENGTH:
        return _span(data, at)[1]
    width = 4 if op == _FLOAT else 8
    if at + width > len(data):
        raise TruncatedError(f"a {op} at byte {at} runs past the end")
    return at + width


def _span(data: bytes, at: int) -> tuple[int, int]:
    """Where the content of the ``bytes``/``string`` at ``at`` starts and ends."""
    length, start = read_long(data, at)
    if length < 0:
        raise DecodeError(f"negative length {length} at byte {at}")
    end = start + length
    if end > len(data):
        raise TruncatedError(f"{length} bytes at byte {start} run past the end ({len(data)})")
    return start, end


def signature_span(data: bytes, body_at: int, layout: HeaderLayout) -> tuple[int, int, int]:
    """Where ``header.signature`` lies in ``data``: ``(field, content, end)``.

    ``data[field:content]`` is its length varint, ``data[content:end]`` the signature.

    :param body_at: offset of the Avro body (after the single-object header).
    :raises DecodeError: as :func:`read_long`, or a length, union branch or boolean of
        the header is impossible (:class:`~renkei.errors.TruncatedError` if the bytes end).
    """
    at = body_at
    for op in layout:
        at = _skip(data, at, op)
    content, end = _span(data, at)
    return at, content, end
