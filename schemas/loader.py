"""Read the ``.avsc`` files and resolve a top-level schema into one self-contained document.

Each file holds one named type and is called ``<full name>.avsc`` (the convention of
fastavro's ``FlatDictRepository`` and of most Avro tooling), so other files refer to it by
full name. :func:`resolve` inlines every referenced type at its first occurrence, in
document order, and refers to it by full name afterwards: the shape the Avro
specification's Parsing Canonical Form expects, and what any Avro library parses without
a schema repository.

:func:`canonical_form` and :func:`fingerprint` name a resolved schema on the wire: the
Avro spec's Parsing Canonical Form and its CRC-64-AVRO (Rabin) fingerprint, both computed
by fastavro, as any Avro library in another language computes them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import fastavro.schema

from renkei.errors import ConfigurationError

__all__ = [
    "NAMESPACE",
    "PRIMITIVES",
    "RELEASED_DIR",
    "SCHEMA_DIR",
    "canonical_form",
    "fingerprint",
    "fullname",
    "load_schema_dir",
    "released_versions",
    "resolve",
]

NAMESPACE = "jp.renkei"
"""Avro namespace of every Renkei type."""

SCHEMA_DIR = Path(__file__).resolve().parent / "avro"
"""The current schemas, one named type per file."""

RELEASED_DIR = SCHEMA_DIR / "released"
"""Frozen copies of every released version, ``released/v<N>/``."""

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
"""Avro primitive type names; every other bare string names a named type."""

_NAMED_KINDS = frozenset({"record", "error", "enum", "fixed"})
_VERSION_DIR = re.compile(r"^v(\d+)$")


def fullname(name: str, namespace: str | None) -> str:
    """The full name of ``name`` read inside ``namespace`` (Avro spec, "Names")."""
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def _namespace_of(full: str) -> str:
    return full.rpartition(".")[0]


def load_schema_dir(directory: Path) -> dict[str, dict[str, Any]]:
    """Every named type in ``directory``, by full name.

    :param directory: a folder of ``<full name>.avsc`` files.
    :raises ConfigurationError: a file is not JSON, holds no named type, or is named
        differently from the type it holds.
    """
    named: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.avsc")):
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read schema {path}: {exc}") from exc
        if not isinstance(schema, dict) or schema.get("type") not in _NAMED_KINDS:
            raise ConfigurationError(f"{path} does not hold one named Avro type")
        full = fullname(schema["name"], schema.get("namespace"))
        # fastavro's and Java's file repositories find a type by this file name
        if path.name != f"{full}.avsc":
            raise ConfigurationError(f"{path.name} holds {full}; name it {full}.avsc")
        if _defines_named(schema.get("fields", [])):
            # one type per file is what lets every tool find a type by its file name
            raise ConfigurationError(f"{path.name} defines a nested named type; give it a file")
        named[full] = schema
    if not named:
        raise ConfigurationError(f"no .avsc files in {directory}")
    return named


def _defines_named(fields: list[dict[str, Any]]) -> bool:
    def walk(schema: Any) -> bool:
        if isinstance(schema, list):
            return any(walk(branch) for branch in schema)
        if isinstance(schema, dict):
            kind = schema.get("type")
            if kind in _NAMED_KINDS:
                return True
            return walk(kind) or walk(schema.get("items")) or walk(schema.get("values"))
        return False

    return any(walk(field.get("type")) for field in fields)


def resolve(name: str, named: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The schema of ``name`` with every referenced named type inlined once.

    :param name: full name of the type to resolve.
    :param named: every named type available, as :func:`load_schema_dir` returns.
    :raises ConfigurationError: a reference names no known type, or a type is defined twice.
    """
    defined: set[str] = set()

    def walk(schema: Any, namespace: str | None) -> Any:
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return schema
            full = fullname(schema, namespace)
            if full in defined:
                return full
            if full not in named:
                raise ConfigurationError(f"{name}: unknown type {full!r}")
            return walk(named[full], namespace)
        if isinstance(schema, list):
            return [walk(branch, namespace) for branch in schema]
        if not isinstance(schema, dict):
            raise ConfigurationError(f"{name}: not a schema: {schema!r}")
        kind = schema.get("type")
        out = dict(schema)
        if kind in _NAMED_KINDS:
            full = fullname(schema["name"], schema.get("namespace", namespace))
            if full in defined:
                raise ConfigurationError(f"{name}: {full} is defined twice")
            # before the fields, so a recursive type refers to itself by name
            defined.add(full)
            if kind in ("record", "error"):
                inner = _namespace_of(full)
                out["fields"] = [
                    {**field, "type": walk(field["type"], inner)} for field in schema["fields"]
                ]
        elif kind == "array":
            out["items"] = walk(schema["items"], namespace)
        elif kind == "map":
            out["values"] = walk(schema["values"], namespace)
        elif kind in PRIMITIVES:
            pass
        else:
            # {"type": "jp.renkei.X"} is a reference written as an object
            return walk(kind, namespace)
        return out

    if name not in named:
        raise ConfigurationError(f"unknown type {name!r}")
    resolved: dict[str, Any] = walk(name, None)
    # a deep copy, so callers may change the result without touching ``named``
    copied: dict[str, Any] = json.loads(json.dumps(resolved))
    return copied


def released_versions(root: Path = RELEASED_DIR) -> list[tuple[int, Path]]:
    """Every released version under ``root`` as ``(number, folder)``, oldest first."""
    versions: list[tuple[int, Path]] = []
    if root.is_dir():
        for child in root.iterdir():
            match = _VERSION_DIR.match(child.name)
            if match and child.is_dir():
                versions.append((int(match.group(1)), child))
    return sorted(versions)


def canonical_form(schema: Any) -> str:
    """The Parsing Canonical Form of ``schema`` (Avro spec, "Transforming into PCF").

    :param schema: a resolved schema, as :func:`resolve` returns.
    :raises ConfigurationError: fastavro cannot parse the schema.
    """
    try:
        text: str = fastavro.schema.to_parsing_canonical_form(schema)
    except Exception as exc:  # fastavro raises a zoo of types for a bad schema
        raise ConfigurationError(f"schema has no canonical form: {exc}") from exc
    return text


def fingerprint(schema: Any) -> bytes:
    """CRC-64-AVRO of the UTF-8 canonical form of ``schema``: 8 bytes, little-endian.

    Little-endian is the order the single-object encoding carries it in (Java's
    ``SchemaNormalization.parsingFingerprint64`` returns it as a ``long``, which Java's
    single-object encoder writes little-endian); fastavro's hex string is in that order.

    :param schema: a resolved schema, as :func:`resolve` returns.
    :raises ConfigurationError: fastavro cannot parse the schema.
    """
    return bytes.fromhex(fastavro.schema.fingerprint(canonical_form(schema), "CRC-64-AVRO"))
