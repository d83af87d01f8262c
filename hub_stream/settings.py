"""The hub worker's settings (``RENKEI_HUB_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["HubSettings"]

_HUB = "hub"
"""The hub principal's names start with ``<prefix>hub`` (``principals.service_prefix``)."""


class HubSettings(BaseSettings):
    """How one hub worker runs."""

    model_config = SettingsConfigDict(env_prefix="RENKEI_HUB_", frozen=True, extra="ignore")

    topic_prefix: str = Field(
        default="", description="RENKEI_HUB_TOPIC_PREFIX: prefix of every topic name."
    )
    partitions: int = Field(
        default=3, description="RENKEI_HUB_PARTITIONS: partitions of the topics the hub creates."
    )
    group_id: str = Field(
        default="",
        description="RENKEI_HUB_GROUP_ID: consumer group of all workers; its transactional "
        "ids are <group_id>-<worker_id>. Default <topic_prefix>hub; it must start with "
        "that, which the hub principal's ACLs allow (docs/security.md).",
    )
    worker_id: str = Field(
        default="worker-1",
        description="RENKEI_HUB_WORKER_ID: unique per worker, stable across its restarts "
        "(its transactional id, which fences a zombie predecessor).",
    )
    key_dir: Path = Field(
        default=Path(".renkei/keys"),
        description="RENKEI_HUB_KEY_DIR: the hub's signing key file and master secret.",
    )
    operator_public_key_file: Path | None = Field(
        default=None,
        description="RENKEI_HUB_OPERATOR_PUBLIC_KEY_FILE: the operators' public bundle, the "
        "pinned root that every directory entry and control command must verify with (its "
        "sealing key seals dead letters); default <key_dir>/agency-operator.public.json.",
    )
    operator_public_key: str | None = Field(
        default=None,
        description="RENKEI_HUB_OPERATOR_PUBLIC_KEY: instead of the file, the operators' "
        "Ed25519 public key in base64 (dead letters then keep no value: no sealing key).",
    )
    registry_public_key_file: Path | None = Field(
        default=None,
        description="RENKEI_HUB_REGISTRY_PUBLIC_KEY_FILE: the registry's public bundle, the "
        "pinned root that every registry event must verify with; default "
        "<key_dir>/agency-registry.public.json.",
    )
    registry_public_key: str | None = Field(
        default=None,
        description="RENKEI_HUB_REGISTRY_PUBLIC_KEY: instead of the file, the registry's "
        "Ed25519 public key in base64.",
    )
    signatures: Literal["strict", "trust-acl"] = Field(
        default="strict",
        description="RENKEI_HUB_SIGNATURES: strict verifies every inbound signature and signs "
        "every outbound message; trust-acl relies on Kafka ACLs for who wrote a topic and "
        "keeps signatures for the audit trail only (see docs/benchmarks.md for the cost).",
    )
    topology: Literal["single", "partitioned"] = Field(
        default="single",
        description="RENKEI_HUB_TOPOLOGY: single (every worker restores all state: run one) "
        "or partitioned (a routing stage, then one task per bucket of the hub-internal "
        "partitions, shared by every worker in the group; docs/architecture.md). A "
        "deployment keeps the topology it was created with.",
    )
    role: Literal["hub", "verifier"] = Field(
        default="hub",
        description="RENKEI_HUB_ROLE: hub (the hub itself) or verifier (checks every agency "
        "signature a trust-acl hub forwards without checking, in the consumer group "
        "<group>-verifier, and writes its verdicts to hub.audit.signatures; "
        "hub_stream/verifier.py).",
    )
    store: Literal["memory", "rocksdb"] = Field(
        default="memory",
        description="RENKEI_HUB_STORE: where the state tables' committed rows live: memory "
        "(Python dicts) or rocksdb (an embedded RocksDB per worker, or per bucket task in "
        "the partitioned topology, rebuilt from the hub.state.* topics at every start; "
        "docs/architecture.md).",
    )
    store_dir: Path = Field(
        default=Path(".renkei/store"),
        description="RENKEI_HUB_STORE_DIR: the rocksdb store's directory; each worker uses "
        "<store_dir>/<group_id>/<worker_id>/ and wipes it at start.",
    )
    store_cache_rows: int = Field(
        default=10_000,
        ge=1,
        description="RENKEI_HUB_STORE_CACHE_ROWS: decoded rows the rocksdb store keeps in "
        "memory per table (least recently used go first).",
    )
    max_batch: int = Field(
        default=1000, description="RENKEI_HUB_MAX_BATCH: most records in one transaction."
    )
    poll_ms: int = Field(
        default=20, description="RENKEI_HUB_POLL_MS: longest wait for input per batch."
    )
    transactions_in_flight: int = Field(
        default=1,
        ge=1,
        le=4,
        description="RENKEI_HUB_TRANSACTIONS_IN_FLIGHT: batches whose transactions commit "
        "while the next is handled (1: each batch commits before the next poll, which "
        "measured faster under load while the offsets are committed to the group: "
        "docs/benchmarks.md); each has a transactional producer of its own, "
        "<group_id>-<worker_id>[-txn<i>].",
    )
    topic_refresh_ms: int = Field(
        default=30_000,
        gt=0,
        description="RENKEI_HUB_TOPIC_REFRESH_MS: how often the hub refreshes the metadata "
        "of its input topics, which is when it finds a listed agency's topic created after "
        "the directory entry, or a topic's new partitions (a new agency in the directory "
        "is subscribed at once; the request names the hub's topics only).",
    )
    max_deadline_ms: int = Field(
        default=24 * 3600 * 1000,
        description="RENKEI_HUB_MAX_DEADLINE_MS: furthest a request's deadline may lie ahead.",
    )
    replay_margin_ms: int = Field(
        default=3600 * 1000,
        ge=0,
        description="RENKEI_HUB_REPLAY_MARGIN_MS: message ids are remembered for "
        "max_deadline_ms plus this, to refuse a replayed copy as DUPLICATE.",
    )
    audit_checkpoint_records: int = Field(
        default=1000,
        description="RENKEI_HUB_AUDIT_CHECKPOINT_RECORDS: sign an audit checkpoint once a "
        "partition has this many unsigned records (at the end of the batch).",
    )
    audit_checkpoint_ms: int = Field(
        default=60_000,
        description="RENKEI_HUB_AUDIT_CHECKPOINT_MS: sign at least this often while a "
        "partition has unsigned records.",
    )
    ready_file: Path | None = Field(
        default=None,
        description="RENKEI_HUB_READY_FILE: written (atomically, JSON) once the hub is ready "
        "— state restored, loop consuming — and removed when it stops.",
    )
    health_port: int | None = Field(
        default=None,
        description="RENKEI_HUB_HEALTH_PORT: serve GET /healthz on this port (200 ready, "
        "503 not) and GET /metrics (Prometheus); unset: no endpoint.",
    )
    lag_check_ms: int = Field(
        default=5_000,
        ge=0,
        description="RENKEI_HUB_LAG_CHECK_MS: how often a worker with a health port reads "
        "the agencies' inbox lag and the under-replicated partitions from the brokers for "
        "/metrics; 0: never.",
    )
    health_host: str = Field(
        default="127.0.0.1",
        description="RENKEI_HUB_HEALTH_HOST: the address the health endpoint listens on.",
    )
    cluster_check_ms: int = Field(
        default=5_000,
        gt=0,
        description="RENKEI_HUB_CLUSTER_CHECK_MS: how often the hub checks that the brokers "
        "still belong to the cluster it started on (it halts if not).",
    )
    audit_withheld_scenarios: str = Field(
        default="",
        description="RENKEI_HUB_AUDIT_WITHHELD_SCENARIOS: comma-separated scenario ids whose "
        "audit records are not disclosable (the portal hides them until released).",
    )

    @model_validator(mode="before")
    @classmethod
    def _group_of_the_prefix(cls, data: Any) -> Any:
        # One naming everywhere, secure or not: the hub principal may use the groups and
        # transactional ids under "<prefix>hub" only (renkei/operator/principals.py).
        if isinstance(data, dict) and not data.get("group_id"):
            return {**data, "group_id": f"{data.get('topic_prefix', '')}{_HUB}"}
        return data

    @model_validator(mode="after")
    def _group_fits_the_acls(self) -> HubSettings:
        if not self.group_id.startswith(f"{self.topic_prefix}{_HUB}"):
            raise ValueError(
                f"RENKEI_HUB_GROUP_ID={self.group_id!r} must start with "
                f"{self.topic_prefix + _HUB!r} (the topic prefix, then 'hub'): the hub's "
                "ACLs allow only those consumer groups and transactional ids"
            )
        return self

    @property
    def control_app_id(self) -> str:
        """The faust control app's id, which is its consumer group: one per worker."""
        return f"{self.group_id}-control-{self.worker_id}"
