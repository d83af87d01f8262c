"""The registry's feed file: what it accepts, the ids it derives, how it refuses a bad line."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from producers.population import generate_population
from producers.registry_feed import read_feed
from renkei.errors import ContractError

PERSON = generate_population(1, seed=3)[0]
REGISTER = {
    "resident_code": PERSON.resident_code, "my_number": PERSON.my_number, "name": PERSON.name,
    "name_kana": PERSON.name_kana, "birth_date": PERSON.birth_date.isoformat(),
    "sex": PERSON.sex, "address": PERSON.address,
}  # fmt: skip
MOVE = {"action": "move", "resident_code": PERSON.resident_code, "address": "東京都品川区1-1",
        "effective_date": "2026-04-01"}  # fmt: skip


def _csv(path: Path, rows: list[dict[str, str]]) -> Path:
    columns = sorted({k for row in rows for k in row})
    lines = [",".join(columns)] + [",".join(row.get(c, "") for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_and_jsonl_give_the_same_events_with_stable_derived_ids(tmp_path: Path) -> None:
    from_csv = read_feed(_csv(tmp_path / "persons.csv", [REGISTER, MOVE]))
    jsonl = tmp_path / "persons.jsonl"
    jsonl.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [REGISTER, MOVE]))
    from_jsonl = read_feed(jsonl)
    assert [e.action for e in from_csv] == ["register", "move"]
    assert [e.event_id for e in from_csv] == [e.event_id for e in from_jsonl]
    assert from_csv[0].effective_date == PERSON.birth_date  # register defaults to birth
    assert from_csv[1].effective_date == date(2026, 4, 1)
    assert from_csv[0].event_id != from_csv[1].event_id
    assert read_feed(tmp_path / "persons.csv")[0].event_id == from_csv[0].event_id
    given = read_feed(_csv(tmp_path / "given.csv", [{**REGISTER, "event_id": "reg-1"}]))
    assert given[0].event_id == "reg-1"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({**REGISTER, "action": "adopt"}, r"persons\.csv:2: action 'adopt' is not one of"),
        ({k: v for k, v in REGISTER.items() if k != "address"}, r":2: register needs address"),
        ({**REGISTER, "birth_date": "1.2.1990"}, r":2: birth_date '1\.2\.1990' is not an ISO"),
        ({**REGISTER, "my_number": "123456789012"}, r":2: .*my_number|:2: .*check digit"),
        ({**REGISTER, "sex": "X"}, r":2: 'X' is not a valid Sex"),
        ({**MOVE, "effective_date": ""}, r":2: move needs effective_date"),
        ({**MOVE, "resident_code": ""}, r":2: resident_code is missing"),
    ],
)
def test_a_bad_line_is_refused_naming_file_line_and_field(
    tmp_path: Path, row: dict[str, str], message: str
) -> None:
    with pytest.raises(ContractError, match=message):
        read_feed(_csv(tmp_path / "persons.csv", [row]))


def test_a_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "persons.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(ContractError, match=r"must be \.csv or \.jsonl"):
        read_feed(path)
    with pytest.raises(ContractError, match="cannot read the feed"):
        read_feed(tmp_path / "missing.csv")
