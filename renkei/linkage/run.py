"""``renkei link match``: a whole run, resumable, with progress.

Everything a run has done lives in ``OUT/.work/``:

- ``manifest.json`` — the inputs (path, size, modification time), the batch size and
  the policy; a later run over other inputs refuses to resume (``--restart`` clears it);
- ``registry.parquet`` — the registry's comparison columns (prepared once);
- ``model.json`` — the trained splink model (trained once, on a sample of the records);
- ``batch-NNNNN.parquet`` — the decisions of one batch of records, written atomically.

A run that is interrupted (Ctrl-C, a crash, a killed process) starts again where it
stopped: finished batches are read back, not redone, and every step is deterministic, so
the result is the same as an uninterrupted run's. When all batches are done the three
outputs are assembled from them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from splink import DuckDBAPI

from .decide import Policy
from .errors import LinkageInputError, ResumeMismatchError
from .model import term_frequencies, train
from .score import DECISION_SCHEMA, score_batch
from .tables import RECORD_COLUMNS, REGISTRY_COLUMNS, OutputFormat, read_table, write_table
from .workers import Pending, Preparer

__all__ = ["Progress", "Summary", "match_files"]

_VERSION: Final = 1
_TRAINING_SAMPLE: Final = 50_000

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)``; phases: prepare, train, match."""


@dataclass(frozen=True, slots=True)
class Summary:
    """What a run decided, by outcome, and where it wrote it."""

    linked: int
    review: int
    not_found: int
    batches_resumed: int
    outputs: tuple[Path, ...]

    @property
    def records(self) -> int:
        """Records decided."""
        return self.linked + self.review + self.not_found


def _fingerprint(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _open_work(out: Path, manifest: dict[str, Any], restart: bool) -> Path:
    work = out / ".work"
    if restart and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    path = work / "manifest.json"
    if path.exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        if previous != manifest:
            raise ResumeMismatchError(
                f"{out} holds partial work of a run over other inputs or settings; "
                "pass --restart to discard it, or choose another --out"
            )
    else:
        path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return work


def _check_ids(table: pa.Table, column: str) -> None:
    ids = table.column(column)
    if pc.any(pc.equal(pc.utf8_trim_whitespace(ids), "")).as_py():
        raise LinkageInputError(f"{column} is empty on some rows")
    if pc.count_distinct(ids).as_py() != len(ids):
        raise LinkageInputError(f"{column} repeats on some rows")


def _registry_features(work: Path, registry: Path | pa.Table, preparer: Preparer) -> pa.Table:
    cached = work / "registry.parquet"
    if cached.exists():
        return pq.read_table(cached)
    raw = read_table(registry, REGISTRY_COLUMNS) if isinstance(registry, Path) else registry
    if missing := [c for c in REGISTRY_COLUMNS if c not in raw.column_names]:
        raise LinkageInputError(f"the registry table lacks column(s) {', '.join(missing)}")
    _check_ids(raw, "resident_code")
    features = preparer.prepare(raw, "registry")
    write_table(features, cached)
    return features


def _model(
    work: Path,
    db: DuckDBAPI,
    registry: Any,
    records: pa.Table,
    frequencies: dict[str, Any],
    preparer: Preparer,
) -> dict[str, Any]:
    cached = work / "model.json"
    if cached.exists():
        model: dict[str, Any] = json.loads(cached.read_text(encoding="utf-8"))
        return model
    # Every n-th record, so the sample spreads over the whole file, the same every run.
    step = max(1, records.num_rows // _TRAINING_SAMPLE)
    sample = preparer.prepare(records.take(list(range(0, records.num_rows, step))), "records")
    sample_df = db.register(sample, table_name="training_records", dataset_display_name="records")
    model = train(db, registry, sample_df, frequencies)
    sample_df.drop_table_from_database_and_remove_from_cache(force_non_splink_table=True)
    partial = cached.with_name("model.json.partial")
    partial.write_text(json.dumps(model, ensure_ascii=False, indent=1), encoding="utf-8")
    partial.replace(cached)
    return model


def _source(source: Path | pa.Table) -> dict[str, Any] | str:
    """What identifies an input for resuming: a file's stat, a table's content hash."""
    if isinstance(source, Path):
        return _fingerprint(source) if source.exists() else str(source)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, source.schema) as writer:
        writer.write_table(source)
    return {"sha256": hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()}


def match_files(
    registry: Path | pa.Table,
    records: Path,
    out: Path,
    *,
    output_format: OutputFormat = "csv",
    batch_size: int = 100_000,
    policy: Policy | None = None,
    restart: bool = False,
    workers: int = 1,
    progress: Progress | None = None,
) -> Summary:
    """Link every record of ``records`` to ``registry``; write the three outputs to ``out``.

    :param registry: the person table's file, or the table itself (as
        :func:`~.registry_events.read_registry_topic` returns it).
    :param workers: processes that prepare rows (:class:`~.workers.Preparer`); the
        result does not depend on it.
    :raises LinkageInputError: an input is missing, unreadable, lacks a column or repeats
        an id.
    :raises ResumeMismatchError: ``out`` holds another run's partial work.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    policy = policy or Policy()
    report = progress or (lambda _phase, _done, _total: None)
    logging.getLogger("splink").setLevel(logging.ERROR)
    manifest = {
        "version": _VERSION,
        "registry": _source(registry),
        "records": _source(records),
        "batch_size": batch_size,
        "policy": asdict(policy),
    }
    raw = read_table(records, RECORD_COLUMNS)
    _check_ids(raw, "record_ref")
    work = _open_work(out, manifest, restart)
    with Preparer(workers) as preparer:
        report("prepare", 0, 1)
        reg = _registry_features(work, registry, preparer)
        report("prepare", 1, 1)
        db = DuckDBAPI()
        reg_df = db.register(reg, table_name="registry", dataset_display_name="registry")
        report("train", 0, 1)
        frequencies = term_frequencies(db, reg_df)
        model = _model(work, db, reg_df, raw, frequencies, preparer)
        report("train", 1, 1)
        batches = _Batches(work, raw, batch_size)

        def score(index: int, chunk: pa.Table) -> pa.Table:
            chunk_df = db.register(chunk, table_name=f"records_{index:05d}",
                                   dataset_display_name="records")  # fmt: skip
            refs = chunk.column("uid").to_pylist()
            decided = score_batch(db, reg_df, chunk_df, refs, model, frequencies, policy)
            chunk_df.drop_table_from_database_and_remove_from_cache(force_non_splink_table=True)
            return decided

        batches.run(preparer, score, report)
    tables = [pq.read_table(p) for p in batches.paths]
    decisions = pa.concat_tables(tables) if tables else DECISION_SCHEMA.empty_table()
    return _write_outputs(decisions, out, output_format, batches.resumed)


class _Batches:
    """The records cut into batches, each done once and kept as ``batch-NNNNN.parquet``."""

    def __init__(self, work: Path, raw: pa.Table, size: int) -> None:
        self.raw, self.size = raw, size
        starts = range(0, raw.num_rows, size)
        self.paths = [work / f"batch-{i:05d}.parquet" for i in range(len(starts))]
        self.todo = [(i, start) for i, start in enumerate(starts) if not self.paths[i].exists()]
        self.resumed = len(self.paths) - len(self.todo)

    def run(
        self,
        preparer: Preparer,
        score: Callable[[int, pa.Table], pa.Table],
        report: Progress,
    ) -> None:
        """Prepare each batch while the one before is scored; write each as it is done."""
        total = self.raw.num_rows
        done = min(total, self.resumed * self.size) if self.todo else total
        report("match", done, total)
        pending: Pending | None = None
        for k, (index, start) in enumerate(self.todo):
            chunk = (pending or preparer.submit(self._slice(start), "records")).result()
            following = self.todo[k + 1][1] if k + 1 < len(self.todo) else None
            pending = (
                None if following is None else preparer.submit(self._slice(following), "records")
            )
            write_table(score(index, chunk), self.paths[index])
            done += chunk.num_rows
            report("match", done, total)

    def _slice(self, start: int) -> pa.Table:
        return self.raw.slice(start, self.size)


def _write_outputs(decisions: pa.Table, out: Path, fmt: OutputFormat, resumed: int) -> Summary:
    outcome = decisions.column("outcome")
    linked = decisions.filter(pc.equal(outcome, "LINKED"))
    review = decisions.filter(pc.equal(outcome, "REVIEW"))
    missing = decisions.filter(pc.equal(outcome, "NOT_FOUND"))
    suffix = "parquet" if fmt == "parquet" else "csv"
    outputs = (out / f"linked.{suffix}", out / f"review.{suffix}", out / f"not_found.{suffix}")
    write_table(linked.select(["record_ref", "resident_code", "score"]), outputs[0])
    write_table(review.select(["record_ref", "candidates", "reason"]), outputs[1])
    write_table(missing.select(["record_ref", "reason"]), outputs[2])
    return Summary(linked.num_rows, review.num_rows, missing.num_rows, resumed, outputs)
