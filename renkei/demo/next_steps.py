"""What to look at after a demo run: the commands that show it, ready to paste.

A demo run leaves its topics, its keys (``<RENKEI_HOME>/demo-keys``) and a signed audit
trail behind. The commands an operator or a citizen would use on them need the run's topic
prefix, its key folder and a way to reach the run's Kafka; without those ``renkei audit
verify`` finds nothing to check. So the run ends by printing each command complete, and
prepares what the portal needs (a citizen key for one person of the run, registered the way
the registry's counter would, and the operators' public key pinned) so that its lines work
as printed too. ``tests/integration/test_demo.py`` runs them.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from hub_stream.settings import HubSettings
from hub_stream.worker import load_hub_keys
from infra.kafka.secure import SecureFiles
from renkei.audit.rebuild import audit_key_of_resident
from renkei.audit.replay import Filter, entries
from renkei.audit.verify import verify_trail
from renkei.auditchain import TRUST_FILE, TrustedKeys
from renkei.crypto import keystore
from renkei.operator.principals import HUB, OPERATOR, PORTAL
from renkei.portal import register_citizen
from renkei.portal.citizens import write_citizen_key
from renkei.portal.settings import write_operator_key
from renkei.topics import Topics
from schemas.codec import default_codec
from schemas.models import AuditStep

from .connections import Connections

__all__ = [
    "NextSteps",
    "PortalFiles",
    "next_steps",
    "one_answered",
    "prepare_portal",
    "trail_signed",
]

PORTAL_PORT = 8080
"""Where the printed ``renkei portal serve`` listens (its own default)."""


@dataclass(frozen=True)
class PortalFiles:
    """What the printed ``renkei portal serve`` and ``sign`` lines name."""

    resident_code: str
    citizen_key: Path
    citizens: Path
    operator_key: Path
    secret_file: Path


@dataclass(frozen=True)
class NextSteps:
    """The commands, each with what it shows, in the order a user would try them."""

    steps: tuple[tuple[str, str], ...]
    """(what it shows, the command line as printed)."""

    def command(self, what: str) -> str:
        """The command line whose description starts with ``what``."""
        for description, line in self.steps:
            if description.startswith(what):
                return line
        raise KeyError(what)

    def print(self, console: Console) -> None:
        """The steps as the demo prints them: each command on one line, however long (a
        wrapped or boxed command would not paste as it is)."""
        console.rule("what just happened, and where to look")
        for description, line in self.steps:
            console.print(Text(description, style="bold"))
            console.print(Text(line, style="cyan"), soft_wrap=True)


async def trail_signed(
    kafka: dict[str, Any], topics: Topics, key_dir: Path, timeout_s: float
) -> None:
    """Wait until a checkpoint covers every record of the run's trail.

    The portal shows only what a signed checkpoint covers, and the hub signs a partition's
    tail on its checkpoint interval (the demo's hub: every second), so the run's last
    records need that long after they are written, and the hub must still be running.

    :raises TimeoutError: records are still unsigned after ``timeout_s``.
    """
    trusted = TrustedKeys.load(key_dir / TRUST_FILE)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        report = await verify_trail(kafka, topics.audit, trusted, default_codec())
        unsigned = sum(p.unsigned_records for p in report.partitions)
        if report.ok and unsigned == 0:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"{topics.audit}: {unsigned} records still unsigned")
        await asyncio.sleep(0.25)


async def one_answered(kafka: dict[str, Any], topics: Topics) -> str | None:
    """The hub request id of one answered exchange of the run, to trace."""
    answered = Filter(steps=frozenset({AuditStep.ANSWERED.value}))
    async for entry in entries(kafka, topics.audit, default_codec(), answered):
        return entry.record.hub_request_id
    return None


async def prepare_portal(
    connections: Connections, topics: Topics, key_dir: Path, folder: Path, resident_code: str
) -> PortalFiles:
    """Give one person of the run a citizen key and register it, as the registry would.

    Registration needs the master secret (it computes the person's audit key from the hub's
    person table), so it runs with the hub's keys and as the hub's principal; the portal
    then holds only the citizen list and the operators' public key.
    """
    keyring, _ = load_hub_keys(HubSettings(key_dir=key_dir))
    audit_key = await audit_key_of_resident(connections.kafka(HUB), topics, keyring, resident_code)
    if audit_key is None:
        raise LookupError(f"resident {resident_code} is not in the run's person table")
    return _portal_files(key_dir, folder, resident_code, audit_key)


def _portal_files(key_dir: Path, folder: Path, resident_code: str, audit_key: str) -> PortalFiles:
    """The citizen's key file, the citizen list with it, the operators' pinned key."""
    folder.mkdir(parents=True, exist_ok=True)
    citizen_key = folder / f"citizen-{resident_code}.json"
    public_key = write_citizen_key(citizen_key)
    citizens = folder / "citizens.json"
    register_citizen(citizens, resident_code, public_key, audit_key)
    operator_key = folder / "operator-public.json"
    write_operator_key(operator_key, keystore.load(key_dir, "operator").signing.public_bytes)
    return PortalFiles(resident_code, citizen_key, citizens, operator_key, folder / "secret")


def next_steps(
    connections: Connections,
    topics: Topics,
    key_dir: Path,
    request_id: str | None,
    portal: PortalFiles | None,
    prometheus_url: str | None = None,
) -> NextSteps:
    """The commands that look at this run, complete with its prefix, keys and Kafka."""
    renkei = _renkei_command()
    prefix = ["--prefix", topics.prefix]
    keys = ["--key-dir", _shown(key_dir)]

    def as_(principal: str, *args: str) -> str:
        return _with_kafka(connections, principal, shlex.join([renkei, *args]))

    steps = [
        ("verify the run's audit trail (every record chained and signed):",
         as_(OPERATOR, "audit", "verify", *prefix, *keys)),
        ("replay it: what each agency asked, answered and was told:",
         as_(OPERATOR, "audit", "replay", *prefix, *keys, "--project", "stats")),
    ]  # fmt: skip
    if request_id is not None:
        steps.append(
            ("follow one exchange, step by step:",
             as_(OPERATOR, "audit", "trace", request_id, *prefix))
        )  # fmt: skip
    if portal is not None:
        serve = as_(
            PORTAL, "portal", "serve", *prefix, "--citizens", _shown(portal.citizens),
            "--audit-trust", _shown(key_dir / TRUST_FILE),
            "--operator-key", _shown(portal.operator_key),
            "--secret-file", _shown(portal.secret_file), "--port", str(PORTAL_PORT),
        )  # fmt: skip
        sign = shlex.join([
            renkei, "portal", "sign", "--key", _shown(portal.citizen_key),
            "--resident-code", portal.resident_code, "--challenge", "CHALLENGE",
        ])  # fmt: skip
        steps.append(
            (f"the citizen portal, as resident {portal.resident_code} of this run:", serve)
        )
        steps.append(
            (f"then open http://127.0.0.1:{PORTAL_PORT}/ and sign the challenge it shows:", sign)
        )
    if prometheus_url is not None:
        steps.append(("the hub's traffic in Prometheus (left running; `renkei ops down` stops it):",
                      prometheus_url))  # fmt: skip
    return NextSteps(tuple(steps))


def _with_kafka(connections: Connections, principal: str, command: str) -> str:
    """``command`` with what reaches the run's Kafka as ``principal``.

    On the secure cluster that is the principal's client settings file, sourced in a
    subshell: the password stays in the file (mode 0600), never on the screen.
    """
    if connections.home is not None:
        env_file = SecureFiles(connections.home / "kafka").env_file(principal)
        return f"(set -a; . {shlex.quote(_shown(env_file))}; set +a; {command})"
    bootstrap = connections.environment(principal)["RENKEI_BOOTSTRAP"]
    return f"RENKEI_BOOTSTRAP={shlex.quote(bootstrap)} {command}"


def _renkei_command() -> str:
    """How to call ``renkei`` from here: the one beside this interpreter (the project's
    virtual environment, which a fresh shell may not have on its PATH)."""
    beside = Path(sys.executable).parent / "renkei"
    return _shown(beside) if beside.exists() else "renkei"


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when under it, else absolute."""
    absolute = path.absolute()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)
