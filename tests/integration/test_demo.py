"""The demo end to end: every scene happens and the summary says so.

The first test runs the demo's core on the session's broker: plaintext, or with
``RENKEI_TEST_SECURE=1`` the secure cluster with every actor as its own principal. The
second runs ``renkei demo --secure`` as a user does, on the secure cluster.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from renkei.demo import Connections, Demo, DemoSummary
from renkei.demo.asking import HOLDERS, OFFLINE
from renkei.operator.acl import desired_acls
from renkei.operator.directory_file import load_directory_file
from renkei.operator.principals import agency_principal
from renkei.topics import Topics
from tests.integration.principals import Principals

REFUSALS = (
    "UNKNOWN_SCENARIO", "ITEM_NOT_PERMITTED", "SCENARIO_MISMATCH", "PROVIDER_DOES_NOT_HOLD",
    "INVALID_LINK_CODE", "TIMEOUT",
)  # fmt: skip
EVERY_ACTOR = {
    "admin", "operator", "hub", "registry", *(agency_principal(a) for a in (*HOLDERS, OFFLINE))
}  # fmt: skip


def check(summary: DemoSummary, people: int) -> None:
    """What a user reads off the table: everything answered, each refusal once, notices."""
    outcomes = summary.outcomes
    assert summary.exchanges > 0
    assert outcomes["answered"] == summary.exchanges
    for code in REFUSALS:  # the one timeout is the offline agency's
        assert outcomes[f"refused {code}"] == 1, outcomes
    enrolments = {k: v for k, v in outcomes.items() if k.startswith("enrolment ")}
    assert sum(enrolments.values()) == len((*HOLDERS, OFFLINE)) * int(people * 0.7)
    assert set(enrolments) <= {"enrolment LINKED", "enrolment AMBIGUOUS"}, enrolments
    assert set(outcomes) == {"answered", *enrolments, *(f"refused {c}" for c in REFUSALS)}
    assert summary.hub["answered"] == summary.exchanges
    assert summary.hub["forwarded"] == summary.exchanges + 1  # and the one to the offline
    # Every notice the hub sent arrived, of each kind the registry recorded.
    assert sum(summary.notices.values()) == summary.hub["notices"] > 0
    assert {"MOVED ORIGINAL", "DIED ORIGINAL", "DIED ANNULMENT"} <= set(summary.notices)
    assert len(summary.latencies_s) == summary.exchanges


@pytest.mark.parametrize(
    ("hub_in_process", "rate"), [(False, 20.0), (True, None)], ids=["hub-process", "in-process"]
)
async def test_the_demo_runs_every_scene(
    principals: Principals, topics: Topics, tmp_path: Path, hub_in_process: bool,
    rate: float | None,
) -> None:  # fmt: skip
    """Either way the hub runs (its own process, paced; in the demo's, a burst)."""
    if principals.secure:
        assert principals.home is not None
        connections = Connections.secure(principals.home)
    else:
        connections = Connections.shared(principals.settings("admin"))
    narration = io.StringIO()
    demo = Demo(connections, tmp_path, 40, Console(file=narration, width=200),
                prefix=topics.prefix, exchanges=60, rate=rate,
                hub_in_process=hub_in_process)  # fmt: skip
    summary = await demo.run()
    check(summary, 40)
    assert summary.hub_in_process is hub_in_process
    assert (summary.offered_per_s is None) is (rate is None)
    assert summary.cpu_ms[0] > 0
    assert (summary.cpu_ms[1] > 0) is not hub_in_process  # its own process, its own CPU
    assert summary.latency_label() in narration.getvalue()
    assert summary.secure is principals.secure
    if principals.secure:
        assert set(summary.principals) == EVERY_ACTOR


def test_renkei_demo_secure_runs_each_actor_as_its_principal(
    secure_kafka: Path, topics: Topics, tmp_path: Path
) -> None:
    """``renkei demo --secure`` on a running secure cluster: joins it, as the README says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENKEI_")}
    env |= {"RENKEI_HOME": str(secure_kafka), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "renkei", "demo", "--secure", "--people", "30",
         "--prefix", topics.prefix],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    granted = len(desired_acls(load_directory_file(), topics))
    assert f"admin granted {granted} ACLs under {topics.prefix}" in " ".join(out.split())
    assert cell(out, "principals (TLS + SCRAM, ACLs)") == str(len(EVERY_ACTOR))
    for code in REFUSALS:
        assert cell(out, f"refused {code}") == "1"
    assert int(cell(out, "answered")) > 0
    assert cell(out, "answered") == cell(out, "hub answered")
    assert cell(out, "hub notices") == str(sum(
        int(cell(out, f"notice {n}")) for n in ("MOVED ORIGINAL", "DIED ORIGINAL", "DIED ANNULMENT")
    ))  # fmt: skip
    assert (secure_kafka / "demo-keys").is_dir()


def cell(table: str, label: str) -> str:
    """The count beside ``label`` in the printed summary table."""
    for line in table.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) == 4 and cells[1] == label:
            return cells[2]
    raise AssertionError(f"no row {label!r} in:\n{table}")
