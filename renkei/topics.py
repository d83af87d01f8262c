"""The topics of the contract (``docs/contract.md``), and creating them.

Every name goes through :class:`Topics`, so a test or a second deployment on the same
cluster can run under its own prefix without touching anyone else's topics.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from renkei.errors import ConfigurationError

__all__ = ["TopicSpec", "Topics", "ensure_topics"]

_AGENCY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
_COMPACTED = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: name, partitions and configuration."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Topics:
    """Topic names under an optional prefix.

    :param prefix: prepended to every name (``"t123."`` in tests; empty in production).
    :param partitions: partitions of the high-volume topics.
    """

    prefix: str = ""
    partitions: int = 3

    @property
    def registry_events(self) -> str:
        return f"{self.prefix}registry.events"

    @property
    def registry_portal(self) -> str:
        """The registry's signed portal registration offers (one per resident, compacted)."""
        return f"{self.prefix}registry.portal"

    @property
    def portal_registrations(self) -> str:
        """Offers the hub side has given an audit key and signed, for the portal to read."""
        return f"{self.prefix}hub.portal.registrations"

    @property
    def portal_credentials(self) -> str:
        """The portal's own passkey credentials (keyed by credential id, compacted)."""
        return f"{self.prefix}portal.credentials"

    @property
    def audit(self) -> str:
        return f"{self.prefix}hub.audit"

    @property
    def audit_heads(self) -> str:
        """Copies of the audit trail's signed tree heads, for witnesses (agencies, portal)."""
        return f"{self.prefix}hub.audit.heads"

    @property
    def audit_signatures(self) -> str:
        """The signature verifier's verdicts (``trust-acl`` deployments)."""
        return f"{self.prefix}hub.audit.signatures"

    @property
    def directory(self) -> str:
        return f"{self.prefix}hub.directory"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}hub.deadletter"

    @property
    def control(self) -> str:
        """Signed operator commands to the hub (key rotation)."""
        return f"{self.prefix}hub.control"

    def state(self, name: str) -> str:
        """A hub-internal compacted state topic (persons, holdings, pending, keys)."""
        return f"{self.prefix}hub.state.{name}"

    def agency_out(self, agency_id: str) -> str:
        return f"{self.prefix}agency.{_checked(agency_id)}.out"

    def agency_in(self, agency_id: str) -> str:
        return f"{self.prefix}agency.{_checked(agency_id)}.in"

    def agency_out_pattern(self) -> str:
        """A regular expression matching every agency's ``.out`` topic under this prefix."""
        return "^" + re.escape(f"{self.prefix}agency.") + r"[a-z0-9-]+\.out$"

    def agency_of(self, topic: str) -> str:
        """The agency id in ``agency.<id>.out`` / ``.in``."""
        return topic[len(self.prefix) :].split(".")[1]

    def hub_specs(self, state_topics: Iterable[str] = ()) -> list[TopicSpec]:
        """The topics the hub owns."""
        specs = [
            TopicSpec(self.registry_events, self.partitions, dict(_FOREVER)),
            TopicSpec(self.audit, self.partitions, dict(_FOREVER)),
            TopicSpec(self.audit_heads, self.partitions, dict(_FOREVER)),
            TopicSpec(self.audit_signatures, self.partitions, dict(_FOREVER)),
            TopicSpec(self.directory, 1, dict(_COMPACTED)),
            TopicSpec(self.deadletter, 1),
            TopicSpec(self.registry_portal, self.partitions, dict(_COMPACTED)),
            TopicSpec(self.portal_registrations, self.partitions, dict(_COMPACTED)),
        ]
        specs += [TopicSpec(self.state(s), self.partitions, dict(_COMPACTED)) for s in state_topics]
        return specs

    def portal_specs(self) -> list[TopicSpec]:
        """The topic the portal owns (it creates it when it starts)."""
        return [TopicSpec(self.portal_credentials, self.partitions, dict(_COMPACTED))]

    def agency_specs(self, agency_id: str) -> list[TopicSpec]:
        """The two topics of one agency."""
        return [
            TopicSpec(self.agency_out(agency_id), self.partitions),
            TopicSpec(self.agency_in(agency_id), self.partitions),
        ]


def _checked(agency_id: str) -> str:
    if not _AGENCY_ID.match(agency_id):
        raise ConfigurationError(
            f"agency id {agency_id!r} must be 2-40 characters of a-z, 0-9 and '-'"
        )
    return agency_id


async def ensure_topics(
    admin: Any, specs: Iterable[TopicSpec], replication: int | None = None
) -> None:
    """Create the topics that do not exist yet (``admin`` is a started AIOKafkaAdminClient).

    Replication defaults to the cluster's size up to 3: 1 on a laptop, 3 on a real cluster.
    """
    from aiokafka.admin import NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    if replication is None:
        replication = min(3, len((await admin.describe_cluster())["brokers"]))
    existing = set(await admin.list_topics())
    wanted = [
        NewTopic(s.name, s.partitions, replication, topic_configs=s.config)
        for s in specs
        if s.name not in existing
    ]
    if not wanted:
        return
    response = await admin.create_topics(wanted)
    for name, code, *_ in response.topic_errors:
        # 36: another worker created it between our list and our create: same result.
        if code not in (0, TopicAlreadyExistsError.errno):
            raise ConfigurationError(f"could not create topic {name}: Kafka error {code}")
