"""The directory file: the packaged sample is consistent, broken files are refused clearly."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pydantic
import pytest

from renkei.errors import ConfigurationError
from renkei.operator import directory_file
from renkei.operator.directory_file import (
    LIFE_EVENTS,
    DirectoryFile,
    load_directory_file,
    parse_directory_file,
)
from renkei.topics import Topics
from schemas.models import EventKind

SAMPLE = Path(directory_file.__file__).parent / "data" / "directory.json"


@pytest.fixture
def sample() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return data


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "directory.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def refused(tmp_path: Path, data: object) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_directory_file(write(tmp_path, data))
    return str(caught.value)


def test_packaged_sample_loads() -> None:
    directory = load_directory_file()
    assert isinstance(directory, DirectoryFile)
    assert len(directory.agencies) >= 6
    assert len(directory.scenarios) >= 12
    assert load_directory_file(SAMPLE) == directory


def test_sample_is_modelled_on_the_act() -> None:
    directory = load_directory_file()
    for s in directory.scenarios:
        assert s.legal_basis.startswith("番号法第19条第8号")
        assert set(s.items) <= set(directory.agency(s.provider).items)
        assert s.requester != s.provider
    names = {a.name_ja for a in directory.agencies}
    assert {"日本年金機構", "品川区", "大阪市", "東京都", "日本学生支援機構"} <= names
    # Every agency takes part in at least one scenario, as requester or provider.
    involved = {s.requester for s in directory.scenarios} | {
        s.provider for s in directory.scenarios
    }
    assert involved == {a.agency_id for a in directory.agencies}


def test_entitlements_follow_the_duties() -> None:
    directory = load_directory_file()
    assert set(directory.agency("jps").entitled_events) == set(LIFE_EVENTS)
    assert set(directory.agency("jasso").entitled_events) == {"MOVED", "RENAMED", "DIED"}
    assert "NUMBER_REISSUED" in directory.agency("city-shinagawa").entitled_events


def test_life_events_are_the_contract_event_kinds() -> None:
    assert set(LIFE_EVENTS) == {kind.value for kind in EventKind} - {"UNKNOWN"}


def test_agency_ids_are_usable_as_topic_names() -> None:
    topics = Topics()
    for agency in load_directory_file().agencies:
        assert topics.agency_of(topics.agency_in(agency.agency_id)) == agency.agency_id


def test_lookups() -> None:
    directory = load_directory_file()
    assert directory.scenario("S001").requester == "city-shinagawa"
    assert directory.agency("jps").name_ja == "日本年金機構"
    with pytest.raises(KeyError):
        directory.scenario("S999")
    with pytest.raises(KeyError):
        directory.agency("nobody")


def test_the_models_are_immutable() -> None:
    directory = load_directory_file()
    agency = directory.agency("jps")
    with pytest.raises(pydantic.ValidationError):
        agency.name = "x"
    with pytest.raises(TypeError):
        agency.items["pension.new"] = "x"  # type: ignore[index]  # the point of the test
    # ... and still serialise back to what they were read from.
    assert DirectoryFile.model_validate_json(directory.model_dump_json()) == directory


def test_unknown_agency_and_unoffered_item(tmp_path: Path, sample: dict[str, Any]) -> None:
    sample["scenarios"][0]["provider"] = "city-kyoto"
    sample["scenarios"][2]["items"] = ["pension.benefit_status", "pension.medical_history"]
    message = refused(tmp_path, sample)
    assert "2 problem(s)" in message
    assert "scenario S001: provider 'city-kyoto' is not an agency in this file" in message
    assert "scenario S003: 'jps' does not provide item 'pension.medical_history'" in message
    assert str(tmp_path) in message


def test_duplicate_ids(tmp_path: Path, sample: dict[str, Any]) -> None:
    sample["agencies"].append(copy.deepcopy(sample["agencies"][0]))
    sample["scenarios"][1]["scenario_id"] = "S001"
    message = refused(tmp_path, sample)
    assert "agency 'jps' is defined twice" in message
    assert "scenario S001 is defined twice" in message


def test_an_agency_cannot_ask_itself(tmp_path: Path, sample: dict[str, Any]) -> None:
    sample["scenarios"][0]["provider"] = sample["scenarios"][0]["requester"]
    assert "cannot ask itself" in refused(tmp_path, sample)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("agencies", 0, "agency_id"), "City.Shinagawa", "agencies.0.agency_id"),
        (("agencies", 0, "agency_id"), "x", "agencies.0.agency_id"),
        (("agencies", 0, "entitled_events"), ["MOVED", "BORN"], "entitled_events.1"),
        (("agencies", 0, "entitled_events"), ["MOVED", "MOVED"], "an event twice"),
        (("agencies", 0, "name_ja"), "  ", "agencies.0.name_ja"),
        (("agencies", 0, "items"), {"Pension": "x"}, "agencies.0.items"),
        (("scenarios", 0, "scenario_id"), "1", "scenarios.0.scenario_id"),
        (("scenarios", 0, "items"), [], "scenarios.0.items"),
        (("scenarios", 0, "items"), ["resident_tax.income"] * 2, "an item twice"),
        (("scenarios", 0, "colour"), "red", "Extra inputs are not permitted"),
        (("format_version",), 2, "format_version"),
    ],
)
def test_malformed_fields_are_named(
    tmp_path: Path, sample: dict[str, Any], path: tuple[Any, ...], value: object, expected: str
) -> None:
    target: Any = sample
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    assert expected in refused(tmp_path, sample)


def test_a_repeated_key_is_refused_not_silently_dropped(tmp_path: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8").replace(
        '"name_ja": "日本年金機構",', '"name_ja": "日本年金機構",\n      "name_ja": "年金機構",'
    )
    path = tmp_path / "twice.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError, match="'name_ja' appears twice"):
        load_directory_file(path)


def test_unreadable_and_non_json_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_directory_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        load_directory_file(bad)
    with pytest.raises(ConfigurationError, match="problem"):
        parse_directory_file("[]", source="hub.directory")


def test_public_surface() -> None:
    for name in directory_file.__all__:
        assert hasattr(directory_file, name), name
