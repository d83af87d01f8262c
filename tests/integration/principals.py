"""Which broker the integration tests use, and as whom.

Plaintext (the default): every actor of a test shares one connection. With
``RENKEI_TEST_SECURE=1`` the tests written for it (those of :mod:`.hub_env`, the demo's,
``tests/security``) run on a secure cluster — TLS, SASL/SCRAM-SHA-512, ACLs synced for
the test's prefix — with each actor logged in as its own principal: the hub as ``hub``,
agency A as ``agency.A``, the registry, the operators. The test's own inspection (reading
the audit trail, deleting its topics) is the ``admin`` super user's. The cluster is the
one running under ``RENKEI_HOME`` (``renkei kafka up --secure``, as ``.ci/run`` starts it),
else one the session starts for itself.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.kafka import LocalCluster
from infra.kafka.secure import SecureFiles, read_client_env
from renkei.operator.acl import sync_acls
from renkei.operator.directory_file import DirectoryFile
from renkei.operator.principals import ADMIN, SERVICES, agency_principal, principal_names
from renkei.settings import KafkaSettings
from renkei.topics import Topics

__all__ = ["SECURE", "Principals"]

SECURE = os.environ.get("RENKEI_TEST_SECURE") == "1"
"""Whether this session runs on a secure cluster (``RENKEI_TEST_SECURE=1``)."""


@dataclass(frozen=True)
class Principals:
    """Connections to the test broker, one per principal when it is secure.

    :param bootstrap: the broker's address.
    :param home: ``RENKEI_HOME`` of a secure cluster (its credentials files); ``None`` for
        a plaintext broker.
    """

    bootstrap: str
    home: Path | None = None
    _cache: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def secure(self) -> bool:
        """Whether each principal logs in with its own credentials."""
        return self.home is not None

    def settings(self, principal: str) -> KafkaSettings:
        """``principal``'s settings (plaintext: the same for everyone)."""
        if self.home is None:
            return KafkaSettings(bootstrap=self.bootstrap)
        return KafkaSettings.for_principal(principal, self.home)

    def kafka(self, principal: str) -> dict[str, Any]:
        """``principal``'s aiokafka keyword arguments (``admin``: the super user)."""
        if self.home is None:
            return {"bootstrap_servers": self.bootstrap}  # as the tests always connected
        if principal not in self._cache:
            self._cache[principal] = self.settings(principal).kafka_kwargs()
        return self._cache[principal]

    def environment(self, principal: str) -> dict[str, str]:
        """``RENKEI_*`` variables that make a ``renkei`` command connect as ``principal``."""
        if self.home is None:
            return {"RENKEI_BOOTSTRAP": self.bootstrap}
        return read_client_env(SecureFiles(self.home / "kafka").env_file(principal))

    def of(self, who: str) -> dict[str, Any]:
        """The keyword arguments of a service (``hub``, ``registry``…) or an agency id."""
        return self.kafka(who if who in (*SERVICES, ADMIN) else agency_principal(who))

    @property
    def admin(self) -> dict[str, Any]:
        """The super user's: what a test uses to look at or clean up the broker."""
        return self.kafka(ADMIN)

    async def grant(self, directory: DirectoryFile, topics: Topics) -> None:
        """(secure) Logins for the agencies of ``directory``, and its ACLs under ``topics``.

        What ``renkei acl sync --prefix P --file DIRECTORY`` does on the local cluster.
        """
        assert self.home is not None, "a plaintext broker has no ACLs"
        cluster = LocalCluster(self.home / "kafka")
        new = [p for p in principal_names(directory) if p not in cluster.files.principals()]
        if new:  # LocalCluster's methods run an event loop of their own: off this one
            await asyncio.to_thread(cluster.add_principals, new)
        await sync_acls(self.admin, directory, topics)
