"""Every default consumer group, transactional id and faust app id fits the ACLs.

On a secure cluster a name outside its principal's prefix is refused by the broker
(``GroupAuthorizationFailed``, ``TransactionalIdAuthorizationFailed``); the defaults are
the same in plaintext, so a deployment that turns security on changes no name. Each name
is checked against the bindings ``renkei acl sync`` grants, not against a copy of the rule.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import pytest
from faust.auth import SASLCredentials
from pydantic import SecretStr, ValidationError

from consumers import LifecycleSubscriber, ProviderService
from hub_stream.app import faust_credentials
from hub_stream.settings import HubSettings
from infra.kafka.acls import Operation, PatternType, ResourceType
from infra.kafka.tls import TlsFiles, ensure_tls
from renkei.crypto import AgencyKeys, SealingKeyPair, SigningKey
from renkei.operator.acl import desired_acls
from renkei.operator.directory_file import load_directory_file
from renkei.operator.principals import agency_principal
from renkei.settings import KafkaSettings
from renkei.topics import Topics

PREFIX = "p1."
TOPICS = Topics(PREFIX)
HUB = SigningKey.generate().public_bytes


def allowed(principal: str, kind: ResourceType, name: str) -> bool:
    """Whether ``principal`` may use group / transactional id ``name`` (READ / WRITE)."""
    operation = Operation.READ if kind is ResourceType.GROUP else Operation.WRITE
    return any(
        b.principal == f"User:{principal}"
        and b.resource_type is kind
        and b.operation is operation
        and (b.name == name or (b.pattern is PatternType.PREFIXED and name.startswith(b.name)))
        for b in desired_acls(load_directory_file(), TOPICS)
    )


def test_hub_names_default_to_its_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RENKEI_HUB_"):
            monkeypatch.delenv(name)
    settings = HubSettings(topic_prefix=PREFIX, worker_id="worker-2")
    assert settings.group_id == "p1.hub"
    transactional_id = f"{settings.group_id}-{settings.worker_id}"  # HubService's
    assert settings.control_app_id == "p1.hub-control-worker-2"
    assert allowed("hub", ResourceType.GROUP, settings.group_id)
    assert allowed("hub", ResourceType.TRANSACTIONAL_ID, transactional_id)
    assert allowed("hub", ResourceType.GROUP, settings.control_app_id)  # faust's group
    # The prefix may come from the environment; the default follows it.
    monkeypatch.setenv("RENKEI_HUB_TOPIC_PREFIX", "env.")
    assert HubSettings().group_id == "env.hub"
    assert HubSettings().control_app_id == "env.hub-control-worker-1"
    monkeypatch.setenv("RENKEI_HUB_GROUP_ID", "env.hub-blue")
    assert HubSettings().group_id == "env.hub-blue"


def test_the_partitioned_topologys_names_are_the_hubs() -> None:
    """The groups and transactional ids hub_stream/partitioned.py and inflight.py use."""
    group = HubSettings(topic_prefix=PREFIX, worker_id="worker-2").group_id
    for name in (f"{group}-router", f"{group}-tasks"):
        assert allowed("hub", ResourceType.GROUP, name)
    for name in (f"{group}-router-worker-2", f"{group}-task-47", f"{group}-worker-2-txn1"):
        assert allowed("hub", ResourceType.TRANSACTIONAL_ID, name)
    assert not allowed("operator", ResourceType.GROUP, f"{group}-tasks")


@pytest.mark.parametrize("group", ["renkei-hub", "hub", "p2.hub", "p1.operator"])
def test_a_hub_group_outside_its_acls_is_refused(group: str) -> None:
    with pytest.raises(ValidationError, match=r"must start with 'p1\.hub'"):
        HubSettings(topic_prefix=PREFIX, group_id=group)


def _keys(agency_id: str) -> AgencyKeys:
    return AgencyKeys(agency_id, SigningKey.generate(), SealingKeyPair.generate())


async def _no_data(_: Any) -> None:
    return None


def test_agency_services_default_to_the_agency_groups() -> None:
    for agency in ("jps", "city-shinagawa"):
        me = agency_principal(agency)
        provider = ProviderService(agency, _keys(agency), {}, TOPICS, _no_data, hub_public_key=HUB)
        subscriber = LifecycleSubscriber(agency, _keys(agency), {}, TOPICS, {}, hub_public_key=HUB)
        for group in (provider.reader.group_id, subscriber.reader.group_id):
            assert group is not None
            assert allowed(me, ResourceType.GROUP, group), group
            assert not allowed(agency_principal("jasso"), ResourceType.GROUP, group)
        assert provider.reader.group_id == f"p1.agency.{agency}.provider"


def test_faust_connects_with_the_settings_of_the_data_plane(tmp_path: Path) -> None:
    assert faust_credentials(KafkaSettings(bootstrap="127.0.0.1:1")) is None
    ensure_tls(tmp_path)
    ca = TlsFiles(tmp_path).ca_cert
    secure = KafkaSettings(
        bootstrap="127.0.0.1:1", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
        sasl_username="hub", sasl_password=SecretStr("pw"), ssl_cafile=ca,
    )  # fmt: skip
    credentials = faust_credentials(secure)
    assert isinstance(credentials, SASLCredentials)
    assert (credentials.protocol.value, credentials.mechanism.value) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
    )
    assert (credentials.username, credentials.password) == ("hub", "pw")
    assert isinstance(credentials.ssl_context, ssl.SSLContext)
    tls_only = faust_credentials(KafkaSettings(bootstrap="127.0.0.1:1", security_protocol="SSL"))
    assert tls_only is not None
    assert tls_only.protocol.value == "SSL"
