"""``renkei audit verify``: re-read the trail and find every edit, removal, reordering and
insertion, and every checkpoint whose signature fails, at its partition and offset.

How a partition is judged (``docs/audit.md`` has the long form):

1. Each AuditRecord links to the record whose hash its ``prev_hash`` names. Following
   the links from the anchor (:data:`~renkei.auditchain.GENESIS`, or a signed checkpoint
   when verification starts mid-trail) gives the *chain*, each record with its position.
2. A break in the links starts a *fragment*. A signed checkpoint that names a record of a
   fragment tells that fragment's positions, so the verifier knows how many records are
   missing at the break.
3. Then: positions missing with nothing in their place → **removed**; a record outside
   the chain sitting where positions are missing → **edited**; a chain that continues
   right after a record whose hash nobody names → that record **edited**; a record
   outside the chain where nothing is missing → **inserted**; positions out of physical
   order → **reordered**; a break with no later checkpoint to count by → **broken** (an
   edit or a removal; the records after it are not yet signed).
4. Every checkpoint must verify against a trusted key, follow the previous checkpoint
   without a gap, and name the record at the position it claims.
5. Tree heads (:mod:`.trees`): each one with a valid signature must match the Merkle tree
   over the chain at its size; a head larger than the chain → **truncated**; a second
   record linked to the same predecessor → **forked**; a record no head covers →
   **after-last-head**. Heads, like checkpoints, also number fragments and anchor ``--from``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from renkei.auditchain import GENESIS, TrustedKeys, chain_hash, prev_hash_of
from renkei.envelope import verify_bytes
from renkei.errors import ContractError, SignatureError
from renkei.merkle import leaf_hash
from schemas.codec import Codec
from schemas.models import AuditCheckpoint, AuditRecord, AuditTreeHead

from .findings import Finding, Kind, PartitionResult, VerifyReport
from .reader import Raw, read_topic
from .trees import HeadLog, TreeFinding, judge_tree

__all__ = [
    "Finding",
    "PartitionResult",
    "PartitionVerifier",
    "VerifyReport",
    "verify_trail",
]


def _fingerprints_of(codec: Codec, model: type[AuditCheckpoint]) -> frozenset[bytes]:
    return frozenset(fp for fp, kind in codec.fingerprints.items() if issubclass(kind, model))


@dataclass(slots=True)
class _Cp:
    offset: int
    message: AuditCheckpoint  # as read; trusted only when ``valid``
    valid: bool


class PartitionVerifier:
    """Collects one partition's records in offset order, then judges them (:meth:`finish`).

    It keeps about 150 bytes per record (offset, hash, ``prev_hash``); bound a very long
    trail with ``--from``.

    :param partition: the partition number.
    :param trusted: public keys checkpoints may be signed with.
    :param codec: to read checkpoints and records written with other schema versions.
    :param from_genesis: True when reading starts at the partition's first record; else
        the first checkpoint with a valid signature is the anchor and earlier records are
        skipped.
    """

    def __init__(
        self, partition: int, trusted: TrustedKeys, codec: Codec, *, from_genesis: bool = True
    ) -> None:
        self.partition = partition
        self._trusted = trusted
        self._codec = codec
        self._record_fp = codec.fingerprint(AuditRecord)
        # every version's: a checkpoint written before a schema change is still one
        self._checkpoint_fps = _fingerprints_of(codec, AuditCheckpoint)
        self._head_fps = frozenset(
            fp for fp, kind in codec.fingerprints.items() if issubclass(kind, AuditTreeHead)
        )
        self._heads = HeadLog(partition, trusted, codec)
        self._leaves = bytearray()  # each record's RFC 9162 leaf hash, 32 bytes
        self._parent: list[int | None] = []
        self._anchor: tuple[bytes, int] | None = (GENESIS, 0) if from_genesis else None
        self._offsets: list[int] = []
        self._hashes: list[bytes] = []
        self._prevs: list[bytes | None] = []
        self._notes: dict[int, str] = {}  # index → why it is not a well-formed record
        self._cps: list[_Cp] = []
        self._explained: set[int] = set()  # positions already reported edited or removed
        self.result = PartitionResult(partition)

    def add(self, offset: int, value: bytes | None) -> None:
        """The next record of the partition."""
        result = self.result
        if result.first_offset is None:
            result.first_offset = offset
        result.last_offset = offset
        data = value or b""
        fp = data[2:10]
        if fp in self._checkpoint_fps:
            self._checkpoint(offset, data)
            return
        if fp in self._head_fps:
            self._tree_head(offset, data)
            return
        if self._anchor is None:
            result.skipped += 1
            return
        prev: bytes | None = prev_hash_of(data) if fp == self._record_fp else None
        if prev is None:
            prev = self._slow_prev(len(self._offsets), data)
        self._offsets.append(offset)
        self._hashes.append(chain_hash(data))
        self._prevs.append(prev)
        self._leaves += leaf_hash(data)

    def _slow_prev(self, index: int, data: bytes) -> bytes | None:
        try:
            message = self._codec.decode(data)
        except ContractError as exc:
            self._notes[index] = f"does not decode ({type(exc).__name__})"
            return None
        if isinstance(message, AuditRecord):
            return message.prev_hash
        self._notes[index] = f"a {type(message).__name__}, not an audit record"
        return None

    def _checkpoint(self, offset: int, data: bytes) -> None:
        self.result.checkpoints += 1
        try:
            checkpoint = self._codec.decode_as(data, AuditCheckpoint)
        except ContractError as exc:
            self._finding("edited", offset, f"checkpoint does not decode ({type(exc).__name__})")
            self._cps.append(_Cp(offset, AuditCheckpoint.model_construct(), valid=False))
            return
        public = self._trusted.get(checkpoint.key_id)
        valid = False
        if public is None:
            self._finding(
                "unknown-key", offset, f"checkpoint signed by unknown {checkpoint.key_id}"
            )
        elif checkpoint.partition != self.partition:
            self._finding(
                "checkpoint-mismatch", offset, f"checkpoint of partition {checkpoint.partition}"
            )
        else:
            try:
                # over the bytes as written: a checkpoint of an older schema version
                # verifies although this codec would encode it differently
                verify_bytes(data, public, self._codec)
                valid = True
            except SignatureError:
                self._finding("bad-signature", offset, "checkpoint signature does not verify")
        if valid and self._anchor is None:
            self._anchor = (checkpoint.chain_hash, checkpoint.last_offset + 1)
        self._cps.append(_Cp(offset, checkpoint, valid))

    def _tree_head(self, offset: int, data: bytes) -> None:
        self.result.tree_heads += 1
        found = self._heads.add(offset, data)
        if found is not None:
            self._tree_finding(found)
        elif self._anchor is None:
            head = self._heads.valid[-1].head
            self._anchor = (head.head.chain_hash, head.size)

    @property
    def has_heads(self) -> bool:
        """Whether a tree head with a valid signature was read."""
        return bool(self._heads.valid)

    def _finding(self, kind: Kind, offset: int, detail: str, position: int | None = None) -> None:
        self.result.findings.append(Finding(kind, self.partition, offset, detail, position))

    def _tree_finding(self, found: TreeFinding) -> None:
        kind: Kind = found.kind  # type: ignore[assignment]  # trees names only these kinds
        self._finding(kind, found.offset, found.detail, found.position)

    # -- judging -------------------------------------------------------------------------

    def finish(self, heads_expected: bool | None = None) -> PartitionResult:
        """Judge the partition; the findings are sorted by offset.

        :param heads_expected: every record must be covered by a tree head (default: this
            partition has a valid head, so the hub signed its every commit).
        """
        self._heads_expected = self.has_heads if heads_expected is None else heads_expected
        n = len(self._offsets)
        self.result.records = n + self.result.skipped
        if self._anchor is None:
            self.result.findings.sort(key=lambda f: f.offset)
            return self.result
        anchor_hash, anchor_pos = self._anchor
        hashes, prevs = self._hashes, self._prevs
        if n and prevs[0] == anchor_hash and prevs[1:] == hashes[:-1]:
            return self._finish_linear(anchor_pos)  # the usual case, compared in C
        if not n:
            self._judge_tree([], anchor_pos)
            self.result.findings.sort(key=lambda f: (f.offset, f.kind))
            return self.result
        index: dict[bytes, int] = {}
        for i, h in enumerate(self._hashes):
            index.setdefault(h, i)  # a duplicate is judged as a fork loser below
        parent: list[int | None] = []
        succ: dict[int, list[int]] = {}
        for i, prev in enumerate(self._prevs):
            j = -1 if prev == anchor_hash else (index.get(prev) if prev is not None else None)
            if j == i:
                j = None
            parent.append(j)
            if j is not None:
                succ.setdefault(j, []).append(i)
        self._parent = parent
        signed = {cp.message.chain_hash for cp in self._cps if cp.valid}
        signed |= self._heads.last_positions().keys()
        fragment = [-1] * n
        fragments = [self._walk(-1, succ, fragment, 0, signed)]
        while True:  # the rest: roots, fork losers and what hangs off them
            started = False
            for i in range(n):
                j = parent[i]
                if fragment[i] == -1 and (j is None or j == -1 or fragment[j] != -1):
                    fragment[i] = len(fragments)
                    fragments.append([i, *self._walk(i, succ, fragment, len(fragments), signed)])
                    started = True
            if not started:
                break
        pos: list[int | None] = [None] * n
        for k, i in enumerate(fragments[0]):
            pos[i] = anchor_pos + k
        self._position_fragments(fragments, pos)
        self._judge(fragments, pos, anchor_pos, index)
        self._check_checkpoints(pos, index)
        self._judge_tree(pos, anchor_pos)
        self.result.findings.sort(key=lambda f: (f.offset, f.kind))
        return self.result

    def _finish_linear(self, anchor_pos: int) -> PartitionResult:
        """Every record links to the one before it: positions are offsets in order."""
        n = len(self._offsets)
        wanted = {cp.message.chain_hash for cp in self._cps if cp.valid}
        index = {h: i for i, h in enumerate(self._hashes) if h in wanted}
        pos: list[int | None] = list(range(anchor_pos, anchor_pos + n))
        self._check_checkpoints(pos, index)
        self._judge_tree(pos, anchor_pos)
        self.result.findings.sort(key=lambda f: (f.offset, f.kind))
        return self.result

    def _judge_tree(self, pos: list[int | None], anchor_pos: int) -> None:
        """Tree heads against the chain (:func:`.trees.judge_tree`); what is signed."""
        at_position: list[int | None] = []
        for i, p in enumerate(pos):
            if p is None:
                continue
            k = p - anchor_pos
            if k >= len(at_position):
                at_position.extend([None] * (k + 1 - len(at_position)))
            if at_position[k] is None:
                at_position[k] = i
        last = self.result.last_offset
        chain = judge_tree(
            self._heads, at_position, self._leaves, self._hashes, self._offsets,
            explained=self._explained, anchor_pos=anchor_pos,
            heads_expected=self._heads_expected,
            end_offset=0 if last is None else last + 1,
        )  # fmt: skip
        self.result.chain = chain
        for found in chain.findings:
            self._tree_finding(found)
        # signed: up to the last position a valid checkpoint or tree head names
        covered = [cp.message.last_offset for cp in self._cps if cp.valid]
        covered += [h.head.size - 1 for h in self._heads.valid]
        last_signed = max(covered, default=-1)
        chained = [i for i in at_position if i is not None]
        signed = [
            i for k, i in enumerate(at_position) if i is not None and anchor_pos + k <= last_signed
        ]
        self.result.signed_through = self._offsets[max(signed)] if signed else None
        self.result.unsigned_records = len(chained) - len(signed)

    def _walk(
        self,
        start: int,
        succ: dict[int, list[int]],
        fragment: list[int],
        fid: int,
        signed: set[bytes],
    ) -> list[int]:
        chain: list[int] = []
        cur = start
        while True:
            candidates = [j for j in succ.get(cur, ()) if fragment[j] == -1]
            if not candidates:
                return chain
            # A fork: a forged or duplicated record naming a genuine predecessor. The
            # genuine one is named in turn by its successor (or by a checkpoint).
            nxt = min(candidates, key=lambda j: (not succ.get(j), self._hashes[j] not in signed, j))
            fragment[nxt] = fid
            chain.append(nxt)
            cur = nxt

    def _position_fragments(self, fragments: list[list[int]], pos: list[int | None]) -> None:
        """Number a fragment's records from a valid checkpoint or tree head that names one."""
        by_hash = self._heads.last_positions()
        by_hash.update(
            (cp.message.chain_hash, cp.message.last_offset) for cp in self._cps if cp.valid
        )
        for frag in fragments[1:]:
            for k, i in enumerate(frag):
                last = by_hash.get(self._hashes[i])
                if last is not None:
                    first = last - k
                    for m, j in enumerate(frag):
                        pos[j] = first + m
                    break

    def _judge(
        self,
        fragments: list[list[int]],
        pos: list[int | None],
        anchor_pos: int,
        index: dict[bytes, int],
    ) -> None:
        n = len(self._offsets)
        offsets = self._offsets
        placed = sorted((p, i) for i, p in enumerate(pos) if p is not None)
        last_placed = max((i for _, i in placed), default=-1)
        # reordered: physical order disagrees with position order
        reordered: set[int] = set()
        running: list[tuple[int, int]] = []  # (position, index) in physical order
        highest = -1
        for i in range(n):
            p = pos[i]
            if p is None:
                continue
            if p < highest:
                for q, j in reversed(running):  # back to where p belongs; local in practice
                    if q < p:
                        break
                    reordered.add(j)
                reordered.add(i)
            running.append((p, i))
            highest = max(highest, p)
        if reordered:
            spans = _runs(sorted(reordered))
            for a, b in spans:
                self._finding(
                    "reordered", offsets[a],
                    f"records at offsets {offsets[a]}..{offsets[b]} are out of chain order",
                )  # fmt: skip
        # gaps in positions, and what sits in them
        unplaced = [i for i in range(n) if pos[i] is None]
        explained: set[int] = set()
        expected = anchor_pos
        prev_index = -1
        for p, i in placed:
            if p > expected:
                missing = p - expected
                lo = offsets[prev_index] if prev_index >= 0 else None
                between = [j for j in unplaced if prev_index < j < i and j not in explained]
                if between and len(between) <= missing:
                    for j in between:
                        explained.add(j)
                        note = self._notes.get(j, "its hash is not what the chain holds")
                        self._finding(
                            "edited", offsets[j], f"record at position {expected}: {note}"
                        )
                        self._explained.add(expected)
                        expected += 1
                    missing = p - expected
                if missing > 0:
                    self._explained.update(range(expected, p))
                    where = (
                        f"between offsets {lo} and {offsets[i]}"
                        if lo is not None
                        else (f"before offset {offsets[i]}")
                    )
                    self._finding(
                        "removed", offsets[i],
                        f"{missing} record(s) at positions {expected}..{p - 1} missing {where}",
                    )  # fmt: skip
            expected = max(expected, p + 1)
            prev_index = i
        # fragment boundaries with no gap: the record before the break was edited
        at_position = dict(placed)
        for frag in fragments[1:]:
            first = frag[0]
            p = pos[first]
            if p is None or p == anchor_pos:
                continue
            before = at_position.get(p - 1)
            if before is not None and before not in reordered:
                note = self._notes.get(before, "its hash is not the next record's prev_hash")
                self._finding("edited", offsets[before], f"record at position {p - 1}: {note}")
                self._explained.add(p - 1)
        # records outside the chain
        starts = {frag[0] for frag in fragments[1:]}
        forked: dict[int, int] = {}  # index → the position its branch claims
        for i in unplaced:
            if i in explained:
                continue
            at = self._fork_position(i, pos, anchor_pos, forked, index)
            if at is not None:
                forked[i] = at
                twin = at_position.get(at)
                rival = f"offset {offsets[twin]}" if twin is not None else "the chain"
                self._finding(
                    "forked", offsets[i],
                    f"a second record at position {at}, linked like the one at {rival}: "
                    "two histories; this branch is the one the chain (and its heads) do "
                    "not continue",
                    at,
                )  # fmt: skip
            elif i > last_placed and i in starts:
                self._finding(
                    "broken", offsets[i],
                    "the chain breaks here and no later checkpoint tells how: the record "
                    "before was edited, or records were removed",
                )  # fmt: skip
            elif i > last_placed:
                continue  # the rest of a fragment already reported as broken
            else:
                note = self._notes.get(i, "not linked into the chain")
                self._finding("inserted", offsets[i], note)

    def _fork_position(
        self,
        i: int,
        pos: list[int | None],
        anchor_pos: int,
        forked: dict[int, int],
        index: dict[bytes, int],
    ) -> int | None:
        """The position record ``i`` claims when it links to a record of the chain (or of
        a branch already found) without being in the chain: a fork; None otherwise (and
        for an exact copy of a chain record, which is an insertion, not a history)."""
        if index.get(self._hashes[i], i) != i:
            return None
        j = self._parent[i] if i < len(self._parent) else None
        if j == -1:
            return anchor_pos
        if j is None:
            return None
        p = pos[j]
        if p is not None:
            return p + 1
        return forked[j] + 1 if j in forked else None

    def _check_checkpoints(self, pos: list[int | None], index: dict[bytes, int]) -> None:
        previous: AuditCheckpoint | None = None
        after_invalid = False  # a bad checkpoint in between is reported already
        for cp in self._cps:
            if not cp.valid:
                after_invalid = True
                continue
            msg = cp.message
            if msg.record_count != msg.last_offset - msg.first_offset + 1:
                self._finding("checkpoint-mismatch", cp.offset, "record_count disagrees")
            if after_invalid:
                pass
            elif previous is not None and msg.first_offset != previous.last_offset + 1:
                self._finding(
                    "checkpoint-missing", cp.offset,
                    f"checkpoint covering positions {previous.last_offset + 1}.."
                    f"{msg.first_offset - 1} is missing before this one",
                )  # fmt: skip
            elif previous is None and self._anchor == (GENESIS, 0) and msg.first_offset != 0:
                self._finding(
                    "checkpoint-missing", cp.offset,
                    f"checkpoint covering positions 0..{msg.first_offset - 1} is missing",
                )  # fmt: skip
            i = index.get(msg.chain_hash)
            if i is None and msg.last_offset in self._explained:
                pass  # the record it signs is reported edited or removed already
            elif i is None:
                self._finding(
                    "checkpoint-mismatch", cp.offset,
                    f"no record has the signed hash of position {msg.last_offset} "
                    "(that record was edited or removed, or the chain rewritten)",
                )  # fmt: skip
            elif pos[i] is not None and pos[i] != msg.last_offset:
                self._finding(
                    "checkpoint-mismatch",
                    cp.offset,
                    f"the signed record is at position {pos[i]}, not {msg.last_offset}",
                )
            elif self._offsets[i] > cp.offset:
                self._finding("reordered", cp.offset, "checkpoint stands before what it signs")
            previous = msg
            after_invalid = False


def _runs(indexes: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for i in indexes:
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


async def verify_trail(
    kafka: dict[str, Any],
    topic: str,
    trusted: TrustedKeys,
    codec: Codec,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    tap: Callable[[Raw], None] | None = None,
) -> VerifyReport:
    """Read every partition of ``topic`` and verify it.

    :param since_ms: start at this time; each partition is then anchored at its first
        valid checkpoint at or after it (earlier records there are skipped, not judged).
    :param until_ms: stop after the first tree head (in a trail without heads: checkpoint)
        past this time, so the last records read are still covered by a signature.
    :param on_start: called with the number of offsets to read.
    :param on_progress: called with the offsets read so far, after each batch.
    :param tap: called with every record read (``prove`` picks its exchange's records
        from the same pass).
    """
    verifiers: dict[int, PartitionVerifier] = {}
    checkpoint_fp = codec.fingerprint(AuditCheckpoint)
    head_fp = codec.fingerprint(AuditTreeHead)
    done: set[int] = set()
    read = 0
    async for batch in read_topic(kafka, topic, since_ms=since_ms, on_start=on_start):
        partition = batch[0].partition
        verifier = verifiers.get(partition)
        if verifier is None:
            verifier = verifiers[partition] = PartitionVerifier(
                partition, trusted, codec, from_genesis=since_ms is None
            )
        if partition in done:
            continue
        for raw in batch:
            verifier.add(raw.offset, raw.value)
            if tap is not None:
                tap(raw)
            past = until_ms is not None and raw.timestamp_ms > until_ms
            closing = head_fp if verifier.has_heads else checkpoint_fp
            if past and raw.value and raw.value[2:10] == closing:
                done.add(partition)  # the first signature past the range closes it
                break
        read += len(batch)
        if on_progress is not None:
            on_progress(read)
    # A partition without any head is judged as before heads: a hub upgraded to them
    # writes none into a partition that gets no new record (its removed heads are caught
    # by --against a head kept from it).
    results = [verifiers[p].finish() for p in sorted(verifiers)]
    return VerifyReport(topic, results)
