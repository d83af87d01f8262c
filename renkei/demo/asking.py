"""The requesters' side of the demo: requests under the scenario table, counted.

Every outcome is counted by name (``answered``, ``refused <code>``, or the exchange
error's class) and the answered ones timed; the summary reports both.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from producers.agency_client import AgencyClient
from renkei.errors import ExchangeError, HubRefusedError
from renkei.operator.directory_file import Scenario, load_directory_file

__all__ = ["HOLDERS", "OFFLINE", "Asking"]

HOLDERS = ("city-shinagawa", "city-osaka", "jps", "kyokai-kenpo", "jasso")
"""The agencies that hold people and answer for them."""
OFFLINE = "mhlw-hellowork"
"""Holds people, but its system is down: requests to it time out."""


class Asking:
    """Requests of the demo's agencies.

    :param clients: each agency's started client.
    :param codes: each agency's link codes, by resident code (filled by enrolment).
    :param outcomes: where outcomes are counted.
    :param say: prints a line of narration.
    :param rng: the run's random choices.
    :param clock: seconds, monotonic: when each request of a paced batch is due.
    :param sleep: waits that many seconds (``asyncio.sleep``; a test's fake clock).
    """

    def __init__(
        self,
        clients: dict[str, AgencyClient],
        codes: dict[str, dict[str, str]],
        outcomes: Counter[str],
        say: Callable[[str], None],
        rng: random.Random,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.clients, self.codes, self.outcomes = clients, codes, outcomes
        self.say, self.rng = say, rng
        self.clock, self.sleep = clock, sleep
        self.scenarios = [
            s
            for s in load_directory_file().scenarios
            if s.requester in HOLDERS and s.provider in HOLDERS
        ]
        self.requested = 0
        """Requests of the batch."""
        self.latencies: list[float] = []
        """Request to answer, in seconds, of every answered request."""
        self.offered_per_s: float | None = None
        """Requests started per second by the last :meth:`batch` (``None``: all at once)."""

    async def ask(self, s: Scenario, resident: str, *, show: bool, **override: Any) -> None:
        """One request of ``s.requester`` about ``resident``, counted under its outcome.

        :param show: narrate it (refusals and errors always are).
        :param override: replaces a keyword of the client's ``request`` call.
        """
        # A generous deadline: only the offline agency's request (2 s) is meant to time out,
        # and a busy machine (TLS, several processes on two cores) must not add more.
        call: dict[str, Any] = {"link_code": self.codes[s.requester].get(resident, ""),
                                "provider": s.provider, "scenario_id": s.scenario_id,
                                "items": s.items, "deadline_s": 15, **override}  # fmt: skip
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

    async def batch(self, count: int, rate: float | None = None) -> None:
        """``count`` entitled requests about people both agencies hold, offered at ``rate``.

        :param rate: requests started per second, each at its due time (``i / rate`` after
            the first) however many are still waiting for their answers; ``None`` starts
            them all at once. What was reached is :attr:`offered_per_s`.

        A draw whose two agencies share nobody is skipped (:attr:`requested` counts the rest).
        """
        if rate is not None and not rate > 0:
            raise ValueError(f"the offered rate must be positive, not {rate!r}")
        draws = []
        for i in range(count):
            s = self.rng.choice(self.scenarios)
            both = sorted(set(self.codes[s.requester]) & set(self.codes[s.provider]))
            if both:
                draws.append((s, self.rng.choice(both), i % 30 == 0))
        self.requested = len(draws)
        offered = "at once" if rate is None else f"at {rate:g}/s"
        self.say(f"[bold]exchanges[/]: {len(draws)} requests under {len(self.scenarios)} "
                 f"scenarios, offered {offered}")  # fmt: skip
        jobs: list[asyncio.Task[None]] = []
        first = self.clock()
        for i, (s, resident, show) in enumerate(draws):
            if rate is not None and (due := first + i / rate) > self.clock():
                await self.sleep(due - self.clock())
            jobs.append(asyncio.create_task(self.ask(s, resident, show=show)))
        span = self.clock() - first
        # n starts are n - 1 intervals apart: the rate reached, late starts included.
        if rate is not None:
            self.offered_per_s = (len(draws) - 1) / span if len(draws) > 1 and span > 0 else rate
        await asyncio.gather(*jobs)

    async def refusals(self) -> None:
        """A request for each refusal the hub answers, and one to the offline agency."""
        self.say("[bold]requests the hub must refuse[/]")
        s = self.scenarios[0]
        someone = next(iter(self.codes[s.requester]))
        lone = next(
            (r for r in self.codes[s.requester] if r not in self.codes[s.provider]), someone
        )
        forged = self.codes[s.requester][someone][:-4] + "aaaa"
        await self.ask(s, someone, show=True, scenario_id="S999")
        await self.ask(s, someone, show=True, items=("my_number.full_history",))
        await self.ask(s, someone, show=True, provider="jasso")
        await self.ask(s, lone, show=True)
        await self.ask(s, someone, show=True, link_code=forged)
        offline = next(x for x in load_directory_file().scenarios if x.provider == OFFLINE)
        holder = next(iter(set(self.codes[offline.requester]) & set(self.codes[OFFLINE])))
        self.say(f"[bold]{OFFLINE} is offline[/]: its request ends as a typed timeout")
        await self.ask(offline, holder, show=True, deadline_s=2)
