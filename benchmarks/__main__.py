"""``python -m benchmarks``: list the benchmarks, run the quick ones, or run one by name.

    python -m benchmarks                 list them, then run the quick set (small sizes)
    python -m benchmarks list            list them only
    python -m benchmarks NAME [ARGS...]  run one at its documented size; ARGS go to it
                                         (``python -m benchmarks NAME --help`` lists them)

Each benchmark runs as ``python -m benchmarks.NAME`` in a child process, so one's event
loop, logging and imports never colour the next one's figures. Those that need Kafka get
``RENKEI_BOOTSTRAP``: the one already set, else the local cluster of ``renkei kafka up``
(under ``$RENKEI_HOME/kafka``), started here if it is not running and left running, as
``renkei demo`` does — ``renkei kafka down`` stops it. Results are printed, not asserted:
``docs/benchmarks.md`` records them beside their baselines and targets.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.kafka import LocalCluster
from renkei.errors import RenkeiError
from renkei.settings import KafkaSettings

__all__ = ["BENCHMARKS", "Benchmark", "main", "usage"]


@dataclass(frozen=True, slots=True)
class Benchmark:
    """One ``benchmarks/<name>.py`` module and how the quick set runs it."""

    name: str
    kafka: bool
    """Needs a broker (``RENKEI_BOOTSTRAP``); the others start their own or none."""
    quick: tuple[str, ...] | None
    """Arguments of its quick run; ``None`` keeps it out of the quick set (too long)."""

    @property
    def doc(self) -> str:
        """The module's docstring, read without importing the module."""
        path = Path(__file__).resolve().parent / f"{self.name}.py"
        return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""

    @property
    def summary(self) -> str:
        """The first line of the module's docstring."""
        return (self.doc.splitlines() or [""])[0]

    @property
    def synopsis(self) -> str:
        """Its arguments, as the ``python -m benchmarks.<name> ...`` line of its docstring."""
        found = re.search(rf"-m benchmarks\.{self.name}\b([^`\n]*)", self.doc)
        return found.group(1).strip() if found else ""


# Quick sizes: a few thousand messages each, so the whole set takes minutes on the
# project's 2-core machine; the documented figures come from the defaults.
BENCHMARKS = (
    Benchmark("profile_hub", kafka=False, quick=("strict", "2000")),
    Benchmark("hot_floor", kafka=True, quick=("20000", "--repeat", "2")),
    Benchmark("verifier", kafka=True, quick=("3000",)),
    Benchmark("neighbours", kafka=True, quick=("--rounds", "1")),
    Benchmark("exchange", kafka=True, quick=("3000", "--signatures", "trust-acl", "--rate", "300")),
    Benchmark("audit_verify", kafka=True, quick=("30000", "--tree-leaves", "100000")),
    Benchmark("tree_heads", kafka=False, quick=("20000", "10", "1000")),
    Benchmark("fanout", kafka=True, quick=("5000", "--people", "1000", "--baseline-max", "25000")),
    Benchmark("kafka_start", kafka=False, quick=("1",)),
    Benchmark(
        "portal",
        kafka=False,
        quick=("--records", "100000", "--persons", "10000", "--citizens", "200", "--seconds", "3"),
    ),
    Benchmark("portal_freshness", kafka=True, quick=("--exchanges", "20", "--moves", "2")),
    Benchmark("linkage", kafka=False, quick=("--people", "20000", "--records", "5000")),
    Benchmark("hops", kafka=True, quick=("--rate", "200", "--seconds", "3")),
    Benchmark("offsets_step", kafka=True, quick=("--seconds", "3")),
    Benchmark("restore", kafka=True, quick=("--persons", "5000")),
    # Starts a 3-node cluster of its own and caps each worker with a cgroup (root).
    Benchmark("scaleout", kafka=False, quick=None),
)
"""Every benchmark, in the order the quick set runs them."""

Runner = Callable[[list[str], dict[str, str]], int]


def usage() -> str:
    """The usage text and the list of benchmarks."""
    lines = ["usage:", __doc__.split("\n\n")[1].rstrip(), "", "benchmarks (* = in the quick set):"]
    width = max(len(b.name) for b in BENCHMARKS)
    for bench in BENCHMARKS:
        mark = "*" if bench.quick is not None else " "
        kafka = " [Kafka]" if bench.kafka else ""
        lines.append(f"  {mark} {bench.name:<{width}}  {bench.summary}{kafka}")
    return "\n".join(lines)


def _describe(bench: Benchmark) -> str:
    # not every benchmark parses --help itself, so the help comes from here
    return f"python -m benchmarks {bench.name} {bench.synopsis}".rstrip() + "\n\n" + bench.doc


def _run_child(argv: list[str], env: dict[str, str]) -> int:
    # our own interpreter and our own module names, no shell
    return subprocess.run([sys.executable, *argv], env=env, check=False).returncode  # noqa: S603


def _bootstrap() -> str:
    """``RENKEI_BOOTSTRAP``, else the local cluster's address, starting it if needed."""
    settings = KafkaSettings()
    if settings.bootstrap:
        return settings.bootstrap
    port = int(os.environ.get("RENKEI_KAFKA_PORT", "19092"))
    cluster = LocalCluster(settings.home / "kafka", base_port=port)
    state = cluster.state()
    if state is None or len(cluster.running_pids()) != len(state.nodes):
        print("starting Kafka (renkei kafka up) …", flush=True)
    bootstrap = cluster.up(timeout_s=120)
    print(f"Kafka at {bootstrap} — `renkei kafka down` stops it", flush=True)
    return bootstrap


def _run(selected: list[tuple[Benchmark, tuple[str, ...]]], runner: Runner) -> int:
    env = dict(os.environ)
    if any(bench.kafka for bench, _ in selected):
        try:
            env["RENKEI_BOOTSTRAP"] = _bootstrap()
        except RenkeiError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    failed = []
    for bench, args in selected:
        command = ["-m", f"benchmarks.{bench.name}", *args]
        print(f"\n== python {' '.join(command)}", flush=True)
        began = time.monotonic()
        status = runner(command, env)
        print(f"== {bench.name}: exit {status} after {time.monotonic() - began:.0f} s", flush=True)
        if status != 0:
            failed.append(bench.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None, runner: Runner = _run_child) -> int:
    """Run what ``argv`` asks for (see :func:`usage`); return the exit status.

    :param argv: the arguments after ``python -m benchmarks``; ``sys.argv[1:]`` if None.
    :param runner: runs ``python ARGV`` with an environment and returns its exit status
        (tests replace it; benchmarks are never run by the unit tests).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    by_name = {bench.name: bench for bench in BENCHMARKS}
    if args[:1] in (["-h"], ["--help"], ["help"], ["list"]):
        print(usage())
        return 0
    if not args:
        print(usage())
        return _run([(b, b.quick) for b in BENCHMARKS if b.quick is not None], runner)
    name = args[0].removeprefix("benchmarks.")
    if name not in by_name:
        print(f"error: no benchmark called {args[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    if {"-h", "--help"} & set(args[1:]):
        print(_describe(by_name[name]))
        return 0
    return _run([(by_name[name], tuple(args[1:]))], runner)


if __name__ == "__main__":
    raise SystemExit(main())
