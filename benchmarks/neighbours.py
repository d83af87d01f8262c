"""What a busy broker beside it does to the hub's own CPU a message.

Run: ``.venv/bin/python -m benchmarks.neighbours [--rounds 2]``
(``RENKEI_BOOTSTRAP``: a running broker, such as ``renkei kafka up``'s)

``benchmarks.scaleout`` finds a worker spending more CPU an exchange when more workers
(and so busier brokers) share the machine. This measures the same code with no Kafka in
the measured process: ``Hub.handle``'s CPU time a message (``benchmarks.profile_hub
trust-acl``, best of 3), in rounds of three, one after the other:

* **alone** (nothing else running);
* **beside another hub** (a second ``profile_hub`` in a child process: pure Python on
  the other core);
* **beside a broker at work** (a bare aiokafka pass-through looping in a child process,
  so the broker and its client keep both cores busy).

CPU time is what the process itself ran, so waiting for a core does not count: what
rises is the cost of the same instructions — shared caches, memory, the kernel's
network work charged to whoever it interrupts. The ratios are to the same round's
"alone".
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks import profile_hub

__all__ = ["main"]

_LOAD = """
import asyncio
from benchmarks.common import passthrough
async def loop():
    while True:
        await passthrough({bootstrap!r}, 100_000, 300)
asyncio.run(loop())
"""
_HUB = "from benchmarks import profile_hub\nwhile True: profile_hub.once('trust-acl', 4000)"


def _us_a_message() -> float:
    with contextlib.redirect_stdout(io.StringIO()):  # profile_hub's own report
        runs = [profile_hub.once("trust-acl", 4000) for _ in range(3)]
    return min((r["request_us"] + r["response_us"]) / 2 for r in runs)


@contextlib.contextmanager
def _beside(code: str) -> Iterator[None]:
    """A child process running ``code`` while the block runs (given 5 s to get going)."""
    child = subprocess.Popen(  # noqa: S603 - our own code, this interpreter
        [sys.executable, "-c", code],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        time.sleep(5)
        if child.poll() is not None:
            raise SystemExit(f"the neighbour exited with {child.returncode}")
        yield
    finally:
        child.kill()
        child.wait()


def main(rounds: int) -> None:
    bootstrap = os.environ.get("RENKEI_BOOTSTRAP")
    if not bootstrap:
        raise SystemExit("set RENKEI_BOOTSTRAP (renkei kafka up): the load needs a broker")
    print("Hub.handle, trust-acl, CPU µs an inbound message (best of 3 runs of 4,000 exchanges)")
    print("| round | alone | beside another hub | × alone | beside a broker at work | × alone |")
    print("|---|---|---|---|---|---|")
    for n in range(1, rounds + 1):
        alone = _us_a_message()
        with _beside(_HUB):
            hub = _us_a_message()
        with _beside(_LOAD.format(bootstrap=bootstrap)):
            loaded = _us_a_message()
        print(f"| {n} | {alone:.1f} | {hub:.1f} | {hub / alone:.2f} | {loaded:.1f} | "
              f"{loaded / alone:.2f} |")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    main(parser.parse_args().rounds)
