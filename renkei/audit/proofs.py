"""Proofs over the audit trail's tree heads: ``verify --against``, ``heads`` and ``prove``.

- :func:`check_against`: a tree head kept from earlier (by an auditor, a witness) against
  today's trail. An RFC 9162 consistency proof from the earlier head to today's latest
  head of its partition shows today's log extends it; a shorter log is **truncated** (at
  position = today's size), a different tree at that size **rewritten** (at the first
  position the data can show differs).
- :func:`latest_heads`: what to keep for that — the latest valid head of each partition.
- :func:`inclusions` / :func:`prove`: every record of one exchange with its RFC 9162
  inclusion proof against the latest head of its partition, verified.

All of them work from one :func:`~renkei.audit.verify.verify_trail` pass, so the trees
they prove from are the chains verify judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from renkei.auditchain import TrustedKeys
from renkei.errors import ContractError, SignatureError
from renkei.merkle import verify_consistency, verify_inclusion
from renkei.treehead import SignedHead, is_tree_head
from schemas.codec import Codec
from schemas.models import AuditRecord

from .reader import Raw, read_topic
from .replay import Entry
from .trace import Exchange
from .trees import ChainTree, narrow
from .verify import Finding, VerifyReport, verify_trail

__all__ = [
    "Consistency",
    "Inclusion",
    "check_against",
    "inclusions",
    "latest_heads",
    "prove",
]


@dataclass(frozen=True)
class Consistency:
    """One earlier head checked against today's trail."""

    partition: int
    old_size: int
    old_root: bytes
    new_size: int  # today's latest head's size (0: none)
    new_root: bytes | None
    proof: list[bytes]
    finding: Finding | None  # None: the proof holds

    @property
    def ok(self) -> bool:
        return self.finding is None

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "old_size": self.old_size,
            "old_root": self.old_root.hex(),
            "new_size": self.new_size,
            "new_root": self.new_root.hex() if self.new_root is not None else None,
            "proof": [h.hex() for h in self.proof],
            "ok": self.ok,
            "finding": None if self.finding is None else self.finding.kind,
        }


def latest_heads(report: VerifyReport) -> list[SignedHead]:
    """The latest valid tree head of every partition that has one, by partition."""
    return [p.chain.latest for p in report.partitions if p.chain is not None and p.chain.latest]


def check_against(
    report: VerifyReport, earlier: Sequence[SignedHead], trusted: TrustedKeys, codec: Codec
) -> list[Consistency]:
    """Prove today's trail (``report``) extends each of the ``earlier`` heads.

    Heads of one partition are taken smallest first, so one that holds narrows where a
    later one's difference can start.
    """
    chains = {p.partition: p.chain for p in report.partitions}
    good: dict[int, int] = {}
    out: list[Consistency] = []
    for signed in sorted(earlier, key=lambda h: (h.partition, h.size)):
        chain = chains.get(signed.partition)
        checked = _check_one(signed, chain, good.get(signed.partition, 0), trusted, codec)
        if checked.ok:
            good[signed.partition] = max(good.get(signed.partition, 0), signed.size)
        out.append(checked)
    return out


def _check_one(
    signed: SignedHead, chain: ChainTree | None, good: int, trusted: TrustedKeys, codec: Codec
) -> Consistency:
    p, old = signed.partition, signed.size
    latest = chain.latest if chain is not None else None
    new = latest.size if latest is not None else 0
    new_root = latest.root if latest is not None else None

    def result(kind: str, offset: int, position: int | None, detail: str) -> Consistency:
        finding = Finding(kind, p, offset, detail, position)  # type: ignore[arg-type]
        return Consistency(p, old, signed.root, new, new_root, [], finding)

    try:
        signed.check(trusted, codec)
    except SignatureError as exc:
        kind = "unknown-key" if trusted.get(signed.head.key_id) is None else "bad-signature"
        return result(kind, -1, None, f"the earlier head of size {old}: {exc}")
    if chain is None or latest is None or new < old:
        end = chain.end_offset if chain is not None else 0
        return result(
            "truncated", end, new,
            f"an earlier head signed {old} records; today's latest head signs {new}: "
            f"positions {new}..{old - 1} are gone",
        )  # fmt: skip
    tree = chain.tree
    if tree.size < new:
        return result(
            "rewritten", chain.end_offset, tree.size,
            f"today's chain breaks at position {tree.size} (see the findings): the head of "
            f"size {old} cannot be proven",
        )  # fmt: skip
    proof = tree.consistency_proof(old, new)
    if verify_consistency(old, new, signed.root, latest.root, proof):
        return Consistency(p, old, signed.root, new, latest.root, proof, None)
    lo, hi = narrow(signed, tree, good)
    where = f"position {lo}" if lo == hi else f"one of positions {lo}..{hi}"
    offset = chain.offsets[lo] if lo < len(chain.offsets) else chain.end_offset
    checked = result(
        "rewritten", offset, lo,
        f"today's tree at size {old} is not the one the earlier head signs: the first "
        f"record that differs is at {where} (offset {offset})",
    )  # fmt: skip
    return Consistency(p, old, signed.root, new, latest.root, proof, checked.finding)


@dataclass(frozen=True)
class Inclusion:
    """One record of an exchange, proven included in its partition's latest head."""

    entry: Entry
    position: int | None  # chain position (None: not in the chain)
    leaf: bytes
    head: SignedHead | None
    proof: list[bytes]
    verified: bool

    def to_json(self) -> dict[str, Any]:
        r = self.entry.record
        return {
            "partition": self.entry.partition,
            "position": self.position,
            "offset": self.entry.offset,
            "step": str(r.step),
            "occurred_at": r.occurred_at.isoformat(timespec="milliseconds"),
            "hub_request_id": r.hub_request_id,
            "request_id": r.request_id,
            "leaf_hash": self.leaf.hex(),
            "tree_size": self.head.size if self.head is not None else None,
            "root_hash": self.head.root.hex() if self.head is not None else None,
            "inclusion_proof": [h.hex() for h in self.proof],
            "verified": self.verified,
        }


def inclusions(report: VerifyReport, found: Iterable[Entry]) -> list[Inclusion]:
    """Each entry's inclusion proof against the latest head of its partition."""
    chains = {p.partition: p.chain for p in report.partitions}
    out: list[Inclusion] = []
    for entry in found:
        chain = chains.get(entry.partition)
        position = chain.position_of(entry.offset) if chain is not None else None
        head = chain.latest if chain is not None else None
        leaf = chain.tree.leaf(position) if chain is not None and position is not None else b""
        if chain is None or head is None or position is None or position >= head.size:
            out.append(Inclusion(entry, position, leaf, head, [], verified=False))
            continue
        if head.size > chain.tree.size:  # a gap in the chain below the head
            out.append(Inclusion(entry, position, leaf, head, [], verified=False))
            continue
        proof = chain.tree.inclusion_proof(position, head.size)
        ok = verify_inclusion(leaf, position, head.size, proof, head.root)
        out.append(Inclusion(entry, position, leaf, head, proof, ok))
    return out


async def prove(
    kafka: dict[str, Any], topic: str, trusted: TrustedKeys, codec: Codec, request_id: str
) -> tuple[VerifyReport, list[Inclusion]]:
    """Verify the trail and pick the records of the exchange ``request_id`` names (as
    ``renkei audit trace`` does) in the same pass; then prove each of them.

    Only records whose bytes hold the id (Avro strings are their UTF-8 bytes) or a hub
    request id found so far are decoded. A late answer names only the hub's id: when
    ``request_id`` is the requester's, a second read (no verification, no decoding but of
    matches) finds those that stood before the exchange's first record was read.
    """
    exchange = Exchange(request_id)
    wanted = request_id.encode()
    hub_ids: set[bytes] = set()
    seen: set[tuple[int, int]] = set()

    def pick(raw: Raw) -> None:
        value = raw.value
        if not value or (wanted not in value and not any(h in value for h in hub_ids)):
            return
        if (raw.partition, raw.offset) in seen or is_tree_head(value, codec):
            return
        try:
            message = codec.decode(value)
        except ContractError:
            return  # verify reports it
        if not isinstance(message, AuditRecord):
            return
        seen.add((raw.partition, raw.offset))
        exchange.add(Entry(raw.partition, raw.offset, message, value))
        hub_id = message.hub_request_id
        if hub_id and hub_id != request_id and request_id == message.request_id:
            hub_ids.add(hub_id.encode())

    report = await verify_trail(kafka, topic, trusted, codec, tap=pick)
    if hub_ids:
        async for batch in read_topic(kafka, topic):
            for raw in batch:
                pick(raw)
    return report, inclusions(report, exchange.entries())
