"""``renkei link enrol`` without a broker: the run's identity, the rows, packing, progress."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub_stream.control import MAX_LINKED_ROWS, LinkedRow, parse_command
from renkei.cli import app
from renkei.errors import ConfigurationError
from renkei.linkage import LinkageInputError
from renkei.linkage.decided import linked_rows, reviewed_rows, run_identity
from renkei.operator.linked_commands import EnrolProgress, pack, progress_path
from schemas import limits

RUN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def _csv(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(header)
        out.writerows(rows)
    return path


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """The outputs of a finished run, written by hand (the matcher has tests of its own)."""
    out = tmp_path / "out"
    (out / ".work").mkdir(parents=True)
    (out / ".work" / "manifest.json").write_text('{"policy": {"link_probability": 0.9999}}')
    (out / ".work" / "model.json").write_text('{"comparisons": []}')
    _csv(out / "linked.csv", ("record_ref", "resident_code", "score"),
         [("A1", "10000000001", "1"), ("A2", "10000000002", "0.99995")])  # fmt: skip
    _csv(out / "review.csv", ("record_ref", "candidates", "reason"),
         [("A3", "10000000003;10000000004", "runner-up too close")])  # fmt: skip
    _csv(out / "not_found.csv", ("record_ref", "reason"), [("A4", "no candidate")])
    return out


def test_the_run_identity_is_stable_and_names_model_and_policy(run_dir: Path) -> None:
    first = run_identity(run_dir)
    assert first == run_identity(run_dir)
    assert len(first) == 32
    (run_dir / ".work" / "model.json").write_text('{"comparisons": [1]}')
    retrained = run_identity(run_dir)
    (run_dir / ".work" / "manifest.json").write_text('{"policy": {"link_probability": 0.99}}')
    assert len({first, retrained, run_identity(run_dir)}) == 3
    (run_dir / ".work" / "model.json").unlink()
    with pytest.raises(LinkageInputError, match=r"model\.json: no such file"):
        run_identity(run_dir)


def test_linked_rows_carry_their_scores(run_dir: Path) -> None:
    rows = linked_rows(run_dir / "linked.csv")
    assert [(r.record_ref, r.resident_code, r.score, r.reviewed_by) for r in rows] == [
        ("A1", "10000000001", 1.0, None), ("A2", "10000000002", 0.99995, None),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (("A1", "10000000001", "high"), "line 2: score is not a probability"),
        (("A1", "10000000001", "nan"), "line 2: score is not a probability"),
        (("A1", "R00000001", "1"), "line 2: resident_code: string_pattern_mismatch"),
        (("A" * 129, "10000000001", "1"), "line 2: record_ref: string_too_long"),
    ],
)
def test_a_row_the_hub_would_refuse_is_an_error_with_its_line(
    tmp_path: Path, row: tuple[str, ...], problem: str
) -> None:
    path = _csv(tmp_path / "linked.csv", ("record_ref", "resident_code", "score"), [row])
    with pytest.raises(LinkageInputError, match=problem) as refused:
        linked_rows(path)
    assert "R00000001" not in str(refused.value)  # personal data is not repeated


def test_reviewed_rows_belong_to_the_run_and_name_their_reviewer(
    run_dir: Path, tmp_path: Path
) -> None:
    header = ("record_ref", "resident_code", "reviewer")
    good = _csv(tmp_path / "ok.csv", header,
                [("A3", "10000000004", "staff-12"), ("A4", "10000000009", "staff-3")])  # fmt: skip
    rows = reviewed_rows(good, run_dir)
    assert [(r.record_ref, r.score, r.reviewed_by) for r in rows] == [
        ("A3", None, "staff-12"), ("A4", None, "staff-3"),
    ]  # fmt: skip
    linked_already = _csv(tmp_path / "bad.csv", header, [("A1", "10000000001", "staff-12")])
    with pytest.raises(LinkageInputError, match="did not send this record to review"):
        reviewed_rows(linked_already, run_dir)
    nobody = _csv(tmp_path / "nobody.csv", header, [("A3", "10000000004", " ")])
    with pytest.raises(LinkageInputError, match="line 2: row: value_error"):
        reviewed_rows(nobody, run_dir)


def _row(i: int, wide: bool = False) -> LinkedRow:
    ref = ("𠀋" * 120 if wide else "R") + f"{i:08d}"  # 4-byte characters: the worst case
    return LinkedRow(record_ref=ref, resident_code=f"{10**10 + i}", score=0.99999)


@pytest.mark.parametrize("wide", [False, True], ids=["short refs", "longest refs"])
def test_commands_stay_under_the_record_limit_signed(wide: bool) -> None:
    rows = [_row(i, wide) for i in range(2_500)]
    commands = pack("jps", RUN, rows, session="s1", capacity="pension_recipient")
    assert [row for c in commands for row in c.rows] == rows  # all, once, in order
    assert all(len(c.rows) <= MAX_LINKED_ROWS for c in commands)
    signed = [c.model_copy(update={"signature": "A" * 88}).to_bytes() for c in commands]
    assert max(len(s) for s in signed) <= limits.MESSAGE_BYTES
    if wide:  # the bytes limit, not the row count, cut these
        assert all(len(c.rows) < MAX_LINKED_ROWS for c in commands)
        assert max(len(s) for s in signed) > limits.MESSAGE_BYTES - 2_000
    assert parse_command(signed[0]) == commands[0].model_copy(update={"signature": "A" * 88})


def test_packing_is_deterministic_per_session() -> None:
    rows = [_row(i) for i in range(1_500)]
    ids = [c.command_id for c in pack("jps", RUN, rows, session="s1")]
    assert ids == [c.command_id for c in pack("jps", RUN, rows, session="s1")]
    assert len(set(ids)) == len(ids) > 1
    assert not set(ids) & {c.command_id for c in pack("jps", RUN, rows, session="s2")}
    with pytest.raises(ConfigurationError, match="agency_id"):
        pack("no.dots", RUN, rows, session="s1")


def test_progress_resumes_the_same_work_only(tmp_path: Path) -> None:
    path = progress_path(tmp_path, "jps")
    work = EnrolProgress.digest("jps", RUN, "", [_row(1)])
    state = EnrolProgress.open(path, work, restart=False)
    state.sent.append(0)
    state.save(path)
    again = EnrolProgress.open(path, work, restart=False)
    assert (again.session, again.sent) == (state.session, [0])
    assert EnrolProgress.open(path, work, restart=True).session != state.session
    other = EnrolProgress.digest("jps", RUN, "", [_row(2)])
    with pytest.raises(ConfigurationError, match="pass --restart"):
        EnrolProgress.open(path, other, restart=False)
    assert json.loads(path.read_text())["sent"] == [0]


def test_cli_enrol_refuses_a_folder_without_a_run(run_dir: Path) -> None:
    (run_dir / ".work" / "manifest.json").unlink()
    result = CliRunner().invoke(
        app, ["link", "enrol", "--agency", "jps", str(run_dir / "linked.csv")]
    )
    assert result.exit_code == 2
    assert "manifest.json: no such file" in result.output.replace("\n", "")  # rich wraps it
    assert not (run_dir / ".enrol").exists()  # nothing was sent or noted
