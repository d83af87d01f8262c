"""Schema evolution: today's schemas read and are read by every released version.

The negative cases copy the current schemas to a temporary folder, make one change there,
and check that Avro's compatibility checker rejects it in the expected direction.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.compat import Direction, check_compatibility, main
from schemas.loader import RELEASED_DIR, SCHEMA_DIR, load_schema_dir, released_versions

Edit = Callable[[dict[str, dict[str, Any]]], None]


def test_there_is_a_released_version() -> None:
    assert [v for v, _ in released_versions()][:1] == [1]


def test_released_versions_are_not_edited_in_place() -> None:
    """A released file is immutable: its types must all still exist and parse."""
    for _version, folder in released_versions():
        assert set(load_schema_dir(folder)) <= set(load_schema_dir(SCHEMA_DIR))


def test_current_schemas_are_compatible_with_every_release_both_ways() -> None:
    assert check_compatibility() == []


def test_main_reports_success(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "compatible with released versions [1" in capsys.readouterr().out


def _changed(tmp_path: Path, edit: Edit) -> Path:
    current = tmp_path / "current"
    shutil.copytree(SCHEMA_DIR, current, ignore=shutil.ignore_patterns("released"))
    named = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in current.glob("*.avsc")}
    edit(named)
    for path in current.glob("*.avsc"):
        path.unlink()
    for name, schema in named.items():
        (current / f"{name}.avsc").write_text(json.dumps(schema), encoding="utf-8")
    return current


def _field(named: dict[str, dict[str, Any]], record: str, field: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        f for f in named[f"jp.renkei.{record}"]["fields"] if f["name"] == field
    )
    return found


def _add_field(default: bool) -> Edit:
    def edit(named: dict[str, dict[str, Any]]) -> None:
        field: dict[str, Any] = {"name": "hint", "type": "string", "doc": "new"}
        if default:
            field["default"] = ""
        named["jp.renkei.HubError"]["fields"].append(field)

    return edit


def _retype(named: dict[str, dict[str, Any]]) -> None:
    _field(named, "HubError", "detail")["type"] = "int"


def _drop_symbol(enum: str, symbol: str) -> Edit:
    def edit(named: dict[str, dict[str, Any]]) -> None:
        named[f"jp.renkei.{enum}"]["symbols"].remove(symbol)

    return edit


def _add_symbol(enum: str) -> Edit:
    def edit(named: dict[str, dict[str, Any]]) -> None:
        named[f"jp.renkei.{enum}"]["symbols"].append("ADOPTED")

    return edit


def _remove_required_field(named: dict[str, dict[str, Any]]) -> None:
    fields = named["jp.renkei.HubError"]["fields"]
    fields.remove(_field(named, "HubError", "detail"))


def _remove_type(named: dict[str, dict[str, Any]]) -> None:
    del named["jp.renkei.DeadLetter"]


def _add_union_branch(named: dict[str, dict[str, Any]]) -> None:
    for record in ("RegistryEvent", "LifeEventNotice"):
        _field(named, record, "body")["type"].append("jp.renkei.PersonMoved2")
    moved = json.loads(json.dumps(named["jp.renkei.PersonMoved"]))
    moved["name"] = "PersonMoved2"
    named["jp.renkei.PersonMoved2"] = moved


@pytest.mark.parametrize(
    ("edit", "broken"),
    [
        pytest.param(
            _add_field(default=False),
            {("jp.renkei.HubError", Direction.BACKWARD)},
            id="field-added-without-default",
        ),
        pytest.param(
            _retype,
            {("jp.renkei.HubError", Direction.BACKWARD), ("jp.renkei.HubError", Direction.FORWARD)},
            id="field-type-changed",
        ),
        pytest.param(
            _drop_symbol("EventAction", "CORRECTION"),
            {("jp.renkei.EventAction", Direction.BACKWARD)},
            id="symbol-removed-from-enum-without-default",
        ),
        pytest.param(
            _drop_symbol("AuditStep", "LATE_ANSWER"),
            {("jp.renkei.AuditStep", Direction.BACKWARD)},
            id="symbol-removed-from-enum-with-default",
        ),
        pytest.param(
            _add_symbol("EventAction"),
            {("jp.renkei.EventAction", Direction.FORWARD)},
            id="symbol-added-to-enum-without-default",
        ),
        pytest.param(
            _remove_required_field,
            {("jp.renkei.HubError", Direction.FORWARD)},
            id="field-without-default-removed",
        ),
        pytest.param(
            _remove_type, {("jp.renkei.DeadLetter", Direction.BACKWARD)}, id="type-removed"
        ),
        pytest.param(
            _add_union_branch,
            {
                ("jp.renkei.RegistryEvent", Direction.FORWARD),
                ("jp.renkei.LifeEventNotice", Direction.FORWARD),
            },
            id="union-branch-added",
        ),
    ],
)
def test_incompatible_changes_are_rejected(
    tmp_path: Path, edit: Edit, broken: set[tuple[str, Direction]]
) -> None:
    problems = check_compatibility(_changed(tmp_path, edit), RELEASED_DIR)
    # a broken type also breaks every record that contains it; the named ones must be there
    assert broken <= {(p.name, p.direction) for p in problems}
    assert all(p.version == 1 and p.messages for p in problems)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(_add_field(default=True), id="field-added-with-default"),
        pytest.param(_add_symbol("EventKind"), id="symbol-added-to-enum-with-unknown-default"),
        pytest.param(_add_symbol("ErrorCode"), id="error-code-added"),
    ],
)
def test_compatible_changes_are_accepted(tmp_path: Path, edit: Edit) -> None:
    assert check_compatibility(_changed(tmp_path, edit), RELEASED_DIR) == []


def test_main_reports_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(_changed(tmp_path, _retype)), str(RELEASED_DIR)]) == 1
    assert "jp.renkei.HubError v1 backward" in capsys.readouterr().out
