"""Settings, read once from the environment (``RENKEI_*``) into frozen models.

Each field names its environment variable, default and meaning. ``kafka_kwargs()`` is the
one place where our settings become aiokafka keyword arguments.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from renkei.errors import ConfigurationError

__all__ = ["FETCH_MAX_WAIT_MS", "IDLE_FETCH_MAX_WAIT_MS", "KafkaSettings"]


class KafkaSettings(BaseSettings):
    """How Renkei reaches Kafka, and as whom.

    A secure cluster (``renkei kafka up --secure``) wants ``SASL_SSL``, ``SCRAM-SHA-512``,
    a user name and password and the CA to trust; ``$RENKEI_HOME/kafka/credentials/<name>.env``
    holds exactly these variables for each principal, and :meth:`for_principal` reads it.
    """

    model_config = SettingsConfigDict(env_prefix="RENKEI_", frozen=True, extra="ignore")

    bootstrap: str | None = Field(
        default=None,
        description="RENKEI_BOOTSTRAP: an external cluster's bootstrap servers; "
        "unset means the local cluster started by `renkei kafka up`.",
    )
    home: Path = Field(
        default=Path(".renkei"),
        description="RENKEI_HOME: local state — the local cluster's storage, logs and key files.",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="RENKEI_SECURITY_PROTOCOL: Kafka security protocol "
        "(SASL_SSL for `renkei kafka up --secure`).",
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None,
        description="RENKEI_SASL_MECHANISM: SASL mechanism; required by the SASL_* protocols.",
    )
    sasl_username: str | None = Field(
        default=None, description="RENKEI_SASL_USERNAME: this principal's user name."
    )
    sasl_password: SecretStr | None = Field(
        default=None, description="RENKEI_SASL_PASSWORD: this principal's password."
    )
    ssl_cafile: Path | None = Field(
        default=None,
        description="RENKEI_SSL_CAFILE: PEM file of the CA(s) that sign the brokers' "
        "certificates; unset trusts the system's CAs.",
    )
    ssl_certfile: Path | None = Field(
        default=None,
        description="RENKEI_SSL_CERTFILE: this client's PEM certificate chain, for brokers "
        "that require mutual TLS.",
    )
    ssl_keyfile: Path | None = Field(
        default=None, description="RENKEI_SSL_KEYFILE: the private key of RENKEI_SSL_CERTFILE."
    )
    ssl_key_password: SecretStr | None = Field(
        default=None, description="RENKEI_SSL_KEY_PASSWORD: the password of RENKEI_SSL_KEYFILE."
    )
    request_timeout_ms: int = Field(
        default=30_000, description="RENKEI_REQUEST_TIMEOUT_MS: Kafka request timeout."
    )

    @classmethod
    def for_principal(cls, principal: str, home: Path | None = None) -> KafkaSettings:
        """Settings of ``principal`` on the local secure cluster under ``home``.

        Reads ``<home>/kafka/credentials/<principal>.env`` (written by
        ``renkei kafka up --secure``). Its values win over the environment, so a
        process can hold several principals' settings side by side (tests, the demo).

        :param home: ``RENKEI_HOME``; the environment's (or ``.renkei``) when not given.
        :raises ConfigurationError: no such principal on that cluster.
        """
        from infra.kafka.secure import SecureFiles, read_client_env

        home = home if home is not None else cls().home
        path = SecureFiles(home / "kafka").env_file(principal)
        if not path.exists():
            raise ConfigurationError(
                f"no credentials for principal {principal!r} in {path.parent}: "
                "start the cluster with `renkei kafka up --secure`, or add the principal "
                "with `renkei acl sync`"
            )
        values: dict[str, Any] = {
            k.removeprefix("RENKEI_").lower(): v for k, v in read_client_env(path).items()
        }
        # Keyword arguments outrank environment variables in pydantic-settings; the fields
        # the file does not name still come from the environment.
        return cls(**values, home=home)

    def resolved_bootstrap(self) -> str:
        """The bootstrap address: the external cluster's, else the local cluster's."""
        if self.bootstrap:
            return self.bootstrap
        from infra.kafka import LocalCluster

        state = LocalCluster(self.home / "kafka").state()
        if state is None or not LocalCluster(self.home / "kafka").running_pids():
            raise ConfigurationError(
                "no Kafka to talk to: run `renkei kafka up`, or set RENKEI_BOOTSTRAP"
            )
        return state.bootstrap

    def kafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by aiokafka producers, consumers and admin clients.

        :raises ConfigurationError: a SASL protocol without a mechanism, user or password,
            SASL settings with a protocol that does not use them, or an unreadable CA file.
        """
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.resolved_bootstrap(),
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
        }
        if self.security_protocol.startswith("SASL_"):
            kwargs.update(self._sasl_kwargs())
        elif self.sasl_mechanism is not None:
            raise ConfigurationError(
                f"RENKEI_SASL_MECHANISM is set, but RENKEI_SECURITY_PROTOCOL="
                f"{self.security_protocol} does not use SASL (SASL_SSL does)"
            )
        if self.security_protocol.endswith("SSL"):
            kwargs["ssl_context"] = self._ssl_context()
        return kwargs

    def _sasl_kwargs(self) -> dict[str, Any]:
        missing = [
            f"RENKEI_{name.upper()}"
            for name in ("sasl_mechanism", "sasl_username", "sasl_password")
            if getattr(self, name) is None
        ]
        if missing:
            raise ConfigurationError(
                f"RENKEI_SECURITY_PROTOCOL={self.security_protocol} needs {', '.join(missing)}"
            )
        assert self.sasl_password is not None
        return {
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_plain_username": self.sasl_username,
            "sasl_plain_password": self.sasl_password.get_secret_value(),
        }

    def _ssl_context(self) -> ssl.SSLContext:
        from aiokafka.helpers import create_ssl_context

        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ConfigurationError("RENKEI_SSL_CERTFILE and RENKEI_SSL_KEYFILE go together")
        password = self.ssl_key_password.get_secret_value() if self.ssl_key_password else None
        try:
            context: ssl.SSLContext = create_ssl_context(
                cafile=self.ssl_cafile,
                certfile=self.ssl_certfile,
                keyfile=self.ssl_keyfile,
                password=password,
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"cannot load the TLS files of RENKEI_SSL_*: {exc}") from exc
        return context


FETCH_MAX_WAIT_MS = 10
"""How long a broker holds a fetch that has no data yet.

Kafka's default (500 ms) is paid by a busy reader: aiokafka keeps one fetch in flight per
broker, and once a partition's records have waited unconsumed for its prefetch backoff
(100 ms: the reader was busy handling), it sends that fetch without the partition; drained
just after, the partition is not fetched again until the parked fetch returns — up to
the whole wait (measured: 452 ms with 500, ≤ 11 ms with 10). The broker itself does wake
a parked ``read_committed`` fetch when a commit marker makes data readable (Kafka 4.1:
2.4 ms from commit to poll with a 500 ms wait). 10 ms bounds the stall. Only a fetch sent
while a partition is buffered or paused uses it: :data:`IDLE_FETCH_MAX_WAIT_MS`."""

IDLE_FETCH_MAX_WAIT_MS = 500
"""How long a reader's fetch may park when it names every partition the reader has.

Such a fetch holds back nothing: it carries each partition, and the broker wakes it when a
record or a commit marker arrives on any. So a reader with nothing buffered parks its
fetches Kafka's default wait instead of :data:`FETCH_MAX_WAIT_MS`
(``renkei.aiokafka_internals.park_fetches_when_idle``), and an idle reader fetches twice a
second, not a hundred times. Only a ``seek`` (after an aborted batch) can wait for such a
parked fetch. Measured: an idle partitioned worker with 6 buckets spent 25-36 % of a core
with every reader at 10 ms (docs/benchmarks.md, "Idle cost of a worker")."""
