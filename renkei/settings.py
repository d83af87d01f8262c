"""Settings, read once from the environment (``RENKEI_*``) into frozen models.

Each field names its environment variable, default and meaning. ``kafka_kwargs()`` is the
one place where our settings become aiokafka keyword arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["FETCH_MAX_WAIT_MS", "KafkaSettings"]


class KafkaSettings(BaseSettings):
    """How Renkei reaches Kafka."""

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
        default="PLAINTEXT", description="RENKEI_SECURITY_PROTOCOL: Kafka security protocol."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="RENKEI_SASL_MECHANISM: SASL mechanism when SASL is used."
    )
    sasl_username: str | None = Field(
        default=None, description="RENKEI_SASL_USERNAME: this principal's user name."
    )
    sasl_password: SecretStr | None = Field(
        default=None, description="RENKEI_SASL_PASSWORD: this principal's password."
    )
    request_timeout_ms: int = Field(
        default=30_000, description="RENKEI_REQUEST_TIMEOUT_MS: Kafka request timeout."
    )

    def resolved_bootstrap(self) -> str:
        """The bootstrap address: the external cluster's, else the local cluster's."""
        if self.bootstrap:
            return self.bootstrap
        from infra.kafka import LocalCluster
        from renkei.errors import ConfigurationError

        state = LocalCluster(self.home / "kafka").state()
        if state is None or not LocalCluster(self.home / "kafka").running_pids():
            raise ConfigurationError(
                "no Kafka to talk to: run `renkei kafka up`, or set RENKEI_BOOTSTRAP"
            )
        return state.bootstrap

    def kafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by aiokafka producers, consumers and admin clients."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.resolved_bootstrap(),
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
        }
        if self.sasl_mechanism is not None:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            if self.sasl_password is not None:
                kwargs["sasl_plain_password"] = self.sasl_password.get_secret_value()
        return kwargs


FETCH_MAX_WAIT_MS = 10
"""How long a broker holds a fetch that has no committed data yet.

Kafka's default (500 ms) is paid in full by ``read_committed`` readers of transactional
topics: a fetch parked before a transaction commits is not woken by the commit marker,
so every hop of an exchange could wait up to half a second. 10 ms trades a few more
fetch requests for latency (docs/benchmarks.md)."""
