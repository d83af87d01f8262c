"""Bulk linkage: renkei link match against a plain exact basic-4 match, on synthetic data.

    python -m benchmarks.linkage [--people 1000000] [--records 1000000] [--seed 7]
                                 [--data DIR] [--batch-size 100000] [--workers 2]

Generates (once; kept in ``DIR``, default ``$RENKEI_HOME/bench/linkage/P-R-SEED``) a
registry and an agency file with :mod:`benchmarks.linkage_data`, then runs on the same
files:

- ``renkei link match`` (:func:`renkei.linkage.match_files`, from scratch: the
  registry prepared and the model trained inside the timing);
- the baseline: the hub's exact matcher (:class:`hub_stream.matching.PersonIndex`) on
  the normalised basic-4 alone, the dates and sexes read by the same parser (without it
  the baseline would fail on every era date).

and prints for each: false links, precision, recall, the share of linkable records
linked automatically, the share sent to review, and records per hour (end to end, and
for the matching phase alone), with the load average before and after. Results are
printed, not asserted; ``docs/benchmarks.md`` records them.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.linkage_data import write
from hub_stream.matching import Basic4, PersonIndex
from renkei.linkage import match_files
from renkei.linkage.dates import parse_birth_date, parse_sex

__all__ = ["Scores", "baseline", "main", "scores"]

_SEX = {1: "MALE", 2: "FEMALE"}


@dataclass(frozen=True, slots=True)
class Scores:
    """One method's results against the truth."""

    method: str
    records: int
    linkable: int
    linked: int
    false_links: int
    review: int
    seconds: float
    match_seconds: float

    def row(self) -> dict[str, object]:
        """The figures docs/benchmarks.md shows."""
        true = self.linked - self.false_links
        return {
            "method": self.method,
            "false links": self.false_links,
            "precision": round(true / self.linked, 6) if self.linked else 1.0,
            "recall": round(true / self.linkable, 4),
            "linked automatically": round(self.linked / self.linkable, 4),
            "review share": round(self.review / self.records, 4),
            "records/hour (end to end)": int(self.records / self.seconds * 3600),
            "records/hour (matching)": int(self.records / self.match_seconds * 3600),
        }


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def scores(
    method: str,
    truth: dict[str, str],
    linked: dict[str, str],
    review: int,
    seconds: float,
    match_seconds: float,
) -> Scores:
    """Compare ``linked`` (record → resident code) with ``truth`` (record → code or '')."""
    false = sum(1 for ref, code in linked.items() if truth[ref] != code)
    linkable = sum(1 for code in truth.values() if code)
    return Scores(method, len(truth), linkable, len(linked), false, review, seconds, match_seconds)


def _basic4(row: dict[str, str]) -> Basic4 | None:
    born, sex = parse_birth_date(row["birth_date"]), parse_sex(row["sex"])
    if born is None or sex is None:
        return None
    return Basic4(row["name"], row["name_kana"], born, _SEX[sex], row["address"])


def baseline(data: Path) -> tuple[dict[str, str], int, float, float]:
    """The exact basic-4 match: (links, ambiguous count, seconds, matching seconds)."""
    began = time.monotonic()
    index = PersonIndex()
    codes: dict[bytes, str] = {}
    for row in _rows(data / "registry.csv"):
        person = row["resident_code"].encode()
        basic4 = _basic4(row)
        if basic4 is not None:
            index.add(person, basic4, None)
            codes[person] = row["resident_code"]
    matching = time.monotonic()
    linked: dict[str, str] = {}
    ambiguous = 0
    for row in _rows(data / "records.csv"):
        basic4 = _basic4(row)
        if basic4 is None:
            continue
        result = index.resolve(None, basic4)
        if result.outcome == "LINKED" and result.person_id is not None:
            linked[row["record_ref"]] = codes[result.person_id]
        ambiguous += result.outcome == "AMBIGUOUS"
    end = time.monotonic()
    return linked, ambiguous, end - began, end - matching


def _ours(data: Path, batch_size: int, workers: int) -> tuple[dict[str, str], int, float, float]:
    marks: dict[str, float] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "match" and "match" not in marks:
            marks["match"] = time.monotonic()
        print(f"  {dt.datetime.now():%H:%M:%S} {phase} {done}/{total}", flush=True)

    out = data / "out"
    began = time.monotonic()
    summary = match_files(
        data / "registry.csv",
        data / "records.csv",
        out,
        batch_size=batch_size,
        workers=workers,
        restart=True,
        progress=progress,
    )
    end = time.monotonic()
    linked = {r["record_ref"]: r["resident_code"] for r in _rows(out / "linked.csv")}
    return linked, summary.review, end - began, end - marks.get("match", began)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark of the module docstring; print a table and one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.linkage")
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    home = Path(os.environ.get("RENKEI_HOME", ".renkei"))
    data = args.data or home / "bench" / "linkage" / f"{args.people}-{args.records}-{args.seed}"
    if not (data / "truth.csv").exists():
        print(f"generating {args.people} people, {args.records} records into {data} …")
        write(data, args.people, args.records, args.seed)
    truth = {r["record_ref"]: r["resident_code"] for r in _rows(data / "truth.csv")}
    load_before = os.getloadavg()
    print("renkei link match …", flush=True)
    ours = scores("renkei link match", truth, *_ours(data, args.batch_size, args.workers))
    print("exact basic-4 …", flush=True)
    base = scores("exact basic-4 (baseline)", truth, *baseline(data))
    load_after = os.getloadavg()
    rows = [ours.row(), base.row()]
    print(f"\n{args.people} registry persons, {len(truth)} records, {ours.linkable} linkable")
    for key in rows[0]:
        print(f"  {key:<28} {rows[0][key]!s:>20} {rows[1][key]!s:>26}")
    print(f"  load average before {load_before}, after {load_after}")
    print(json.dumps({"people": args.people, "records": len(truth), "results": rows,
                      "load_before": load_before, "load_after": load_after}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
