"""The CPU cap the scale-out benchmark puts on each hub worker really caps."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from benchmarks.cgroups import CpuCap, cpu_cap_available

pytestmark = pytest.mark.skipif(
    not cpu_cap_available(), reason="no writable cgroup cpu controller (needs root)"
)

# Burns CPU until killed; prints once it runs so the test knows it is in the group.
SPIN = "import sys\nprint('go', flush=True)\nwhile True: pass\n"


def test_a_capped_busy_process_is_throttled() -> None:
    with (
        CpuCap(f"renkei-test-{uuid.uuid4().hex[:8]}", cores=0.1) as cap,
        subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.PIPE, text=True) as proc,
    ):
        try:
            cap.add(proc.pid)
            assert proc.stdout is not None
            assert proc.stdout.readline() == "go\n"
            # A busy loop held to 0.1 of a core is refused CPU every period it runs
            # in; wait for the kernel to account one refusal, however long it takes.
            while cap.throttled_us() == 0:
                assert proc.poll() is None
        finally:
            proc.kill()
    assert not cap.path.exists()


def test_cores_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        CpuCap("renkei-test-bad", cores=0)
