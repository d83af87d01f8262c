"""Who is who on a secure cluster: the Kafka principals and the names they may use.

Every client logs in (SASL/SCRAM) as one principal; the ACLs of ``renkei acl sync``
(:mod:`renkei.operator.acl`) say what each may do. The names below are the contract
between those ACLs and the clients: a consumer group or transactional id outside its
principal's prefix is refused (``GroupAuthorizationFailed``,
``TransactionalIdAuthorizationFailed``).

=================  ==========================  ========================================
principal          who                         consumer groups and transactional ids
=================  ==========================  ========================================
``agency.<id>``    one per agency              groups ``<prefix>agency.<id>.*``
``hub``            every hub worker            groups and transactional ids ``<prefix>hub*``
``registry``       the resident registry       none (it reads without a group)
``operator``       operators' CLI              groups ``<prefix>operator*``
``portal``         the citizen portal          groups ``<prefix>portal*``
``admin``          topic, ACL, user admin      any: a super user, like ``broker``
=================  ==========================  ========================================

Agencies are ``agency.<id>`` rather than ``<id>`` so that no agency id can ever name a
service principal (an agency called ``hub``).
"""

from __future__ import annotations

from typing import Final

from renkei.topics import Topics

from .directory_file import DirectoryFile

__all__ = [
    "ADMIN",
    "HUB",
    "OPERATOR",
    "PORTAL",
    "REGISTRY",
    "SERVICES",
    "agency_group_prefix",
    "agency_principal",
    "is_renkei_principal",
    "principal_names",
    "service_prefix",
]

HUB: Final = "hub"
REGISTRY: Final = "registry"
OPERATOR: Final = "operator"
PORTAL: Final = "portal"
ADMIN: Final = "admin"
SERVICES: Final = (HUB, REGISTRY, OPERATOR, PORTAL)
"""The principals that are not agencies and not super users."""

_AGENCY: Final = "agency."


def agency_principal(agency_id: str) -> str:
    """The user name agency ``agency_id`` logs in as."""
    return f"{_AGENCY}{agency_id}"


def agency_group_prefix(topics: Topics, agency_id: str) -> str:
    """Every consumer group of the agency starts with this (``agency.jps.provider``…)."""
    return f"{topics.prefix}agency.{agency_id}."


def service_prefix(topics: Topics, service: str) -> str:
    """The consumer groups and transactional ids of a service start with this.

    No separator after it, so the hub's existing names (``hub``, ``hub-worker-1``,
    ``hub-control-worker-1``) all fit.
    """
    return f"{topics.prefix}{service}"


def principal_names(directory: DirectoryFile) -> list[str]:
    """Every non-super-user principal a deployment of ``directory`` needs."""
    return [*SERVICES, *(agency_principal(a.agency_id) for a in directory.agencies)]


def is_renkei_principal(principal: str) -> bool:
    """Whether a Kafka principal (``User:hub``) is one of ours, whose ACLs sync manages."""
    kind, _, name = principal.partition(":")
    return kind == "User" and (name in SERVICES or name.startswith(_AGENCY))
