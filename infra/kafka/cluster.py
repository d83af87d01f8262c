"""A Kafka cluster on loopback, started and stopped by Renkei itself.

``LocalCluster.up()`` formats KRaft storage (once), starts one or three combined
broker+controller JVMs, waits until a metadata request lists every broker and returns the
bootstrap address. What it started is written to ``cluster.json`` in its home directory,
so ``down`` stops exactly those processes and nothing else.

With ``secure=True`` the same cluster has TLS listeners, SASL/SCRAM-SHA-512 logins and
the KRaft ``StandardAuthorizer`` (nothing is allowed without an ACL); ``secure.py`` holds
its principals and passwords, ``tls.py`` its certificates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from string import Template
from typing import Any

from renkei.errors import KafkaLaunchError

from .private_files import write_private
from .processes import alive, is_our_broker, require_free, spawn
from .readiness import wait_ready
from .runtime import KafkaRuntime, kafka_version, random_cluster_id
from .scram import upsert_users
from .secure import ADMIN, SUPER_USERS, SecureFiles

__all__ = ["ClusterState", "LocalCluster", "NodeSpec"]

TEMPLATES = Path(__file__).with_name("templates")
JVM_OPTIONS = (
    "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
    "-Djava.awt.headless=true",
)  # fmt: skip


@dataclass(frozen=True)
class NodeSpec:
    """One combined broker+controller node."""

    node_id: int
    broker_port: int
    controller_port: int
    directory: str

    @property
    def properties(self) -> Path:
        return Path(self.directory, "server.properties")

    @property
    def log(self) -> Path:
        return Path(self.directory, "logs", "server.log")


@dataclass(frozen=True)
class ClusterState:
    """What ``up`` started: written to ``cluster.json`` and read back by ``down``/``status``."""

    bootstrap: str
    kafka_version: str
    nodes: list[NodeSpec]
    pids: dict[int, int]
    secure: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        raw = json.loads(text)
        nodes = [NodeSpec(**node) for node in raw["nodes"]]
        pids = {int(node): pid for node, pid in raw["pids"].items()}
        return cls(raw["bootstrap"], raw["kafka_version"], nodes, pids, raw.get("secure", False))


class LocalCluster:
    """Start, stop and inspect a Kafka cluster of ``nodes`` on 127.0.0.1.

    :param home: directory for storage, logs and the state file.
    :param nodes: 1 for everyday use, 3 for fault tests.
    :param base_port: first broker port; node *i* listens on ``base_port + 2i`` (broker)
        and ``base_port + 2i + 1`` (controller).
    :param runtime: Java and the jar cache; located on first use when not given.
    :param secure: TLS, SASL/SCRAM and ACLs instead of plaintext.
    :param principals: (secure) the users to give a SCRAM credential, besides the
        ``broker`` and ``admin`` super users; more can be added later.
    """

    def __init__(
        self,
        home: Path,
        nodes: int = 1,
        base_port: int = 19092,
        runtime: KafkaRuntime | None = None,
        *,
        secure: bool = False,
        principals: Iterable[str] = (),
    ) -> None:
        if nodes not in (1, 3):
            raise KafkaLaunchError(f"a local cluster has 1 or 3 nodes, not {nodes}")
        self.home = home.resolve()
        self.node_count = nodes
        self.base_port = base_port
        self.secure = secure
        self.principals = tuple(principals)
        self.files = SecureFiles(self.home)
        self._runtime = runtime

    @property
    def runtime(self) -> KafkaRuntime:
        if self._runtime is None:
            self._runtime = KafkaRuntime.locate()
        return self._runtime

    @property
    def state_file(self) -> Path:
        return self.home / "cluster.json"

    def state(self) -> ClusterState | None:
        """The recorded cluster, or ``None`` when nothing was started from this home."""
        if not self.state_file.exists():
            return None
        return ClusterState.from_json(self.state_file.read_text())

    def running_pids(self) -> dict[int, int]:
        """Node id → PID of the recorded nodes whose process is still ours and alive."""
        state = self.state()
        if state is None:
            return {}
        return {
            node.node_id: state.pids[node.node_id]
            for node in state.nodes
            if is_our_broker(state.pids.get(node.node_id), node.properties)
        }

    def up(self, timeout_s: float = 60) -> str:
        """Start the cluster unless it already runs; return its bootstrap address."""
        state = self.state()
        if state is not None and state.secure != self.secure and self._formatted():
            raise KafkaLaunchError(
                f"{self.home} holds a {'secure' if state.secure else 'plaintext'} cluster's "
                "storage: use the same mode, or another RENKEI_HOME"
            )
        if state is not None and len(self.running_pids()) == len(state.nodes):
            if self.secure:
                self._add_principals(state.bootstrap, self.files.prepare(self.principals))
            return state.bootstrap
        if state is not None and self.running_pids():
            raise KafkaLaunchError(
                f"part of the cluster in {self.home} is running: `renkei kafka down` first"
            )
        runtime = self.runtime
        runtime.ensure_jars()
        nodes = self._node_specs()
        for node in nodes:
            for port in (node.broker_port, node.controller_port):
                require_free(port)
        passwords = self._passwords()
        cluster_id = self._format(runtime, nodes, passwords)
        pids = {node.node_id: self._start(runtime, node) for node in nodes}
        bootstrap = ",".join(f"127.0.0.1:{node.broker_port}" for node in nodes)
        state = ClusterState(bootstrap, kafka_version(), nodes, pids, self.secure)
        self.state_file.write_text(state.to_json())
        (self.home / "cluster.id").write_text(cluster_id)
        kafka = self.files.client_kwargs(ADMIN, bootstrap) if self.secure else {}
        try:
            asyncio.run(wait_ready(bootstrap, nodes, pids, timeout_s, kafka))
            if self.secure:
                self._add_principals(bootstrap, passwords)
        except BaseException:
            self.down()
            raise
        return bootstrap

    def add_principals(self, principals: Iterable[str]) -> dict[str, str]:
        """(secure, running) Give ``principals`` a password and a SCRAM credential if new.

        :returns: the principals that were new.
        """
        state = self.state()
        if state is None or not state.secure or not self.running_pids():
            raise KafkaLaunchError(f"no secure cluster is running from {self.home}")
        known = set(self.files.principals())
        passwords = self.files.prepare(principals)
        new = {p: pw for p, pw in passwords.items() if p not in known}
        self._add_principals(state.bootstrap, new)
        return new

    def down(self, timeout_s: float = 30) -> list[int]:
        """Stop the nodes this home started (SIGTERM, then SIGKILL); return their PIDs."""
        running = self.running_pids()
        for pid in running.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for pid in running.values():
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        return list(running.values())

    def kill_node(self, node_id: int, sig: int = signal.SIGKILL) -> None:
        """Kill one node (fault tests); ``restart_node`` brings it back on the same storage."""
        pid = self.running_pids().get(node_id)
        if pid is None:
            raise KafkaLaunchError(f"node {node_id} is not running")
        os.kill(pid, sig)
        while alive(pid):
            time.sleep(0.05)

    def restart_node(self, node_id: int) -> None:
        """Start one recorded node again on its existing storage."""
        state = self.state()
        if state is None:
            raise KafkaLaunchError("no cluster recorded")
        node = next(n for n in state.nodes if n.node_id == node_id)
        state.pids[node_id] = self._start(self.runtime, node)
        self.state_file.write_text(state.to_json())

    def _node_specs(self) -> list[NodeSpec]:
        return [
            NodeSpec(
                node_id=i + 1,
                broker_port=self.base_port + 2 * i,
                controller_port=self.base_port + 2 * i + 1,
                directory=str(self.home / f"node-{i + 1}"),
            )
            for i in range(self.node_count)
        ]

    def _formatted(self) -> bool:
        return any(self.home.glob("node-*/data/meta.properties"))

    def _passwords(self) -> dict[str, str]:
        if not self.secure:
            return {}
        if self._formatted() and not all(self.files.password(u) for u in SUPER_USERS):
            # The storage holds SCRAM credentials whose passwords are gone: new ones
            # would not match, and the brokers could not even log in to each other.
            raise KafkaLaunchError(
                f"{self.files.credentials_dir} lost the broker or admin password of the "
                f"formatted storage in {self.home}: delete {self.home} to start afresh"
            )
        return self.files.prepare(self.principals)

    def _add_principals(self, bootstrap: str, passwords: dict[str, str]) -> None:
        users = {p: pw for p, pw in passwords.items() if p not in SUPER_USERS}
        asyncio.run(upsert_users(self.files.client_kwargs(ADMIN, bootstrap), users))
        self.files.publish(passwords, bootstrap)

    def _format(
        self, runtime: KafkaRuntime, nodes: list[NodeSpec], passwords: dict[str, str]
    ) -> str:
        """Write each node's configuration and format its storage once; return the cluster id."""
        self.home.mkdir(parents=True, exist_ok=True)
        id_file = self.home / "cluster.id"
        cluster_id = id_file.read_text().strip() if id_file.exists() else random_cluster_id()
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes)
        replication = len(nodes)
        for node in nodes:
            data_dir = Path(node.directory, "data")
            node.log.parent.mkdir(parents=True, exist_ok=True)
            values: dict[str, Any] = {
                "node_id": node.node_id,
                "voters": voters,
                "broker_port": node.broker_port,
                "controller_port": node.controller_port,
                "data_dir": data_dir,
                "partitions": 3,
                "replication": replication,
                "min_isr": min(2, replication),
                "log_dir": node.log.parent,
            }
            if self.secure:
                values.update(self.files.template_values(passwords))
            mode = "secure" if self.secure else "plaintext"
            values["listeners"] = _render(f"listeners-{mode}.properties", values).strip()
            log4j = _render("log4j2.properties", values)
            Path(node.directory, "log4j2.properties").write_text(log4j)
            # Secure: the file holds the broker's password, so only its owner may read it.
            server = _render("server.properties", values).encode()
            if self.secure:
                write_private(node.properties, server)
            else:
                node.properties.write_bytes(server)
            if not (data_dir / "meta.properties").exists():
                runtime.run_tool(
                    "kafka.tools.StorageTool", "format", "--ignore-formatted",
                    "-t", cluster_id, "-c", str(node.properties),
                    secrets=self.files.format_arguments(passwords) if self.secure else (),
                )  # fmt: skip
        return cluster_id

    def _start(self, runtime: KafkaRuntime, node: NodeSpec) -> int:
        log4j = Path(node.directory, "log4j2.properties")
        command = [
            runtime.java, *JVM_OPTIONS, f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={node.log.parent}",
            "-cp", runtime.classpath, "kafka.Kafka", str(node.properties),
        ]  # fmt: skip
        return spawn(command, Path(node.directory, "logs", "console.log"))


def _render(name: str, values: dict[str, Any]) -> str:
    return Template((TEMPLATES / f"{name}.tmpl").read_text()).substitute(values)
