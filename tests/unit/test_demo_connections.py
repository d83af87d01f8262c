"""The demo's connections: which secure cluster it runs on, and what each actor is given."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from infra.kafka.cluster import ClusterState
from renkei.demo import SECURE_PORT_OFFSET, Connections, secure_cluster
from renkei.errors import ConfigurationError
from renkei.operator.directory_file import load_directory_file
from renkei.settings import KafkaSettings


def _record(home: Path, *, secure: bool) -> None:
    """What `renkei kafka up [--secure]` leaves in ``home`` (nothing runs)."""
    (home / "kafka").mkdir(parents=True)
    state = ClusterState("127.0.0.1:19092", "4.1.1", [], {}, secure)
    (home / "kafka" / "cluster.json").write_text(state.to_json())


@pytest.mark.parametrize("existing", [None, "secure"])
def test_the_secure_demo_uses_the_home_it_is_given(tmp_path: Path, existing: str | None) -> None:
    if existing:
        _record(tmp_path, secure=True)
    cluster = secure_cluster(tmp_path, 19092, load_directory_file())
    assert cluster.home == (tmp_path / "kafka").resolve()
    assert (cluster.secure, cluster.base_port) == (True, 19092)
    assert "agency.jps" in cluster.principals
    assert {"hub", "registry", "operator", "portal"} <= set(cluster.principals)


def test_beside_a_plaintext_cluster_the_secure_demo_starts_its_own(tmp_path: Path) -> None:
    _record(tmp_path, secure=False)  # e.g. an earlier `make demo`, maybe still running
    cluster = secure_cluster(tmp_path, 19092, load_directory_file())
    assert cluster.home == (tmp_path / "secure" / "kafka").resolve()
    assert cluster.home.parent.parent == tmp_path.resolve()  # its RENKEI_HOME is "secure"
    assert (cluster.secure, cluster.base_port) == (True, 19092 + SECURE_PORT_OFFSET)


def test_shared_connections_hand_every_actor_the_same_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = KafkaSettings(
        bootstrap="127.0.0.1:1", security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
        sasl_username="someone", sasl_password=SecretStr("pw"),
    )  # fmt: skip
    connections = Connections.shared(settings)
    assert not connections.is_secure
    assert connections.kafka("hub") == connections.agency("jps")
    assert connections.kafka("hub")["sasl_plain_username"] == "someone"
    # A `renkei` command given the environment connects the same way.
    environment = connections.environment("operator")
    assert environment["RENKEI_SASL_PASSWORD"] == "pw"
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert KafkaSettings().kafka_kwargs() == settings.kafka_kwargs()
    assert connections.used == {"hub", "agency.jps", "operator"}


def test_secure_connections_are_one_login_each(tmp_path: Path) -> None:
    connections = Connections.secure(tmp_path)
    assert connections.is_secure
    with pytest.raises(ConfigurationError, match=r"no credentials for principal 'agency\.jps'"):
        connections.agency("jps")
    with pytest.raises(ValueError, match="either"):
        Connections(KafkaSettings(), tmp_path)
