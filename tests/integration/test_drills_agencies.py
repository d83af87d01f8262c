"""Fault drills on the agencies' side, on three brokers (replication 3, min.insync.replicas 2).

Each drill has a deployment of its own on the module's cluster
(:func:`~tests.integration.drill_env.drill_cluster`): two partitioned `renkei hub`
workers, and :class:`~tests.integration.drill_env.Traffic`'s exchanges (city-shinagawa
asking jps) going on throughout. Each ends with ``Traffic.reconcile()`` (every request
answered once, notices once, nothing pending, the audit trail complete and verifying),
checks of its own, and evidence read from the workers' ``/metrics``:

a. **An agency consumer killed mid-batch.** The requester's inbox reader runs in a
   process of its own (:mod:`tests.integration.drill_inbox`), hangs inside the handler of
   one answer (recorded, not returned: its batch is never committed) and is SIGKILLed
   there; more answers arrive while it is down, then it restarts from its group's
   commits. The SDK's guarantee across a crash is at least once (``consumers/inbox.py``):
   the uncommitted batch is handed over again, with the same message ids; the agency,
   keying what it applies on ``header.message_id`` as the contract asks, applies each
   answer once. ``renkei_agency_inbox_lag_records`` rises while it is down and falls back
   to 0 once it has caught up (the reader commits past the hub's transaction markers).
b. **A provider that answers slowly so deadlines expire.** Some requests carry a short
   deadline, and the provider answers them only once the requester holds its TIMEOUT:
   each gets one TIMEOUT, the answers are late (counted, audited, never delivered), and
   every other request is answered.
c. **A producer flooding one partition.** One agency writes hundreds of requests about
   one person (one key: one partition of its ``.out``) as fast as it can while another
   agency's exchanges go on; nothing is lost or repeated for either.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from consumers.provider import ProviderService
from producers.agency_client import AgencyClient, PendingRequest
from renkei.crypto import keystore
from renkei.errors import HubRefusedError
from schemas.models import (
    AttributeResponse,
    AuditStep,
    ErrorCode,
    ForwardedRequest,
    HubError,
    new_message_id,
)
from tests.integration.drill_env import (
    DrillCluster,
    DrillDeployment,
    Samples,
    Traffic,
    alert_raised,
    drill_cluster,  # noqa: F401  # the module's cluster fixture
    scrape,
    value,
)
from tests.integration.hub_env import eventually
from tests.integration.partitioned_env import audit_steps

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

Codes = dict[str, list[str]]

WORKERS = 2
PEOPLE = 10  # Traffic's registered people, whom every drill's agencies enrol too
BESIDE_RATE = 8.0  # Traffic's exchanges a second beside another agency's (drills b, c)


async def _deployment(cluster: DrillCluster, name: str) -> DrillDeployment:
    deployment = cluster.deployment(name)
    await deployment.setup()
    for n in range(1, WORKERS + 1):
        deployment.start(f"worker-{n}")
    return deployment


async def _enrol(deployment: DrillDeployment, hub_key: bytes, *agencies: str) -> Codes:
    """Each agency's link code for each registered person, by agency."""
    codes: Codes = {}
    for agency in agencies:
        async with deployment.client(agency, hub_key) as client:
            codes[agency] = [
                (
                    await client.enrol(p.resident_code, my_number=p.my_number, timeout_s=120)
                ).link_code
                or ""
                for p in deployment.people
            ]
    return codes


async def scrape_all(deployment: DrillDeployment) -> list[Samples]:
    return [await scrape(port) for port in deployment.running_ports().values()]


def summed(scrapes: list[Samples], name: str, **labels: str) -> float:
    """A counter summed over the workers."""
    return sum(value(s, name, **labels) for s in scrapes)


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 120) -> None:
    try:
        await eventually(check, timeout_s=timeout_s)
    except AssertionError as exc:
        raise AssertionError(f"never: {what}") from exc


async def exchange(
    client: AgencyClient,
    codes: Codes,
    provider: str,
    scenario: str,
    item: str,
    count: int,
    *,
    tag: str,
    deadline_s: float = 300,
    person: int | None = None,
) -> list[tuple[PendingRequest, str]]:
    """Send ``count`` requests (tagged request ids); each with the value it must get."""
    sent = []
    for i in range(count):
        who = person if person is not None else i % PEOPLE
        request = await client.send_request(
            link_code=codes[client.agency_id][who], provider=provider,
            scenario_id=scenario, items=[item], deadline_s=deadline_s,
            request_id=f"{tag}-{i:04d}-{new_message_id()}",
        )  # fmt: skip
        sent.append((request, f"{item}-of-{codes[provider][who]}"))
    return sent


async def answered(sent: list[tuple[PendingRequest, str]], item: str) -> None:
    """Every request got its own person's value."""
    results = await asyncio.wait_for(asyncio.gather(*(p.result() for p, _ in sent)), 300)
    assert [r[item] for r in results] == [value for _, value in sent]


def drain(client: AgencyClient) -> list[Any]:
    """What reached ``client`` that no call waited for."""
    return [client.unmatched.get_nowait() for _ in range(client.unmatched.qsize())]


# ---- a. an agency consumer killed mid-batch --------------------------------------------

MAX_BATCH, HANG_AT, STEP = 20, 50, 30
REQUESTER = "city-shinagawa"  # Traffic's


def start_reader(
    deployment: DrillDeployment, hub_key: bytes, out: Path, hang_after: int | None
) -> subprocess.Popen[bytes]:
    """The requester's inbox reader, in a process of its own (``drill_inbox``)."""
    config = {
        "bootstrap": deployment.bootstrap, "prefix": deployment.topics.prefix,
        "partitions": deployment.topics.partitions, "agency": REQUESTER,
        "group": f"{deployment.topics.prefix}agency.{REQUESTER}.drill", "tag": "",
        "max_batch": MAX_BATCH, "hub_key": hub_key.hex(), "out": str(out),
        "hang_after": hang_after,
    }  # fmt: skip
    (out / "config.json").write_text(json.dumps(config))
    with (out / "reader.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.integration.drill_inbox", str(out / "config.json")],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


def lines(path: Path) -> list[tuple[str, str]]:
    """(message id, request id) per line of a file the reader writes."""
    if not path.exists():
        return []
    return [(m, r) for m, r in (line.split() for line in path.read_text().splitlines())]


async def inbox_lag(deployment: DrillDeployment) -> float | None:
    """The requester's inbox lag as the workers report it (each reads it from the brokers)."""
    key = ("renkei_agency_inbox_lag_records", frozenset({("agency", REQUESTER)}))
    values = [s[key] for s in await scrape_all(deployment) if key in s]
    return max(values) if values else None


async def test_an_agency_consumer_killed_mid_batch_misses_nothing_and_applies_once(
    drill_cluster: DrillCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    deployment = await _deployment(drill_cluster, "consumer")
    try:
        async with Traffic(deployment, people=PEOPLE) as traffic:
            hub_key = await deployment.hub_key()
            traffic.start()
            await traffic.answered(HANG_AT + STEP)  # answers wait: batches are full
            reader = start_reader(deployment, hub_key, tmp_path, hang_after=HANG_AT)

            async def hung() -> bool:
                assert reader.poll() is None, (tmp_path / "reader.log").read_text()
                return len(lines(tmp_path / "deliveries")) >= HANG_AT

            await until(hung, "the reader reached the answer it hangs in")
            reader.send_signal(signal.SIGKILL)
            reader.wait()
            assert len(lines(tmp_path / "deliveries")) == HANG_AT  # it hung there
            rising: list[float] = []

            async def lag_rose() -> bool:
                # Its group's commits stop before the hung batch; traffic goes on.
                lag = await inbox_lag(deployment)
                if lag:
                    rising.append(lag)
                return bool(rising) and rising[-1] >= rising[0] + STEP

            await until(lag_rose, f"the lag of {REQUESTER} grew by {STEP}")
            reader = start_reader(deployment, hub_key, tmp_path, hang_after=None)
            try:
                await traffic.answered(len(traffic.provided) + STEP)
                await traffic.stop()
                wanted = {p.request_id for p, _ in traffic.sent}

                async def caught_up() -> bool:
                    assert reader.poll() is None, (tmp_path / "reader.log").read_text()
                    return {r for _, r in lines(tmp_path / "applied")} >= wanted

                await until(caught_up, "the restarted reader applied every answer")

                async def lag_fell() -> bool:
                    # The reader commits past the markers once caught up: exactly 0.
                    return await inbox_lag(deployment) == 0

                await until(lag_fell, f"the lag of {REQUESTER} back to 0")
            finally:
                reader.send_signal(signal.SIGTERM)
                reader.wait(30)
            reconciled = await traffic.reconcile()
    except BaseException:
        print(deployment.logs())
        raise
    finally:
        deployment.stop_all()
    deliveries, applied = lines(tmp_path / "deliveries"), lines(tmp_path / "applied")
    again = len(deliveries) - len(set(deliveries))
    print(
        f"\nagency consumer SIGKILLed hung in answer {HANG_AT}: {reconciled}; the reader was "
        f"handed {len(deliveries)} answers ({again} again after its restart) and applied "
        f"{len(applied)}; inbox lag {rising[0]:.0f} → {rising[-1]:.0f} while down, "
        "0 once caught up"
    )
    # At least once across the crash: the batch it hung in came again (same ids) ...
    assert 1 <= again <= MAX_BATCH
    assert all(n <= 2 for n in Counter(deliveries).values())
    message_of = {r: m for m, r in deliveries}
    assert len({m for m, _ in deliveries}) == len(message_of) == len(wanted)
    # ... and each answer applied once, keyed on its message id: one per request.
    assert sorted(r for _, r in applied) == sorted(wanted)
    assert [m for m, _ in applied] == [message_of[r] for _, r in applied]


# ---- b. a provider that answers slowly so deadlines expire -----------------------------

ON_TIME, SLOW, SHORT_DEADLINE_S = 60, 40, 6
EXPIRED, LATE = "renkei_hub_deadlines_expired_total", "renkei_hub_late_answers_total"
ABORTED = "renkei_hub_transactions_aborted_total"


async def test_a_slow_provider_times_requests_out_once_and_its_late_answers_go_nowhere(
    drill_cluster: DrillCluster,  # noqa: F811
) -> None:
    # pref-tokyo asks kyokai-kenpo (S015), which is slow for some requests, beside the
    # Traffic's exchanges (city-shinagawa asks jps), which must all be answered.
    deployment, item = await _deployment(drill_cluster, "slow"), "health_insurance.qualification"
    slow: dict[str, PendingRequest] = {}  # by request id: those it answers only late

    async def handler(request: ForwardedRequest) -> dict[str, Any]:
        pending = slow.get(request.request_id)
        if pending is not None:
            # It answers once the requester holds its TIMEOUT: late, surely.
            async def timed_out() -> bool:
                return pending.peek() is not None

            await until(timed_out, "the slow request's TIMEOUT", timeout_s=240)
        return {i: f"{i}-of-{request.provider_link_code}" for i in request.items}

    try:
        async with Traffic(deployment, people=PEOPLE, rate_per_s=BESIDE_RATE) as traffic:
            hub_key = await deployment.hub_key()
            codes = await _enrol(deployment, hub_key, "pref-tokyo", "kyokai-kenpo")
            traffic.start()
            before = await scrape_all(deployment)
            tokyo = deployment.client("pref-tokyo", hub_key)
            provider = ProviderService(
                "kyokai-kenpo", keystore.load(deployment.key_dir, "kyokai-kenpo"),
                deployment.kafka, deployment.topics, handler, hub_public_key=hub_key,
                group_id=f"{deployment.topics.prefix}agency.kyokai-kenpo.provider",
            )  # fmt: skip
            async with tokyo, provider:
                on_time, late = [], []
                for i in range(ON_TIME + SLOW):  # interleaved: slow ones share batches
                    if i % 5 in (1, 3):
                        sent = await exchange(
                            tokyo, codes, "kyokai-kenpo", "S015", item, 1,
                            tag=f"slow-{i}", deadline_s=SHORT_DEADLINE_S,
                        )  # fmt: skip
                        slow[sent[0][0].request_id] = sent[0][0]
                        late += sent
                    else:
                        on_time += await exchange(
                            tokyo, codes, "kyokai-kenpo", "S015", item, 1, tag=f"on-time-{i}"
                        )
                await answered(on_time, item)
                outcomes = await asyncio.gather(
                    *(p.result() for p, _ in late), return_exceptions=True
                )

                async def all_late() -> bool:
                    scraped = await scrape_all(deployment)
                    return summed(scraped, LATE) - summed(before, LATE) >= SLOW

                await until(all_late, f"{SLOW} late answers counted")
                after = await scrape_all(deployment)
                await alert_raised(drill_cluster.prometheus, "RenkeiHubDeadlinesExpiring")
                unmatched = drain(tokyo)
            await traffic.stop()
            reconciled = await traffic.reconcile()
            trail = await audit_steps(deployment.kafka, deployment.topics)
    except BaseException:
        print(deployment.logs())
        raise
    finally:
        deployment.stop_all()
    delta = {name: summed(after, name) - summed(before, name) for name in (EXPIRED, LATE, ABORTED)}
    print(
        f"\nslow provider: {ON_TIME} answered in time, {SLOW} timed out, handled by the "
        f"provider {provider.handled} times ({provider.refused} refused as past their "
        f"deadline); metrics {delta}; beside them {reconciled}"
    )
    assert all(isinstance(o, HubRefusedError) and o.code is ErrorCode.TIMEOUT for o in outcomes)
    # One TIMEOUT per expired request and nothing else: no second TIMEOUT, no late answer.
    assert [m for m in unmatched if isinstance(m, (AttributeResponse, HubError))] == []
    assert provider.handled == ON_TIME + SLOW  # each answered once, the late ones late
    timed_out = [r for r in trail if r.step is AuditStep.TIMED_OUT]
    expired = {r.hub_request_id for r in timed_out}
    assert len(timed_out) == len(expired) == SLOW  # each deadline fired once
    assert {r.request_id for r in timed_out} == set(slow)
    late_audited = [r.hub_request_id for r in trail if r.step is AuditStep.LATE_ANSWER]
    assert Counter(late_audited) == Counter(expired)  # each late answer counted, not routed
    # Handled counters count a batch handled again after an abort: exact when none was.
    for name in (EXPIRED, LATE):
        assert delta[name] == SLOW if delta[ABORTED] == 0 else delta[name] >= SLOW, delta


# ---- c. a producer flooding one partition ----------------------------------------------

FLOOD = 300


async def test_a_flood_on_one_partition_loses_nothing_and_the_others_exchanges_complete(
    drill_cluster: DrillCluster,  # noqa: F811
) -> None:
    # jasso floods: FLOOD requests about one person to city-osaka (S010), all under one
    # link code, so one key and one partition of jasso.out, sent without pause, while
    # Traffic's city-shinagawa goes on asking jps.
    deployment, item = await _deployment(drill_cluster, "flood"), "resident_tax.income"
    try:
        async with Traffic(deployment, people=PEOPLE, rate_per_s=BESIDE_RATE) as traffic:
            hub_key = await deployment.hub_key()
            codes = await _enrol(deployment, hub_key, "jasso", "city-osaka")
            traffic.start()
            jasso = deployment.client("jasso", hub_key)
            city_osaka = deployment.provider("city-osaka", hub_key)
            before = await scrape_all(deployment)
            async with jasso, city_osaka:
                during = len(traffic.sent)
                flood = await exchange(jasso, codes, "city-osaka", "S010", item, FLOOD,
                                       tag="flood", person=0)  # fmt: skip
                await answered(flood, item)
                during = len(traffic.sent) - during
                after = await scrape_all(deployment)
                unmatched = drain(jasso)
            await traffic.answered(len(traffic.provided) + STEP)  # and it goes on
            await traffic.stop()
            reconciled = await traffic.reconcile()
            partitions = {p.request.requester_link_code for p, _ in flood}
    except BaseException:
        print(deployment.logs())
        raise
    finally:
        deployment.stop_all()

    def delta(name: str, **labels: str) -> float:
        return summed(after, name, **labels) - summed(before, name, **labels)

    requests = delta("renkei_hub_inputs_total", type="AttributeRequest")
    batches, records = (
        delta("renkei_hub_batch_records_count"),
        delta("renkei_hub_batch_records_sum"),
    )
    print(
        f"\nflood of {FLOOD} requests on one partition, {during} of Traffic's sent meanwhile: "
        f"AttributeRequest inputs +{requests:.0f}, {batches:.0f} batches of {records:.0f} "
        f"records; {reconciled}"
    )
    assert len(partitions) == 1  # one link code: one key, one partition
    assert [m for m in unmatched if isinstance(m, (AttributeResponse, HubError))] == []
    assert len(deployment.provided) == len(set(deployment.provided)) == FLOOD
    assert requests >= FLOOD  # and Traffic's handled meanwhile, some of the `during`
    assert delta("renkei_hub_inputs_total", type="ProviderResponse") >= FLOOD
    assert delta("renkei_hub_requests_forwarded_total") >= FLOOD
    assert records >= 2 * FLOOD  # each request and each answer went through a batch
