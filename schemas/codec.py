"""Avro single-object encoding of every Renkei message.

Wire format (Avro spec, "Single-object encoding")::

    C3 01 | fingerprint (8 bytes) | Avro binary body
    marker  CRC-64-AVRO of the      the record, encoded with
            writer schema's Parsing  exactly that schema
            Canonical Form, little-endian

The fingerprint names the writer schema, so any Avro library in any language can decode
a message by looking its schema up. :class:`Codec` holds the current schemas and every
released version (``schemas/avro/released/v<N>/``): bytes written with an older version
are read through Avro schema resolution into today's models.

Speed (``Codec`` is on the hub's hot path): every schema is resolved, parsed by fastavro
and fingerprinted once, in the constructor; a call does one pydantic dump or validation and
one fastavro write or read. Measured on the project's 2-core machine (Python 3.11.7,
fastavro 1.13.1, pydantic 2.14; best of 5 x 20,000 calls, samples of ``tests/samples.py``)::

    message                     size    encode    decode
    DeenrolmentRequest          197 B    5.6 µs    6.8 µs
    HubError                    240 B    7.0 µs    7.9 µs
    AuditCheckpoint             180 B    7.0 µs    8.1 µs
    AttributeRequest            302 B    9.1 µs   10.7 µs
    ProviderResponse (sealed)   420 B    9.6 µs   10.9 µs
    RegistryEvent (basic-4)     251 B   12.3 µs   14.9 µs
    AuditRecord (15 fields)     441 B   13.0 µs   14.8 µs

About 70 % of it is fastavro itself (≈ 0.25 µs per field, 0.5 µs per nullable field).
Union branches are named with fastavro's tuple notation, which is also its fastest path
(its own guessing costs ≈ 7 µs more on a ``RegistryEvent``).

The hub's hot path goes faster than that, with the same bytes and the same models:
:meth:`Codec.decode` reads the current ``AttributeRequest`` and ``ProviderResponse``
through readers written for their schemas (:mod:`schemas.fastread`, which defer anything
unusual to the general way above), and :meth:`Codec.writer` gives a writer compiled from a
message's schema that encodes plain values without a model (:mod:`schemas.compiled`).
"""

from __future__ import annotations

import dataclasses
import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import fastavro
from pydantic import ValidationError

from renkei.errors import (
    BadMagicError,
    ConfigurationError,
    DecodeError,
    EncodeError,
    TruncatedError,
    UnknownSchemaError,
)
from schemas.compiled import MessageWriter, compile_writer
from schemas.fastread import READERS, Reader
from schemas.loader import (
    PRIMITIVES,
    RELEASED_DIR,
    SCHEMA_DIR,
    fullname,
    load_schema_dir,
    released_versions,
    resolve,
)
from schemas.loader import fingerprint as schema_fingerprint
from schemas.models import MESSAGE_TYPES, RECORD_TYPES, AvroRecord, Message
from schemas.wire import HeaderLayout, encode_long, header_layout, signature_span

__all__ = [
    "FINGERPRINT_SIZE",
    "HEADER_SIZE",
    "MAGIC",
    "Codec",
    "default_codec",
    "message_types_in",
]

MAGIC = b"\xc3\x01"
"""The single-object encoding marker (format version 1)."""

FINGERPRINT_SIZE = 8
"""Bytes of the CRC-64-AVRO fingerprint after the marker."""

HEADER_SIZE = len(MAGIC) + FINGERPRINT_SIZE
"""Bytes before the Avro body."""

M = TypeVar("M", bound=Message)


@dataclass(frozen=True, slots=True)
class _Fix:
    """A field of a record whose value needs care on its way to or from fastavro."""

    field: str
    union: bool
    """A union with record branches: fastavro's tuple notation names the branch."""
    record: str | None
    """For a plain nested record that itself needs care: its full name."""


@dataclass(frozen=True, slots=True)
class _Entry:
    """One schema the codec can read, and the model it reads into."""

    model: type[Message]
    fingerprint: bytes
    prefix: bytes
    writer: Any
    """fastavro-parsed schema the bytes were written with."""
    reader: Any
    """fastavro-parsed current schema when ``writer`` is an older release, else None."""
    layout: HeaderLayout
    """How to find ``header.signature`` in bytes written with ``writer``."""
    fast: Reader | None = None
    """A reader written for exactly this schema (:mod:`schemas.fastread`), if any."""


class Codec:
    """Encodes models to single-object-encoded bytes and decodes them back.

    :param schema_dir: folder of current ``.avsc`` files.
    :param released_dir: folder of released versions ``v<N>/``; bytes written with any of
        them decode into the current models.
    :param message_types: top-level models to support; their ``avro_name`` picks the schema.
    :param record_types: every record model, nested ones included (union branches are
        mapped back to models by name).
    :raises ConfigurationError: a schema is missing, does not parse, or uses a shape the
        codec cannot map (a union of records inside an array or map).
    """

    def __init__(
        self,
        schema_dir: Path = SCHEMA_DIR,
        released_dir: Path = RELEASED_DIR,
        message_types: tuple[type[Message], ...] = MESSAGE_TYPES,
        record_types: tuple[type[AvroRecord], ...] = RECORD_TYPES,
    ) -> None:
        named = load_schema_dir(schema_dir)
        self._models: dict[str, type[AvroRecord]] = {t.avro_name: t for t in record_types}
        self._plans: dict[str, tuple[_Fix, ...]] = {}
        self._resolved: dict[type[Message], dict[str, Any]] = {}
        self._by_type: dict[type[Message], _Entry] = {}
        self._by_fingerprint: dict[bytes, _Entry] = {}
        self._writers: dict[type[Message], MessageWriter | None] = {}
        for model in message_types:
            resolved = resolve(model.avro_name, named)
            self._plan(model.avro_name, named)
            entry = self._entry(model, resolved, reader=None)
            fast = READERS.get(model.avro_name)
            if fast is not None and fast[0] == entry.fingerprint.hex():
                entry = dataclasses.replace(entry, fast=fast[1])
            self._resolved[model] = resolved
            self._by_type[model] = entry
            self._by_fingerprint[entry.fingerprint] = entry
        for _version, folder in released_versions(released_dir):
            old = load_schema_dir(folder)
            for model in message_types:
                if model.avro_name not in old:
                    continue
                old_resolved = resolve(model.avro_name, old)
                if schema_fingerprint(old_resolved) in self._by_fingerprint:
                    continue
                entry = self._entry(model, old_resolved, reader=self._by_type[model].writer)
                self._by_fingerprint[entry.fingerprint] = entry

    @staticmethod
    def _entry(model: type[Message], resolved: dict[str, Any], reader: Any) -> _Entry:
        try:
            parsed = fastavro.parse_schema(resolved)
        except Exception as exc:  # fastavro raises a zoo of types for a bad schema
            raise ConfigurationError(f"{model.avro_name}: schema does not parse: {exc}") from exc
        fp = schema_fingerprint(resolved)
        return _Entry(model, fp, MAGIC + fp, parsed, reader, header_layout(resolved))

    def _plan(self, name: str, named: dict[str, dict[str, Any]]) -> tuple[_Fix, ...]:
        """Which fields of record ``name`` need care, computed once per record."""
        if name in self._plans:
            return self._plans[name]
        self._plans[name] = ()  # a recursive type finds itself empty while being planned
        if name not in self._models:
            raise ConfigurationError(f"no model for Avro record {name}")

        namespace = name.rpartition(".")[0]

        def record_of(schema: Any) -> str | None:
            # the loader allows named types only at the top of their own file, so a
            # record here is always a reference by name
            if isinstance(schema, dict):
                schema = schema.get("type")
            if isinstance(schema, str) and schema not in PRIMITIVES:
                full = fullname(schema, namespace)
                if full in named and named[full]["type"] == "record":
                    return full
            return None

        def has_records(schema: Any) -> bool:
            if isinstance(schema, list):
                return any(has_records(branch) for branch in schema)
            if isinstance(schema, dict) and schema.get("type") in ("array", "map"):
                return has_records(schema.get("items", schema.get("values")))
            return record_of(schema) is not None

        fixes: list[_Fix] = []
        for field in named[name]["fields"]:
            schema = field["type"]
            if isinstance(schema, list):
                branches = [record_of(b) for b in schema]
                records = [b for b in branches if b is not None]
                for branch in records:
                    self._plan(branch, named)
                if records:
                    fixes.append(_Fix(field["name"], union=True, record=None))
            elif (nested := record_of(schema)) is not None:
                if self._plan(nested, named):
                    fixes.append(_Fix(field["name"], union=False, record=nested))
            elif isinstance(schema, dict) and schema.get("type") in ("array", "map"):
                inner = schema.get("items", schema.get("values"))
                nested = record_of(inner)
                if (isinstance(inner, list) and has_records(inner)) or (
                    nested is not None and self._plan(nested, named)
                ):
                    # no model of ours has one; supporting it means walking lists here
                    raise ConfigurationError(f"{name}.{field['name']}: union of records in a list")
        self._plans[name] = tuple(fixes)
        return self._plans[name]

    # -- encoding ---------------------------------------------------------------------

    def encode(self, message: Message) -> bytes:
        """The single-object encoding of ``message``.

        :raises EncodeError: not a top-level message type of this codec, or a value that
            does not fit its schema (only possible for models built without validation).
        """
        entry = self._by_type.get(type(message))
        if entry is None:
            raise EncodeError(f"{type(message).__name__} is not a top-level message type")
        try:
            datum = message.model_dump()
            if self._plans[entry.model.avro_name]:
                self._to_writer(message, datum)
            out = io.BytesIO()
            out.write(entry.prefix)
            fastavro.schemaless_writer(out, entry.writer, datum)
        except Exception as exc:  # pydantic and fastavro raise ValueError/TypeError/...
            raise EncodeError(f"cannot encode {entry.model.avro_name}: {exc}") from exc
        return out.getvalue()

    def _to_writer(self, model: AvroRecord, datum: dict[str, Any]) -> None:
        """Name union branches with fastavro's tuple notation: never guessed from the data."""
        for fix in self._plans[model.avro_name]:
            value = getattr(model, fix.field)
            if value is None:
                continue
            inner = datum[fix.field]
            if self._plans[value.avro_name]:
                self._to_writer(value, inner)
            if fix.union:
                datum[fix.field] = (value.avro_name, inner)

    def writer(self, model_type: type[Message]) -> MessageWriter:
        """The compiled writer of ``model_type`` (:mod:`schemas.compiled`): the same bytes as
        :meth:`encode`, from plain values, without building a model.

        :raises EncodeError: not a top-level message type of this codec, or one whose
            schema has a shape the compiler does not write (then use :meth:`encode`).
        """
        if model_type not in self._writers:
            entry = self._entry_of(model_type)
            try:
                compiled = compile_writer(self._resolved[model_type], entry.prefix)
            except ConfigurationError:
                compiled = None
            self._writers[model_type] = compiled
        writer = self._writers[model_type]
        if writer is None:
            raise EncodeError(f"{model_type.avro_name} has no compiled writer")
        return writer

    def signing_payload(self, message: Message) -> bytes:
        """The bytes a sender signs: ``message`` encoded with ``header.signature = b""``.

        For a message about to be sent. A received message's signed bytes are
        :meth:`split_signature`'s, from the bytes as they arrived.
        """
        unsigned = message.model_copy(
            update={"header": message.header.model_copy(update={"signature": b""})}
        )
        return self.encode(unsigned)

    # -- signatures in the bytes --------------------------------------------------------

    def split_signature(self, data: bytes) -> tuple[bytes, bytes]:
        """``(signed bytes, signature)`` of a single-object-encoded message, as sent.

        The signed bytes are ``data`` with ``header.signature`` emptied (its length and
        content replaced by one ``00``): what the sender signed, whichever schema version
        it wrote with. Only the header is read (:mod:`schemas.wire`); the rest of the body
        is not decoded, so a caller still decodes (or has decoded) the message.

        :raises DecodeError: no marker, an unknown fingerprint, or a header that cannot
            be walked (truncated, an overlong varint, a negative length, ...).
        """
        raw = bytes(data)
        field, content, end = self.signature_span(raw)
        return raw[:field] + b"\x00" + raw[end:], raw[content:end]

    def join_signature(self, unsigned: bytes, signature: bytes) -> bytes:
        """``unsigned`` (an encoding with an empty signature) with ``signature`` spliced in.

        The same bytes as encoding the message with that signature set.

        :raises DecodeError: as :meth:`split_signature`.
        :raises EncodeError: ``unsigned`` already carries a signature.
        """
        field, content, end = self.signature_span(unsigned)
        if end != content:
            raise EncodeError("the bytes carry a signature already")
        return unsigned[:field] + encode_long(len(signature)) + signature + unsigned[end:]

    def signature_span(self, data: bytes) -> tuple[int, int, int]:
        """Where ``header.signature`` lies in ``data``: ``(field, content, end)``.

        ``data[field:content]`` is its length, ``data[content:end]`` the signature itself,
        found by walking the header of the schema the fingerprint names.

        :raises DecodeError: as :meth:`split_signature`.
        """
        entry = self._lookup(data)
        return signature_span(bytes(data), HEADER_SIZE, entry.layout)

    # -- decoding ---------------------------------------------------------------------

    def _lookup(self, data: bytes) -> _Entry:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DecodeError(f"expected bytes, got {type(data).__name__}")
        if len(data) < HEADER_SIZE:
            if bytes(data[: len(MAGIC)]) != MAGIC[: len(data)]:
                raise BadMagicError(f"no C3 01 marker: {bytes(data[:2]).hex()}")
            raise TruncatedError(f"{len(data)} bytes, the header alone is {HEADER_SIZE}")
        if data[:2] != MAGIC:
            raise BadMagicError(f"no C3 01 marker: {bytes(data[:2]).hex()}")
        fp = bytes(data[len(MAGIC) : HEADER_SIZE])
        entry = self._by_fingerprint.get(fp)
        if entry is None:
            raise UnknownSchemaError(f"no schema with fingerprint {fp.hex()}")
        return entry

    def message_type_of(self, data: bytes) -> type[Message]:
        """The message type ``data`` holds, from its header alone (the body is not read).

        :raises DecodeError: as :meth:`decode`, for the header.
        """
        return self._lookup(data).model

    def decode(self, data: bytes) -> Message:
        """The message single-object-encoded in ``data``.

        :raises BadMagicError: no ``C3 01`` marker.
        :raises TruncatedError: the header or the body ends early.
        :raises UnknownSchemaError: the fingerprint names no current or released schema.
        :raises DecodeError: the body does not decode, has bytes left over, or its values
            break the contract (pydantic validation).
        """
        entry = self._lookup(data)
        if entry.fast is not None and type(data) is bytes:
            message = entry.fast(data, HEADER_SIZE)
            if message is not None:
                return message  # else: something unusual, which the general way judges
        size = len(data)
        stream = io.BytesIO(data)
        stream.seek(HEADER_SIZE)
        try:
            datum = fastavro.schemaless_reader(
                stream, entry.writer, entry.reader, return_record_name=True
            )
        except EOFError as exc:
            raise TruncatedError(f"{entry.model.avro_name}: body ends early") from exc
        except Exception as exc:
            # fastavro's reader meets arbitrary bytes with IndexError (also what a varint
            # cut short raises), ValueError, UnicodeDecodeError, OverflowError, ...
            if isinstance(exc, IndexError) and stream.tell() >= size:
                raise TruncatedError(f"{entry.model.avro_name}: body ends early") from exc
            raise DecodeError(f"{entry.model.avro_name}: body does not decode: {exc!r}") from exc
        if stream.tell() != size:
            raise DecodeError(
                f"{entry.model.avro_name}: {size - stream.tell()} bytes left after the body"
            )
        if not isinstance(datum, dict):
            raise DecodeError(f"{entry.model.avro_name}: body is not a record")
        # fastavro takes a negative union index as Python does (-1: the last branch); the
        # signature splice does not, and a message whose signature cannot be found must not
        # decode either (tests/security/test_fuzz_decoder.py).
        signature_span(bytes(data), HEADER_SIZE, entry.layout)
        try:
            if self._plans[entry.model.avro_name]:
                self._from_reader(entry.model.avro_name, datum)
            return entry.model.model_validate(datum)
        except ValidationError as exc:
            # pydantic's own text quotes the input; a value over a limit is not repeated
            raise DecodeError(f"{entry.model.avro_name}: {_problems(exc)}") from exc
        except (ValueError, TypeError, KeyError) as exc:
            raise DecodeError(f"{entry.model.avro_name}: {exc}") from exc

    def decode_as(self, data: bytes, model_type: type[M]) -> M:
        """:meth:`decode`, and check the message is a ``model_type``.

        :raises DecodeError: as :meth:`decode`, or the message is of another type.
        """
        entry = self._lookup(data)
        if not issubclass(entry.model, model_type):  # a codec may be given a model's subclass
            raise DecodeError(f"expected {model_type.avro_name}, got {entry.model.avro_name}")
        message = self.decode(data)
        assert isinstance(message, model_type)
        return message

    def _from_reader(self, name: str, datum: dict[str, Any]) -> None:
        """Turn fastavro's ``(branch name, record)`` tuples into the branch's model."""
        for fix in self._plans[name]:
            value = datum[fix.field]
            if value is None:
                continue
            if fix.union:
                if not isinstance(value, tuple):
                    continue  # a non-record branch of the union
                branch, inner = value
                if self._plans[branch]:
                    self._from_reader(branch, inner)
                datum[fix.field] = self._models[branch].model_validate(inner)
            elif fix.record is not None:
                self._from_reader(fix.record, value)

    # -- schemas ----------------------------------------------------------------------

    def fingerprint(self, model_type: type[Message]) -> bytes:
        """The 8-byte CRC-64-AVRO fingerprint ``model_type`` is encoded under."""
        return self._entry_of(model_type).fingerprint

    def schema_for(self, model_type: type[Message]) -> dict[str, Any]:
        """The resolved current schema of ``model_type`` (a copy: JSON-ready, yours to change)."""
        self._entry_of(model_type)
        copied: dict[str, Any] = _deep_copy(self._resolved[model_type])
        return copied

    @property
    def message_types(self) -> tuple[type[Message], ...]:
        """Every top-level message type this codec encodes."""
        return tuple(self._by_type)

    @property
    def fingerprints(self) -> dict[bytes, type[Message]]:
        """Every fingerprint this codec decodes (current and released), with its type."""
        return {fp: entry.model for fp, entry in self._by_fingerprint.items()}

    def _entry_of(self, model_type: type[Message]) -> _Entry:
        entry = self._by_type.get(model_type)
        if entry is None:
            raise EncodeError(f"{model_type.__name__} is not a top-level message type")
        return entry


def _problems(exc: ValidationError, most: int = 5) -> str:
    """What broke the contract, field by field, without the offending values."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '(message)'}: {e['msg']}" for e in errors]
    more = f"; and {len(parts) - most} more" if len(parts) > most else ""
    return "; ".join(parts[:most]) + more


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def message_types_in(schema_dir: Path) -> tuple[type[Message], ...]:
    """The message types whose schema ``schema_dir`` holds: a released version's folder
    has none of the types added since, and a :class:`Codec` of it takes only these."""
    return tuple(t for t in MESSAGE_TYPES if (schema_dir / f"{t.avro_name}.avsc").exists())


@functools.cache
def default_codec() -> Codec:
    """The process-wide codec over the packaged schemas, built on first use."""
    return Codec()
