"""Where the hub's time goes per attribute exchange, without Kafka.

Run: ``.venv/bin/python -m benchmarks.profile_hub [strict|trust-acl] [count] [options]``
(``--repeat N``: the best of N runs; ``--profile``: one run under cProfile; ``--gc MODE``:
the garbage collector as the worker sets it after its restore, CPython's defaults, off, or
frozen only; ``--ed25519``: only Ed25519 through ``cryptography`` and through libsodium, in
one thread and two)

Builds a hub with a directory and holdings (both agencies hold every person) in memory,
feeds it ``count`` signed attribute requests as consumer records, in batches of 1,000
with a commit after each as the loop does, then the provider's ``count`` sealed answers to
the requests it forwarded. It prints µs per request and per response in ``Hub.handle``
(CPU time, without a profiler; the best of ``--repeat`` runs), the records written per input,
and with ``--profile`` a cProfile of each half.

It checks that it measured the path it claims: every request must come out as exactly one
``ForwardedRequest`` and every answer as one ``AttributeResponse`` — a refused request
(two records instead of three) is a far cheaper path and once went unnoticed here.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from hub_stream import heap
from hub_stream.hub import Hub
from hub_stream.outputs import Output
from hub_stream.records import Holding
from hub_stream.settings import HubSettings
from renkei.crypto import (
    KeyRing,
    MasterSecret,
    SealingKeyPair,
    SigningKey,
    audit_key,
    keystore,
    seal,
    verify,
)
from renkei.crypto.sodium import SodiumSigningKey, sodium_accepts
from renkei.envelope import encode_signed
from renkei.operator.directory_file import load_directory_file
from renkei.operator.publish import SENDERS, directory_entries, init_keys
from renkei.topics import Topics
from schemas.models import (
    AttributeRequest,
    AttributeResponse,
    ForwardedRequest,
    Header,
    HpkeSuite,
    ProviderResponse,
    ResponseStatus,
    SealedPayload,
)

__all__ = ["Exchange", "Record", "build", "ed25519", "main", "once", "respond", "run"]

REQUESTER, PROVIDER = "city-shinagawa", "jps"
BATCH = 1000  # the loop's max_batch


@dataclass
class Record:
    """The fields of an aiokafka ConsumerRecord the hub reads."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    timestamp: int = 0


@dataclass
class Exchange:
    """A hub ready to take ``requests``, and what the provider needs to answer."""

    hub: Hub
    topics: Topics
    requests: list[Record]
    keys: Path


def build(mode: str, count: int, keys: Path | None = None) -> Exchange:
    """A hub in ``mode`` and ``count`` signed requests of one scenario, all to be forwarded;
    the keys of ``keys`` (made by ``init_keys``), by default new ones."""
    if keys is None:
        keys = Path(tempfile.mkdtemp())
        init_keys(keys)
    topics = Topics("p.")
    master = MasterSecret.from_file(keys / "master.key")
    # The key folder holds the pinned operators' and registry's bundles the hub reads.
    # RENKEI_HUB_STORE=rocksdb puts the tables in RocksDB: a fresh directory per hub built.
    store_dir = Path(tempfile.mkdtemp()) / "store"
    settings = HubSettings(signatures=mode, key_dir=keys, store_dir=store_dir)  # type: ignore[arg-type]
    hub = Hub(topics, KeyRing(master), keystore.load_hub_signing_key(keys), settings)
    file = load_directory_file()
    ids = [a.agency_id for a in file.agencies] + [s[0] for s in SENDERS]
    public = {i: keystore.load(keys, i).public() for i in ids}
    for entry in directory_entries(file, public, SENDERS):
        hub.directory.apply(entry)
    scenario = next(
        s for s in file.scenarios if s.requester == REQUESTER and s.provider == PROVIDER
    )
    city = keystore.load(keys, REQUESTER)
    reply = SealingKeyPair.generate()
    records = []
    for i in range(count):
        id_code = i.to_bytes(16, "big")
        code = hub.links.mint(REQUESTER, id_code)
        person = audit_key(hub.keyring, id_code)
        for agency in (REQUESTER, PROVIDER):  # a request needs both to hold the person
            holding = Holding(agency=agency, record_ref=f"x{i}", capacity="", since_ms=0)
            hub.holdings.put(f"{person}|{agency}", holding)
        header = Header.new(REQUESTER)
        request = AttributeRequest(
            header=header, request_id=f"r{i}", requester_link_code=code, provider=PROVIDER,
            scenario_id=scenario.scenario_id, items=scenario.items[:1],
            reply_public_key=reply.public_bytes, hpke_suite=HpkeSuite.X25519,
            deadline=header.sent_at + timedelta(hours=1),
        )  # fmt: skip
        value = encode_signed(request, city.signing, hub.codec)
        records.append(Record(topics.agency_out(REQUESTER), 0, i, code.encode(), value))
    hub.holdings.commit()
    return Exchange(hub, topics, records, keys)


def respond(exchange: Exchange, forwarded: Sequence[Output]) -> list[Record]:
    """The provider's sealed answer to each forwarded request, signed, as records."""
    hub = exchange.hub
    jps = keystore.load(exchange.keys, PROVIDER)
    reply = SealingKeyPair.generate()
    enc, ciphertext = seal("X25519", reply.public_bytes, b'{"v":1}', aad=b"profile")
    sealed = SealedPayload(suite=HpkeSuite.X25519, enc=enc, ciphertext=ciphertext)
    records = []
    for i, out in enumerate(forwarded):
        assert out.value is not None
        request = hub.codec.decode_as(out.value, ForwardedRequest)
        response = ProviderResponse(
            header=Header.new(PROVIDER, request.header.message_id),
            hub_request_id=request.hub_request_id,
            provider_link_code=request.provider_link_code,
            status=ResponseStatus.PROVIDED, sealed=sealed, detail="",
        )  # fmt: skip
        value = encode_signed(response, jps.signing, hub.codec)
        key = request.provider_link_code.encode()
        records.append(Record(exchange.topics.agency_out(PROVIDER), 0, i, key, value))
    return records


def run(hub: Hub, records: Sequence[Record]) -> tuple[float, float, list[Output]]:
    """CPU and wall seconds in ``Hub.handle`` (batches of :data:`BATCH`, committed), and
    its outputs. CPU time (every thread of the process) is what the figures compare: on a
    machine shared with others the wall clock also counts the time others ran."""
    cpu, _, wall, outputs = timed(hub, records)
    return cpu, wall, outputs


def timed(hub: Hub, records: Sequence[Record]) -> tuple[float, float, float, list[Output]]:
    """:func:`run`, with the CPU seconds of this thread alone as the second figure: in
    strict mode the pool's threads verify and sign beside it, and this thread's time is
    what bounds the serial loop when the other core is free."""
    outputs: list[Output] = []
    cpu = main = wall = 0.0
    for at in range(0, len(records), BATCH):
        batch = records[at : at + BATCH]
        started = time.process_time(), time.thread_time(), time.perf_counter()
        outputs += hub.handle(batch)  # duck-typed: the fields of a ConsumerRecord it reads
        cpu += time.process_time() - started[0]
        main += time.thread_time() - started[1]
        wall += time.perf_counter() - started[2]
        hub.commit()
    return cpu, main, wall, outputs


class GcTimer:
    """Time CPython's garbage collector spends while it is :meth:`watching` (per generation):
    the hub allocates a few hundred objects per message, so a young-generation collection
    runs every few messages."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.seconds[info["generation"]] += time.thread_time() - self._started
            self.collections[info["generation"]] += 1

    def watching(self, on: bool) -> None:
        """Start (``on``) or stop counting."""
        if on:
            gc.callbacks.append(self._callback)
        else:
            gc.callbacks.remove(self._callback)


def _of_type(hub: Hub, outputs: Sequence[Output], topic: str, kind: type) -> list[Output]:
    return [
        o
        for o in outputs
        if o.topic == topic and o.value is not None and hub.codec.message_type_of(o.value) is kind
    ]


def _kinds(hub: Hub, outputs: Sequence[Output]) -> str:
    def kind(o: Output) -> str:
        if o.value is None:
            return f"{o.topic} (tombstone)"
        if o.value[:2] == b"\xc3\x01":
            return hub.codec.message_type_of(o.value).__name__
        return o.topic.rsplit(".", 1)[-1] + " (state)"

    return ", ".join(f"{n} {k}" for k, n in sorted(Counter(map(kind, outputs)).items()))


def _half(
    name: str,
    exchange: Exchange,
    records: Sequence[Record],
    expect: tuple[str, type],
    profile: cProfile.Profile | None,
) -> tuple[float, float, list[Output]]:
    """Run one half; µs per input (all threads, the hub's thread), and the outputs of the
    ``expect``ed topic and type."""
    hub = exchange.hub
    collector = GcTimer()
    collector.watching(True)
    if profile is not None:
        profile.enable()
    cpu, main, wall, outputs = timed(hub, records)
    if profile is not None:
        profile.disable()
    collector.watching(False)
    wanted = _of_type(hub, outputs, *expect)
    if len(wanted) != len(records):
        raise SystemExit(
            f"{name}: {len(wanted)} {expect[1].__name__} for {len(records)} inputs — the "
            f"profile would measure another path. Written: {_kinds(hub, outputs)}"
        )
    us = cpu / len(records) * 1e6
    under = " (under cProfile)" if profile is not None else ""
    print(
        f"  {name}: {us:.1f} µs CPU each in Hub.handle{under} "
        f"({main / len(records) * 1e6:.1f} µs of it the hub's thread, "
        f"{wall / len(records) * 1e6:.1f} µs wall), "
        f"{len(outputs) / len(records):.2f} records written each ({_kinds(hub, outputs)})"
    )
    gc_us = [f"{t / len(records) * 1e6:.2f}" for t in collector.seconds]
    print(f"    of it the garbage collector's: {' + '.join(gc_us)} µs each (generations 0, 1, 2; "
          f"{', '.join(map(str, collector.collections))} collections)")  # fmt: skip
    return us, main / len(records) * 1e6, wanted


GC_MODES = ("default", "off", "frozen", "settled")


def _collector(how: str) -> None:
    """The garbage collector as ``how`` says, once the hub's state is built (its restore):
    CPython's defaults, off, :func:`gc.freeze` only, or the worker's
    :func:`hub_stream.heap.settle` (freeze and a higher young threshold)."""
    gc.enable()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    if how == "off":
        gc.disable()
    elif how == "frozen":
        gc.collect()
        gc.freeze()
    elif how == "settled":
        heap.settle()


def once(
    mode: str, count: int, profile: bool = False, collector: str = "settled"
) -> dict[str, float]:
    """Time (with ``profile``: profile) both halves of ``count`` exchanges; µs of each."""
    exchange = build(mode, count)
    topics, hub = exchange.topics, exchange.hub
    _collector(collector)
    started = time.process_time()
    for r in exchange.requests:
        hub.codec.decode(r.value)
    decode_us = (time.process_time() - started) / count * 1e6
    print(f"  baseline: decoding a request alone {decode_us:.1f} µs CPU")
    profiles = {"requests": cProfile.Profile(), "responses": cProfile.Profile()} if profile else {}
    request_us, request_main_us, forwarded = _half(
        "requests", exchange, exchange.requests,
        (topics.agency_in(PROVIDER), ForwardedRequest), profiles.get("requests"),
    )  # fmt: skip
    answers = respond(exchange, forwarded)
    response_us, response_main_us, _ = _half(
        "responses", exchange, answers,
        (topics.agency_in(REQUESTER), AttributeResponse), profiles.get("responses"),
    )  # fmt: skip
    for name, prof in profiles.items():
        print(f"\n--- cProfile: {name} ---")
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return {
        "request_us": request_us, "response_us": response_us,
        "request_main_us": request_main_us, "response_main_us": response_main_us,
    }  # fmt: skip


def ed25519(count: int = 3000) -> None:
    """Ed25519 sign and verify through ``cryptography`` and through libsodium (PyNaCl), one
    after the other in this process, and verify in 2 threads against 1 (the GIL released?)."""
    key = SigningKey.generate()
    fast = SodiumSigningKey.of(key)
    data = os.urandom(300)
    signature = key.sign(data)
    public = key.public_bytes

    def timed(call: Callable[[], object], n: int = count) -> float:
        started = time.perf_counter()
        for _ in range(n):
            call()
        return (time.perf_counter() - started) / n * 1e6

    print(f"Ed25519, {count:,} operations on 300 bytes, µs each (wall)")
    print(f"  verify: cryptography {timed(lambda: verify(public, data, signature)):.1f}, "
          f"libsodium {timed(lambda: sodium_accepts(public, data, signature)):.1f}")  # fmt: skip
    print(f"  sign:   cryptography {timed(lambda: key.sign(data)):.1f}, "
          f"libsodium {timed(lambda: fast.sign(data)):.1f}")  # fmt: skip
    for name, check in (("cryptography", verify), ("libsodium", sodium_accepts)):

        def many(check: Callable[[bytes, bytes, bytes], object] = check) -> None:
            for _ in range(count // 8):
                check(public, data, signature)

        one = timed(lambda check=check: check(public, data, signature))  # type: ignore[misc]
        with ThreadPoolExecutor(2) as pool:
            started = time.perf_counter()
            for task in [pool.submit(many) for _ in range(8)]:
                task.result()
            two = (time.perf_counter() - started) / (count // 8 * 8) * 1e6
        print(f"  verify in 2 threads, {name}: {two:.1f} µs each, {one / two:.2f}x one thread")


def main(
    mode: str = "trust-acl", count: int = 5000, repeat: int = 3, collector: str = "settled"
) -> dict[str, float]:
    """The best of ``repeat`` runs (the machine is shared: the least disturbed run)."""
    print(
        f"signatures={mode}, {count:,} exchanges, batches of {BATCH}, best of {repeat}, "
        f"garbage collector {collector}"
    )
    runs = [once(mode, count, collector=collector) for _ in range(repeat)]
    best = {k: min(r[k] for r in runs) for k in runs[0]}
    print(
        f"best: {best['request_us']:.1f} µs per request, {best['response_us']:.1f} µs per "
        f"response, {(best['request_us'] + best['response_us']) / 2:.1f} µs per inbound message"
    )
    print(
        f"      the hub's thread alone: {best['request_main_us']:.1f} µs per request, "
        f"{best['response_main_us']:.1f} µs per response"
    )
    return best


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("signatures", nargs="?", choices=["strict", "trust-acl"],
                        default="trust-acl")  # fmt: skip
    parser.add_argument("count", nargs="?", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    parser.add_argument(
        "--profile", action="store_true", help="one run, with a cProfile of each half"
    )
    parser.add_argument(
        "--gc", choices=GC_MODES, default="settled",
        help="the garbage collector after the state is built (default: as the worker sets it)",
    )  # fmt: skip
    parser.add_argument(
        "--ed25519", action="store_true", help="only time Ed25519: cryptography vs libsodium"
    )
    args = parser.parse_args()
    if args.ed25519:
        ed25519()
    elif args.profile:
        once(args.signatures, args.count, profile=True, collector=args.gc)
    else:
        main(args.signatures, args.count, args.repeat, args.gc)
