"""`renkei kafka` brings up a real broker that Kafka's own tools can use."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.kafka import KafkaRuntime, LocalCluster
from infra.kafka.secure import read_client_env
from renkei.errors import KafkaLaunchError, PortInUseError
from renkei.operator.acl import desired_acls
from renkei.operator.directory_file import load_directory_file
from renkei.operator.principals import principal_names
from renkei.topics import Topics
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


def test_secure_cli_up_says_where_the_settings_are_and_leaks_no_password(tmp_path: Path) -> None:
    home, base = tmp_path / "home", _free_base_port()
    env = {**os.environ, "RENKEI_HOME": str(home), "RENKEI_KAFKA_PORT": str(base)}
    env.pop("RENKEI_BOOTSTRAP", None)

    def renkei(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "renkei", *args],
            capture_output=True, text=True, env=env, check=False, timeout=240,
        )  # fmt: skip

    up = renkei("kafka", "up", "--secure")
    try:
        assert up.returncode == 0, up.stderr
        assert up.stdout.splitlines()[-1] == f"127.0.0.1:{base}"  # scripts take the last line
        kafka = home / "kafka"
        credentials, tls = kafka / "credentials", kafka / "tls"
        assert f"{credentials}/<principal>.env" in up.stdout
        assert str(tls / "ca.pem") in up.stdout
        expected = {"broker", "admin", *principal_names(load_directory_file())}
        assert {f.stem for f in credentials.glob("*.env")} == expected
        assert _mode(credentials) == _mode(tls) == 0o700
        private = [*credentials.glob("*.env"), tls / "ca.key", tls / "broker.pem"]
        assert {_mode(f) for f in [*private, kafka / "node-1" / "server.properties"]} == {0o600}

        status = renkei("kafka", "status")
        assert "secure (SASL_SSL)" in status.stdout
        sync = renkei("acl", "sync", "--prefix", "cli.")
        assert sync.returncode == 0, sync.stderr
        wanted = len(desired_acls(load_directory_file(), Topics("cli.")))
        assert f"added {wanted}, removed 0, kept 0 ACL(s)" in sync.stdout
        assert "added 0, removed 0" in renkei("acl", "sync", "--prefix", "cli.").stdout

        passwords = [read_client_env(f)["RENKEI_SASL_PASSWORD"] for f in credentials.glob("*.env")]
        logs = [p.read_text(errors="replace") for p in (kafka / "node-1" / "logs").iterdir()]
        said = [up.stdout, up.stderr, status.stdout, sync.stdout, sync.stderr, *logs]
        leaked = [pw for pw in passwords if any(pw in text for text in said)]
        assert not leaked, "a password appears in the output or the broker's logs"
    finally:
        down = renkei("kafka", "down")
    assert "stopped 1 node(s)" in down.stdout
    # The storage holds SCRAM credentials: a plaintext start on it would never work.
    with pytest.raises(KafkaLaunchError, match="secure cluster's storage"):
        LocalCluster(home / "kafka", base_port=base).up(timeout_s=30)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_three_secure_nodes_replicate_over_sasl(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "kafka", nodes=3, base_port=_free_base_port(), secure=True)
    bootstrap = cluster.up(timeout_s=240)
    try:
        admin = cluster.files.client_kwargs("admin", bootstrap)

        async def write_and_read(topic: str, create: bool) -> list[bytes]:
            if create:
                client = AIOKafkaAdminClient(**admin)
                await client.start()
                await client.create_topics([NewTopic(topic, 1, 3)])
                await client.close()
            producer = AIOKafkaProducer(**admin, acks="all")
            await producer.start()
            for i in range(10):
                await producer.send_and_wait(topic, str(i).encode())
            await producer.stop()
            consumer = AIOKafkaConsumer(topic, **admin, auto_offset_reset="earliest")
            await consumer.start()
            got: list[bytes] = []
            while len(got) < (10 if create else 20):
                batch = await consumer.getmany(timeout_ms=30_000)
                assert batch, "no records within 30 s"
                got += [r.value for records in batch.values() for r in records]
            await consumer.stop()
            return got

        asyncio.run(write_and_read("replicated", create=True))
        # acks=all with min.insync.replicas=2: the followers replicate as User:broker over
        # SASL_SSL, and the write still succeeds with one of three nodes down.
        cluster.kill_node(2, signal.SIGKILL)
        values = asyncio.run(write_and_read("replicated", create=False))
        assert sorted(int(v) for v in values) == sorted(list(range(10)) * 2)
    finally:
        cluster.down()
