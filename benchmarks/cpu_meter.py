"""Who used the machine's CPU while a benchmark's clock ran, in cores.

A capped worker that the quota holds back is the limit only if the machine had CPU to
spare: when the brokers, the benchmark's own reader and writer and the workers together
keep every core busy, adding a worker moves CPU from the others to it instead of adding
throughput. :class:`CpuMeter` reads Linux's counters (``/proc/stat`` for the machine,
``/proc/<pid>/stat`` for named processes, ``os.times`` for this one) at the start and
end of each timed window and sums the windows, so a benchmark can print beside its
figure how many cores each party used and how idle the machine was.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["CpuMeter"]

_TICK = os.sysconf("SC_CLK_TCK")


def _machine_busy() -> float:
    """Busy CPU seconds of the whole machine since boot, every core."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / _TICK


def _process(pid: int) -> tuple[float, float]:
    """CPU seconds (user, system; every thread) of ``pid``; 0 once it has gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            after_name = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0.0
    return int(after_name[11]) / _TICK, int(after_name[12]) / _TICK


def _own() -> tuple[float, float]:
    times = os.times()
    return times.user, times.system


@dataclass
class CpuMeter:
    """CPU seconds per party, summed over the windows between :meth:`start` and :meth:`stop`.

    :param parties: a name for each group of processes to follow (``{"brokers": [pids]}``);
        the benchmark's own process is always followed, as ``"benchmark"``.
    """

    parties: Mapping[str, list[int]]
    wall_s: float = 0.0
    busy_s: float = 0.0
    used_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds, user and system."""
    system_s: dict[str, float] = field(default_factory=dict)
    """Of which in the kernel (on loopback, TCP's receive path too runs on the sender's CPU)."""
    _mark: tuple[float, float, dict[str, tuple[float, float]]] | None = None

    def _read(self) -> dict[str, tuple[float, float]]:
        now = {}
        for name, pids in self.parties.items():
            times = [_process(pid) for pid in pids]
            now[name] = (sum(t[0] for t in times), sum(t[1] for t in times))
        now["benchmark"] = _own()
        return now

    def start(self) -> None:
        self._mark = (time.monotonic(), _machine_busy(), self._read())

    def stop(self) -> None:
        if self._mark is None:
            raise RuntimeError("CpuMeter.stop() without start()")
        began, busy, used = self._mark
        self.wall_s += time.monotonic() - began
        self.busy_s += _machine_busy() - busy
        for name, (user, system) in self._read().items():
            user_0, system_0 = used.get(name, (0.0, 0.0))
            spent = user - user_0 + system - system_0
            self.used_s[name] = self.used_s.get(name, 0.0) + spent
            self.system_s[name] = self.system_s.get(name, 0.0) + system - system_0
        self._mark = None

    def cores(self) -> dict[str, float]:
        """Mean cores each party used over the windows, and ``"machine"``: all of them."""
        if not self.wall_s:
            return {}
        used = {name: seconds / self.wall_s for name, seconds in self.used_s.items()}
        return {**used, "machine": self.busy_s / self.wall_s}
