"""The demo's main batch, offered at a rate, and what its summary says it measured.

A fake clock (advanced by the batch's own waits) and fake clients stand in for time and
Kafka: nothing here is timed.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest

from renkei.demo import DemoSummary
from renkei.demo.asking import HOLDERS, OFFLINE, Asking


class FakeClock:
    """Seconds that pass only when the batch waits."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)  # the requests started so far run first, as in a real wait
        self.now += seconds


class FakeClient:
    """Answers every request at once; notes when (on the fake clock) each was sent."""

    def __init__(self, clock: FakeClock, sent: list[float]) -> None:
        self.clock, self.sent = clock, sent

    async def request(self, **call: Any) -> dict[str, Any]:
        self.sent.append(self.clock())
        return dict.fromkeys(call["items"], "PAID")


def _asking(clock: FakeClock, sent: list[float]) -> Asking:
    agencies = (*HOLDERS, OFFLINE)
    clients: Any = {a: FakeClient(clock, sent) for a in agencies}
    codes = {a: {f"resident-{i}": f"{a}-code-{i}" for i in range(20)} for a in agencies}
    return Asking(clients, codes, Counter(), lambda _: None, random.Random(1),
                  clock=clock, sleep=clock.sleep)  # fmt: skip


async def test_a_paced_batch_sends_each_request_at_its_due_time_and_counts_them_all() -> None:
    clock, sent = FakeClock(), list[float]()
    asking = _asking(clock, sent)
    await asking.batch(40, rate=20)
    assert asking.requested == 40
    assert asking.outcomes == Counter(answered=40)
    assert len(asking.latencies) == 40  # every exchange is timed, none left out
    # The i-th request goes 0.05 * i s after the first, whether or not others are answered.
    assert sent == pytest.approx([100.0 + i / 20 for i in range(40)])
    assert asking.offered_per_s == pytest.approx(20)


async def test_a_late_start_is_not_made_up_for_and_lowers_the_rate_reached() -> None:
    clock, sent = FakeClock(), list[float]()
    asking = _asking(clock, sent)

    async def slow(seconds: float) -> None:  # each wait overshoots by 50 ms
        await clock.sleep(seconds + 0.05)

    asking.sleep = slow
    await asking.batch(11, rate=20)
    assert len(sent) == 11
    assert asking.offered_per_s is not None
    assert asking.offered_per_s < 20


async def test_a_burst_starts_everything_at_once() -> None:
    clock, sent = FakeClock(), list[float]()
    asking = _asking(clock, sent)
    await asking.batch(30, rate=None)
    assert clock.waits == []
    assert sent == [100.0] * 30
    assert asking.offered_per_s is None
    assert asking.outcomes == Counter(answered=30)


@pytest.mark.parametrize("rate", [0, -5, float("nan")])
async def test_a_rate_that_is_not_positive_is_refused(rate: float) -> None:
    asking = _asking(FakeClock(), [])
    with pytest.raises(ValueError, match="offered rate must be positive"):
        await asking.batch(10, rate=rate)


def _summary(**fields: Any) -> DemoSummary:
    return DemoSummary(prefix="demo.", exchanges=300, outcomes={"answered": 300}, notices={},
                       hub={}, latencies_s=(0.02,) * 300, duplicates_dropped=0,
                       principals=(), secure=False, **fields)  # fmt: skip


def test_the_summary_says_what_the_latency_measured() -> None:
    paced = _summary(offered_per_s=19.98, hub_in_process=False, cpu_ms=(4.0, 3.5))
    assert paced.latency_label() == (
        "exchange latency p50 / p99 (300 offered at 20/s; strict; hub in its own process)"
    )
    slow = _summary(offered_per_s=0.5, hub_in_process=True)
    assert "(300 offered at 0.5/s; strict; hub in the demo's process)" in slow.latency_label()
    burst = _summary(offered_per_s=None, hub_in_process=True, cpu_ms=(9.0, 0.0))
    assert burst.latency_label() == (
        "exchange latency p50 / p99 (300 all at once; strict; hub in the demo's process)"
    )
    rows = _rows(paced)
    assert rows[paced.latency_label()] == "20 / 20 ms"
    assert rows["CPU per exchange (agencies + hub, idle polling included)"] == "4.0 + 3.5 ms"
    assert _rows(burst)["CPU per exchange (agencies and hub, idle polling included)"] == "9.0 ms"


def _rows(summary: DemoSummary) -> dict[str, str]:
    table = summary.table()
    what, count = table.columns
    return dict(zip(what.cells, count.cells, strict=True))  # type: ignore[arg-type]
