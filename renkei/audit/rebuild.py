"""Rebuild the hub's state from the logs alone and compare it with the live state.

"The hub's state" concretely (``docs/audit.md``):

* **persons** (resident code → ID code, My Number, basic-4, death) is a projection of
  ``registry.events``: replayed here through the hub's own registry-sync code, with the
  registry's signatures checked against the pinned registry key, as the hub checks them;
* **holdings** (the reference directory: who holds whom) is a projection of the audit
  trail's ENROLLED and DEENROLLED records;
* **pending** exchanges are FORWARDED records without ANSWERED or TIMED_OUT;
* **chain heads** are each partition's last record hash and record count;
* **persons seen by the trail**: the audit keys of REGISTRY_APPLIED records must be
  exactly the audit keys of the person table.

The live state is what the hub would restore on start: the ``hub.state.*`` topics (the
person rows sealed under the master secret's state key, so reading them needs the key ring).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiokafka import ConsumerRecord

from hub_stream.checkpoints import ChainHead
from hub_stream.records import Holding, Pending, PersonState
from hub_stream.restore import restore_tables
from hub_stream.sealed_state import persons_table
from hub_stream.state import Table
from hub_stream.trust import PinnedRoots
from renkei.crypto import KeyRing, audit_key
from renkei.topics import Topics
from schemas.codec import Codec

from .projections import PendingExchange, Projections
from .reader import read_directory, read_topic
from .replay import entries

__all__ = [
    "Difference",
    "LiveState",
    "RebuiltState",
    "audit_key_of_resident",
    "compare",
    "live_state",
    "rebuild_state",
]


@dataclass
class RebuiltState:
    """The state as the logs say it must be."""

    persons: dict[str, PersonState]
    projections: Projections


@dataclass
class LiveState:
    """The state the hub keeps (its ``hub.state.*`` topics)."""

    persons: dict[str, PersonState]
    holdings: dict[str, Holding]
    pending: dict[str, Pending]
    heads: dict[int, ChainHead]


@dataclass(frozen=True)
class Difference:
    """One way the rebuilt and the live state disagree."""

    table: str
    key: str
    rebuilt: str
    live: str


@dataclass
class Comparison:
    """Counts per table and every difference."""

    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # table → (rebuilt, live)
    differences: list[Difference] = field(default_factory=list)


async def rebuild_persons(
    kafka: dict[str, Any], topics: Topics, keyring: KeyRing, codec: Codec, roots: PinnedRoots
) -> dict[str, PersonState]:
    """Replay ``registry.events`` through the hub's own registry sync, offline."""
    from hub_stream.hub import Hub
    from hub_stream.settings import HubSettings
    from renkei.auditchain import AuditSigner
    from renkei.crypto import SigningKey

    # A hub with throwaway signing keys: only its person table is kept.
    settings = HubSettings(topic_prefix=topics.prefix, partitions=topics.partitions)
    signer = AuditSigner(SigningKey.generate())
    hub = Hub(topics, keyring, SigningKey.generate(), settings, signer, roots)
    hub.directory = await read_directory(kafka, topics.directory, codec)
    async for batch in read_topic(kafka, topics.registry_events):
        records = [
            ConsumerRecord(
                topics.registry_events,
                raw.partition,
                raw.offset,
                raw.timestamp_ms,
                0,
                raw.key,
                raw.value,
                None,
                0,
                0,
                (),
            )
            for raw in batch
        ]
        hub.handle(records)
        hub.commit()
    return dict(hub.persons.items())


async def rebuild_state(
    kafka: dict[str, Any],
    topics: Topics,
    keyring: KeyRing,
    codec: Codec,
    audit_topic: str = "",
    *,
    roots: PinnedRoots,
) -> RebuiltState:
    """Persons from ``registry.events``, everything else from the audit trail.

    :param roots: the registry's (and operators') pinned keys, as the hub has them.
    """
    persons = await rebuild_persons(kafka, topics, keyring, codec, roots)
    projections = Projections()
    async for entry in entries(kafka, audit_topic or topics.audit, codec):
        projections.apply(entry)
    return RebuiltState(persons, projections)


async def live_state(kafka: dict[str, Any], topics: Topics, keyring: KeyRing) -> LiveState:
    """Read the hub's compacted state topics to their end (``keyring`` opens person rows)."""
    persons = persons_table(keyring, topics.state("persons"))
    holdings = Table(topics.state("holdings"), Holding.to_bytes, Holding.from_bytes)
    pending = Table(topics.state("pending"), Pending.to_bytes, Pending.from_bytes)
    heads = Table(topics.state("audit-chain"), ChainHead.to_bytes, ChainHead.from_bytes)
    await restore_tables(kafka, [persons, holdings, pending, heads])
    return LiveState(
        dict(persons.items()),
        dict(holdings.items()),
        dict(pending.items()),
        {int(k): v for k, v in heads.items()},
    )


def compare(rebuilt: RebuiltState, live: LiveState, keyring: KeyRing) -> Comparison:
    """Every difference between the two, table by table."""
    out = Comparison()

    def diff(table: str, want: dict[str, str], have: dict[str, str]) -> None:
        out.counts[table] = (len(want), len(have))
        for key in sorted(set(want) | set(have)):
            if want.get(key) != have.get(key):
                out.differences.append(
                    Difference(table, key, want.get(key, "<absent>"), have.get(key, "<absent>"))
                )

    diff(
        "persons",
        {k: _registry_facts(v) for k, v in rebuilt.persons.items()},
        {k: _registry_facts(v) for k, v in live.persons.items()},
    )
    p = rebuilt.projections
    diff("holdings", dict.fromkeys(p.holdings.keys, "held"), dict.fromkeys(live.holdings, "held"))
    diff(
        "pending",
        {k: repr(v) for k, v in p.pending.pending.items()},
        {k: repr(_pending_view(v)) for k, v in live.pending.items()},
    )
    diff(
        "audit-chain",
        {str(k): f"{h.hex()} #{n}" for k, (h, n) in p.heads.heads.items()},
        {str(k): f"{v.hash.hex()} #{v.count}" for k, v in live.heads.items()},
    )
    diff(
        "persons-seen",
        dict.fromkeys(p.persons.keys, "seen"),
        {audit_key(keyring, bytes.fromhex(v.id_code)): "seen" for v in rebuilt.persons.values()},
    )
    return out


def _pending_view(p: Pending) -> PendingExchange:
    return PendingExchange(
        requester=p.requester,
        provider=p.provider,
        scenario_id=p.scenario_id,
        legal_basis=p.legal_basis,
        items=tuple(p.items),
        audit_key=p.audit_key,
        request_id=p.request_id,
    )


def _registry_facts(person: PersonState) -> str:
    """A person row without which agencies were notified of each event: that depends on
    the holdings at the time, which the audit trail records (NOTIFIED) and the registry
    does not."""
    row = person.model_dump(mode="json")
    for event in row.get("history", ()):
        event.pop("notified", None)
    return json.dumps(row, sort_keys=True, ensure_ascii=False)


async def audit_key_of_resident(
    kafka: dict[str, Any], topics: Topics, keyring: KeyRing, resident_code: str
) -> str | None:
    """The audit key of the person with ``resident_code``, from the hub's person table
    (needs the master secret); None if the registry never registered them."""
    persons = persons_table(keyring, topics.state("persons"))
    await restore_tables(kafka, [persons])
    person = persons.get(resident_code)
    return None if person is None else audit_key(keyring, bytes.fromhex(person.id_code))
