"""Where a :class:`~.state.Table` keeps its committed rows: a dict, or RocksDB.

The committed layer is the only part of a table that grows with the country; the staged
layers above it hold one batch's changes each and stay in memory (:mod:`.state`).

* :class:`MemoryStore` (``RENKEI_HUB_STORE=memory``, the default): decoded values in a
  dict, as the hub always kept them.
* :class:`RocksStore` (``RENKEI_HUB_STORE=rocksdb``): the rows as the bytes the changelog
  holds, in a RocksDB column family (``rocksdict``), with a bounded cache of decoded
  values so that a hot key is not decoded on every read. One database per scope — a
  ``single`` worker, or one bucket task of a ``partitioned`` one — opened by
  :class:`RocksStores`, one column family per table.

Exactly-once: the database is a cache of the changelog, never a source. :class:`RocksStores`
wipes its directory when it opens and the hub restores every row from the ``hub.state.*``
topics, as Kafka Streams does under exactly-once after an unclean stop; nothing is
written to its write-ahead log, and the directory is removed again on close.
"""

from __future__ import annotations

import fcntl
import shutil
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from rocksdict import ColumnFamily, Options, Rdict, WriteBatch, WriteOptions

from renkei.errors import ConfigurationError

from .settings import HubSettings

__all__ = [
    "DELETED",
    "MemoryStore",
    "RocksStore",
    "RocksStores",
    "Store",
    "StoreFactory",
    "open_stores",
]

V = TypeVar("V")
DELETED: Any = object()
"""A staged delete, in a layer handed to :meth:`Store.apply`."""
_ABSENT: Any = object()  # in the cache: the store has no row for the key


class Store(Protocol[V]):
    """The committed rows of one table."""

    keeps_bytes: bool
    """Whether :meth:`apply` uses the encoded rows (else it is given none)."""

    def get(self, key: str, /) -> V | None: ...

    def __len__(self) -> int: ...

    def items(self) -> Iterator[tuple[str, V]]: ...

    def apply(self, layer: Mapping[str, V], encoded: Mapping[str, tuple[V, bytes]]) -> None:
        """Make a committed layer the table's (``DELETED`` values delete); ``encoded`` has
        the bytes written to the changelog for some of its values."""

    def load(self, key: str, value: V | None, raw: bytes | None) -> None:
        """Apply one changelog record: ``value`` decoded from ``raw``."""

    def close(self) -> None: ...


StoreFactory = Callable[[str, Callable[[Any], bytes], Callable[[bytes], Any]], Store[Any]]
"""(topic, encode, decode) → the store of that table's committed rows."""


class MemoryStore(Generic[V]):
    """Decoded rows in a dict."""

    keeps_bytes = False

    def __init__(self) -> None:
        self._data: dict[str, V] = {}
        self.get = self._data.get  # the dict's own: no call of ours on the hot path

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> Iterator[tuple[str, V]]:
        return iter(self._data.items())

    def apply(self, layer: Mapping[str, V], encoded: Mapping[str, tuple[V, bytes]]) -> None:
        data = self._data
        for key, value in layer.items():
            if value is DELETED:
                data.pop(key, None)
            else:
                data[key] = value

    def load(self, key: str, value: V | None, raw: bytes | None) -> None:
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = value

    def close(self) -> None:
        self._data.clear()


class RocksStore(Generic[V]):
    """Rows as changelog bytes in one RocksDB column family, decoded values cached.

    :param column: the table's column family.
    :param handle: the same, for write batches.
    :param unlogged: the write options of every write.
    :param encode: value → bytes (the table's codec), for a value not yet encoded.
    :param decode: bytes → value.
    :param cache_rows: most decoded rows (and absent keys) kept, least recently used
        evicted.
    """

    keeps_bytes = True

    def __init__(
        self,
        column: Rdict,
        handle: ColumnFamily,
        unlogged: WriteOptions,
        encode: Callable[[V], bytes],
        decode: Callable[[bytes], V],
        cache_rows: int = 10_000,
    ) -> None:
        self._db = column
        self._handle = handle
        self._unlogged = unlogged
        self._encode = encode
        self._decode = decode
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._cache_rows = cache_rows
        self._count = 0  # RocksDB has no exact count; every write here knows its effect

    def get(self, key: str, /) -> V | None:
        cache = self._cache
        value = cache.get(key, None)
        if value is not None:
            cache.move_to_end(key)
            return None if value is _ABSENT else value
        raw = self._db.get(key.encode())
        if raw is None:
            self._remember(key, _ABSENT)
            return None
        decoded = self._decode(raw)
        self._remember(key, decoded)
        return decoded

    def __len__(self) -> int:
        return self._count

    def items(self) -> Iterator[tuple[str, V]]:
        decode = self._decode
        for key, raw in self._db.items():
            assert isinstance(key, bytes)  # raw mode
            yield key.decode(), decode(raw)

    def apply(self, layer: Mapping[str, V], encoded: Mapping[str, tuple[V, bytes]]) -> None:
        batch = WriteBatch(raw_mode=True)
        batch.set_default_column_family(self._handle)
        for key, value in layer.items():
            name = key.encode()
            had = self._has(key, name)
            if value is DELETED:
                batch.delete(name)
                self._count -= had
                self._remember(key, _ABSENT)
                continue
            written = encoded.get(key)
            # The changelog's own bytes when the value is the one written; a value staged
            # after the batch's records were made is encoded here.
            raw = written[1] if written is not None and written[0] is value else None
            batch.put(name, raw if raw is not None else self._encode(value))
            self._count += not had
            self._remember(key, value)
        self._db.write(batch, self._unlogged)

    def load(self, key: str, value: V | None, raw: bytes | None) -> None:
        name = key.encode()
        had = self._has(key, name)
        if raw is None:
            self._db.delete(name)
            self._count -= had
        else:
            self._db.put(name, raw)
            self._count += not had
        self._cache.pop(key, None)

    def close(self) -> None:
        self._cache.clear()
        self._db.close()  # later use raises rocksdict's DbClosedError
        del self._handle  # a live handle keeps the database (and its lock) open

    def _has(self, key: str, name: bytes) -> bool:
        # A key staged in a batch was read first (Table.get), so the cache nearly always knows.
        cached = self._cache.get(key, None)
        if cached is not None:
            return cached is not _ABSENT
        return self._db.get(name) is not None

    def _remember(self, key: str, value: Any) -> None:
        cache = self._cache
        cache[key] = value
        cache.move_to_end(key)
        if len(cache) > self._cache_rows:
            cache.popitem(last=False)


class RocksStores:
    """One RocksDB database (a directory) for one scope's tables, a column family each.

    :param path: the scope's directory; wiped now (the changelog restores it) and removed
        on :meth:`close`.
    :param cache_rows: decoded rows cached per table.
    """

    _open: ClassVar[set[Path]] = set()  # this process's open directories

    def __init__(self, path: Path, cache_rows: int = 10_000) -> None:
        self.path = path = path.resolve()
        self._cache_rows = cache_rows
        _refuse_if_in_use(path, RocksStores._open)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        self._db = Rdict(str(path), _options())
        RocksStores._open.add(path)
        self._stores: list[RocksStore[Any]] = []

    def __call__(
        self, topic: str, encode: Callable[[Any], bytes], decode: Callable[[bytes], Any]
    ) -> RocksStore[Any]:
        """The store of the table on ``topic`` (a :data:`StoreFactory`)."""
        column = self._db.create_column_family(topic, _options())
        # Never read back after a crash (the directory is wiped), so no write-ahead log.
        unlogged = WriteOptions()
        unlogged.disable_wal = True  # type: ignore[method-assign,assignment]  # a property; the stub says method
        column.set_write_options(unlogged)
        handle = self._db.get_column_family_handle(topic)
        store: RocksStore[Any] = RocksStore(
            column, handle, unlogged, encode, decode, self._cache_rows
        )
        self._stores.append(store)
        return store

    def native_bytes(self) -> int:
        """RocksDB's own memory (outside Python's heap): memtables, index and filter blocks
        of every table's column family, and the block cache."""
        total = self._db.property_int_value("rocksdb.block-cache-usage") or 0
        for store in self._stores:
            for name in ("rocksdb.cur-size-all-mem-tables", "rocksdb.estimate-table-readers-mem"):
                total += store._db.property_int_value(name) or 0
        return total

    def close(self) -> None:
        """Close every table's column family and the database, and remove the directory."""
        if self.path not in RocksStores._open:
            return  # closed already
        for store in self._stores:
            store.close()
        self._stores.clear()
        self._db.close()
        RocksStores._open.discard(self.path)
        shutil.rmtree(self.path, ignore_errors=True)


def open_stores(settings: HubSettings, scope: str) -> RocksStores | None:
    """The stores of one scope's tables as the settings say: ``None`` for memory (each
    table its dict), else a wiped RocksDB at ``<store_dir>/<group_id>/<worker_id>/<scope>``.

    The worker id keeps two workers on one machine (a bucket moving between them) apart:
    RocksDB locks its directory while open.
    """
    if settings.store == "memory":
        return None
    path = settings.store_dir / settings.group_id / settings.worker_id / scope
    return RocksStores(path, settings.store_cache_rows)


def _refuse_if_in_use(path: Path, open_here: set[Path]) -> None:
    """Wiping a directory a live RocksDB uses would corrupt it: a zombie worker with the
    same worker id (or a second hub in this process) would write into the new one."""
    if path in open_here:
        raise ConfigurationError(f"the state store {path} is open in this process already")
    lock = path / "LOCK"
    if not lock.exists():
        return
    # RocksDB holds an fcntl lock on LOCK while open; probing it here releases nothing of
    # ours (no database of this process is open there).
    with lock.open("rb+") as file:
        try:
            fcntl.lockf(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigurationError(
                f"the state store {path} is in use by another process: is a worker with "
                "the same RENKEI_HUB_WORKER_ID still running on this machine?"
            ) from None
        fcntl.lockf(file, fcntl.LOCK_UN)


def _options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    return options
