"""benchmarks.cpu_meter counts the CPU a process burns, and the machine's, per window."""

from __future__ import annotations

import os
import time

from benchmarks.cpu_meter import CpuMeter


def burn(seconds: float) -> float:
    """Spin until this process has used ``seconds`` more CPU; return what it used."""
    began = time.process_time()
    while time.process_time() - began < seconds:
        pass
    return time.process_time() - began


def test_it_sums_what_each_party_used_over_its_windows() -> None:
    meter = CpuMeter({"this process again": [os.getpid()], "nobody": [2**22 + 1]})
    burnt = 0.0
    for _ in range(2):
        meter.start()
        burnt += burn(0.15)
        meter.stop()
    time.sleep(0.2)  # outside every window: not counted
    assert abs(meter.used_s["benchmark"] - burnt) < 0.05
    assert abs(meter.used_s["this process again"] - burnt) < 0.05
    assert meter.used_s["nobody"] == 0.0  # a pid that does not exist
    assert 0.0 <= meter.system_s["benchmark"] <= meter.used_s["benchmark"]
    assert meter.busy_s >= burnt - 0.05  # the machine was busy at least with us
    assert meter.wall_s < 0.2 + burnt * 20  # the sleep is not in it (a loose bound)
    cores = meter.cores()
    assert cores["benchmark"] == meter.used_s["benchmark"] / meter.wall_s
    assert cores["machine"] == meter.busy_s / meter.wall_s
