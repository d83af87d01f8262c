"""CPython's garbage collector, set for a worker that holds its state in memory.

The hub frees nearly everything it allocates per message by reference counting; what the
cyclic collector walks is what survives a while: the restored state (persons, holdings,
pending rows, the replay memory), and each batch's staged rows and outputs until the batch
is written. CPython 3.11 collects the young generation every 700 net allocations (≈ every
90 messages here), the middle one every tenth time, and the whole heap every tenth
middle collection once the objects promoted since the last full one reach a quarter of
the heap's long-lived ones: so every restored row is walked again and again, the longer
the pause the more persons the worker holds.

:func:`settle` runs once, after the restore: it collects what the restore left behind,
then :func:`gc.freeze` moves every surviving object out of the collector's generations
for good (they are still freed by reference counting; only cycles among them would be
kept, and restored rows form none), and raises the young generation's threshold so that a
batch's short-lived survivors die before they are walked and promoted.

Measured with ``benchmarks.profile_hub trust-acl 4000 --gc default|settled`` (the
collector's time, by its callbacks, per inbound message, 4,000 persons held): CPython's
defaults 4.5 µs a request and 16.4 µs an answer (one full collection, 59 ms); settled
2.5 and 0 µs. A worker with more persons pays more for each full collection by default,
and nothing more once they are frozen.
"""

from __future__ import annotations

import gc
from typing import Final

__all__ = ["YOUNG_THRESHOLD", "settle"]

YOUNG_THRESHOLD: Final = 10_000
"""Net allocations between young collections (CPython's default: 700). A message leaves ≈ 8
objects alive until its batch is written (46 young collections in 4,000 requests at 700):
at 700 they are walked young, promoted, walked again in the middle generation (4
collections) and reach the old one; at 10,000 three young collections walk them (about
as long in all) and no middle or full collection follows."""


def settle(young: int = YOUNG_THRESHOLD) -> None:
    """After the restore: collect, freeze what survived, raise the young threshold."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, old)
