"""``renkei link match`` end to end on small synthetic data (splink on DuckDB, no broker)."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from benchmarks.linkage_data import write
from renkei.cli import app
from renkei.linkage import LinkageInputError, ResumeMismatchError, match_files
from renkei.linkage.tables import REGISTRY_COLUMNS, read_table

HEADER = ("record_ref", "my_number", "name", "name_kana", "birth_date", "sex", "address")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3,000-person registry and 800 agency records, plus records written by hand."""
    directory = tmp_path_factory.mktemp("linkage")
    write(directory, people=3000, records=800, seed=11)
    registry = {r["resident_code"]: r for r in _rows(directory / "registry.csv")}
    # A family at one address: the records below are written the way agencies do.
    family = [r for r in registry.values() if r["address"]]
    households: dict[str, list[dict[str, str]]] = {}
    for person in family:
        households.setdefault(person["address"], []).append(person)
    pair = next(
        h for h in households.values() if len(h) >= 2 and h[0]["birth_date"] != h[1]["birth_date"]
    )
    mother, son = pair[0], pair[1]
    extra = [
        # Her own items, but the number of another member of the household.
        ("X-family-number", son["my_number"], mother["name"], mother["name_kana"],
         mother["birth_date"], mother["sex"], mother["address"]),
        # Her number, nothing else of hers.
        ("X-number-alone", mother["my_number"], "山田 太郎", "ヤマダ タロウ", "1901-01-01", "1",
         "沖縄県那覇市泉崎1-1-1"),
        # Her items in the era form, half-width kana, no prefecture.
        ("X-era", "", mother["name"].replace("\u3000", ""), mother["name_kana"],
         _era(mother["birth_date"]), {"1": "男", "2": "女"}[mother["sex"]],
         mother["address"].split("県")[-1].split("都")[-1].split("府")[-1]),
    ]  # fmt: skip
    with (directory / "records.csv").open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(extra)
    with (directory / "truth.csv").open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(
            [
                ("X-family-number", mother["resident_code"]),
                ("X-number-alone", ""),
                ("X-era", mother["resident_code"]),
            ]
        )
    return directory


def _era(iso: str) -> str:
    year, month, day = (int(x) for x in iso.split("-"))
    if (year, month, day) >= (1989, 1, 8):
        return f"平成{year - 1988}年{month}月{day}日"
    return f"S{year - 1925}.{month}.{day}"


@pytest.fixture(scope="module")
def result(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out")
    match_files(data / "registry.csv", data / "records.csv", out, batch_size=300)
    return out


def test_no_false_links_and_most_records_link(data: Path, result: Path) -> None:
    truth = {r["record_ref"]: r["resident_code"] for r in _rows(data / "truth.csv")}
    linked = _rows(result / "linked.csv")
    wrong = [r for r in linked if truth[r["record_ref"]] != r["resident_code"]]
    assert wrong == []
    linkable = sum(1 for code in truth.values() if code)
    assert len(linked) / linkable > 0.9


def test_every_record_is_decided_exactly_once(data: Path, result: Path) -> None:
    refs = [r["record_ref"] for r in _rows(data / "records.csv")]
    decided = [
        r["record_ref"]
        for name in ("linked.csv", "review.csv", "not_found.csv")
        for r in _rows(result / name)
    ]
    assert sorted(decided) == sorted(refs)


def test_a_family_members_number_goes_to_review(result: Path) -> None:
    review = {r["record_ref"]: r for r in _rows(result / "review.csv")}
    assert "X-family-number" in review
    assert "My Number" in review["X-family-number"]["reason"]


def test_a_number_alone_never_links(result: Path) -> None:
    linked = {r["record_ref"] for r in _rows(result / "linked.csv")}
    assert "X-number-alone" not in linked


def test_era_dates_width_and_a_missing_prefecture_still_link(data: Path, result: Path) -> None:
    truth = {r["record_ref"]: r["resident_code"] for r in _rows(data / "truth.csv")}
    linked = {r["record_ref"]: r["resident_code"] for r in _rows(result / "linked.csv")}
    assert linked.get("X-era") == truth["X-era"]


def test_outputs_have_the_documented_columns(result: Path) -> None:
    assert _rows(result / "linked.csv")[0].keys() == {"record_ref", "resident_code", "score"}
    assert list(_rows(result / "review.csv")[0]) == ["record_ref", "candidates", "reason"]
    assert list(_rows(result / "not_found.csv")[0]) == ["record_ref", "reason"]


def test_a_resumed_run_reuses_finished_batches_and_agrees(data: Path, result: Path) -> None:
    work = result / ".work"
    batches = sorted(work.glob("batch-*.parquet"))
    assert len(batches) == 3  # 803 records in batches of 300
    before = (result / "linked.csv").read_bytes()
    batches[-1].unlink()  # as if the run had been killed during the last batch
    (result / "linked.csv").unlink()
    summary = match_files(data / "registry.csv", data / "records.csv", result, batch_size=300)
    assert summary.batches_resumed == 2
    assert (result / "linked.csv").read_bytes() == before


def test_workers_do_not_change_the_result(data: Path, result: Path, tmp_path: Path) -> None:
    out = tmp_path / "two"
    match_files(data / "registry.csv", data / "records.csv", out, batch_size=300, workers=2)
    for name in ("linked.csv", "review.csv", "not_found.csv"):
        assert (out / name).read_bytes() == (result / name).read_bytes()


def test_a_registry_table_links_as_its_file_does(data: Path, result: Path, tmp_path: Path) -> None:
    # --registry-topic hands match_files the table folded from the feed.
    table = read_table(data / "registry.csv", REGISTRY_COLUMNS)
    out = tmp_path / "table"
    match_files(table, data / "records.csv", out, batch_size=300)
    assert (out / "linked.csv").read_bytes() == (result / "linked.csv").read_bytes()


def test_other_inputs_refuse_to_resume(data: Path, result: Path) -> None:
    with pytest.raises(ResumeMismatchError):
        match_files(data / "registry.csv", data / "records.csv", result, batch_size=100)


def test_parquet_in_and_out(data: Path, tmp_path: Path) -> None:
    records = tmp_path / "records.parquet"
    table = pacsv.read_csv(data / "records.csv").slice(0, 200)
    pq.write_table(table.cast(table.schema), records)  # numbers as integers: read as text
    registry = tmp_path / "registry.parquet"
    pq.write_table(pacsv.read_csv(data / "registry.csv"), registry)
    summary = match_files(registry, records, tmp_path / "out", output_format="parquet")
    assert summary.records == 200
    # The numbers were stored as integers; those that begin with 0 must still match.
    assert pq.read_table(registry).schema.field("my_number").type == "int64"
    numbers = read_table(registry, REGISTRY_COLUMNS).column("my_number").to_pylist()
    assert all(len(n) == 12 for n in numbers)
    assert any(n.startswith("0") for n in numbers)
    assert pq.read_table(tmp_path / "out" / "linked.parquet").column_names == [
        "record_ref",
        "resident_code",
        "score",
    ]


def test_a_missing_column_is_a_clear_error(data: Path, tmp_path: Path) -> None:
    bad = tmp_path / "records.csv"
    bad.write_text("record_ref,name\nA1,佐藤 花子\n", encoding="utf-8")
    with pytest.raises(LinkageInputError, match="missing column"):
        match_files(data / "registry.csv", bad, tmp_path / "out")


def test_a_registry_table_without_a_column_is_a_clear_error(data: Path, tmp_path: Path) -> None:
    table = read_table(data / "registry.csv", REGISTRY_COLUMNS).drop_columns(["birth_date"])
    with pytest.raises(LinkageInputError, match="lacks column"):
        match_files(table, data / "records.csv", tmp_path / "out")


def test_a_repeated_record_ref_is_a_clear_error(data: Path, tmp_path: Path) -> None:
    bad = tmp_path / "records.csv"
    row = "A1,,佐藤 花子,サトウ ハナコ,1980-01-01,2,東京都品川区広町2-1-36\n"
    bad.write_text(",".join(HEADER) + "\n" + row + row, encoding="utf-8")
    with pytest.raises(LinkageInputError, match="repeats"):
        match_files(data / "registry.csv", bad, tmp_path / "out")


def test_cli_match_refuses_unclear_inputs(data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["link", "match", "--registry", str(tmp_path / "none.csv")]
    args += ["--records", str(data / "records.csv"), "--out", str(tmp_path)]
    missing = runner.invoke(app, args)
    assert missing.exit_code == 2
    assert "no such file" in missing.output
    neither = runner.invoke(app, ["link", "match", *args[4:]])
    assert neither.exit_code == 2
    assert "exactly one of --registry and --registry-topic" in neither.output
    both = runner.invoke(app, [*args, "--registry-topic", "registry.events"])
    assert both.exit_code == 2
    assert "exactly one" in both.output
