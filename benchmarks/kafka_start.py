"""Cold start of a single Kafka node with cached jars, as `renkei kafka up` does it.

Run: ``.venv/bin/python -m benchmarks.kafka_start [runs]``. Each run formats fresh storage
in a temporary directory and times ``LocalCluster.up()`` until a metadata request lists
the broker. The baseline is the JVM alone (``java -version``) on the same machine in the
same run, so a slow machine shows as a slow baseline rather than a slow Kafka.
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from infra.kafka import KafkaRuntime, LocalCluster
from tests.conftest import _free_base_port


def main(runs: int = 3) -> None:
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    runtime = KafkaRuntime.locate()
    runtime.ensure_jars()
    starts, jvm = [], []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run([runtime.java, "-version"], capture_output=True, check=True)  # noqa: S603
        jvm.append(time.perf_counter() - began)
        with tempfile.TemporaryDirectory() as home:
            cluster = LocalCluster(Path(home), base_port=_free_base_port(), runtime=runtime)
            began = time.perf_counter()
            cluster.up(timeout_s=120)
            starts.append(time.perf_counter() - began)
            cluster.down()
    print(
        f"kafka cold start (format + start + ready), {runs} runs: "
        f"median {statistics.median(starts):.2f} s, max {max(starts):.2f} s (target <= 20 s)"
    )
    print(
        f"baseline JVM start (java -version): median {statistics.median(jvm):.2f} s; "
        f"ratio {statistics.median(starts) / statistics.median(jvm):.1f}x"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
