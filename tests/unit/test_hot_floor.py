"""benchmarks.hot_floor: the budget arithmetic, and a floor made of every part it names."""

from __future__ import annotations

import pytest

from benchmarks.hot_floor import budget_us, floor


def test_the_budget_is_what_the_ratio_leaves_beside_the_exactly_once_loop() -> None:
    # At 0.5 × 40,000 msg/s the loop has 50 µs a message; the exactly-once pass-through
    # at 32,000 msg/s spends 31.25 of them.
    assert budget_us(0.5, 40_000, 32_000) == pytest.approx(18.75)
    # A target beyond what exactly-once alone allows leaves nothing: a negative budget.
    assert budget_us(1.0, 40_000, 32_000) < 0


def test_the_floor_times_each_operation_of_a_request_and_an_answer() -> None:
    parts = floor(repeat=1)
    assert set(parts) == {"request", "answer", "strict", "aside"}
    assert "decode the request" in parts["request"]
    assert "the audit record" in parts["request"]
    assert "the audit record" in parts["answer"]
    assert set(parts["strict"]) == {"verify the input (libsodium)", "sign the output (libsodium)"}
    # Decoding counts the faster of the two readers.
    assert parts["request"]["decode the request"] <= parts["aside"]["decode the request"]
    assert all(us > 0 for calls in parts.values() for us in calls.values())
