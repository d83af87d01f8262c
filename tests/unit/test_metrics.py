"""The worker's Prometheus metrics: what the collector exports, and what the hub counts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError
from prometheus_client.parser import text_string_to_metric_families

from hub_stream.batch_handler import BatchTrace
from hub_stream.lag import LagWatch, _behind
from hub_stream.metrics import HubMetrics, Snapshot, output_kind
from renkei.topics import Topics
from schemas.models import ForwardedRequest
from tests.unit.hub_world import NUMBERS, World, codes_of

TOPICS = Topics("m.")


def samples(metrics: HubMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, by name and labels, parsed as Prometheus would."""
    text = metrics.render().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: HubMetrics, name: str, **labels: str) -> float:
    return samples(metrics)[name, frozenset(labels.items())]


def test_the_collector_exports_the_hubs_counters_under_the_catalogues_names() -> None:
    flows = Counter({
        "refused.ENTITLEMENT_DENIED": 2, "untrusted.registry.BAD_SIGNATURE": 1,
        "refused.BAD_SIGNATURE": 1, "control_refused_silently.UNKNOWN_AGENCY": 5,
        "forwarded": 7, "answered": 6, "late_answers": 1, "timed_out": 1, "oversize": 1,
        "notices": 3, "notices.moved": 2, "notices.died": 1,
    })  # fmt: skip
    snap = Snapshot(
        ready=True, flows=flows, inputs={"AttributeRequest": 9, "undecodable": 1},
        kafka_requests={"Fetch": 12}, partitions_owned=3, pending_requests=1,
        inbox_lag={"jps": 4}, under_replicated=0,
    )  # fmt: skip
    info = {"worker": "w1", "role": "hub", "topology": "single", "signatures": "strict"}
    metrics = HubMetrics(TOPICS, info, lambda: snap)
    assert value(metrics, "renkei_hub_inputs_total", type="AttributeRequest") == 9
    assert value(metrics, "renkei_hub_inputs_total", type="undecodable") == 1
    assert value(metrics, "renkei_hub_inputs_total", type="oversize") == 1
    # the same code counted wherever the refusal came from; a silent copy not at all
    assert value(metrics, "renkei_hub_refusals_total", code="BAD_SIGNATURE") == 2
    assert value(metrics, "renkei_hub_refusals_total", code="ENTITLEMENT_DENIED") == 2
    assert ("renkei_hub_refusals_total", frozenset({("code", "UNKNOWN_AGENCY")})) not in (
        samples(metrics)
    )
    assert value(metrics, "renkei_hub_notices_total", kind="moved") == 2
    assert value(metrics, "renkei_hub_requests_forwarded_total") == 7
    assert value(metrics, "renkei_hub_answers_total") == 6
    assert value(metrics, "renkei_hub_late_answers_total") == 1
    assert value(metrics, "renkei_hub_deadlines_expired_total") == 1
    assert value(metrics, "renkei_hub_kafka_requests_total", kind="Fetch") == 12
    assert value(metrics, "renkei_hub_ready") == 1
    assert value(metrics, "renkei_hub_info", **info) == 1
    assert value(metrics, "renkei_hub_partitions_owned") == 3
    assert value(metrics, "renkei_hub_pending_requests") == 1
    assert value(metrics, "renkei_agency_inbox_lag_records", agency="jps") == 4
    assert value(metrics, "renkei_kafka_under_replicated_partitions") == 0
    # no verifier, no signature counters
    assert not any(name.startswith("renkei_hub_signature") for name, _ in samples(metrics))


def test_a_committed_batch_is_counted_and_its_timings_observed() -> None:
    snap = Snapshot(ready=False, flows={}, inputs={}, kafka_requests={}, signatures={"failed": 1})
    metrics = HubMetrics(TOPICS, {"worker": "w"}, lambda: snap)
    written = {TOPICS.agency_in("jps"): 2, TOPICS.audit: 2, TOPICS.state("audit-chain"): 1,
               TOPICS.deadletter: 1, TOPICS.audit_heads: 1}  # fmt: skip
    records = (("t", 0, 1), ("t", 0, 2), ("t", 1, 7))
    metrics.committed(BatchTrace(10.0, 10.25, 11.0, records, commit_s=0.5, topics=written))
    metrics.transactions_aborted(2)
    assert value(metrics, "renkei_hub_batches_total") == 1
    assert value(metrics, "renkei_hub_records_in_total") == 3
    assert value(metrics, "renkei_hub_records_out_total") == 7
    assert value(metrics, "renkei_hub_transactions_aborted_total") == 2
    assert value(metrics, "renkei_hub_outputs_total", type="agency") == 2
    assert value(metrics, "renkei_hub_outputs_total", type="audit_chain") == 1
    assert value(metrics, "renkei_hub_audit_records_total") == 2
    assert value(metrics, "renkei_hub_dead_letters_total") == 1
    assert value(metrics, "renkei_hub_tree_heads_total") == 1
    assert value(metrics, "renkei_hub_outputs_total", type="tree_head") == 1
    assert value(metrics, "renkei_hub_batch_records_bucket", le="5.0") == 1
    assert value(metrics, "renkei_hub_batch_records_bucket", le="1.0") == 0
    assert value(metrics, "renkei_hub_stage_seconds_sum", stage="handle") == 0.25
    assert value(metrics, "renkei_hub_stage_seconds_sum", stage="commit") == 0.75
    assert value(metrics, "renkei_hub_stage_seconds_sum", stage="poll_to_commit") == 1.0
    assert value(metrics, "renkei_hub_transaction_commit_seconds_sum") == 0.5
    assert value(metrics, "renkei_hub_signatures_checked_total") == 0
    assert value(metrics, "renkei_hub_signature_failures_total") == 1
    assert value(metrics, "renkei_hub_ready") == 0


@pytest.mark.parametrize(
    ("topic", "kind"),
    [
        (TOPICS.state("pending"), "pending"), (TOPICS.audit_signatures, "signature_verdict"),
        (TOPICS.audit_heads, "tree_head"),
        ("m.hub.route", "route"), (TOPICS.agency_out("jps"), "other"),
    ],
)  # fmt: skip
def test_outputs_are_told_apart_by_their_topic(topic: str, kind: str) -> None:
    assert output_kind(TOPICS, topic) == kind


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "keys")


def test_the_hub_counts_its_inputs_by_type_and_times_answers_once_committed(
    world: World,
) -> None:
    world.run(world.registration("10000000000", NUMBERS[0]))
    (city,) = codes_of(world.run(world.enrolment("city-shinagawa", NUMBERS[0])))
    world.run(world.enrolment("jps", NUMBERS[0]))
    timed: list[list[int]] = []
    world.hub.on_answers = timed.append
    out = world.run(world.request(city, "r1"), world.request(city, "r2"))
    forwarded = [m for m in out if isinstance(m, ForwardedRequest)]
    world.run(world.answer(forwarded[0]), commit=False)  # aborted: not an answer given
    assert timed == []
    answers = [world.answer(f) for f in forwarded]
    world.run(*answers)
    assert timed == [[a.timestamp for a in answers]]
    world.run(world.answer(forwarded[0]))  # late (answered already): not timed
    world.run(world.record(world.topics.agency_out("jps"), b"\x00not a message"))
    assert world.hub.inputs == {
        "RegistryEvent": 1, "EnrolmentRequest": 2, "AttributeRequest": 2,
        "ProviderResponse": 4, "undecodable": 1,
    }  # fmt: skip
    assert world.hub.metrics["answered"] == 3  # the flows count what they handled: aborted too


def test_notices_are_counted_by_kind(world: World) -> None:
    world.run(world.registration("10000000000", NUMBERS[0]))
    world.run(world.enrolment("jps", NUMBERS[0]))
    world.run(world.move("10000000000", "住所1"))
    assert world.hub.metrics["notices.moved"] == world.hub.metrics["notices"] == 1


async def test_a_failed_lag_read_is_counted_logged_once_and_keeps_the_last_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = LagWatch({"bootstrap_servers": "127.0.0.1:1"}, TOPICS, lambda: ["jps"], [])
    watch.lag, watch.under_replicated = {"jps": 3}, 0

    async def broken() -> None:
        raise KafkaConnectionError("no broker")

    watch._read = broken  # type: ignore[method-assign]  # the brokers, gone
    await watch.check()
    await watch.check()
    assert watch.errors == 2
    assert (watch.lag, watch.under_replicated) == ({"jps": 3}, 0)
    assert len([r for r in caplog.records if "cannot read the inbox lag" in r.message]) == 1


@pytest.mark.parametrize(("end", "committed", "behind"), [(13, 13, 0), (13, 11, 2), (0, 0, 0)])
def test_lag_is_the_offsets_from_the_commit_to_the_end(
    end: int, committed: int, behind: int
) -> None:
    assert _behind(end, committed) == behind
