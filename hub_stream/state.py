"""The hub's state: in-memory tables backed by compacted Kafka topics.

A table's changes are staged during a batch and written to its ``hub.state.<name>``
topic inside the batch's transaction (:mod:`hub_stream.pipeline`); they survive a crash
only when that transaction commits, and are forgotten when it aborts. Within the batch
they are visible at once: a record reads what the records before it staged.

Every staged change is logged, so the batch can also go back to a **savepoint**: the hub
takes one before each input record and returns to it when that record fails half-way
(:meth:`Table.savepoint`, :meth:`Table.rollback_to`). Derived indexes (the person index,
who holds whom, the deadlines) follow the table through ``on_change``, which sees every
change of what :meth:`Table.get` returns: a staged change, its undoing, and a record read
while restoring. Committing changes nothing that ``get`` returns, so it calls nobody.

**Layers, for transactions in flight.** The loop handles the next batch while the
previous one's transaction commits (:mod:`hub_stream.pipeline`), so staged changes are
kept in layers, one per batch: :meth:`Table.seal` ends the batch's layer (its
:meth:`Table.changes` were written in its transaction), later changes go to a new one
and see every layer below. :meth:`Table.commit` makes the *oldest* layer committed — the
transactions commit in batch order — and :meth:`Table.rollback` forgets every layer not
committed, newest change first: a later batch read what an aborted one staged, so it
cannot stand alone. Without :meth:`Table.seal`, ``commit`` commits what is staged, as a
loop with one transaction at a time does.

A worker that starts reads each topic to its end (``read_committed``) before it
processes anything, so its state always matches the offsets it resumes from
(:func:`hub_stream.restore.restore_tables`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from .outputs import Output
from .store import DELETED, MemoryStore, Store, StoreFactory

__all__ = ["StagedState", "Table"]

V = TypeVar("V")
_DELETED: Any = DELETED  # a staged delete
_UNSTAGED: Any = object()  # in the undo log: the key had no staged change


class Table(Generic[V]):
    """A string-keyed table whose changes are staged until their batch commits.

    :param topic: the compacted topic that holds it.
    :param encode: value → bytes for the topic.
    :param decode: bytes → value when restoring.
    :param on_change: called with (key, old, new) whenever what :meth:`get` returns for
        a key changes — staged, undone or restored — so that derived indexes follow the
        table. It must either apply the change completely or raise and change nothing:
        a raise refuses the change (the table stays as it was).
    :param store: where the committed rows live (:mod:`.store`); a dict by default.
    """

    def __init__(
        self,
        topic: str,
        encode: Callable[[V], bytes],
        decode: Callable[[bytes], V],
        on_change: Callable[[str, V | None, V | None], None] | None = None,
        store: StoreFactory | None = None,
    ) -> None:
        self.topic = topic
        self._encode = encode
        self._decode = decode
        self._on_change = on_change
        self._store: Store[V] = MemoryStore() if store is None else store(topic, encode, decode)
        self._committed = self._store.get
        # What changes() encoded, per layer, for a store that keeps the changelog's bytes.
        self._written: dict[str, tuple[V, bytes]] = {}
        self._sealed_written: list[dict[str, tuple[V, bytes]]] = []
        # The newest uncommitted value of each key over every layer: one lookup in get().
        self._staged: dict[str, V] = {}
        self._sealed: list[dict[str, V]] = []  # each sealed layer's changes, oldest first
        self._open: dict[str, V] = {}  # the open layer's changes
        # (key, what _staged and _open held before) per uncommitted change, oldest first;
        # positions are absolute (_base counts the entries committed away), so a savepoint
        # taken in a batch stays valid when an older layer commits.
        self._undo: list[tuple[str, V, V]] = []
        self._base = 0
        self._starts: list[int] = []  # where each sealed layer starts in the undo log
        self._open_start = 0

    def get(self, key: str) -> V | None:
        staged = self._staged.get(key)
        if staged is not None:
            return None if staged is _DELETED else staged
        return self._committed(key)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        """Committed rows (what survives a crash)."""
        return len(self._store)

    @property
    def layers(self) -> int:
        """Sealed layers not yet committed (batches whose transactions are in flight)."""
        return len(self._sealed)

    def put(self, key: str, value: V) -> None:
        self._stage(key, value)

    def delete(self, key: str) -> None:
        self._stage(key, None)

    def items(self) -> Iterator[tuple[str, V]]:
        """Committed items (what survives a crash)."""
        return self._store.items()

    def close(self) -> None:
        """Let go of the committed rows' store."""
        self._store.close()

    def changes(self) -> list[Output]:
        """The open layer's changes as records for its batch's transaction."""
        if not self._store.keeps_bytes:
            return [
                Output(self.topic, key.encode(), None if v is _DELETED else self._encode(v))
                for key, v in self._open.items()
            ]
        outputs: list[Output] = []
        written = self._written
        for key, v in self._open.items():
            raw = None
            if v is not _DELETED:
                raw = self._encode(v)
                written[key] = (v, raw)  # the last records made are the ones written
            outputs.append(Output(self.topic, key.encode(), raw))
        return outputs

    # -- savepoints --------------------------------------------------------------------

    def savepoint(self) -> int:
        """A mark in the open layer to come back to with :meth:`rollback_to`."""
        return self._base + len(self._undo)

    def rollback_to(self, mark: int) -> None:
        """Undo every change staged since ``mark``, newest first.

        :raises ValueError: ``mark`` is before the open layer (a sealed batch is undone
            only with every later one, by :meth:`rollback`).
        """
        if mark < self._open_start:
            raise ValueError("a savepoint before the open layer: roll back every layer")
        self._undo_to(mark)

    # -- layers ------------------------------------------------------------------------

    def seal(self) -> None:
        """End the open layer: its changes are its batch's, written in its transaction."""
        self._sealed.append(self._open)
        self._sealed_written.append(self._written)
        self._starts.append(self._open_start)
        self._open = {}
        self._written = {}
        self._open_start = self._base + len(self._undo)

    def commit(self) -> None:
        """The oldest layer's transaction committed: its changes are the table now.

        With no sealed layer, the open one is sealed and committed (one transaction at a
        time).
        """
        if not self._sealed:
            self.seal()
        layer = self._sealed.pop(0)
        self._starts.pop(0)
        self._store.apply(layer, self._sealed_written.pop(0))
        later = [*self._sealed, self._open]
        for key in layer:
            if not any(key in newer for newer in later):
                del self._staged[key]  # _data says the same now
        # Its undo entries go: no rollback reaches below a committed layer.
        end = self._starts[0] if self._starts else self._open_start
        del self._undo[: end - self._base]
        self._base = end

    def rollback(self) -> None:
        """The oldest uncommitted layer's transaction aborted: forget it and every later
        layer (they were handled on top of it), newest change first."""
        self._undo_to(self._base)
        self._staged.clear()
        self._sealed.clear()
        self._sealed_written.clear()
        self._starts.clear()
        self._open.clear()
        self._written = {}
        self._open_start = self._base

    def load(self, key: bytes, value: bytes | None) -> None:
        """Apply one record read from the topic while restoring."""
        name = key.decode()
        new = None if value is None else self._decode(value)
        if self._on_change is not None:
            self._notify(name, self._committed(name), new)
        self._store.load(name, new, value)

    def _stage(self, key: str, value: V | None) -> None:
        self._notify(key, self.get(key), value)  # first: a refused change stages nothing
        self._undo.append((key, self._staged.get(key, _UNSTAGED), self._open.get(key, _UNSTAGED)))
        staged = _DELETED if value is None else value
        self._staged[key] = staged
        self._open[key] = staged

    def _undo_to(self, mark: int) -> None:
        undo = self._undo
        while self._base + len(undo) > mark:
            key, staged, opened = undo.pop()
            current = self.get(key)
            if staged is _UNSTAGED:
                del self._staged[key]
            else:
                self._staged[key] = staged
            if opened is _UNSTAGED:
                self._open.pop(key, None)
            else:
                self._open[key] = opened
            self._notify(key, current, self.get(key))

    def _notify(self, key: str, old: V | None, new: V | None) -> None:
        if self._on_change is not None and (old is not None or new is not None):
            self._on_change(key, old, new)


class StagedState(Protocol):
    """What the hub stages, savepoints, writes and commits with each batch: a :class:`Table`,
    or any state with the same discipline (:class:`~.replays.ReplayMemory`)."""

    @property
    def topic(self) -> str: ...

    def changes(self) -> list[Output]: ...

    def savepoint(self) -> int: ...

    def rollback_to(self, mark: int) -> None: ...

    def seal(self) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def load(self, key: bytes, value: bytes | None) -> None: ...
