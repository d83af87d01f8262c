"""The Python half of the work — preparing rows — in worker processes.

Normalising names and addresses is pure Python and holds the GIL, so on a machine with
two cores it runs twice as fast in two processes. The pool also lets a run prepare the
next batch of records while DuckDB scores the current one. Results come back in input
order, so a run's output does not depend on the number of workers.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType

import pyarrow as pa

from .prepare import Kind, prepare

__all__ = ["Pending", "Preparer"]

_SLICES_PER_WORKER = 2


class Pending:
    """A table being prepared: the slices' futures, or the table itself."""

    def __init__(self, parts: list[Future[pa.Table]], done: pa.Table | None) -> None:
        self._parts = parts
        self._done = done

    def result(self) -> pa.Table:
        """The prepared table, in input order (raises what preparing raised)."""
        if self._done is None:
            self._done = pa.concat_tables([p.result() for p in self._parts])
        return self._done


class Preparer:
    """:func:`~renkei.linkage.prepare.prepare`, over ``workers`` processes.

    :param workers: processes to use; 1 prepares in this process, with no pool.
    """

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._workers = workers
        # spawn, not fork: the parent runs DuckDB's threads, which a fork would copy.
        self._pool = (
            ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            if workers > 1
            else None
        )

    def submit(self, table: pa.Table, kind: Kind) -> Pending:
        """Start preparing ``table``; :meth:`Pending.result` waits for its columns."""
        if self._pool is None:
            return Pending([], prepare(table, kind))
        size = max(1, -(-table.num_rows // (self._workers * _SLICES_PER_WORKER)))
        parts = [
            self._pool.submit(prepare, table.slice(start, size), kind)
            for start in range(0, max(table.num_rows, 1), size)
        ]
        return Pending(parts, None)

    def prepare(self, table: pa.Table, kind: Kind) -> pa.Table:
        """Prepare ``table`` and wait for the result."""
        return self.submit(table, kind).result()

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> Preparer:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()
