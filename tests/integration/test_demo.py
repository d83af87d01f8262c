"""The demo end to end: every scene happens and the summary says so.

The first test runs the demo's core on the session's broker: plaintext, or with
``RENKEI_TEST_SECURE=1`` the secure cluster with every actor as its own principal. The
second runs ``renkei demo --secure`` as a user does, on the secure cluster.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
from asyncio.subprocess import DEVNULL, PIPE, STDOUT
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from renkei.demo import Connections, Demo, DemoSummary
from renkei.demo.asking import HOLDERS, OFFLINE
from renkei.demo.next_steps import PORTAL_PORT, NextSteps
from renkei.operator.acl import desired_acls
from renkei.operator.directory_file import load_directory_file
from renkei.operator.principals import agency_principal
from renkei.topics import Topics
from tests.integration.hub_env import eventually
from tests.integration.principals import Principals
from tests.integration.test_portal import free_port

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


def demo_connections(principals: Principals) -> Connections:
    """The demo's actors on the test's broker: each its own principal on a secure one."""
    if principals.secure:
        assert principals.home is not None
        return Connections.secure(principals.home)
    return Connections.shared(principals.settings("admin"))


@pytest.mark.parametrize(
    ("hub_in_process", "rate"), [(False, 20.0), (True, None)], ids=["hub-process", "in-process"]
)
async def test_the_demo_runs_every_scene(
    principals: Principals, topics: Topics, tmp_path: Path, hub_in_process: bool,
    rate: float | None,
) -> None:  # fmt: skip
    """Either way the hub runs (its own process, paced; in the demo's, a burst)."""
    connections = demo_connections(principals)
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
    if hub_in_process:  # once per broker: the commands printed at the end work as printed
        assert summary.next_steps is not None
        assert summary.next_steps.command("verify") in narration.getvalue().splitlines()
        await check_next_steps(summary.next_steps)


async def run_printed(line: str) -> str:
    """Run one printed command line in a shell, as a user pastes it: none of the test's
    RENKEI_* settings, only what the line itself sets. Returns what it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENKEI_")}
    process = await asyncio.create_subprocess_shell(
        line, env=env | {"COLUMNS": "200"}, stdout=PIPE, stderr=STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, f"{line}\n{out.decode()[-3000:]}"
    return out.decode()


async def check_next_steps(steps: NextSteps) -> None:
    """verify finds the whole trail signed, replay and trace show the run, and the portal
    started as printed lets the run's citizen log in, with the printed sign command, and
    shows their records."""
    verified = await run_printed(steps.command("verify"))
    assert "nothing wrong" in verified, verified
    stats = await run_printed(steps.command("replay"))
    assert "city-osaka" in stats or "city-shinagawa" in stats, stats
    traced = await run_printed(steps.command("follow one exchange"))
    assert "FORWARDED" in traced, traced
    assert "ANSWERED" in traced, traced
    port = free_port()
    serve = steps.command("the citizen portal").replace(f"--port {PORTAL_PORT}", f"--port {port}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENKEI_")}
    portal = await asyncio.create_subprocess_shell(
        serve, env=env, stdout=DEVNULL, stderr=DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def caught_up() -> bool:
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    assert portal.returncode is None, "the portal exited"
                    return False

            await eventually(caught_up, timeout_s=60)
            challenge = (await client.get("/api/challenge")).json()["challenge"]
            sign = steps.command("then open").replace("CHALLENGE", challenge)
            resident = sign.split("--resident-code ")[1].split()[0]
            signature = (await run_printed(sign)).strip()
            login = {"resident_code": resident, "challenge": challenge, "signature": signature}
            answer = await client.post("/api/login", json=login)
            assert answer.status_code == 200, answer.text
            records = (await client.get("/api/history")).json()["records"]
            assert records, "the portal shows the run's citizen nothing"
    finally:
        os.killpg(portal.pid, signal.SIGTERM)
        await portal.wait()


def test_renkei_demo_secure_runs_each_actor_as_its_principal(
    secure_kafka: Path, topics: Topics, tmp_path: Path
) -> None:
    """``renkei demo --secure`` on a running secure cluster: joins it, as the README says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENKEI_")}
    env |= {"RENKEI_HOME": str(secure_kafka), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "renkei", "demo", "--secure", "--people", "30", "--rate", "0",
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
