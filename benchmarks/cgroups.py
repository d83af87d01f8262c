"""Cap a process's CPU with a cgroup v1 ``cpu`` quota, for scale-out benchmarks.

On a 2-core machine three uncapped hub workers compete for the same two cores, so adding
workers measures the machine, not the hub. Capping each worker at, say, 0.3 of a core
makes the workers the limit: three capped workers have 0.9 of a core between them, less
than the machine has, and their throughput shows how the hub scales.

The quota is the kernel's CFS bandwidth control: ``cpu.cfs_quota_us`` of CPU time per
``cpu.cfs_period_us``. It needs the v1 ``cpu`` controller mounted and writable (root on
these machines; ``/sys/fs/cgroup/cpu``). cgroup v2 (``cpu.max``) is used when only the
unified hierarchy is there.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["CpuCap", "CpuCapUnavailable", "cpu_cap_available"]

V1_ROOT = Path("/sys/fs/cgroup/cpu")
V2_ROOT = Path("/sys/fs/cgroup/unified")
PERIOD_US = 100_000


class CpuCapUnavailable(RuntimeError):
    """No writable cgroup CPU controller here (not root, or no such controller)."""


def _root() -> tuple[Path, int]:
    """The writable hierarchy and its version."""
    if (V1_ROOT / "cpu.cfs_quota_us").exists() and os.access(V1_ROOT, os.W_OK):
        return V1_ROOT, 1
    controllers = V2_ROOT / "cgroup.controllers"
    has_cpu = controllers.exists() and "cpu" in controllers.read_text().split()
    if has_cpu and os.access(V2_ROOT, os.W_OK):
        return V2_ROOT, 2
    raise CpuCapUnavailable(
        f"no writable cgroup cpu controller ({V1_ROOT} or {V2_ROOT} with cpu): run as root "
        "on a machine with cgroup CPU bandwidth control"
    )


def cpu_cap_available() -> bool:
    """Whether :class:`CpuCap` can work here."""
    try:
        _root()
    except CpuCapUnavailable:
        return False
    return True


class CpuCap:
    """A cgroup named ``name`` whose processes share ``cores`` of CPU time.

    Use as a context manager; :meth:`add` moves a process (and the threads it starts
    afterwards) in. Leaving moves the remaining processes back to the root and removes
    the group.

    :raises CpuCapUnavailable: there is no writable cgroup CPU controller.
    :raises ValueError: ``cores`` is not positive.
    """

    def __init__(self, name: str, cores: float) -> None:
        if cores <= 0:
            raise ValueError(f"cores must be positive, not {cores}")
        self.root, self.version = _root()
        self.path = self.root / name
        self.cores = cores

    def __enter__(self) -> CpuCap:
        self.path.mkdir(exist_ok=True)
        quota = max(1000, int(self.cores * PERIOD_US))
        if self.version == 1:
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        return self

    def add(self, pid: int) -> None:
        """Move process ``pid`` into the group."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def throttled_us(self) -> int:
        """CPU time the quota has withheld so far (µs): > 0 shows the cap was the limit."""
        stat = (self.path / "cpu.stat").read_text().split()
        fields = dict(zip(stat[::2], stat[1::2], strict=True))
        if "throttled_time" in fields:  # v1, nanoseconds
            return int(fields["throttled_time"]) // 1000
        return int(fields.get("throttled_usec", 0))

    def __exit__(self, *exc: object) -> None:
        procs = (self.path / "cgroup.procs").read_text().split()
        for pid in procs:
            with contextlib.suppress(OSError):  # it ended meanwhile
                (self.root / "cgroup.procs").write_text(pid)
        self.path.rmdir()
