"""The pydantic models mirror the Avro schemas one to one, and the contract's tables follow them.

The comparison derives a neutral description of every field from both sides (name, order,
type, optionality, default) and lists each disagreement. The negative cases at the end
build drifted models and schemas to prove that the comparison notices.
"""

from __future__ import annotations

import json
import types
import typing
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import annotated_types
import pytest
from pydantic import AfterValidator, create_model
from pydantic.fields import FieldInfo

from schemas.docgen import BEGIN, END, render
from schemas.loader import NAMESPACE, PRIMITIVES, SCHEMA_DIR, load_schema_dir
from schemas.models import (
    ENUM_TYPES,
    MESSAGE_TYPES,
    RECORD_TYPES,
    AvroRecord,
    HubError,
    Message,
    Sex,
)

NAMED = load_schema_dir(SCHEMA_DIR)
CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

Desc = tuple[Any, ...]


# -- describing both sides --------------------------------------------------------------


def describe_avro(schema: Any, named: dict[str, dict[str, Any]]) -> Desc:
    """A neutral description of an Avro field type."""
    if isinstance(schema, list):
        return ("union", tuple(describe_avro(branch, named) for branch in schema))
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return (schema,)
        return (named[schema]["type"], schema)
    if "logicalType" in schema:
        return (schema["logicalType"],)
    if schema["type"] == "array":
        return ("array", describe_avro(schema["items"], named))
    return describe_avro(schema["type"], named)


def _bounds(metadata: list[Any]) -> tuple[Any, Any]:
    low = next((m.ge for m in metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in metadata if isinstance(m, annotated_types.Le)), None)
    return low, high


def describe_python(annotation: Any, metadata: list[Any]) -> Desc:
    """A neutral description of a model field's annotation (and its Annotated metadata)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *more = typing.get_args(annotation)
        return describe_python(inner, [*metadata, *more])
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        # Avro puts null first (a null default must match the first branch)
        ordered = [a for a in args if a is type(None)] + [a for a in args if a is not type(None)]
        return ("union", tuple(describe_python(a, []) for a in ordered))
    if origin is tuple:
        item, ellipsis = typing.get_args(annotation)
        assert ellipsis is Ellipsis, "arrays are tuple[X, ...]"
        return ("array", describe_python(item, []))
    if annotation is type(None):
        return ("null",)
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return ("enum", f"{NAMESPACE}.{annotation.__name__}")
    if isinstance(annotation, type) and issubclass(annotation, AvroRecord):
        return ("record", annotation.avro_name)
    if annotation is bool:
        return ("boolean",)
    if annotation is int:
        bounds = _bounds(metadata)
        if bounds == INT32:
            return ("int",)
        if bounds == INT64:
            return ("long",)
        return ("unbounded int", bounds)
    if annotation is float:
        return ("double",)
    if annotation is str:
        return ("string",)
    if annotation is bytes:
        return ("bytes",)
    if annotation is datetime:
        normalised = any(
            isinstance(m, AfterValidator) and m.func.__name__ == "_utc_ms" for m in metadata
        )
        return ("timestamp-millis",) if normalised else ("datetime without TimestampMs",)
    if annotation is date:
        return ("date",)
    return ("unmapped", repr(annotation))


_NO_DEFAULT = object()


def _python_default(info: FieldInfo) -> Any:
    if info.is_required():
        return _NO_DEFAULT
    value = info.default
    return value.value if isinstance(value, StrEnum) else value


def compare_record(
    schema: dict[str, Any], model: type[AvroRecord], named: dict[str, Any]
) -> list[str]:
    """Every disagreement between a record schema and its model; empty when they mirror."""
    problems: list[str] = []
    name = f"{schema.get('namespace', NAMESPACE)}.{schema['name']}"
    if model.avro_name != name:
        problems.append(f"{model.__name__}.avro_name is {model.avro_name}, schema is {name}")
    avro_fields = [f["name"] for f in schema["fields"]]
    model_fields = list(model.model_fields)
    if avro_fields != model_fields:
        problems.append(f"{name}: fields {avro_fields} (schema) != {model_fields} (model)")
    infos = model.model_fields
    for field in schema["fields"]:
        info = infos.get(field["name"])
        if info is None:
            continue
        where = f"{name}.{field['name']}"
        want = describe_avro(field["type"], named)
        got = describe_python(info.annotation, list(info.metadata))
        if want != got:
            problems.append(f"{where}: type {want} (schema) != {got} (model)")
        avro_default = field.get("default", _NO_DEFAULT)
        if (
            avro_default != _python_default(info)
            or (avro_default is _NO_DEFAULT) != info.is_required()
        ):
            problems.append(f"{where}: default {avro_default!r} (schema) != {info.default!r}")
    return problems


def compare_enum(schema: dict[str, Any], enum: type[StrEnum]) -> list[str]:
    symbols = [member.value for member in enum]
    if schema["symbols"] != symbols:
        return [f"{schema['name']}: symbols {schema['symbols']} != {symbols}"]
    if schema["name"] != enum.__name__:
        return [f"enum {enum.__name__} mirrors {schema['name']}"]
    return []


# -- the real models --------------------------------------------------------------------

RECORDS = {model.avro_name: model for model in RECORD_TYPES}
ENUMS = {f"{NAMESPACE}.{enum.__name__}": enum for enum in ENUM_TYPES}


def test_every_schema_has_a_model_and_every_model_a_schema() -> None:
    schema_records = {n for n, s in NAMED.items() if s["type"] == "record"}
    schema_enums = {n for n, s in NAMED.items() if s["type"] == "enum"}
    assert set(RECORDS) == schema_records
    assert set(ENUMS) == schema_enums


def test_top_level_messages_are_exactly_the_records_that_start_with_a_header() -> None:
    with_header = {
        name
        for name, s in NAMED.items()
        if s["type"] == "record"
        and s["fields"][0] == {**s["fields"][0], "name": "header", "type": f"{NAMESPACE}.Header"}
    }
    assert {m.avro_name for m in MESSAGE_TYPES} == with_header
    assert all(issubclass(m, Message) for m in MESSAGE_TYPES)


@pytest.mark.parametrize("name", sorted(n for n, s in NAMED.items() if s["type"] == "record"))
def test_record_model_mirrors_its_schema(name: str) -> None:
    assert compare_record(NAMED[name], RECORDS[name], NAMED) == []


@pytest.mark.parametrize("name", sorted(n for n, s in NAMED.items() if s["type"] == "enum"))
def test_enum_mirrors_its_schema(name: str) -> None:
    assert compare_enum(NAMED[name], ENUMS[name]) == []


@pytest.mark.parametrize("name", sorted(NAMED))
def test_every_type_and_field_is_documented(name: str) -> None:
    schema = NAMED[name]
    assert schema.get("doc", "").strip(), name
    for field in schema.get("fields", []):
        assert field.get("doc", "").strip(), f"{name}.{field['name']}"


@pytest.mark.parametrize("name", sorted(n for n, s in NAMED.items() if s["type"] == "enum"))
def test_open_enums_have_an_unknown_default(name: str) -> None:
    """Where new symbols may come, old readers need somewhere to put them."""
    schema = NAMED[name]
    if "UNKNOWN" in schema["symbols"]:
        assert schema.get("default") == "UNKNOWN"
    if "default" in schema:
        assert schema["default"] in schema["symbols"]


@pytest.mark.parametrize("name", sorted(n for n, s in NAMED.items() if s["type"] == "record"))
def test_nullable_fields_default_to_null(name: str) -> None:
    """Fields that may be null can also be removed or added later without breaking anyone."""
    for field in NAMED[name]["fields"]:
        if isinstance(field["type"], list) and "null" in field["type"]:
            assert field["type"][0] == "null", f"{name}.{field['name']}"
            assert field.get("default", _NO_DEFAULT) is None, f"{name}.{field['name']}"


def test_contract_reference_tables_are_generated_from_the_schemas() -> None:
    text = CONTRACT.read_text(encoding="utf-8")
    start = text.index(BEGIN)
    end = text.index(END) + len(END)
    assert text[start:end] + "\n" == render(), "run: python -m schemas.docgen docs/contract.md"


# -- negative cases: the comparison must notice drift -----------------------------------


def _hub_error_schema() -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(NAMED["jp.renkei.HubError"]))
    return copied


def test_a_field_added_to_the_model_only_is_noticed() -> None:
    drifted = create_model("HubErrorPlus", __base__=HubError, hint=(str | None, None))
    problems = compare_record(NAMED["jp.renkei.HubError"], drifted, NAMED)
    assert any("fields" in p and "hint" in p for p in problems)


def test_a_field_added_to_the_schema_only_is_noticed() -> None:
    schema = _hub_error_schema()
    schema["fields"].append({"name": "hint", "type": ["null", "string"], "default": None})
    problems = compare_record(schema, HubError, NAMED)
    assert any("fields" in p and "hint" in p for p in problems)


def test_a_changed_type_is_noticed() -> None:
    schema = _hub_error_schema()
    schema["fields"][2]["type"] = "bytes"  # detail
    assert compare_record(schema, HubError, NAMED) == [
        "jp.renkei.HubError.detail: type ('bytes',) (schema) != ('string',) (model)"
    ]


def test_int_and_long_are_told_apart() -> None:
    schema = json.loads(json.dumps(NAMED["jp.renkei.AuditCheckpoint"]))
    schema["fields"][1]["type"] = "long"  # partition is an int
    model = RECORDS["jp.renkei.AuditCheckpoint"]
    assert len(compare_record(schema, model, NAMED)) == 1


def test_a_changed_order_is_noticed() -> None:
    schema = _hub_error_schema()
    schema["fields"][1], schema["fields"][2] = schema["fields"][2], schema["fields"][1]
    assert any("fields" in p for p in compare_record(schema, HubError, NAMED))


def test_a_changed_default_is_noticed() -> None:
    schema = _hub_error_schema()
    del schema["fields"][3]["default"]  # request_id
    assert any("default" in p for p in compare_record(schema, HubError, NAMED))
    dropped = create_model("HubErrorRequired", __base__=HubError, request_id=(str | None, ...))
    assert any("default" in p for p in compare_record(_hub_error_schema(), dropped, NAMED))


def test_an_optional_field_made_required_in_python_is_noticed() -> None:
    drifted = create_model("HubErrorStrict", __base__=HubError, request_id=(str, ...))
    problems = compare_record(_hub_error_schema(), drifted, NAMED)
    assert any("request_id: type" in p for p in problems)


def test_an_enum_symbol_added_on_one_side_is_noticed() -> None:
    grown = StrEnum("Sex", [*(m.value for m in Sex), "OTHER"])  # type: ignore[misc]
    assert compare_enum(NAMED["jp.renkei.Sex"], grown) != []
