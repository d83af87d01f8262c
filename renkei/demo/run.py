"""The demo's run: its actors and what they do, in order.

On a secure cluster the admin first grants the run's ACLs (``renkei acl sync`` for its
prefix); the operators publish the directory (creating the topics), the hub starts, each
agency pins the hub's key from ``hub.directory``, the registry publishes the people,
agencies enrol them, providers answer, requesters ask (refusals and a timeout
included), the registry records life events, and the agencies count the notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import random
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console

from consumers.inbox import InboxReader
from consumers.provider import ProviderService
from hub_stream.settings import HubSettings
from producers.agency_client import AgencyClient
from producers.population import Person, agency_view, generate_population
from producers.registry_publisher import RegistryPublisher
from renkei.crypto import keystore
from renkei.crypto.bundles import bundle_path, read_bundle
from renkei.operator.acl import sync_acls
from renkei.operator.directory_file import load_directory_file
from renkei.operator.hub_key import hub_key_from_directory
from renkei.operator.principals import ADMIN, HUB, OPERATOR, REGISTRY
from renkei.operator.publish import init_keys, publish
from renkei.topics import Topics
from schemas.models import Basic4, EventKind, ForwardedRequest, LifeEventNotice, Message, Sex

from .asking import HOLDERS, OFFLINE, Asking
from .connections import Connections
from .hubs import DemoHub, HubProcess, InProcessHub
from .next_steps import NextSteps, next_steps, one_answered, prepare_portal, trail_signed
from .ops import DemoOps
from .summary import DemoSummary

__all__ = ["Demo", "default_prefix"]


CHECKPOINT_MS = 1000
"""The demo's hub signs each partition's unsigned tail every second (the default is a
minute), so the run's whole trail is covered, and the portal shows it, when it ends."""


def _value(item: str, link_code: str) -> Any:
    """A stable synthetic value for one item of one person (what a provider would look up)."""
    n = int.from_bytes(hashlib.blake2b(f"{item}{link_code}".encode(), digest_size=4).digest())
    if item.endswith(("income", "amount")):
        return 1_000_000 + n % 6_000_000
    return ("PAID", "SUSPENDED", "ELIGIBLE", "NONE")[n % 4]


def _basic4(view: Any) -> Basic4:
    return Basic4(name=view.name, name_kana=view.name_kana, birth_date=view.birth_date,
                  sex=Sex(view.sex), address=view.address)  # fmt: skip


def default_prefix() -> str:
    """A topic prefix of its own for each run: the time, and a few random letters."""
    return f"demo-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:4]}."


RATE = 10.0
"""Exchanges the main batch offers per second, unless told: see docs/benchmarks.md."""

LIFE_EVENTS = 6
"""What :meth:`Demo._life_events` records: 4 moves, a death and its annulment."""


class Demo:
    """One demo run under its own topic prefix.

    :param connections: how each actor reaches Kafka.
    :param home: ``RENKEI_HOME``; the run's keys go to ``<home>/demo-keys``.
    :param people: size of the synthetic population.
    :param prefix: the topic prefix; :func:`default_prefix` when not given.
    :param exchanges: requests of the main batch (some are skipped when the two agencies
        share nobody).
    :param rate: requests of the main batch started per second; ``None``: all at once.
    :param hub_in_process: run the hub worker in this process's event loop, not in a
        process of its own (the default: the faster at a normal load, docs/benchmarks.md).
    :param ops: for ``--ops``: the hub gets its health port, Prometheus scrapes it.
    """

    def __init__(
        self,
        connections: Connections,
        home: Path,
        people: int,
        console: Console,
        *,
        prefix: str | None = None,
        exchanges: int = 300,
        rate: float | None = RATE,
        hub_in_process: bool = False,
        ops: DemoOps | None = None,
    ) -> None:
        self.console = console
        self.connections = connections
        self.topics = Topics(prefix if prefix is not None else default_prefix())
        self.key_dir = home / "demo-keys"
        self.exchanges = exchanges
        self.rate = rate
        self.hub_in_process = hub_in_process
        self.ops = ops
        self.population = generate_population(people, seed=2026, duplicates=2)
        self.rng = random.Random(2026)  # noqa: S311 - synthetic data, not security
        self.codes: dict[str, dict[str, str]] = {a: {} for a in (*HOLDERS, OFFLINE)}
        self.clients: dict[str, AgencyClient] = {}
        self.readers: dict[str, InboxReader] = {}
        """Each agency's inbox reader, shared by its client and its provider."""
        self.outcomes: Counter[str] = Counter()
        self.asking = Asking(self.clients, self.codes, self.outcomes, self.say, self.rng)
        self.notices: Counter[str] = Counter()
        self.hub_key = b""
        """The hub's verification key, once pinned."""

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False)

    async def run(self) -> DemoSummary:
        """Run every scene, print the summary table and return it."""
        init_keys(self.key_dir)
        if self.connections.is_secure:
            await self._grant()
        await publish(self.connections.settings(OPERATOR), self.topics.prefix, self.key_dir, None)
        hub = self._hub()
        await hub.start()
        if self.ops is not None:  # before any traffic, so its rates cover the whole run
            await self.ops.watching()
        where = "in the demo's process" if hub.in_process else "in a process of its own"
        self.say(f"[bold]hub[/] running {where}, topics under [cyan]{self.topics.prefix}[/]")
        try:
            await self._pin_hub_key()
            await self._registry()
            # Still needed for a few hundred people: the hub reads registry.events beside
            # the agencies' topics, and Kafka orders nothing across partitions. A burst
            # of registrations spans several fetches, and an enrolment fetched before a
            # registration published earlier would answer NO_MATCH. (A registration and
            # an enrolment in one batch are fine: handled in the order produced.)
            while (await hub.state())["persons"] < len(self.population):  # noqa: ASYNC110 - another process's state
                await asyncio.sleep(0.05)
            for agency in (*HOLDERS, OFFLINE):
                await self._agency(agency)
            await self._enrol()
            async with contextlib.AsyncExitStack() as providers:
                for agency in HOLDERS:  # each provider answers in the background
                    await providers.enter_async_context(self._provider(agency))
                cpu0, hub0 = time.process_time(), (await hub.state())["cpu_s"]
                await self.asking.batch(self.exchanges, self.rate)
                cpu = time.process_time() - cpu0, (await hub.state())["cpu_s"] - hub0
                await self.asking.refusals()
                await self._life_events()
                await self._notices_delivered(hub)
                if self.ops is not None:  # its last scrapes have the final counts
                    await self.ops.settled()
            summary = self._summary(hub, (await hub.state())["metrics"], cpu)
            steps = await self._next_steps()  # while the hub runs: it signs the trail's tail
        finally:
            try:
                for client in self.clients.values():
                    await client.stop()
                for reader in self.readers.values():
                    await reader.stop()  # raises what stopped it, if something did
            finally:
                await hub.stop()
        self.console.print(summary.table())
        steps.print(self.console)
        return dataclasses.replace(summary, next_steps=steps)

    async def _next_steps(self) -> NextSteps:
        """What to look at now: wait for the trail to be signed (the portal shows only
        what a checkpoint covers), find an exchange to trace, give one person a portal
        login, and write the commands out."""
        operator = self.connections.kafka(OPERATOR)
        await trail_signed(operator, self.topics, self.key_dir, timeout_s=30)
        folder = self.key_dir.parent / "demo-portal" / self.topics.prefix.strip("-.")
        portal = await prepare_portal(self.connections, self.topics, self.key_dir, folder,
                                      self.population[0].resident_code)  # fmt: skip
        graph = self.ops.graph_url() if self.ops is not None else None
        return next_steps(self.connections, self.topics, self.key_dir,
                          await one_answered(operator, self.topics), portal, graph)  # fmt: skip

    def _hub(self) -> DemoHub:
        """The hub worker, strict (every signature verified), in its own process or not."""
        # The default group (<prefix>hub) is the one the hub principal's ACLs allow.
        if self.hub_in_process:
            settings = HubSettings(topic_prefix=self.topics.prefix, key_dir=self.key_dir,
                                   signatures="strict",
                                   audit_checkpoint_ms=CHECKPOINT_MS)  # fmt: skip
            if self.ops is not None:  # /healthz and /metrics, on the port Prometheus scrapes
                settings = settings.model_copy(update=self.ops.hub_settings())
            return InProcessHub(self.connections.kafka(HUB), settings)
        health = {} if self.ops is None else self.ops.hub_environment()
        return HubProcess({
            **self.connections.environment(HUB), "RENKEI_HUB_TOPIC_PREFIX": self.topics.prefix,
            "RENKEI_HUB_KEY_DIR": str(self.key_dir), "RENKEI_HUB_SIGNATURES": "strict",
            "RENKEI_HUB_AUDIT_CHECKPOINT_MS": str(CHECKPOINT_MS),
            **health,
        })  # fmt: skip

    async def _grant(self) -> None:
        """As ``renkei acl sync --prefix P``: the admin grants what the directory says."""
        report = await sync_acls(self.connections.kafka(ADMIN), load_directory_file(), self.topics)
        self.say(f"[bold]admin[/] granted {len(report.added) + report.kept} ACLs under "
                 f"[cyan]{self.topics.prefix}[/]: every actor logs in as its own principal "
                 "(TLS + SASL/SCRAM-SHA-512)")  # fmt: skip

    async def _pin_hub_key(self) -> None:
        """As agencies do: the hub's key from hub.directory, checked against the operators'.

        Each agency reads it under its own principal; every agency reader then refuses
        what this key did not sign.
        """
        operators = read_bundle(bundle_path(self.key_dir, "operator")).signing_public_key
        pinned = await asyncio.gather(*(
            hub_key_from_directory(self.connections.agency(a), self.topics, operators)
            for a in (*HOLDERS, OFFLINE)
        ))  # fmt: skip
        hub = pinned[0]
        assert {k.signing_public_key for k in pinned} == {hub.signing_public_key}
        self.hub_key = hub.signing_public_key
        self.say(f"agencies pin the [bold]hub[/]'s key {hub.fingerprint()} "
                 "(its directory entry, signed by the operators)")  # fmt: skip

    async def _registry(self) -> None:
        async with RegistryPublisher(
            keystore.load(self.key_dir, "registry"), self.connections.kafka(REGISTRY), self.topics
        ) as reg:
            for p in self.population:
                await reg.register(p.resident_code, p.my_number, _basic4(p), p.birth_date)
        self.say(f"[bold]registry[/] published {len(self.population)} persons (住民票)")

    async def _enrol(self) -> None:
        for agency in (*HOLDERS, OFFLINE):
            sample = self.rng.sample(self.population, int(len(self.population) * 0.7))
            results = await asyncio.gather(*(self._enrol_one(agency, p) for p in sample))
            counts = Counter(results)
            self.outcomes.update(f"enrolment {k}" for k in counts.elements())
            self.say(f"[bold]{agency}[/] enrolled {len(sample)} records: "
                     + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))  # fmt: skip

    async def _enrol_one(self, agency: str, p: Person) -> str:
        """Half by My Number, half by the basic-4 as the agency's own file spells it."""
        by_number = self.rng.random() < 0.5
        result = await self.clients[agency].enrol(
            f"{agency}-{p.resident_code}",
            my_number=p.my_number if by_number else None,
            basic4=None if by_number else _basic4(agency_view(p, self.rng, 0.3)),
        )
        if result.link_code:
            self.codes[agency][p.resident_code] = result.link_code
        return str(result.outcome)

    async def _agency(self, agency: str) -> None:
        """The agency's client, on the one inbox reader it shares with its provider.

        One consumer per agency, as docs/architecture.md shows it: a second one would
        double the agency's fetches, connections and buffers for nothing. It reads every
        partition (the client's answers may be on any) from the end, positioned here
        before anything is sent. No group:
        a demo run never resumes, so there are no offsets to commit after each batch —
        except with ``--ops``, whose inbox-lag panel reads a group's commits.
        """
        kafka = self.connections.agency(agency)
        group = None if self.ops is None else self.ops.inbox_group(self.topics, agency)
        reader = InboxReader(agency, kafka, self.topics, start_at="latest", group_id=group,
                             hub_public_key=self.hub_key)  # fmt: skip
        self.readers[agency] = reader
        await reader.start()
        client = AgencyClient(agency, keystore.load(self.key_dir, agency), kafka, self.topics,
                              on_unmatched=self._unmatched, inbox=reader)  # fmt: skip
        self.clients[agency] = client
        await client.start()
        reader.run_in_background()

    def _provider(self, agency: str) -> ProviderService:
        async def handler(request: ForwardedRequest) -> dict[str, Any]:
            return {item: _value(item, request.provider_link_code) for item in request.items}

        return ProviderService(agency, keystore.load(self.key_dir, agency),
                               self.connections.agency(agency), self.topics, handler,
                               inbox=self.readers[agency])  # fmt: skip

    async def _life_events(self) -> None:
        movers = self.rng.sample(self.population, 5)
        async with RegistryPublisher(
            keystore.load(self.key_dir, "registry"), self.connections.kafka(REGISTRY), self.topics
        ) as reg:
            for p in movers[:4]:
                await reg.move(p.resident_code, "東京都品川区広町二丁目1番36号", p.birth_date)
            dead, when = movers[4], movers[4].birth_date.replace(year=2026)
            died = await reg.die(dead.resident_code, when)
            await reg.annul(dead.resident_code, died, EventKind.DIED, when)
        self.say("[bold]registry[/]: 4 moves, 1 death registered and then annulled as an error")

    def _unmatched(self, message: Message) -> None:
        if isinstance(message, LifeEventNotice):
            self.notices[f"{message.kind} {message.action}"] += 1

    async def _notices_delivered(self, hub: DemoHub, timeout_s: float = 30) -> None:
        """Until the hub has handled the life events and every notice it sent arrived.

        Bounded: a demo goes on to its summary, which then shows what was missing.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            metrics = (await hub.state())["metrics"]
            handled = sum(
                v for k, v in metrics.items() if k.startswith(("registry.MOVED.", "registry.DIED."))
            )
            if handled >= LIFE_EVENTS and self.notices.total() >= metrics["notices"]:
                return
            await asyncio.sleep(0.05)

    def _summary(
        self, hub: DemoHub, metrics: dict[str, int], cpu: tuple[float, float]
    ) -> DemoSummary:
        n = max(1, self.asking.requested)
        return DemoSummary(
            prefix=self.topics.prefix,
            exchanges=self.asking.requested,
            outcomes=dict(self.outcomes),
            notices=dict(self.notices),
            hub=metrics,
            latencies_s=tuple(self.asking.latencies),
            offered_per_s=self.asking.offered_per_s,
            hub_in_process=hub.in_process,
            # In one process the hub's CPU is in the demo's: counted once.
            cpu_ms=(cpu[0] * 1000 / n, 0.0 if hub.in_process else cpu[1] * 1000 / n),
            duplicates_dropped=sum(c.duplicates_dropped for c in self.clients.values()),
            principals=tuple(sorted(self.connections.used)),
            secure=self.connections.is_secure,
        )
