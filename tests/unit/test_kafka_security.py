"""Broker identity without a broker: client settings, TLS files, credentials, ACL rules."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from hub_stream.buckets import route_topic
from infra.kafka.acls import Operation, PatternType, Permission, ResourceType
from infra.kafka.runtime import random_cluster_id
from infra.kafka.secure import SecureFiles, read_client_env
from infra.kafka.tls import ensure_tls
from renkei.errors import ConfigurationError
from renkei.operator.acl import desired_acls, in_scope
from renkei.operator.directory_file import load_directory_file
from renkei.operator.principals import agency_principal
from renkei.settings import KafkaSettings
from renkei.topics import Topics

# --- KafkaSettings → aiokafka ----------------------------------------------------------


def test_secure_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = ensure_tls(tmp_path / "tls").ca_cert
    for name, value in {
        "RENKEI_BOOTSTRAP": "127.0.0.1:1", "RENKEI_SECURITY_PROTOCOL": "SASL_SSL",
        "RENKEI_SASL_MECHANISM": "SCRAM-SHA-512", "RENKEI_SASL_USERNAME": "agency.jps",
        "RENKEI_SASL_PASSWORD": "s3cret", "RENKEI_SSL_CAFILE": str(ca),
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    settings = KafkaSettings()
    assert "s3cret" not in repr(settings)
    kwargs = settings.kafka_kwargs()
    context = kwargs.pop("ssl_context")
    assert kwargs == {
        "bootstrap_servers": "127.0.0.1:1", "security_protocol": "SASL_SSL",
        "request_timeout_ms": 30_000, "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "agency.jps", "sasl_plain_password": "s3cret",
    }  # fmt: skip
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "Renkei local Kafka CA"),),)
    ]


def test_plaintext_settings_are_unchanged() -> None:
    assert KafkaSettings(bootstrap="127.0.0.1:1").kafka_kwargs() == {
        "bootstrap_servers": "127.0.0.1:1",
        "security_protocol": "PLAINTEXT",
        "request_timeout_ms": 30_000,
    }


SASL = {"security_protocol": "SASL_SSL"}
SCRAM = {"sasl_mechanism": "SCRAM-SHA-512"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (SASL, "needs RENKEI_SASL_MECHANISM, RENKEI_SASL_USERNAME, RENKEI_SASL_PASSWORD"),
        ({**SASL, **SCRAM, "sasl_username": "hub"}, "needs RENKEI_SASL_PASSWORD$"),
        (SCRAM, "PLAINTEXT does not use SASL"),
        ({"security_protocol": "SSL", "ssl_cafile": "/no/ca.pem"}, "cannot load the TLS files"),
        ({"security_protocol": "SSL", "ssl_certfile": "/x/cert.pem"}, "go together"),
    ],
)
def test_inconsistent_security_settings_are_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, str], message: str
) -> None:
    for name in ("SECURITY_PROTOCOL", "SASL_MECHANISM", "SASL_USERNAME", "SASL_PASSWORD"):
        monkeypatch.delenv(f"RENKEI_{name}", raising=False)
    settings = KafkaSettings.model_validate({"bootstrap": "127.0.0.1:1", **fields})
    with pytest.raises(ConfigurationError, match=message):
        settings.kafka_kwargs()


def test_for_principal_reads_its_file_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    files = SecureFiles(tmp_path / "kafka")
    passwords = files.prepare(["hub"])
    files.publish(passwords, "127.0.0.1:29092")
    monkeypatch.setenv("RENKEI_BOOTSTRAP", "127.0.0.1:19092")  # the plaintext test broker
    monkeypatch.setenv("RENKEI_REQUEST_TIMEOUT_MS", "1234")  # not in the file: still applies
    hub = KafkaSettings.for_principal("hub", tmp_path)
    assert (hub.bootstrap, hub.sasl_username, hub.security_protocol) == (
        "127.0.0.1:29092", "hub", "SASL_SSL",
    )  # fmt: skip
    assert hub.sasl_password is not None
    assert hub.sasl_password.get_secret_value() == passwords["hub"]
    assert hub.ssl_cafile == files.tls.ca_cert.resolve()
    assert hub.request_timeout_ms == 1234
    with pytest.raises(ConfigurationError, match="no credentials for principal 'portal'"):
        KafkaSettings.for_principal("portal", tmp_path)
    files.env_file("hub").chmod(0o644)
    with pytest.raises(ConfigurationError, match="open to group or others"):
        KafkaSettings.for_principal("hub", tmp_path)


# --- TLS files and credentials ----------------------------------------------------------


async def test_broker_certificate_is_trusted_for_127_0_0_1_through_the_ca(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path / "tls")
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    pem = files.keystore.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # what Kafka's PEM keystore reads
    broker = x509.load_pem_x509_certificates(pem)[0]
    broker.verify_directly_issued_by(ca)
    names = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert {_mode(files.ca_key), _mode(files.keystore), _mode(files.directory)} == {0o600, 0o700}
    assert _mode(files.ca_cert) == 0o644

    # A TLS server with the broker's keystore is accepted by a client that checks the
    # host name 127.0.0.1 against our CA, as aiokafka's context does.
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(files.keystore)
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    client_context = ssl.create_default_context(cafile=files.ca_cert)
    async with server:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_context)
        assert writer.get_extra_info("peercert")["subject"] == ((("commonName", "broker"),),)
        writer.close()
    # Kept, not remade: clients already trust this CA.
    assert ensure_tls(tmp_path / "tls").ca_cert.read_bytes() == files.ca_cert.read_bytes()


def test_passwords_are_made_once_and_kept_private(tmp_path: Path) -> None:
    files = SecureFiles(tmp_path / "kafka")
    first = files.prepare(["hub", agency_principal("jps")])
    assert set(first) == {"broker", "admin", "hub", "agency.jps"}
    assert len(set(first.values())) == 4
    assert files.prepare(["hub", agency_principal("jps"), "portal"]) == {
        **first, "portal": files.password("portal"),
    }  # fmt: skip
    assert _mode(files.credentials_dir) == 0o700
    assert {_mode(p) for p in files.credentials_dir.iterdir()} == {0o600}
    arguments = files.format_arguments(first)
    assert arguments[0::2] == ["--add-scram", "--add-scram"]
    assert arguments[1] == f"SCRAM-SHA-512=[name=broker,password={first['broker']}]"
    for bad in ("Hub", "a,b", "a=b", "", "x" * 101, "../etc"):
        with pytest.raises(ConfigurationError, match="principal name"):
            files.env_file(bad)


def test_client_settings_files_must_be_key_value_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.env"
    path.write_text("# comment\n\nRENKEI_A=1\nnot a setting\n")
    path.chmod(0o600)
    with pytest.raises(ConfigurationError, match=r"x.env:4: not a KEY=value line"):
        read_client_env(path)
    path.write_text("RENKEI_A=1=2\n")
    assert read_client_env(path) == {"RENKEI_A": "1=2"}


def test_cluster_ids_look_like_kafkas() -> None:
    for _ in range(200):
        cluster_id = random_cluster_id()
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


# --- the ACL rules ----------------------------------------------------------------------


def test_acls_give_each_principal_exactly_its_topics() -> None:
    directory, topics = load_directory_file(), Topics("p1.")
    acls = desired_acls(directory, topics)
    assert {b.permission for b in acls} == {Permission.ALLOW}
    assert {b.host for b in acls} == {"*"}
    assert all(b.name.startswith("p1.") and in_scope(b, topics) for b in acls)
    assert ResourceType.CLUSTER not in {b.resource_type for b in acls}  # KIP-679

    def who(operation: Operation, topic: str) -> set[str]:
        return {
            b.principal.removeprefix("User:")
            for b in acls
            if b.resource_type is ResourceType.TOPIC
            and b.operation is operation
            and (
                b.name == topic or (b.pattern is PatternType.PREFIXED and topic.startswith(b.name))
            )
        }

    for agency in directory.agencies:
        a, me = agency.agency_id, agency_principal(agency.agency_id)
        assert who(Operation.WRITE, topics.agency_out(a)) == {me}
        assert who(Operation.READ, topics.agency_out(a)) == {"hub"}
        assert who(Operation.WRITE, topics.agency_in(a)) == {"hub"}
        assert who(Operation.READ, topics.agency_in(a)) == {me}
        mine = {b for b in acls if b.principal == f"User:{me}"}
        assert {(b.resource_type, b.name) for b in mine} == {
            (ResourceType.TOPIC, topics.agency_out(a)),
            (ResourceType.TOPIC, topics.agency_in(a)),
            (ResourceType.TOPIC, topics.directory),  # the hub's key, signed by the operators
            (ResourceType.TOPIC, topics.audit_heads),  # its witness: tree heads, no record
            (ResourceType.GROUP, f"p1.agency.{a}."),  # the dot: "jps" never covers "jpsx"
        }
    assert who(Operation.WRITE, topics.directory) == {"operator"}
    agencies = {agency_principal(a.agency_id) for a in directory.agencies}
    assert who(Operation.READ, topics.directory) == {"hub", "operator", "portal", *agencies}
    assert who(Operation.READ, "p1.hub.disclosure") == {"operator", "portal"}
    assert who(Operation.WRITE, topics.control) == {"operator"}
    assert who(Operation.WRITE, topics.registry_events) == {"registry"}
    assert who(Operation.READ, topics.audit) == {"operator", "portal", "registry"}
    assert who(Operation.WRITE, topics.audit) == {"hub"}
    assert who(Operation.READ, topics.audit_heads) == {"operator", "portal", *agencies}
    assert who(Operation.WRITE, topics.audit_heads) == {"hub"}
    assert who(Operation.CREATE, topics.audit_heads) == {"hub", "operator"}
    assert who(Operation.WRITE, topics.state("persons")) == {"hub"}
    # The partitioned topology's hub.route: between the hub's own two stages.
    for operation in (Operation.READ, Operation.WRITE, Operation.CREATE):
        assert who(operation, route_topic(topics)) == {"hub"}
    transactional = {
        (b.principal, b.name, b.operation)
        for b in acls
        if b.resource_type is ResourceType.TRANSACTIONAL_ID
    }
    assert transactional == {
        ("User:hub", "p1.hub", Operation.WRITE),
        ("User:hub", "p1.hub", Operation.DESCRIBE),
    }


def test_sync_scope_is_our_principals_under_the_prefix() -> None:
    (binding, *_) = sorted(desired_acls(load_directory_file(), Topics("p1.")))
    assert in_scope(binding, Topics("p1."))
    assert in_scope(binding, Topics(""))  # the unprefixed deployment owns every name
    assert not in_scope(binding, Topics("p2."))
    stranger = type(binding)(
        binding.resource_type, binding.name, binding.pattern, "User:someone", binding.operation
    )
    assert not in_scope(stranger, Topics("p1."))


def _covers(prefix: str, name: str) -> bool:
    return name.startswith(prefix)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)
