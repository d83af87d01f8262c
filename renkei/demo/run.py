"""``renkei demo``: a hub, a registry and six agencies on a real Kafka, as it happens.

The registry publishes a synthetic population; agencies enrol their records (some by My
Number, some by the basic-4 as their own files spell it); providers answer with values
sealed to the requester; requesters ask under the scenario table — including requests
the hub must refuse and one nobody answers; life events fan out. A summary table ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from consumers.provider import ProviderService
from hub_stream.settings import HubSettings
from hub_stream.worker import HubService
from producers.agency_client import AgencyClient
from producers.population import Person, agency_view, generate_population
from producers.registry_publisher import RegistryPublisher
from renkei.crypto import keystore
from renkei.crypto.bundles import bundle_path, read_bundle
from renkei.errors import ExchangeError, HubRefusedError
from renkei.operator.directory_file import Scenario, load_directory_file
from renkei.operator.hub_key import hub_key_from_directory
from renkei.operator.publish import init_keys, publish
from renkei.settings import KafkaSettings
from renkei.topics import Topics
from schemas.models import Basic4, EventKind, ForwardedRequest, LifeEventNotice, Message, Sex

__all__ = ["run_demo"]

HOLDERS = ("city-shinagawa", "city-osaka", "jps", "kyokai-kenpo", "jasso")
OFFLINE = "mhlw-hellowork"  # holds people, but its system is down: requests time out


def _value(item: str, link_code: str) -> Any:
    """A stable synthetic value for one item of one person (what a provider would look up)."""
    n = int.from_bytes(hashlib.blake2b(f"{item}{link_code}".encode(), digest_size=4).digest())
    if item.endswith(("income", "amount")):
        return 1_000_000 + n % 6_000_000
    return ("PAID", "SUSPENDED", "ELIGIBLE", "NONE")[n % 4]


def _basic4(view: Any) -> Basic4:
    return Basic4(name=view.name, name_kana=view.name_kana, birth_date=view.birth_date,
                  sex=Sex(view.sex), address=view.address)  # fmt: skip


class Demo:
    """One demo run under its own topic prefix."""

    def __init__(self, bootstrap: str, home: Path, people: int, console: Console) -> None:
        self.console = console
        self.kafka: dict[str, Any] = {"bootstrap_servers": bootstrap}
        self.bootstrap = bootstrap
        self.topics = Topics(f"demo-{time.strftime('%Y%m%d%H%M%S')}.")
        self.key_dir = home / "demo-keys"
        self.population = generate_population(people, seed=2026, duplicates=2)
        self.rng = random.Random(2026)  # noqa: S311 - synthetic data, not security
        self.codes: dict[str, dict[str, str]] = {a: {} for a in (*HOLDERS, OFFLINE)}
        self.clients: dict[str, AgencyClient] = {}
        self.outcomes: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.notices: Counter[str] = Counter()
        self.hub_key = b""
        """The hub's verification key, once pinned."""

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False)

    async def run(self) -> None:
        init_keys(self.key_dir)
        await publish(
            KafkaSettings(bootstrap=self.bootstrap), self.topics.prefix, self.key_dir, None
        )
        settings = HubSettings(topic_prefix=self.topics.prefix, key_dir=self.key_dir,
                               group_id=f"{self.topics.prefix}hub")  # fmt: skip
        hub = HubService(self.kafka, settings)
        await hub.start()
        self.say(f"[bold]hub[/] running, topics under [cyan]{self.topics.prefix}[/]")
        try:
            await self._pin_hub_key()
            await self._registry()
            # Still needed for a few hundred people: the hub reads registry.events beside
            # the agencies' topics, and Kafka orders nothing across partitions. A burst
            # of registrations spans several fetches, and an enrolment fetched before a
            # registration published earlier would answer NO_MATCH. (A registration and
            # an enrolment in one batch are fine: handled in the order produced.)
            while len(hub.hub.persons) < len(self.population):  # noqa: ASYNC110 - polled state
                await asyncio.sleep(0.05)
            for agency in (*HOLDERS, OFFLINE):
                self.clients[agency] = AgencyClient(
                    agency, keystore.load(self.key_dir, agency), self.kafka, self.topics,
                    on_unmatched=self._unmatched, hub_public_key=self.hub_key,
                )  # fmt: skip
                await self.clients[agency].start()
            await self._enrol()
            async with contextlib.AsyncExitStack() as providers:
                for agency in HOLDERS:  # each provider answers in the background
                    await providers.enter_async_context(self._provider(agency))
                await self._exchanges()
                await self._life_events()
                await asyncio.sleep(1.5)  # let the last notices arrive
            self._summary(hub)
        finally:
            for client in self.clients.values():
                await client.stop()
            await hub.stop()

    async def _pin_hub_key(self) -> None:
        """As an agency does: the hub's key from hub.directory, checked against the operators'.

        Every agency reader refuses what this key did not sign.
        """
        operators = read_bundle(bundle_path(self.key_dir, "operator")).signing_public_key
        hub = await hub_key_from_directory(self.kafka, self.topics, operators)
        self.hub_key = hub.signing_public_key
        self.say(f"agencies pin the [bold]hub[/]'s key {hub.fingerprint()} "
                 "(its directory entry, signed by the operators)")  # fmt: skip

    async def _registry(self) -> None:
        async with RegistryPublisher(
            keystore.load(self.key_dir, "registry"), self.kafka, self.topics
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

    def _provider(self, agency: str) -> ProviderService:
        async def handler(request: ForwardedRequest) -> dict[str, Any]:
            return {item: _value(item, request.provider_link_code) for item in request.items}

        return ProviderService(agency, keystore.load(self.key_dir, agency), self.kafka,
                               self.topics, handler, group_id=f"{self.topics.prefix}{agency}",
                               hub_public_key=self.hub_key)  # fmt: skip

    async def _ask(self, s: Scenario, resident: str, *, show: bool, **override: Any) -> None:
        call: dict[str, Any] = {"link_code": self.codes[s.requester].get(resident, ""),
                                "provider": s.provider, "scenario_id": s.scenario_id,
                                "items": s.items, "deadline_s": 3, **override}  # fmt: skip
        began = time.perf_counter()
        label = f"{call['scenario_id']} {s.requester} → {call['provider']}"
        try:
            values = await self.clients[s.requester].request(**call)
        except HubRefusedError as exc:
            self.outcomes[f"refused {exc.code}"] += 1
            self.say(f"  [red]✗[/] {label}: [red]{exc.code}[/] — {exc.detail}")
            return
        except ExchangeError as exc:
            self.outcomes[type(exc).__name__] += 1
            self.say(f"  [yellow]![/] {label}: {exc}")
            return
        self.latencies.append(time.perf_counter() - began)
        self.outcomes["answered"] += 1
        if show:
            shown = ", ".join(f"{k}={v}" for k, v in values.items())
            self.say(f"  [green]✓[/] {label}: {shown} ({self.latencies[-1] * 1000:.0f} ms)")

    async def _exchanges(self) -> None:
        scenarios = [
            s
            for s in load_directory_file().scenarios
            if s.requester in HOLDERS and s.provider in HOLDERS
        ]
        jobs = []
        for i in range(300):
            s = self.rng.choice(scenarios)
            both = sorted(set(self.codes[s.requester]) & set(self.codes[s.provider]))
            if both:
                jobs.append(self._ask(s, self.rng.choice(both), show=i % 30 == 0))
        self.say(f"[bold]exchanges[/]: {len(jobs)} requests under {len(scenarios)} scenarios")
        await asyncio.gather(*jobs)
        self.say("[bold]requests the hub must refuse[/]")
        s = scenarios[0]
        someone = next(iter(self.codes[s.requester]))
        lone = next(
            (r for r in self.codes[s.requester] if r not in self.codes[s.provider]), someone
        )
        forged = self.codes[s.requester][someone][:-4] + "aaaa"
        await self._ask(s, someone, show=True, scenario_id="S999")
        await self._ask(s, someone, show=True, items=("my_number.full_history",))
        await self._ask(s, someone, show=True, provider="jasso")
        await self._ask(s, lone, show=True)
        await self._ask(s, someone, show=True, link_code=forged)
        offline = next(x for x in load_directory_file().scenarios if x.provider == OFFLINE)
        holder = next(iter(set(self.codes[offline.requester]) & set(self.codes[OFFLINE])))
        self.say(f"[bold]{OFFLINE} is offline[/]: its request ends as a typed timeout")
        await self._ask(offline, holder, show=True, deadline_s=2)

    async def _life_events(self) -> None:
        movers = self.rng.sample(self.population, 5)
        async with RegistryPublisher(
            keystore.load(self.key_dir, "registry"), self.kafka, self.topics
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

    def _summary(self, hub: HubService) -> None:
        table = Table(title="Renkei demo — summary")
        table.add_column("what")
        table.add_column("count", justify="right")
        for key, value in sorted(self.outcomes.items()):
            table.add_row(key, str(value))
        for key, value in sorted(self.notices.items()):
            if value:
                table.add_row(f"notice {key}", str(value))
        if self.latencies:
            lat = sorted(self.latencies)
            table.add_row("exchange latency p50 / p99",
                          f"{statistics.median(lat) * 1000:.0f} / {lat[int(len(lat) * .99)] * 1000:.0f} ms")  # fmt: skip  # noqa: E501
        for key, value in sorted(hub.hub.metrics.items()):
            table.add_row(f"hub {key}", str(value))
        dups = sum(c.duplicates_dropped for c in self.clients.values())
        table.add_row("duplicates dropped by agencies", str(dups))
        forged = sum(c.bad_signatures for c in self.clients.values())
        table.add_row("refused by agencies: not the hub's signature", str(forged))
        self.console.print(table)


async def run_demo(bootstrap: str, home: Path, people: int = 300) -> None:
    """Run the demo against ``bootstrap``."""
    await Demo(bootstrap, home, people, Console()).run()
