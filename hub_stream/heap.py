"""CPython's garbage collector, set for a worker that holds its state in memory.

The hub frees nearly everything it allocates per message by reference counting; what the
cyclic collector walks is what survives a while: the restored state (persons, holdings,
pending rows, the replay memory), and each batch's staged rows and outputs until the batch
is written. CPython 3.11 collects the young generation every 700 net allocations, and the
whole heap whenever the survivors since the last full collection reach a quarter of it —
so a full collection walks every restored row again, and a worker holding a million
persons would pause for a whole-heap walk every few hundred thousand messages.

:func:`settle` runs once, after the restore: it collects what the restore left behind,
then :func:`gc.freeze` moves every surviving object out of the collector's generations
for good (they are still freed by reference counting; only cycles among them would be
kept, and restored rows form none), and raises the young generation's threshold so that a
batch's short-lived survivors die before they are walked and promoted.

Measured in ``benchmarks.profile_hub --gc`` (docs/benchmarks.md, "What limits it"):
the collector's share of ``Hub.handle`` in trust-acl, per inbound message.
"""

from __future__ import annotations

import gc
from typing import Final

__all__ = ["YOUNG_THRESHOLD", "settle"]

YOUNG_THRESHOLD: Final = 10_000
"""Net allocations between young collections (CPython's default: 700). A batch of 1,000
messages keeps ≈ 10 objects per message alive until it is written (staged rows, outputs):
at 700 they are walked in the young generation, promoted, and walked again; at 10,000 a
young collection comes about once a batch, and walks ~10,000 objects in a few ms."""


def settle(young: int = YOUNG_THRESHOLD) -> None:
    """After the restore: collect, freeze what survived, raise the young threshold."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, old)
