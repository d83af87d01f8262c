"""How each actor of the demo reaches Kafka, and the local secure cluster it may run on.

:class:`Connections` hands every actor — operator, registry, hub, each agency — its
aiokafka keyword arguments. On a plaintext cluster they share one ``KafkaSettings``; on
the local secure cluster (``renkei kafka up --secure``) each logs in as its own principal
(``KafkaSettings.for_principal``), so the broker's ACLs decide what each may do, as in
production.

:func:`secure_cluster` picks the secure cluster ``renkei demo --secure`` runs on:
``$RENKEI_HOME``'s own when it is secure or there is none yet, else — ``$RENKEI_HOME``
holds a plaintext cluster's storage, say from an earlier ``renkei demo`` — one of its own
in ``$RENKEI_HOME/secure``, 100 ports higher, so the two never meet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr

from infra.kafka import LocalCluster
from infra.kafka.secure import SecureFiles, read_client_env
from renkei.operator.directory_file import DirectoryFile
from renkei.operator.principals import agency_principal, principal_names
from renkei.settings import KafkaSettings

__all__ = ["SECURE_PORT_OFFSET", "Connections", "secure_cluster"]

SECURE_PORT_OFFSET = 100
"""How far above the plaintext cluster's ports a secure one beside it listens."""


class Connections:
    """Kafka settings for each principal of a demo run.

    :param shared: the settings every actor uses (a plaintext cluster, or an external
        one reached as a single user); ``None`` with ``home``.
    :param home: ``RENKEI_HOME`` of the local secure cluster: every principal logs in
        with its own credentials file there.
    """

    def __init__(self, shared: KafkaSettings | None = None, home: Path | None = None) -> None:
        if (shared is None) == (home is None):
            raise ValueError("give either the shared settings or a secure cluster's home")
        self._shared = shared
        self.home = home
        self._kafka: dict[str, dict[str, Any]] = {}
        self.used: set[str] = set()
        """Every principal an actor connected as, in the order of no importance."""

    @classmethod
    def shared(cls, settings: KafkaSettings) -> Connections:
        """Every actor with ``settings``."""
        return cls(shared=settings)

    @classmethod
    def secure(cls, home: Path) -> Connections:
        """Every actor as its own principal of the secure cluster under ``home``."""
        return cls(home=home)

    @property
    def is_secure(self) -> bool:
        """Whether each actor has a principal of its own."""
        return self.home is not None

    def settings(self, principal: str) -> KafkaSettings:
        """The settings ``principal`` connects with.

        :raises ConfigurationError: (secure) the cluster has no such principal.
        """
        self.used.add(principal)
        if self._shared is not None:
            return self._shared
        return KafkaSettings.for_principal(principal, self.home)

    def kafka(self, principal: str) -> dict[str, Any]:
        """aiokafka keyword arguments of ``principal`` (made once: one TLS context each)."""
        if principal not in self._kafka:
            self._kafka[principal] = self.settings(principal).kafka_kwargs()
        self.used.add(principal)
        return self._kafka[principal]

    def environment(self, principal: str) -> dict[str, str]:
        """``RENKEI_*`` variables that make a ``renkei`` command connect as ``principal``."""
        self.used.add(principal)
        if self.home is not None:
            return read_client_env(SecureFiles(self.home / "kafka").env_file(principal))
        assert self._shared is not None
        values = self._shared.model_dump(exclude={"home"}, exclude_none=True)
        values["bootstrap"] = self._shared.resolved_bootstrap()
        return {
            f"RENKEI_{name.upper()}": str(
                value.get_secret_value() if isinstance(value, SecretStr) else value
            )
            for name, value in values.items()
        }

    def agency(self, agency_id: str) -> dict[str, Any]:
        """aiokafka keyword arguments of agency ``agency_id`` (principal ``agency.<id>``)."""
        return self.kafka(agency_principal(agency_id))


def secure_cluster(home: Path, port: int, directory: DirectoryFile) -> LocalCluster:
    """The (unstarted) local secure cluster for a demo under ``RENKEI_HOME`` ``home``.

    Its ``RENKEI_HOME`` is ``cluster.home.parent``. ``up()`` starts it, or gives new
    principals of ``directory`` a login if it runs already.

    :param port: the first broker port of ``home``'s own cluster.
    """
    principals = principal_names(directory)
    state = LocalCluster(home / "kafka").state()
    if state is None or state.secure:
        return LocalCluster(home / "kafka", base_port=port, secure=True, principals=principals)
    beside = home / "secure" / "kafka"
    return LocalCluster(
        beside, base_port=port + SECURE_PORT_OFFSET, secure=True, principals=principals
    )
