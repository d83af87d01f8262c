"""The ACLs a deployment needs, derived from its directory, and bringing Kafka to them.

:func:`desired_acls` reads the directory file (which agencies exist) and the topic names
(:class:`renkei.topics.Topics`, so a prefix is respected) and returns every ALLOW
binding; anything not allowed is denied (``allow.everyone.if.no.acl.found=false``):

* agency A writes only ``agency.A.out``, reads only ``agency.A.in``, ``hub.directory``
  (the hub's key, signed by the operators: :mod:`.hub_key`) and ``hub.audit.heads`` (the
  audit trail's signed tree heads, which its witness checks), with consumer groups
  ``agency.A.*``;
* the hub describes every agency's groups ``agency.A.*`` (their committed offsets: the
  inbox lag of its metrics), reads every agency's ``.out``, ``registry.events``, ``hub.directory``,
  ``hub.control`` and its ``hub.state.*``; writes every ``.in``, ``hub.audit``,
  ``hub.audit.heads``, ``hub.deadletter`` and ``hub.state.*``; reads and writes
  ``hub.route`` (the partitioned topology's stage 1 → stage 2); may create its topics;
  uses groups and transactional ids ``hub*`` (the partitioned topology's
  ``<group>-router`` and ``<group>-tasks`` groups, ``<group>-router-<worker>`` and
  ``<group>-task-<p>`` ids among them: the hub's group id starts with ``<prefix>hub``);
* the registry alone writes ``registry.events``, and reads ``hub.audit`` for the hub's
  verdicts on its events (``RegistryPublisher.wait_applied``, ``renkei registry wait``);
* operators alone write ``hub.directory``, ``hub.control`` and ``hub.disclosure``; they
  create the contract's topics and read the audit trail, the state and the dead letters;
* operators and the portal read ``hub.audit`` and ``hub.audit.heads`` (the portal also
  ``hub.disclosure`` and ``hub.directory``, for names);
* passkey registration: the registry alone writes ``registry.portal`` (its signed offers),
  the hub side reads it and alone writes ``hub.portal.registrations``, which the portal
  reads; the portal alone reads and writes (and creates) ``portal.credentials``.

Kafka 4 needs no ``IdempotentWrite`` on the cluster: an idempotent producer may start
when it may write some topic, a transactional one when it may write its transactional id
(KIP-679). So every binding names a topic, group or transactional id under the prefix,
and deployments with different prefixes on one cluster never touch each other's ACLs.

:func:`sync_acls` is idempotent: it adds what is missing, removes what is stale — any
binding of one of our principals (:func:`~.principals.is_renkei_principal`) on a resource
under the prefix that the directory no longer justifies — and returns once every broker
enforces the result. Bindings of other principals are never touched. With the empty
prefix every resource is under it: give deployments that share a cluster a prefix each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hub_stream.buckets import route_topic
from infra.kafka.acls import (
    AclBinding,
    Operation,
    PatternType,
    ResourceType,
    create_acls,
    delete_acls,
    describe_acls,
)
from infra.kafka.wire import admin_client, broker_ids
from renkei.errors import ConfigurationError
from renkei.topics import Topics

from .directory_file import DirectoryFile
from .principals import (
    HUB,
    OPERATOR,
    PORTAL,
    REGISTRY,
    agency_group_prefix,
    agency_principal,
    is_renkei_principal,
    service_prefix,
)

__all__ = ["SyncReport", "desired_acls", "in_scope", "sync_acls"]

_R, _W, _D, _C = Operation.READ, Operation.WRITE, Operation.DESCRIBE, Operation.CREATE
_TOPIC, _GROUP, _TXN = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID
_MANAGED = {_TOPIC, _GROUP, _TXN}


def _allow(
    principal: str,
    kind: ResourceType,
    name: str,
    operations: Iterable[Operation],
    pattern: PatternType = PatternType.LITERAL,
) -> set[AclBinding]:
    return {AclBinding(kind, name, pattern, f"User:{principal}", op) for op in operations}


def desired_acls(directory: DirectoryFile, topics: Topics) -> set[AclBinding]:
    """Every binding the deployment of ``directory`` under ``topics`` needs."""
    t = topics
    prefixed = PatternType.PREFIXED
    # hub.disclosure is renkei.audit.disclosure.disclosure_topic(), a layer above us.
    disclosure = f"{t.prefix}hub.disclosure"
    state = t.state("")  # "<prefix>hub.state.": every state table
    acls: set[AclBinding] = set()
    for agency in directory.agencies:
        a = agency.agency_id
        me = agency_principal(a)
        acls |= _allow(me, _TOPIC, t.agency_out(a), (_W, _D))
        acls |= _allow(me, _TOPIC, t.agency_in(a), (_R, _D))
        # An agency pins the hub's key from its directory entry (`renkei directory hub-key`).
        acls |= _allow(me, _TOPIC, t.directory, (_R, _D))
        # Its witness follows the tree heads (never hub.audit: others' records are there).
        acls |= _allow(me, _TOPIC, t.audit_heads, (_R, _D))
        acls |= _allow(me, _GROUP, agency_group_prefix(t, a), (_R,), prefixed)
        acls |= _allow(HUB, _TOPIC, t.agency_out(a), (_R, _D))
        acls |= _allow(HUB, _TOPIC, t.agency_in(a), (_W, _D))
        # The hub's /metrics says how far the agency's inbox groups are behind (the
        # committed offsets: FindCoordinator, ListGroups and OffsetFetch need Describe).
        acls |= _allow(HUB, _GROUP, agency_group_prefix(t, a), (_D,), prefixed)
        acls |= _allow(OPERATOR, _TOPIC, t.agency_out(a), (_C, _D))
        acls |= _allow(OPERATOR, _TOPIC, t.agency_in(a), (_C, _D))

    # The hub creates the topics it owns when it starts (HubService.on_start).
    for topic in (t.registry_events, t.directory, t.control):
        acls |= _allow(HUB, _TOPIC, topic, (_R, _D, _C))
    for topic in (t.audit, t.audit_heads, t.audit_signatures, t.deadletter):  # verdicts: role
        acls |= _allow(HUB, _TOPIC, topic, (_W, _D, _C))
    acls |= _allow(HUB, _TOPIC, state, (_R, _W, _D, _C), prefixed)
    # The partitioned topology's router writes hub.route and its tasks read it; only the
    # hub (HubService._start_partitioned creates it).
    acls |= _allow(HUB, _TOPIC, route_topic(t), (_R, _W, _D, _C))
    acls |= _allow(HUB, _GROUP, service_prefix(t, HUB), (_R,), prefixed)
    acls |= _allow(HUB, _TXN, service_prefix(t, HUB), (_W, _D), prefixed)

    acls |= _allow(REGISTRY, _TOPIC, t.registry_events, (_W, _D))
    # The hub's verdict on each registry event is an audit record (REGISTRY_APPLIED...).
    acls |= _allow(REGISTRY, _TOPIC, t.audit, (_R, _D))

    for topic in (t.directory, t.control, disclosure):
        acls |= _allow(OPERATOR, _TOPIC, topic, (_R, _W, _D, _C))
    for topic in (t.registry_events, t.audit, t.audit_heads, t.audit_signatures, t.deadletter):
        acls |= _allow(OPERATOR, _TOPIC, topic, (_R, _D, _C))
    acls |= _allow(OPERATOR, _TOPIC, state, (_R, _D), prefixed)
    acls |= _allow(OPERATOR, _GROUP, service_prefix(t, OPERATOR), (_R,), prefixed)

    for topic in (t.audit, t.audit_heads, disclosure, t.directory):
        acls |= _allow(PORTAL, _TOPIC, topic, (_R, _D))
    acls |= _allow(REGISTRY, _TOPIC, t.registry_portal, (_W, _D))
    acls |= _allow(HUB, _TOPIC, t.registry_portal, (_R, _D, _C))
    acls |= _allow(HUB, _TOPIC, t.portal_registrations, (_W, _D, _C))
    acls |= _allow(PORTAL, _TOPIC, t.portal_registrations, (_R, _D))
    acls |= _allow(PORTAL, _TOPIC, t.portal_credentials, (_R, _W, _D, _C))
    for topic in (t.registry_portal, t.portal_registrations):
        acls |= _allow(OPERATOR, _TOPIC, topic, (_R, _D, _C))
    acls |= _allow(PORTAL, _GROUP, service_prefix(t, PORTAL), (_R,), prefixed)
    return acls


def in_scope(binding: AclBinding, topics: Topics) -> bool:
    """Whether sync under ``topics`` manages ``binding`` (and may remove it)."""
    return (
        is_renkei_principal(binding.principal)
        and binding.resource_type in _MANAGED
        and binding.name.startswith(topics.prefix)
    )


@dataclass(frozen=True)
class SyncReport:
    """What a sync changed: bindings added and removed, and how many were already right."""

    added: tuple[AclBinding, ...]
    removed: tuple[AclBinding, ...]
    kept: int


async def sync_acls(
    kafka: dict[str, Any],
    directory: DirectoryFile,
    topics: Topics,
    *,
    dry_run: bool = False,
    timeout_s: float = 30,
) -> SyncReport:
    """Make the cluster's ACLs under ``topics`` exactly :func:`desired_acls`.

    :param kafka: aiokafka keyword arguments of a principal allowed to alter ACLs (the
        ``admin`` super user).
    :param dry_run: only report what would change.
    :raises ConfigurationError: Kafka refused a change (not an admin? no authorizer?), or
        some broker did not enforce the result within ``timeout_s``.
    """
    wanted = desired_acls(directory, topics)
    async with admin_client(kafka) as client:
        nodes = broker_ids(client)
        current = {b for b in await describe_acls(client, nodes[0]) if in_scope(b, topics)}
        added = sorted(wanted - current)
        removed = sorted(current - wanted)
        report = SyncReport(tuple(added), tuple(removed), len(current & wanted))
        if dry_run:
            return report
        await create_acls(client, added)
        await delete_acls(client, removed)
        # The controller has committed the change; each broker's authorizer applies it
        # from the metadata log a moment later. Return only once all of them enforce it.
        deadline = time.monotonic() + timeout_s
        for node in nodes:
            while {b for b in await describe_acls(client, node) if in_scope(b, topics)} != wanted:
                if time.monotonic() > deadline:
                    raise ConfigurationError(
                        f"broker {node} did not enforce the ACLs within {timeout_s:g} s"
                    )
                await asyncio.sleep(0.05)
    return report
