"""``python -m benchmarks``: the list, the usage text and what it runs (nothing is measured)."""

from __future__ import annotations

from pathlib import Path

import pytest

import benchmarks
from benchmarks.__main__ import BENCHMARKS, main, usage

FOLDER = Path(benchmarks.__file__).resolve().parent
# modules of benchmarks/ that are helpers, not benchmarks
HELPERS = {"__init__", "__main__", "cgroups", "common", "cpu_meter", "hop_agents", "linkage_data"}


class Recorder:
    """Stands in for the child process: remembers what would have run."""

    def __init__(self, status: int = 0) -> None:
        self.calls: list[list[str]] = []
        self.envs: list[dict[str, str]] = []
        self.status = status

    def __call__(self, argv: list[str], env: dict[str, str]) -> int:
        self.calls.append(argv)
        self.envs.append(env)
        return self.status


@pytest.fixture
def external_kafka(monkeypatch: pytest.MonkeyPatch) -> str:
    # an external bootstrap, so no test here starts a broker
    monkeypatch.setenv("RENKEI_BOOTSTRAP", "127.0.0.1:1")
    return "127.0.0.1:1"


def test_every_benchmark_module_is_listed() -> None:
    modules = {path.stem for path in FOLDER.glob("*.py")} - HELPERS
    assert {bench.name for bench in BENCHMARKS} == modules


def test_every_benchmark_has_a_summary_and_a_synopsis_line() -> None:
    for bench in BENCHMARKS:
        assert bench.summary, bench.name
        assert f"benchmarks.{bench.name}" in bench.doc, bench.name


def test_list_prints_every_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    recorder = Recorder()
    assert main(["list"], runner=recorder) == 0
    out = capsys.readouterr().out
    assert out == usage() + "\n"
    for bench in BENCHMARKS:
        assert bench.name in out
    assert not recorder.calls


def test_no_arguments_runs_the_quick_set_with_the_bootstrap(external_kafka: str) -> None:
    recorder = Recorder()
    assert main([], runner=recorder) == 0
    quick = [b for b in BENCHMARKS if b.quick is not None]
    assert recorder.calls == [["-m", f"benchmarks.{b.name}", *(b.quick or ())] for b in quick]
    assert all(env["RENKEI_BOOTSTRAP"] == external_kafka for env in recorder.envs)


def test_a_named_benchmark_runs_alone_with_its_arguments(external_kafka: str) -> None:
    recorder = Recorder()
    assert main(["exchange", "500", "--signatures", "trust-acl"], runner=recorder) == 0
    assert recorder.calls == [["-m", "benchmarks.exchange", "500", "--signatures", "trust-acl"]]


def test_a_failing_benchmark_fails_the_run_after_the_others(
    external_kafka: str, capsys: pytest.CaptureFixture[str]
) -> None:
    recorder = Recorder(status=1)
    assert main([], runner=recorder) == 1
    assert len(recorder.calls) == sum(b.quick is not None for b in BENCHMARKS)
    assert "failed: profile_hub" in capsys.readouterr().err


def test_an_unknown_name_is_refused_with_the_list(capsys: pytest.CaptureFixture[str]) -> None:
    recorder = Recorder()
    assert main(["exchnage"], runner=recorder) == 2
    err = capsys.readouterr().err
    assert "no benchmark called 'exchnage'" in err
    assert "audit_verify" in err
    assert not recorder.calls


def test_help_of_one_benchmark_is_its_docstring_and_starts_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # no bootstrap set: asking for help must not start a broker
    monkeypatch.delenv("RENKEI_BOOTSTRAP", raising=False)
    recorder = Recorder()
    assert main(["audit_verify", "--help"], runner=recorder) == 0
    out = capsys.readouterr().out
    assert out.startswith("python -m benchmarks audit_verify [records]")
    assert "hash-chained" in out
    assert not recorder.calls
