"""Screenshot Prometheus's graph page with headless Chromium: ``docs/img/prometheus-demo.png``.

Run it during or just after ``renkei demo --ops`` (which leaves Prometheus running)::

    .venv/bin/python docs/img/take_prometheus_screenshot.py

It finds the Prometheus started under ``RENKEI_HOME`` (or takes ``--url``), opens its graph
page plotting ``--expr`` over the last ``--range`` and saves what Chromium rendered. The
page draws its graph in JavaScript after fetching the data, so Chromium is given a budget
of virtual time to run it before the picture is taken.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

from renkei.ops.prometheus import running
from renkei.settings import KafkaSettings

__all__ = ["graph_url", "main", "screenshot"]

HERE = Path(__file__).parent
EXPR = "sum by (type) (rate(renkei_hub_inputs_total[10s]))"
"""The hub's inputs a second by message type: each scene of the demo is a bump."""


def graph_url(base: str, expr: str, minutes: int) -> str:
    """Prometheus's graph page (``/graph``; Debian's redirects to its classic UI)."""
    query = {"g0.expr": expr, "g0.tab": "0", "g0.range_input": f"{minutes}m"}
    return f"{base}/graph?{urllib.parse.urlencode(query)}"


def screenshot(url: str, out: Path, width: int = 1280, height: int = 1000) -> Path:
    """Save Chromium's rendering of ``url`` to ``out`` (a PNG).

    :raises FileNotFoundError: no Chromium (``apt-get install chromium``).
    :raises subprocess.CalledProcessError: Chromium failed.
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise FileNotFoundError("chromium is not installed: apt-get install chromium")
    out.parent.mkdir(parents=True, exist_ok=True)
    # A profile of its own: a user's running Chromium must not be joined or changed.
    with tempfile.TemporaryDirectory(prefix="renkei-chromium-") as profile:
        subprocess.run(  # noqa: S603 - our own arguments, no shell
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={profile}", f"--window-size={width},{height}",
             "--virtual-time-budget=10000", f"--screenshot={out}", url],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    """Take the screenshot; print where it went."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="Prometheus's base URL (default: RENKEI_HOME's)")
    parser.add_argument("--expr", default=EXPR, help="what to plot")
    parser.add_argument("--range", type=int, default=3, dest="minutes", help="minutes shown")
    parser.add_argument("--out", type=Path, default=HERE / "prometheus-demo.png")
    args = parser.parse_args(argv)
    base = args.url
    if base is None:
        prometheus = running(KafkaSettings().home)
        if prometheus is None:
            sys.stderr.write("no Prometheus runs under RENKEI_HOME: `renkei demo --ops` first\n")
            return 1
        base = prometheus.url
    print(screenshot(graph_url(base, args.expr, args.minutes), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
