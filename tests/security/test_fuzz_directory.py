"""Fuzzing the directory restore: what a worker obeys of ``hub.directory``, and what the
loop parks, for hostile records among the genuine ones.

The feed (:class:`hub_stream.directory_feed.DirectoryFeed`, the path of the restore and
of the faust agent) holds the sample directory, every entry signed by the pinned
operators' key. Each example hands it hostile records — mutations of the genuine
entries; entries with one field rewritten and signed by an agency, the registry or the
hub instead, or not signed; genuine entries filed under another key; random bytes,
tombstones — and one genuine entry again, each as the restore reads it or as the faust
agent hands it over. Whatever they are: the feed never raises, and the directory
afterwards is exactly the genuine one (nothing forged applied, nothing genuine lost); the
hub's loop reading the same records parks and audits exactly those the feed ignored, with
the same code, and nothing else.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, note

from hub_stream.directory import Directory, DirectoryEntry, entry_key
from hub_stream.directory_feed import DirectoryFeed
from renkei.crypto import keystore
from renkei.envelope import encode_signed
from renkei.operator.directory_file import load_directory_file
from renkei.operator.publish import SENDERS, directory_entries
from schemas.codec import default_codec
from schemas.models import AuditRecord, AuditStep, DeadLetter, Header
from tests.security.fuzzing import entropy, fuzz_settings, hostile, quiet, rewrite
from tests.unit.hub_world import Record, World

CODEC = default_codec()


class Fixture:
    """A hub world, the genuine signed directory, and a feed that has applied it."""

    senders = ("operator", "operator", "registry", "jps", "hub")
    """Whom a rewritten entry says it is from (it is never signed by the operators)."""

    def __init__(self, key_dir: Path) -> None:
        self.world = w = World(key_dir)
        file = load_directory_file()
        ids = [a.agency_id for a in file.agencies] + [s[0] for s in SENDERS]
        self.entries = directory_entries(file, {i: w.keys(i).public() for i in ids}, SENDERS)
        self.signers = {i: w.keys(i).signing for i in ("operator", "registry", "jps")}
        self.signers["hub"] = keystore.load_hub_signing_key(key_dir)
        self.genuine = [(entry_key(e), self.signed(e, "operator")) for e in self.entries]
        self.metrics: Counter[str] = Counter()
        self.directory = Directory()
        self.feed = DirectoryFeed(
            w.topics.directory, lambda: self.directory, CODEC, w.hub.roots, self.metrics,
            self.signers["hub"].public_bytes,
        )  # fmt: skip
        assert all(self.feed.apply(k, v) for k, v in self.genuine)
        self.expected = (dict(self.directory.agencies), dict(self.directory.scenarios))
        self.palette: list[object] = [*ids, "hub", "S001", "S999", "pension.benefit_status",
                                      self.signers["jps"].public_bytes]  # fmt: skip

    def signed(self, entry: DirectoryEntry, signer: str) -> bytes:
        return encode_signed(entry, self.signers[signer], CODEC)

    def hostile(self, rng: random.Random) -> tuple[bytes | None, bytes | None]:
        """One record no worker may obey."""
        key, value = rng.choice(self.genuine)
        kind = rng.randrange(6)
        if kind == 0:  # a genuine entry filed under another entry's key, or none
            return rng.choice([None, b"", rng.choice(self.genuine)[0] + b"x"]), value
        if kind == 1:
            return key, None  # a tombstone: it cannot be signed, so it withdraws nothing
        if kind <= 3:  # bytes mutated, or cut, or random behind an entry's header
            return key, hostile(rng, [v for _, v in self.genuine])
        entry = rng.choice(self.entries)
        changed = rewrite(rng, entry, self.palette) or entry
        changed = changed.model_copy(update={"header": Header.new(rng.choice(self.senders))})
        signer = rng.choice(["registry", "jps", "hub", None])
        return entry_key(changed), (CODEC.encode(changed) if signer is None
                                    else self.signed(changed, signer))  # fmt: skip


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    with quiet("hub_stream.directory_feed"):
        yield Fixture(tmp_path_factory.mktemp("directory") / "keys")


@fuzz_settings("directory")
@given(entropy())
def test_only_the_operators_entries_are_obeyed(fx: Fixture, rng: random.Random) -> None:
    records = [fx.hostile(rng) for _ in range(rng.randint(1, 2))]
    records.insert(rng.randint(0, len(records)), rng.choice(fx.genuine))
    note(repr([(k, v.hex() if v else v) for k, v in records]))
    w, t = fx.world, fx.world.topics
    for key, value in records:
        before = Counter(fx.metrics)
        if key is not None and rng.random() < 0.5:
            fx.feed.load(key, value)  # as the restore reads it
        else:
            fx.feed.apply(key, value, "0:0")  # as the faust agent hands it over
        counted = fx.metrics - before
        applied = counted["directory.applied"] == 1
        ignored = [c.split(".", 1)[1] for c in counted if c.startswith("directory_ignored.")]
        outputs = w.hub.handle([_record(w, key, value)])
        w.hub.commit()
        letters = [CODEC.decode(o.value) for o in outputs if o.topic == t.deadletter and o.value]
        written = [CODEC.decode(o.value) for o in outputs if o.topic == t.audit and o.value]
        audit = [a for a in written if isinstance(a, AuditRecord)]
        if applied or value is None:
            assert (ignored, letters, audit) == ([], [], [])
        else:
            (code,) = ignored
            assert [(type(m), getattr(m, "reason", None)) for m in letters] == [(DeadLetter, code)]
            assert [(a.step, a.error_code) for a in audit] == [(AuditStep.DEAD_LETTERED, code)]
    assert (fx.directory.agencies, fx.directory.scenarios) == fx.expected


def _record(w: World, key: bytes | None, value: bytes | None) -> Record:
    return dataclasses.replace(w.record(w.topics.directory, b""), key=key, value=value)
