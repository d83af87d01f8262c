"""The drills' agencies: exchanges offered at a steady rate, and the reconciliation after.

``city-shinagawa`` asks ``jps`` for one pension item about one of ``people`` registered
persons, ``rate_per_s`` times a second from :meth:`Traffic.start` until
:meth:`Traffic.stop`; every ``move_every``-th request the registry publishes a move, whose
notice goes to ``mhlw-hellowork`` (read by a :class:`LifecycleSubscriber`) and to the
requester. :meth:`Traffic.reconcile` then checks what the agencies and the audit trail saw.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date
from types import TracebackType
from typing import Any

from consumers.lifecycle import LifecycleSubscriber
from consumers.provider import ProviderService
from producers.agency_client import PendingRequest
from producers.registry_publisher import RegistryPublisher
from renkei.audit.verify import verify_trail
from renkei.auditchain import TRUST_FILE, TrustedKeys
from renkei.crypto import keystore
from renkei.errors import HubRefusedError
from schemas.codec import default_codec
from schemas.models import AuditStep, ErrorCode, EventKind, ForwardedRequest, LifeEventNotice
from tests.integration.hub_env import eventually
from tests.integration.partitioned_env import Deployment, audit_steps
from tests.integration.test_kill_hub import open_pending

__all__ = ["Handler", "Reconciliation", "Traffic"]

Handler = Callable[[ForwardedRequest], Awaitable[dict[str, Any]]]
ITEM = "pension.benefit_status"


@dataclass(frozen=True)
class Reconciliation:
    """What :meth:`Traffic.reconcile` counted (every check in it passed)."""

    sent: int
    answered: int
    timed_out: int
    moves: int
    audit_records: int
    redeliveries_absorbed: int

    def __str__(self) -> str:
        return (
            f"{self.sent} requests: {self.answered} answered, {self.timed_out} timed out; "
            f"{self.moves} moves noticed once each; {self.audit_records} audit records "
            f"verified; {self.redeliveries_absorbed} redeliveries absorbed by the agencies"
        )


class Traffic:
    """The agencies of a drill, on ``deployment`` (its workers started by the test).

    :param handler: the provider's answer (the right value at once by default); it is
        recorded in :attr:`provided` either way.
    :param deadline_s: each request's deadline.
    """

    def __init__(
        self,
        deployment: Deployment,
        *,
        people: int = 20,
        rate_per_s: float = 15.0,
        move_every: int = 10,
        deadline_s: int = 300,
        handler: Handler | None = None,
    ) -> None:
        self.deployment = deployment
        self.people = people
        self.rate_per_s = rate_per_s
        self.move_every = move_every
        self.deadline_s = deadline_s
        self._handler = handler
        self.sent: list[tuple[PendingRequest, str]] = []
        """Each request and the value its answer must carry."""
        self.provided: list[str] = []
        """Hub request ids the provider's handler was called with."""
        self.moved: list[str] = []
        self.notices: list[LifeEventNotice] = []
        self._codes: list[str] = []
        self._expected: list[str] = []
        self._stack = AsyncExitStack()
        self._sender: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def __aenter__(self) -> Traffic:
        d = self.deployment
        await d.register(self.people)
        hub_key = await d.hub_key()
        self.city = d.client("city-shinagawa", hub_key)
        jps, hellowork = d.client("jps", hub_key), d.client("mhlw-hellowork", hub_key)
        keys = keystore.load
        for client in (self.city, jps, hellowork):
            await self._stack.enter_async_context(client)
        # The first enrolment waits for the workers' start; then each agency enrols
        # everyone at once (the hub answers each by its request id).
        head, *rest = d.people
        city_links = [await self.city.enrol(head.resident_code, my_number=head.my_number,
                                            timeout_s=120)]  # fmt: skip
        city_links += await asyncio.gather(
            *(self.city.enrol(p.resident_code, my_number=p.my_number) for p in rest)
        )
        jps_links = await asyncio.gather(
            *(jps.enrol(p.resident_code, my_number=p.my_number) for p in d.people)
        )
        await asyncio.gather(
            *(hellowork.enrol(p.resident_code, my_number=p.my_number) for p in d.people)
        )
        for city, provider in zip(city_links, jps_links, strict=True):
            assert city.link_code
            self._codes.append(city.link_code)
            self._expected.append(f"{ITEM}-of-{provider.link_code}")

        async def on_notice(notice: LifeEventNotice) -> None:
            self.notices.append(notice)

        self.subscriber = LifecycleSubscriber(
            "mhlw-hellowork", keys(d.key_dir, "mhlw-hellowork"), d.kafka, d.topics,
            {EventKind.MOVED: on_notice}, hub_public_key=hub_key,
        )  # fmt: skip
        self.registry = RegistryPublisher(keys(d.key_dir, "registry"), d.kafka, d.topics)
        self.provider = ProviderService(
            "jps", keys(d.key_dir, "jps"), d.kafka, d.topics, self._answer,
            group_id=f"{d.topics.prefix}agency.jps.provider", hub_public_key=hub_key,
        )  # fmt: skip
        for service in (self.registry, self.subscriber, self.provider):
            await self._stack.enter_async_context(service)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        await self._stack.aclose()

    async def _answer(self, request: ForwardedRequest) -> dict[str, Any]:
        self.provided.append(request.hub_request_id)
        if self._handler is not None:
            return await self._handler(request)
        return {item: f"{item}-of-{request.provider_link_code}" for item in request.items}

    def start(self) -> None:
        """Offer exchanges in the background, ``rate_per_s`` a second, until :meth:`stop`."""
        self._sender = asyncio.create_task(self._send())

    async def stop(self) -> int:
        """Stop offering; return how many requests were sent (a failed send is raised)."""
        assert self._sender is not None, "start() first"
        self._stopping.set()
        await self._sender
        return len(self.sent)

    async def answered(self, count: int, timeout_s: float = 180) -> None:
        """Wait until the provider has handled ``count`` requests (traffic flows)."""

        async def enough() -> bool:
            if self._sender is not None and self._sender.done():
                self._sender.result()  # a failed send, raised here
                raise AssertionError("the sender stopped")
            return len(self.provided) >= count

        await eventually(enough, timeout_s=timeout_s)

    async def _send(self) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        while not self._stopping.is_set():
            i = len(self.sent)
            who = i % self.people
            request = await self.city.send_request(
                link_code=self._codes[who], provider="jps", scenario_id="S003",
                items=[ITEM], deadline_s=self.deadline_s,
            )  # fmt: skip
            self.sent.append((request, self._expected[who]))
            if i % self.move_every == 0:
                person = self.deployment.people[(i // self.move_every) % self.people]
                address = f"東京都品川区{i}"
                self.moved.append(await self.registry.move(person.resident_code, address,
                                                           date(2026, 4, 1)))  # fmt: skip
            # Pacing of the offered load, not a wait for anything.
            await asyncio.sleep(max(0.0, began + (i + 1) / self.rate_per_s - loop.time()))

    async def reconcile(
        self, *, allow_timeouts: bool = False, timeout_s: float = 300
    ) -> Reconciliation:
        """Check, after :meth:`stop`, what the agencies saw and what the hub recorded.

        Every request has exactly one answer, with the right person's value (or, with
        ``allow_timeouts``, a TIMEOUT); no stray answer or TIMEOUT reached the requester
        and none is still to come (nothing open in ``hub.state.pending``); the provider
        handled each forwarded request once; every move was noticed once, at the
        subscriber and at the requester; the audit trail forwarded each request once and
        closed it once (answer or timeout), and ``verify_trail`` finds every partition's
        chain intact.

        :raises AssertionError: the first check that fails.
        """
        assert self._sender is not None, "start() first"
        assert self._sender.done(), "stop() first"
        d = self.deployment
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(p.result() for p, _ in self.sent), return_exceptions=True),
            timeout=timeout_s,
        )
        answered = timed_out = 0
        for (request, expected), outcome in zip(self.sent, outcomes, strict=True):
            if isinstance(outcome, dict):
                assert outcome == {ITEM: expected}, f"{request.request_id}: wrong value {outcome}"
                answered += 1
            elif (
                allow_timeouts
                and isinstance(outcome, HubRefusedError)
                and outcome.code == ErrorCode.TIMEOUT
            ):
                timed_out += 1
            else:
                raise AssertionError(f"{request.request_id}: {outcome!r}")
        assert self.city.waiting == 0
        assert await open_pending(d.kafka, d.topics) == [], "a TIMEOUT is still to come"

        async def all_noticed() -> bool:
            return len(self.notices) >= len(self.moved)

        await eventually(all_noticed, timeout_s=timeout_s)
        provided = Counter(self.provided)
        assert [h for h, n in provided.items() if n > 1] == [], "the provider handled one twice"
        if not allow_timeouts:
            assert len(provided) == len(self.sent)
        audit = await audit_steps(d.kafka, d.topics)
        # This requester's exchanges only: a drill may run other agencies' beside them.
        audit = [r for r in audit if r.requester == self.city.agency_id]
        forwarded = Counter(r.hub_request_id for r in audit if r.step is AuditStep.FORWARDED)
        closed = Counter(
            r.hub_request_id for r in audit if r.step in (AuditStep.ANSWERED, AuditStep.TIMED_OUT)
        )
        assert len(forwarded) == len(self.sent), "a request not forwarded, in the audit"
        assert set(forwarded.values()) == {1}, "a request forwarded twice, in the audit"
        assert closed == forwarded, "a request closed twice or never, in the audit"
        assert set(provided) <= set(forwarded)
        trusted = TrustedKeys.load(d.key_dir / TRUST_FILE)
        report = await verify_trail(d.kafka, d.topics.audit, trusted, default_codec())
        assert report.ok, f"the audit chain is broken: {report.findings[:5]}"
        # Last, after the reads above: a notice delivered twice would have arrived by now.
        assert Counter(n.event_id for n in self.notices) == Counter(self.moved)
        unmatched = [self.city.unmatched.get_nowait() for _ in range(self.city.unmatched.qsize())]
        assert self.city.unmatched_dropped == 0
        stray = [m for m in unmatched if not isinstance(m, LifeEventNotice)]
        assert stray == [], f"the requester got a stray answer or TIMEOUT: {_describe(stray)}"
        city_notices = Counter(m.event_id for m in unmatched if isinstance(m, LifeEventNotice))
        assert city_notices == Counter(self.moved), "a notice lost or repeated at the requester"
        absorbed = (
            self.city.duplicates_dropped
            + self.provider.duplicates_dropped
            + self.subscriber.duplicates_dropped
        )
        return Reconciliation(
            len(self.sent), answered, timed_out, len(self.moved), report.records, absorbed
        )


def _describe(messages: list[Any]) -> list[str]:
    """What a failed reconciliation names of each stray message: its type, ids and code."""
    described = []
    for m in messages:
        fields = [
            type(m).__name__,
            f"message_id={m.header.message_id}",
            f"correlation_id={m.header.correlation_id}",
        ]
        for name in ("request_id", "code", "detail", "status"):
            if getattr(m, name, None) is not None:
                fields.append(f"{name}={getattr(m, name)}")
        described.append(" ".join(fields))
    return described
