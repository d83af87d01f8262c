"""Kafka ACL bindings, and the three requests that read and change them.

A binding says: *principal* may (or may not) perform *operation* on a *resource pattern*
(a topic, group, transactional id or the cluster; named exactly or by prefix) from *host*.
These functions speak DescribeAcls, CreateAcls and DeleteAcls (API keys 29-31, version 1)
with many bindings per request. In KRaft a broker forwards CreateAcls and DeleteAcls to
the active controller and answers DescribeAcls from its own authorizer, so asking each
broker in turn shows when a change is in force everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from .wire import raise_for_error, single_version, to_dict

__all__ = [
    "AclBinding",
    "Operation",
    "PatternType",
    "Permission",
    "ResourceType",
    "create_acls",
    "delete_acls",
    "describe_acls",
]

_ANY = 1  # the "match anything" code of every enumeration in an ACL filter


class ResourceType(IntEnum):
    """``org.apache.kafka.common.resource.ResourceType`` codes."""

    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    """How a binding's resource name matches: exactly (LITERAL) or as a PREFIXED name."""

    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    """``org.apache.kafka.common.acl.AclOperation`` codes."""

    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14
    TWO_PHASE_COMMIT = 15


class Permission(IntEnum):
    """ALLOW or DENY."""

    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


@dataclass(frozen=True, order=True)
class AclBinding:
    """One ACL: ``principal`` may (ALLOW) or may not (DENY) do ``operation`` on a resource."""

    resource_type: ResourceType
    name: str
    pattern: PatternType
    principal: str
    operation: Operation
    permission: Permission = Permission.ALLOW
    host: str = "*"

    def _fields(self) -> tuple[Any, ...]:
        return (
            int(self.resource_type), self.name, int(self.pattern), self.principal, self.host,
            int(self.operation), int(self.permission),
        )  # fmt: skip

    def __str__(self) -> str:
        kind = self.resource_type.name.lower()
        pattern = "" if self.pattern is PatternType.LITERAL else f" ({self.pattern.name.lower()})"
        return (
            f"{self.permission.name} {self.principal} {self.operation.name} "
            f"{kind}:{self.name}{pattern}" + ("" if self.host == "*" else f" from {self.host}")
        )


async def describe_acls(client: Any, node_id: int) -> set[AclBinding]:
    """Every ACL binding broker ``node_id``'s authorizer holds."""
    from aiokafka.protocol.admin import DescribeAclsRequest_v1

    request = single_version(
        DescribeAclsRequest_v1,
        resource_type=_ANY, resource_name=None, resource_pattern_type_filter=_ANY,
        principal=None, host=None, operation=_ANY, permission_type=_ANY,
    )  # fmt: skip
    response = to_dict(await client.send(node_id, request))
    raise_for_error("DescribeAcls", response["error_code"], response["error_message"])
    return {
        AclBinding(
            ResourceType(resource["resource_type"]),
            resource["resource_name"],
            PatternType(resource["resource_pattern_type"]),
            acl["principal"],
            Operation(acl["operation"]),
            Permission(acl["permission_type"]),
            acl["host"],
        )
        for resource in response["resources"]
        for acl in resource["acls"]
    }


async def create_acls(client: Any, bindings: Iterable[AclBinding]) -> None:
    """Add ``bindings`` (in one request; adding an existing binding is a no-op)."""
    from aiokafka.protocol.admin import CreateAclsRequest_v1

    creations = [b._fields() for b in bindings]
    if not creations:
        return
    request = single_version(CreateAclsRequest_v1, creations=creations)
    response = to_dict(await client.send(client.get_random_node(), request))
    for binding, result in zip(creations, response["creation_responses"], strict=True):
        raise_for_error(f"CreateAcls {binding}", result["error_code"], result["error_message"])


async def delete_acls(client: Any, bindings: Iterable[AclBinding]) -> None:
    """Remove exactly ``bindings`` (each is a filter that matches only itself)."""
    from aiokafka.protocol.admin import DeleteAclsRequest_v1

    filters = [b._fields() for b in bindings]
    if not filters:
        return
    request = single_version(DeleteAclsRequest_v1, filters=filters)
    response = to_dict(await client.send(client.get_random_node(), request))
    for binding, result in zip(filters, response["filter_responses"], strict=True):
        raise_for_error(f"DeleteAcls {binding}", result["error_code"], result["error_message"])
