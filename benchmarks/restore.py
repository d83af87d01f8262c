"""How long a worker joining a partitioned hub takes to restore its bucket, and its memory.

    .venv/bin/python -m benchmarks.restore [--persons N] [--buckets P] [--holdings H]
        [--stores memory,rocksdb] [--bucket-only]

Run: ``.venv/bin/python -m benchmarks.restore --persons 1000000 --buckets 6``

Writes (untimed) what a partitioned deployment holds for ``N`` persons (default
1,000,000) on fresh ``hub.state.persons`` and ``hub.state.holdings`` topics of ``P``
partitions (default 6): each person's sealed row (``persons_table`` under a real
``KeyRing``) and ``H`` holdings (default 2), encoded by the hub's own tables and placed
as :class:`~hub_stream.bucket_hub.BucketHub` places them (partition = the bucket of the
person's audit key). Then times, in one run: a bare ``AIOKafkaConsumer`` read of bucket
0's partitions (the baseline); ``restore_tables(..., only=[0])`` into the hub's persons
and holdings tables with their derived indexes (what a joining worker's task does; the
bucket's other tables, empty here, are left out); and the restore of every partition
(what a ``single`` worker does). Memory held is measured by ``tracemalloc`` in a
separate, untimed restore of the bucket (tracemalloc slows allocation), and as the RSS
growth of the timed restores. CPU seconds are printed beside the wall times (others' load
moves the latter), and how long one full garbage collection takes with the restored state
in memory (a pause the worker's loop would take). The bucket is restored into each store
``--stores`` names (``RENKEI_HUB_STORE``; both by default, in that order): dicts, and a
RocksDB under ``RENKEI_HOME`` whose bytes on disk and own memory (memtables, table
readers, block cache: outside ``tracemalloc``'s count) are printed; RSS growth is only
meaningful for the first run of a process (later ones reuse memory freed before them).
The topics are deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
import tracemalloc
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.common import broker, prefix
from hub_stream.buckets import bucket_of
from hub_stream.indexes import DerivedIndexes
from hub_stream.records import AppliedEvent, Holding, PersonState
from hub_stream.restore import restore_tables
from hub_stream.sealed_state import persons_table
from hub_stream.state import Table
from hub_stream.store import RocksStores, StoreFactory
from producers.population import generate_population
from renkei.crypto.keyring import KeyRing, MasterSecret
from renkei.crypto.linkcodes import audit_key, new_id_code
from renkei.mynumber import check_digit
from renkei.readers import committed_reader, read_batches
from renkei.topics import Topics, TopicSpec, ensure_topics
from schemas.models import Basic4, EventKind, PersonRegistered, Sex

AGENCIES = ("city-shinagawa", "jps", "mhlw-health", "nta-tax")
_COMPACTED = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
_CHUNK = 5000


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def write_state(
    kafka: dict[str, Any], topics: Topics, keyring: KeyRing, persons: int, buckets: int,
    holdings: int,
) -> list[int]:  # fmt: skip
    """Write the persons and holdings; return how many persons each bucket holds."""
    per_bucket = [0] * buckets
    producer = AIOKafkaProducer(**kafka, acks="all", linger_ms=50, max_batch_size=1024 * 1024)
    await producer.start()
    try:
        for start in range(0, persons, _CHUNK):
            people = generate_population(min(_CHUNK, persons - start), seed=start)
            rows = persons_table(keyring, topics.state("persons"))
            held: Table[Holding] = Table(
                topics.state("holdings"), Holding.to_bytes, Holding.from_bytes
            )
            bucket_of_key: dict[str, int] = {}
            for n, p in enumerate(people, start):
                event_id = f"reg-{n}"
                code = new_id_code(keyring, event_id)
                key = audit_key(keyring, code)
                bucket = bucket_of(key, buckets)
                per_bucket[bucket] += 1
                b4 = Basic4(name=p.name, name_kana=p.name_kana, birth_date=p.birth_date,
                            sex=Sex(p.sex), address=p.address)  # fmt: skip
                # unique across chunks (the generator restarts its numbers per seed)
                first11 = f"{10_000_000_000 + n:011d}"
                number = f"{first11}{check_digit(first11)}"
                body = PersonRegistered(my_number=number, basic4=b4)
                entry = AppliedEvent(event_id=event_id, kind=EventKind.REGISTERED, body=body)
                resident = f"{n:011d}"  # unique (the generator's restart per chunk repeats codes)
                bucket_of_key[resident] = bucket
                rows.put(resident, PersonState(id_code=code.hex(), my_number=number,
                                               basic4=b4, history=(entry,)))  # fmt: skip
                for h in range(holdings):
                    agency = AGENCIES[(n + h) % len(AGENCIES)]
                    hkey = f"{key}|{agency}"
                    bucket_of_key[hkey] = bucket
                    held.put(hkey, Holding(agency=agency, record_ref=f"R{n:010d}-{h}",
                                           capacity="", since_ms=1_700_000_000_000))  # fmt: skip
            batches: dict[tuple[str, int], Any] = {}
            for out in [*rows.changes(), *held.changes()]:
                assert out.key is not None
                where = (out.topic, bucket_of_key[out.key.decode()])
                batch = batches.get(where)
                if batch is None:
                    batch = batches[where] = producer.create_batch()
                if batch.append(key=out.key, value=out.value, timestamp=None) is None:
                    await producer.send_batch(batch, where[0], partition=where[1])
                    batch = batches[where] = producer.create_batch()
                    batch.append(key=out.key, value=out.value, timestamp=None)
            sent = [await producer.send_batch(b, t, partition=p) for (t, p), b in batches.items()]
            await asyncio.gather(*sent)
            print(f"  wrote {start + len(people):,} persons", end="\r", flush=True)
        await producer.flush()
    finally:
        await producer.stop()
    print()
    return per_bucket


def hub_tables(
    keyring: KeyRing, topics: Topics, store: StoreFactory | None = None
) -> tuple[list[Any], DerivedIndexes]:
    """The hub's persons and holdings tables with their derived indexes (as Hub builds them),
    their committed rows in ``store`` (dicts by default)."""
    indexes = DerivedIndexes()
    persons = persons_table(keyring, topics.state("persons"), indexes.person_changed, store)
    holdings: Table[Holding] = Table(
        topics.state("holdings"), Holding.to_bytes, Holding.from_bytes, indexes.holding_changed,
        store,
    )  # fmt: skip
    return [persons, holdings], indexes


def _stores(store: str) -> RocksStores | None:
    """A fresh RocksDB (``RENKEI_HUB_STORE=rocksdb``) under RENKEI_HOME, or none (dicts)."""
    if store == "memory":
        return None
    home = Path(os.environ.get("RENKEI_HOME", ".renkei"))
    return RocksStores(home / "bench-restore-store" / f"{os.getpid()}")


def _disk(stores: RocksStores | None) -> tuple[int, int]:
    """The store's bytes on disk, and RocksDB's own memory (not in tracemalloc's count)."""
    if stores is None:
        return 0, 0
    disk = sum(f.stat().st_size for f in stores.path.rglob("*") if f.is_file())
    return disk, stores.native_bytes()


async def bare_read(kafka: dict[str, Any], names: Sequence[str], only: Collection[int] | None,
                    buckets: int) -> int:  # fmt: skip
    """Read the partitions to their end and only count (the baseline)."""
    consumer = committed_reader(kafka, group_id=None)
    await consumer.start()
    read = 0
    try:
        parts = [TopicPartition(t, p) for t in names for p in range(buckets)
                 if only is None or p in only]  # fmt: skip
        async for _, records in read_batches(consumer, parts):
            read += len(records)
    finally:
        await consumer.stop()
    return read


async def run(persons: int, buckets: int, holdings: int, stores: Sequence[str] = ("memory",),
              every: bool = True) -> None:  # fmt: skip
    async with broker(Path(os.environ.get("RENKEI_HOME", ".renkei")) / "bench-restore") as boot:
        kafka = {"bootstrap_servers": boot}
        topics = Topics(prefix=prefix())
        names = [topics.state("persons"), topics.state("holdings")]
        admin = AIOKafkaAdminClient(**kafka)
        await admin.start()
        try:
            await ensure_topics(admin, [TopicSpec(n, buckets, dict(_COMPACTED)) for n in names])
            keyring = KeyRing(MasterSecret.generate())
            began = time.monotonic()
            per_bucket = await write_state(kafka, topics, keyring, persons, buckets, holdings)
            print(f"set-up: {persons:,} persons written in {time.monotonic() - began:.0f} s; "
                  f"per bucket {per_bucket}")  # fmt: skip
            await measure(kafka, topics, keyring, names, per_bucket, buckets, stores, every)
        finally:
            await admin.delete_topics([n for n in names if n in await admin.list_topics()])
            await admin.close()


async def _timed_restore(
    kafka: dict[str, Any], keyring: KeyRing, topics: Topics, only: list[int] | None,
    store: str = "memory",
) -> tuple[int, float, float, int, float, tuple[int, int]]:  # fmt: skip
    """Records, wall and CPU seconds, RSS growth, how long one full collection of the
    cyclic garbage collector takes with the restored state in memory, and the store's
    bytes on disk."""
    gc.collect()
    rss = _rss()
    stores = _stores(store)
    tables, indexes = hub_tables(keyring, topics, stores)
    began, cpu = time.perf_counter(), time.process_time()
    read = await restore_tables(kafka, tables, only=only)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    began = time.perf_counter()
    gc.collect()
    collect_s = time.perf_counter() - began
    grown, disk = _rss() - rss, _disk(stores)
    del tables, indexes
    if stores is not None:
        stores.close()
    return read, seconds, cpu, grown, collect_s, disk


async def measure(kafka: dict[str, Any], topics: Topics, keyring: KeyRing, names: list[str],
                  per_bucket: list[int], buckets: int, stores: Sequence[str] = ("memory",),
                  every: bool = True) -> None:  # fmt: skip
    rows, cpus, disks = [], [], []
    runs: list[tuple[str, list[int] | None, int, str]] = [
        ("b0 dict" if s == "memory" else "b0 rocks", [0], per_bucket[0], s) for s in stores
    ]
    if every:
        runs.append(("all", None, sum(per_bucket), "memory"))
    for label, only, held, store in runs:
        began, cpu = time.perf_counter(), time.process_time()
        bare = await bare_read(kafka, names, only, buckets)
        bare_s, bare_cpu = time.perf_counter() - began, time.process_time() - cpu
        read, seconds, cpu, rss, collect_s, disk = await _timed_restore(
            kafka, keyring, topics, only, store
        )
        gc.collect()
        traced = 0
        if only is not None:  # untimed: tracemalloc makes every allocation slower
            tracemalloc.start()
            kept = _stores(store)
            tables, indexes = hub_tables(keyring, topics, kept)
            await restore_tables(kafka, tables, only=only)
            gc.collect()
            traced = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            del tables, indexes
            if kept is not None:
                kept.close()
            gc.collect()
        rows.append((label, held, bare, bare_s, read, seconds, rss, traced))
        cpus.append((label, bare_cpu, cpu, read, collect_s))
        disks.append((label, disk, held))
    head = ("persons", 9), ("records", 10), ("bare s", 8), ("bare r/s", 10), ("restore s", 10)
    tail = ("r/s", 9), ("ratio", 7), ("RSS MB", 8), ("B/pers", 8), ("traced MB", 10), ("B/pers", 8)
    print("\n" + " " * 9 + "".join(f"{name:>{width}}" for name, width in (*head, *tail)))
    for label, held, bare, bare_s, read, seconds, rss, traced in rows:
        assert bare == read, (bare, read)
        print(f"{label:9}{held:>9,}{read:>10,}{bare_s:>8.1f}{bare / bare_s:>10,.0f}{seconds:>10.1f}"
              f"{read / seconds:>9,.0f}{bare_s / seconds:>7.2f}{rss / 1e6:>8.0f}"
              f"{rss / held:>8.0f}{traced / 1e6:>10.0f}{traced / held:>8.0f}")  # fmt: skip
    # CPU as well as wall time: on a shared machine the wall time moves with others' load.
    cpu_head = ("bare CPU s", 11), ("restore CPU s", 14), ("µs/record", 10), ("full gc s", 10)
    print("\n" + " " * 9 + "".join(f"{name:>{width}}" for name, width in cpu_head))
    for label, bare_cpu, cpu, read, collect_s in cpus:
        print(f"{label:9}{bare_cpu:>11.1f}{cpu:>14.1f}{cpu / read * 1e6:>10.1f}{collect_s:>10.2f}")
    # tracemalloc sees Python's heap only; RocksDB's memtables and block cache are in RSS.
    for label, (on_disk, native), held in disks:
        if on_disk:
            print(f"{label}: RocksDB on disk {on_disk / 1e6:,.0f} MB, "
                  f"{on_disk / held:,.0f} B/person; its memory {native / 1e6:,.0f} MB, "
                  f"{native / held:,.0f} B/person")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.restore", description=__doc__)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--buckets", type=int, default=6)
    parser.add_argument("--holdings", type=int, default=2)
    parser.add_argument(
        "--stores", default="memory,rocksdb",
        help="the bucket's restore into each store (RENKEI_HUB_STORE), comma-separated",
    )  # fmt: skip
    parser.add_argument("--bucket-only", action="store_true", help="skip the all-partitions run")
    args = parser.parse_args(argv)
    if args.persons < 1 or args.buckets < 1 or not 0 <= args.holdings <= len(AGENCIES):
        parser.error(f"need persons >= 1, buckets >= 1, 0 <= holdings <= {len(AGENCIES)}")
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    if not stores or not set(stores) <= {"memory", "rocksdb"}:
        parser.error("--stores takes memory and/or rocksdb")
    asyncio.run(run(args.persons, args.buckets, args.holdings, stores, not args.bucket_only))
    return 0


if __name__ == "__main__":
    sys.exit(main())
