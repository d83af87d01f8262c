"""`renkei kafka` brings up a real broker that Kafka's own tools can use."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.kafka import KafkaRuntime, LocalCluster
from renkei.errors import PortInUseError
from tests.conftest import _free_base_port

pytestmark = pytest.mark.slow


def _tool(runtime: KafkaRuntime, main_class: str, *args: str) -> str:
    return runtime.run_tool(main_class, *args, timeout_s=90)


def test_single_node_up_tools_down(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "kafka", base_port=_free_base_port())
    bootstrap = cluster.up(timeout_s=120)
    try:
        assert bootstrap == f"127.0.0.1:{cluster.base_port}"
        assert len(cluster.running_pids()) == 1
        # A second `up` finds it running and starts nothing new.
        pids = cluster.running_pids()
        assert cluster.up() == bootstrap
        assert cluster.running_pids() == pids

        runtime = cluster.runtime
        _tool(runtime, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", bootstrap,
              "--create", "--topic", "tools.check", "--partitions", "2")  # fmt: skip
        listed = _tool(runtime, "org.apache.kafka.tools.TopicCommand",
                       "--bootstrap-server", bootstrap, "--list")  # fmt: skip
        assert "tools.check" in listed.split()

        async def consume_one() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
            await producer.start()
            await producer.send_and_wait("tools.check", b"hello", partition=0)
            await producer.stop()
            consumer = AIOKafkaConsumer(
                "tools.check", bootstrap_servers=bootstrap, group_id="tools-group",
                auto_offset_reset="earliest", enable_auto_commit=False,
            )  # fmt: skip
            await consumer.start()
            record = await asyncio.wait_for(consumer.getone(), 30)
            await consumer.commit()
            await consumer.stop()
            assert record.value == b"hello"

        asyncio.run(consume_one())
        groups = _tool(runtime, "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                       "--bootstrap-server", bootstrap, "--list")  # fmt: skip
        assert "tools-group" in groups.split()
    finally:
        stopped = cluster.down()
    assert len(stopped) == 1
    assert cluster.running_pids() == {}


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    base = _free_base_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base))
        squatter.listen()
        cluster = LocalCluster(tmp_path / "kafka", base_port=base)
        with pytest.raises(PortInUseError, match=f"port {base}"):
            cluster.up(timeout_s=30)
    assert cluster.running_pids() == {}


def test_cli_reports_missing_java_without_a_traceback(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "RENKEI_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "renkei", "kafka", "up"],
        capture_output=True, text=True, env=env, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "Java was not found" in done.stderr
    assert "Traceback" not in done.stderr


def test_three_nodes_survive_one_killed(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "kafka3", nodes=3, base_port=_free_base_port())
    bootstrap = cluster.up(timeout_s=180)
    try:
        assert len(bootstrap.split(",")) == 3

        async def write_and_read(topic: str, create: bool) -> list[bytes]:
            if create:
                admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
                await admin.start()
                await admin.create_topics([NewTopic(topic, 1, 3)])
                await admin.close()
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
            await producer.start()
            for i in range(10):
                await producer.send_and_wait(topic, str(i).encode())
            await producer.stop()
            consumer = AIOKafkaConsumer(
                topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
            )
            await consumer.start()
            got: list[bytes] = []
            while len(got) < (10 if create else 20):
                batch = await consumer.getmany(timeout_ms=30_000)
                assert batch, "no records within 30 s"
                got += [r.value for records in batch.values() for r in records]
            await consumer.stop()
            return got

        asyncio.run(write_and_read("replicated", create=True))
        cluster.kill_node(2, signal.SIGKILL)
        # acks=all with min.insync.replicas=2 still succeeds with two of three replicas.
        values = asyncio.run(write_and_read("replicated", create=False))
        assert sorted(int(v) for v in values) == sorted(list(range(10)) * 2)
    finally:
        cluster.down()
