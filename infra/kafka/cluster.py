"""A Kafka cluster on loopback, started and stopped by Renkei itself.

``LocalCluster.up()`` formats KRaft storage (once), starts one or three combined
broker+controller JVMs, waits until a metadata request lists every broker and returns the
bootstrap address. What it started is written to ``cluster.json`` in its home directory,
so ``down`` stops exactly those processes and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from string import Template

from renkei.errors import KafkaLaunchError, PortInUseError, StartTimeoutError

from .runtime import KafkaRuntime, kafka_version

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

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        raw = json.loads(text)
        nodes = [NodeSpec(**node) for node in raw["nodes"]]
        pids = {int(node): pid for node, pid in raw["pids"].items()}
        return cls(raw["bootstrap"], raw["kafka_version"], nodes, pids)


class LocalCluster:
    """Start, stop and inspect a Kafka cluster of ``nodes`` on 127.0.0.1.

    :param home: directory for storage, logs and the state file.
    :param nodes: 1 for everyday use, 3 for fault tests.
    :param base_port: first broker port; node *i* listens on ``base_port + 2i`` (broker)
        and ``base_port + 2i + 1`` (controller).
    :param runtime: Java and the jar cache; located on first use when not given.
    """

    def __init__(
        self,
        home: Path,
        nodes: int = 1,
        base_port: int = 19092,
        runtime: KafkaRuntime | None = None,
    ) -> None:
        if nodes not in (1, 3):
            raise KafkaLaunchError(f"a local cluster has 1 or 3 nodes, not {nodes}")
        self.home = home.resolve()
        self.node_count = nodes
        self.base_port = base_port
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
            if _is_our_broker(state.pids.get(node.node_id), node.properties)
        }

    def up(self, timeout_s: float = 60) -> str:
        """Start the cluster unless it already runs; return its bootstrap address."""
        state = self.state()
        if state is not None and len(self.running_pids()) == len(state.nodes):
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
                _require_free(port)
        cluster_id = self._format(runtime, nodes)
        pids = {node.node_id: self._start(runtime, node) for node in nodes}
        bootstrap = ",".join(f"127.0.0.1:{node.broker_port}" for node in nodes)
        state = ClusterState(bootstrap, kafka_version(), nodes, pids)
        self.state_file.write_text(state.to_json())
        (self.home / "cluster.id").write_text(cluster_id)
        try:
            asyncio.run(_wait_ready(bootstrap, len(nodes), nodes, pids, timeout_s))
        except BaseException:
            self.down()
            raise
        return bootstrap

    def down(self, timeout_s: float = 30) -> list[int]:
        """Stop the nodes this home started (SIGTERM, then SIGKILL); return their PIDs."""
        running = self.running_pids()
        for pid in running.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for pid in running.values():
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        return list(running.values())

    def kill_node(self, node_id: int, sig: int = signal.SIGKILL) -> None:
        """Kill one node (fault tests); ``restart_node`` brings it back on the same storage."""
        pid = self.running_pids().get(node_id)
        if pid is None:
            raise KafkaLaunchError(f"node {node_id} is not running")
        os.kill(pid, sig)
        while _alive(pid):
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

    def _format(self, runtime: KafkaRuntime, nodes: list[NodeSpec]) -> str:
        """Write each node's configuration and format its storage once; return the cluster id."""
        self.home.mkdir(parents=True, exist_ok=True)
        id_file = self.home / "cluster.id"
        if id_file.exists():
            cluster_id = id_file.read_text().strip()
        else:
            cluster_id = runtime.run_tool("kafka.tools.StorageTool", "random-uuid").strip()
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes)
        replication = len(nodes)
        for node in nodes:
            data_dir = Path(node.directory, "data")
            node.log.parent.mkdir(parents=True, exist_ok=True)
            values = {
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
            for name in ("server.properties", "log4j2.properties"):
                text = Template((TEMPLATES / f"{name}.tmpl").read_text()).substitute(values)
                Path(node.directory, name).write_text(text)
            if not (data_dir / "meta.properties").exists():
                runtime.run_tool(
                    "kafka.tools.StorageTool", "format", "--ignore-formatted",
                    "-t", cluster_id, "-c", str(node.properties),
                )  # fmt: skip
        return cluster_id

    def _start(self, runtime: KafkaRuntime, node: NodeSpec) -> int:
        log4j = Path(node.directory, "log4j2.properties")
        command = [
            runtime.java, *JVM_OPTIONS, f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={node.log.parent}",
            "-cp", runtime.classpath, "kafka.Kafka", str(node.properties),
        ]  # fmt: skip
        console = Path(node.directory, "logs", "console.log")
        # posix_spawn in a new session: the broker outlives the `renkei kafka up` that
        # started it, and no Popen object is left to warn about a child still running.
        return os.posix_spawn(
            command[0],
            command,
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                (
                    os.POSIX_SPAWN_OPEN,
                    1,
                    str(console),
                    os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                    0o644,
                ),
                (os.POSIX_SPAWN_DUP2, 1, 2),
            ],
            setsid=True,
        )


def _alive(pid: int) -> bool:
    # Reap it if it is our own child that has exited, so it does not linger as a zombie.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (reaped later) counts as gone.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return False
    return True


def _is_our_broker(pid: int | None, properties: Path) -> bool:
    """True if ``pid`` is alive and is the broker started with ``properties`` (not a reused PID)."""
    if pid is None or not _alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(properties).encode() in cmdline


def _require_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As Kafka itself does: connections of a stopped broker lingering in TIME_WAIT
        # must not count as "in use"; a live listener still does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PortInUseError(
                f"port {port} on 127.0.0.1 is already in use: stop what holds it, "
                f"or choose other ports with `renkei kafka up --port N`"
            ) from exc


async def _wait_ready(
    bootstrap: str, brokers: int, nodes: list[NodeSpec], pids: dict[int, int], timeout_s: float
) -> None:
    """Wait until a metadata request lists every broker; fail early if a JVM dies."""
    from aiokafka.admin import AIOKafkaAdminClient

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for node in nodes:
            if not _alive(pids[node.node_id]):
                raise KafkaLaunchError(
                    f"Kafka node {node.node_id} exited during start-up:\n{_tail(node)}"
                )
        if not _accepts(nodes[0].broker_port):
            await asyncio.sleep(0.2)
            continue
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            if len(cluster["brokers"]) >= brokers:
                return
        except Exception:  # noqa: S110 - not answering yet is the normal case while it starts
            pass
        finally:
            await admin.close()
        await asyncio.sleep(0.25)
    raise StartTimeoutError(
        f"Kafka did not answer on {bootstrap} within {timeout_s:.0f} s:\n{_tail(nodes[0])}"
    )


def _accepts(port: int) -> bool:
    """Whether the port takes TCP connections yet (a cheap probe before a Kafka client)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _tail(node: NodeSpec, lines: int = 20) -> str:
    for path in (node.log, node.log.with_name("console.log")):
        if path.exists() and path.stat().st_size:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log written)"
