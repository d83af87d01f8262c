"""A partitioned hub deployment of `renkei hub` processes, for the scale-out drills.

Each worker is a real `renkei hub` process with ``RENKEI_HUB_TOPOLOGY=partitioned`` and a
worker id of its own; all share one group, so they share the router's inputs and the
buckets. The agencies, their enrolments and the provider's handler are the kill test's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from consumers.provider import ProviderService
from hub_stream.worker import STATE_TOPICS
from producers.agency_client import AgencyClient
from producers.population import Person, generate_population
from producers.registry_publisher import RegistryPublisher
from renkei.crypto import keystore
from renkei.crypto.bundles import bundle_path, read_bundle
from renkei.operator.hub_key import hub_key_from_directory
from renkei.operator.publish import init_keys, publish
from renkei.settings import KafkaSettings
from renkei.topics import Topics, ensure_topics
from schemas.models import AuditRecord, AuditStep, ForwardedRequest
from tests.integration.hub_env import eventually
from tests.integration.test_exchange import basic4_of, wait_registered
from tests.integration.test_unwritable_outputs import read_all

__all__ = ["Deployment", "audit_steps", "wait_steps"]


@dataclass
class Deployment:
    """Keys, directory, registered people and the hub workers of one test."""

    bootstrap: str
    topics: Topics
    home: Path
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    people: list[Person] = field(default_factory=list)
    provided: list[str] = field(default_factory=list)
    """Hub request ids the provider's handler was called with."""

    @property
    def key_dir(self) -> Path:
        return self.home / "keys"

    @property
    def kafka(self) -> dict[str, Any]:
        return {"bootstrap_servers": self.bootstrap}

    async def setup(self) -> None:
        """Keys and the directory (the demo's agencies and scenarios)."""
        init_keys(self.key_dir)
        # The hub's own topics with a partition per bucket, before publish makes them
        # with its default count (the partitioned hub refuses to run on those).
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await ensure_topics(admin, self.topics.hub_specs(STATE_TOPICS))
        finally:
            await admin.close()
        await publish(
            KafkaSettings(bootstrap=self.bootstrap), self.topics.prefix, self.key_dir, None
        )

    def start(self, worker_id: str, extra_env: dict[str, str] | None = None) -> None:
        env = {
            **os.environ,
            "RENKEI_BOOTSTRAP": self.bootstrap,
            "RENKEI_HUB_TOPIC_PREFIX": self.topics.prefix,
            "RENKEI_HUB_PARTITIONS": str(self.topics.partitions),
            "RENKEI_HUB_KEY_DIR": str(self.key_dir),
            "RENKEI_HUB_WORKER_ID": worker_id,
            "RENKEI_HUB_TOPOLOGY": "partitioned",
            "RENKEI_HUB_READY_FILE": str(self.ready_file(worker_id)),
            **(extra_env or {}),
        }
        with (self.home / f"{worker_id}.log").open("ab") as out:
            self.workers[worker_id] = subprocess.Popen(
                [sys.executable, "-m", "renkei", "hub", "--loglevel", "info"],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def ready_file(self, worker_id: str) -> Path:
        return self.home / f"{worker_id}.ready"

    def kill(self, worker_id: str) -> None:
        process = self.workers.pop(worker_id)
        process.send_signal(signal.SIGKILL)
        process.wait()

    async def stop(self, worker_id: str) -> int:
        """SIGTERM one worker, which leaves its groups at once (a rebalance, not a
        session timeout); return its exit status once it has exited."""
        process = self.workers.pop(worker_id)
        process.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(process.wait, 60)

    def stop_all(self) -> None:
        for process in self.workers.values():
            process.send_signal(signal.SIGTERM)
        for process in self.workers.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.workers.clear()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.home.glob("*.log"))

    async def register(self, count: int, seed: int = 31) -> None:
        self.people = generate_population(count, seed=seed)
        registry_keys = keystore.load(self.key_dir, "registry")
        async with RegistryPublisher(registry_keys, self.kafka, self.topics) as registry:
            for person in self.people:
                await registry.register(
                    person.resident_code, person.my_number, basic4_of(person), person.birth_date
                )
        await wait_registered(self.kafka, self.topics, count)

    async def hub_key(self) -> bytes:
        operators = read_bundle(bundle_path(self.key_dir, "operator")).signing_public_key
        entry = await hub_key_from_directory(self.kafka, self.topics, operators)
        return entry.signing_public_key

    def client(self, agency: str, hub_key: bytes) -> AgencyClient:
        return AgencyClient(
            agency, keystore.load(self.key_dir, agency), self.kafka, self.topics,
            grace_s=120, hub_public_key=hub_key,
        )  # fmt: skip

    def provider(self, agency: str, hub_key: bytes) -> ProviderService:
        async def handler(request: ForwardedRequest) -> dict[str, Any]:
            self.provided.append(request.hub_request_id)
            return {item: f"{item}-of-{request.provider_link_code}" for item in request.items}

        return ProviderService(
            agency, keystore.load(self.key_dir, agency), self.kafka, self.topics, handler,
            group_id=f"{self.topics.prefix}agency.{agency}.provider", hub_public_key=hub_key,
        )  # fmt: skip


async def audit_steps(kafka: dict[str, Any], topics: Topics) -> list[AuditRecord]:
    """Every audit record (checkpoints left out) committed so far."""
    from schemas.codec import Codec

    codec = Codec()
    records = []
    for record in await read_all(kafka, topics.audit):
        message = codec.decode(record.value) if record.value is not None else None
        if isinstance(message, AuditRecord):
            records.append(message)
    return records


async def wait_steps(
    deployment: Deployment, step: AuditStep, count: int, timeout_s: float = 120
) -> list[AuditRecord]:
    """Wait until the audit trail holds ``count`` records of ``step``."""
    found: list[AuditRecord] = []

    async def enough() -> bool:
        nonlocal found
        found = [
            r for r in await audit_steps(deployment.kafka, deployment.topics) if r.step is step
        ]
        return len(found) >= count

    await eventually(enough, timeout_s=timeout_s)
    return found
