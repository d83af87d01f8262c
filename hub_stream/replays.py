"""The replay memory: the message ids the hub has handled, for a window of time.

The same bytes written twice to an agency's ``.out`` topic (a replay, or a client that
sends again) must not become a second forwarded request, a second enrolment or a second
answer: the hub remembers ``(sender, message id)`` of every message it handled and
refuses a copy as ``DUPLICATE`` (:mod:`.refusals`). It remembers each id for
``window_ms`` — the longest deadline a request may carry plus a margin — which is as long
as a replay could do harm: a request replayed later has a deadline in the past and is
refused ``DEADLINE_INVALID``, an answer replayed later finds no request waiting.

**Consistent with exactly-once.** The memory is hub state like the tables of
:mod:`.state`: what a batch remembers is staged, visible to the rest of the batch (and to
the batches handled while its transaction is in flight), and written to the compacted
``hub.state.seen`` topic in the batch's transaction; an aborted batch forgets it, with
every later one. A batch processed again after a crash therefore starts from the same
memory and produces the same outputs — not ``DUPLICATE`` refusals of itself.

**Bounded by time.** Ids are grouped by when they expire, into buckets of
``bucket_ms`` (a hundredth of the window by default). Each batch writes one record per
bucket it added to (key ``<bucket>/<first id digest>``, value the 16-byte digests); once a
bucket's last expiry has passed, the hub forgets it and writes tombstones for its records.
Memory holds what arrived within one window: ≈ 90 bytes per id (a 16-byte BLAKE2b digest
of sender and id, in a set and in its bucket's list), so 1,000 messages/s for the default
25 hours is ≈ 90 M ids, ≈ 8 GB; a shorter ``RENKEI_HUB_MAX_DEADLINE_MS`` shortens it.
"""

from __future__ import annotations

import hashlib

from .outputs import Output

__all__ = ["DIGEST_SIZE", "ReplayMemory"]

DIGEST_SIZE = 16
"""Bytes remembered per id; a false duplicate needs a 128-bit collision."""


def _digest(sender: str, message_id: str) -> bytes:
    return hashlib.blake2b(
        f"{sender}\x1f{message_id}".encode(), digest_size=DIGEST_SIZE, person=b"renkei-replay"
    ).digest()


class ReplayMemory:
    """Which ``(sender, message id)`` pairs the hub has handled within the window.

    It has the staging interface of :class:`~.state.Table` (savepoints, commit, rollback,
    changes, restore), so the hub treats it as one more table.

    :param topic: the compacted topic that holds it (``hub.state.seen``).
    :param window_ms: how long an id is remembered at least.
    :param bucket_ms: expiry granularity: an id is forgotten up to this much later.
    """

    def __init__(self, topic: str, window_ms: int, bucket_ms: int | None = None) -> None:
        if window_ms <= 0:
            raise ValueError("the replay window must be positive")
        self.topic = topic
        self.window_ms = window_ms
        self.bucket_ms = bucket_ms or max(window_ms // 100, 1000)
        self._seen: set[bytes] = set()
        self._buckets: dict[int, list[bytes]] = {}  # bucket → digests (committed)
        self._records: dict[int, set[str]] = {}  # bucket → its record keys on the topic
        # (digest, bucket) of every uncommitted id, in order, over all layers (Table's
        # layers: one per batch in flight); positions are absolute, as Table's are.
        self._staged: list[tuple[bytes, int]] = []
        self._staged_set: set[bytes] = set()
        self._base = 0
        self._starts: list[int] = []  # where each sealed layer starts in _staged
        self._open_start = 0
        self._expiring: list[int] = []  # the open layer's
        self._expiring_sealed: list[list[int]] = []

    def __len__(self) -> int:
        """Ids remembered (committed)."""
        return len(self._seen)

    # -- what the hub asks -------------------------------------------------------------

    def first_time(self, sender: str, message_id: str, now_ms: int) -> bool:
        """Remember the id and say whether it is new (``False``: a duplicate)."""
        digest = _digest(sender, message_id)
        if digest in self._staged_set or digest in self._seen:
            return False
        self._staged.append((digest, (now_ms + self.window_ms) // self.bucket_ms))
        self._staged_set.add(digest)
        return True

    def expire(self, now_ms: int) -> bool:
        """Stage forgetting every bucket whose ids have all expired; True if there are any.

        The tombstones are in :meth:`changes`; the memory forgets at :meth:`commit`. A
        bucket a batch in flight already forgets is not forgotten twice.
        """
        pending = {b for layer in self._expiring_sealed for b in layer}
        self._expiring = [
            b for b in self._buckets if (b + 1) * self.bucket_ms <= now_ms and b not in pending
        ]
        return bool(self._expiring)

    # -- the table interface -----------------------------------------------------------

    def changes(self) -> list[Output]:
        """One record per bucket the open layer added to, and tombstones for its expiring
        buckets."""
        added: dict[int, list[bytes]] = {}
        for digest, bucket in self._staged[self._open_start - self._base :]:
            added.setdefault(bucket, []).append(digest)
        outputs = [
            Output(self.topic, _record_key(bucket, digests[0]).encode(), b"".join(digests))
            for bucket, digests in added.items()
        ]
        for bucket in self._expiring:
            outputs += [Output(self.topic, k.encode(), None) for k in sorted(self._records[bucket])]
        return outputs

    def savepoint(self) -> int:
        return self._base + len(self._staged)

    def rollback_to(self, mark: int) -> None:
        if mark < self._open_start:
            raise ValueError("a savepoint before the open layer: roll back every layer")
        self._undo_to(mark)

    def seal(self) -> None:
        self._starts.append(self._open_start)
        self._open_start = self._base + len(self._staged)
        self._expiring_sealed.append(self._expiring)
        self._expiring = []

    def commit(self) -> None:
        if not self._starts:
            self.seal()
        self._starts.pop(0)
        end = self._starts[0] if self._starts else self._open_start
        for bucket in self._expiring_sealed.pop(0):
            self._forget(bucket)
        first: dict[int, bytes] = {}
        for digest, bucket in self._staged[: end - self._base]:
            first.setdefault(bucket, digest)
            self._seen.add(digest)
            self._staged_set.discard(digest)
            self._buckets.setdefault(bucket, []).append(digest)
        for bucket, digest in first.items():
            self._records.setdefault(bucket, set()).add(_record_key(bucket, digest))
        del self._staged[: end - self._base]
        self._base = end

    def rollback(self) -> None:
        self._undo_to(self._base)
        self._starts.clear()
        self._open_start = self._base
        self._expiring = []
        self._expiring_sealed.clear()

    def _undo_to(self, mark: int) -> None:
        while self._base + len(self._staged) > mark:
            digest, _ = self._staged.pop()
            self._staged_set.discard(digest)

    def load(self, key: bytes, value: bytes | None) -> None:
        """One record read while restoring; a malformed one is skipped (nothing to refuse)."""
        try:
            bucket = int(key.decode().split("/", 1)[0], 16)
        except ValueError:
            return
        if value is None:
            # The hub tombstones a bucket's records together, when it forgets the bucket.
            self._forget(bucket)
            return
        self._records.setdefault(bucket, set()).add(key.decode())
        digests = self._buckets.setdefault(bucket, [])
        for at in range(0, len(value) - len(value) % DIGEST_SIZE, DIGEST_SIZE):
            digest = value[at : at + DIGEST_SIZE]
            if digest not in self._seen:
                self._seen.add(digest)
                digests.append(digest)

    def _forget(self, bucket: int) -> None:
        for digest in self._buckets.pop(bucket, ()):
            self._seen.discard(digest)
        self._records.pop(bucket, None)


def _record_key(bucket: int, first: bytes) -> str:
    return f"{bucket:x}/{first.hex()}"
