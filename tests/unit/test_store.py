"""The RocksDB store of a table's committed rows: the changelog's bytes, a bounded cache of
decoded values, exact counts, and a directory that is never trusted after a stop.

(The table's staging, savepoints and layers run against both stores in
``test_layered_state.py``.)"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rocksdict import Options, Rdict

from hub_stream.settings import HubSettings
from hub_stream.state import Table
from hub_stream.store import RocksStores, open_stores
from renkei.errors import ConfigurationError


class Codec:
    """Ints as text, counting encodes and decodes."""

    def __init__(self) -> None:
        self.encoded = 0
        self.decoded = 0
        self.nonce = 0

    def encode(self, value: int) -> bytes:
        self.encoded += 1
        self.nonce += 1  # like a sealed row: each encoding differs
        return f"{value}:{self.nonce}".encode()

    def decode(self, data: bytes) -> int:
        self.decoded += 1
        return int(data.split(b":")[0])


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[RocksStores]:
    opened = RocksStores(tmp_path / "store", cache_rows=2)
    yield opened
    opened.close()


def test_a_committed_row_is_the_changelog_record_not_a_new_encoding(stores: RocksStores) -> None:
    codec = Codec()
    table = Table("t", codec.encode, codec.decode, store=stores)
    table.put("a", 1)
    (record,) = table.changes()
    table.commit()
    assert codec.encoded == 1  # encoded once, for the transaction; the store kept those bytes
    assert stores._db.get_column_family("t").get(b"a") == record.value


def test_a_value_staged_after_its_record_was_made_is_encoded_at_commit(
    stores: RocksStores,
) -> None:
    codec = Codec()
    table = Table("t", codec.encode, codec.decode, store=stores)
    table.put("a", 1)
    table.changes()
    table.put("a", 2)  # staged after the records were made: the old bytes say 1
    table.commit()
    assert dict(table.items()) == {"a": 2}  # read back from RocksDB's bytes


def test_a_hot_key_is_decoded_once_and_the_cache_stays_bounded(stores: RocksStores) -> None:
    codec = Codec()
    table = Table("t", codec.encode, codec.decode, store=stores)
    for key, value in (("a", 1), ("b", 2), ("c", 3)):
        table.load(key.encode(), codec.encode(value))
    assert codec.decoded == 3  # each restored record is decoded once, to check it
    assert [table.get("a"), table.get("a"), table.get("a")] == [1, 1, 1]
    assert codec.decoded == 4
    table.get("b")
    table.get("c")  # the cache holds two rows: "a" is evicted
    assert codec.decoded == 6
    assert table.get("a") == 1
    assert codec.decoded == 7


def test_counts_follow_restores_overwrites_and_deletes(stores: RocksStores) -> None:
    codec = Codec()
    table = Table("t", codec.encode, codec.decode, store=stores)
    table.load(b"a", b"1:0")
    table.load(b"a", b"2:0")
    table.load(b"b", b"3:0")
    table.load(b"c", None)  # a tombstone of a key never seen
    assert len(table) == 2
    table.delete("a")
    table.put("d", 4)
    table.put("b", 5)
    table.commit()
    assert len(table) == 2
    assert dict(table.items()) == {"b": 5, "d": 4}
    assert codec.encoded == 2  # restored records are stored as read, never re-encoded


def test_each_table_has_its_own_column_family(stores: RocksStores) -> None:
    codec = Codec()
    one = Table("one", codec.encode, codec.decode, store=stores)
    two = Table("two", codec.encode, codec.decode, store=stores)
    one.put("k", 1)
    one.commit()
    assert two.get("k") is None
    assert len(two) == 0


def test_a_store_left_by_a_stopped_worker_is_wiped_and_restored_from_the_changelog(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store"
    left = Rdict(str(path), Options(raw_mode=True))  # a crashed worker's database
    left.create_column_family("t", Options(raw_mode=True)).put(b"stale", b"9:0")
    left.close()
    stores = RocksStores(path)
    try:
        table = Table("t", Codec().encode, Codec().decode, store=stores)
        assert (table.get("stale"), len(table)) == (None, 0)
    finally:
        stores.close()
    assert not path.exists()  # removed on close: nothing on disk outlives the worker


def test_a_store_open_in_this_process_is_not_wiped(stores: RocksStores) -> None:
    with pytest.raises(ConfigurationError, match="open in this process"):
        RocksStores(stores.path)


def test_a_store_another_process_has_open_is_not_wiped(tmp_path: Path) -> None:
    path = tmp_path / "store"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, rocksdict; db = rocksdict.Rdict(sys.argv[1]); print('open', flush=True);"
         " sys.stdin.readline(); db.close()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "open\n"
        with pytest.raises(ConfigurationError, match="another process"):
            RocksStores(path)
        assert (path / "CURRENT").exists()  # its files untouched
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()


def test_settings_choose_the_store_and_its_directory(tmp_path: Path) -> None:
    assert open_stores(HubSettings(), "single") is None
    settings = HubSettings(store="rocksdb", store_dir=tmp_path, worker_id="w-7")
    stores = open_stores(settings, "bucket-3")
    assert stores is not None
    try:
        assert stores.path == (tmp_path / "hub" / "w-7" / "bucket-3").resolve()
    finally:
        stores.close()
    with pytest.raises(ValueError, match="store"):
        HubSettings(store="sqlite")  # type: ignore[arg-type]  # refused, as a typo would be


def test_a_worker_restarted_in_the_same_process_opens_its_store_again(tmp_path: Path) -> None:
    first = RocksStores(tmp_path / "store")
    table = Table("t", Codec().encode, Codec().decode, store=first)  # still referenced below
    table.put("a", 1)
    table.commit()
    first.close()
    second = RocksStores(tmp_path / "store")  # RocksDB's lock was let go
    try:
        again = Table("t", Codec().encode, Codec().decode, store=second)
        assert (again.get("a"), len(again)) == (None, 0)
    finally:
        second.close()


def test_rocksdb_reports_its_own_memory(stores: RocksStores) -> None:
    codec = Codec()
    table = Table("t", codec.encode, codec.decode, store=stores)
    before = stores.native_bytes()
    for n in range(1000):
        table.load(str(n).encode(), b"1" * 500)
    assert stores.native_bytes() >= before + 500_000  # the rows, in its memtable
