"""Synthetic audit partitions with tree heads, written the way the hub does (records of a
commit, then the commit's signed head), for the unit tests of verify, --against and prove."""

from __future__ import annotations

from pathlib import Path

from hub_stream.audit import AuditTrail
from hub_stream.checkpoints import ChainHead
from hub_stream.state import Table
from renkei.audit.verify import Finding, PartitionResult, PartitionVerifier
from renkei.auditchain import AuditSigner, TrustedKeys, chain_hash, load_or_create_signer
from renkei.merkle import Frontier, leaf_hash
from renkei.treehead import SignedHead, build_head, is_tree_head
from schemas.codec import default_codec
from schemas.models import AuditRecord, AuditStep

CODEC = default_codec()


def head_bytes(
    signer: AuditSigner,
    before: Frontier,
    batch: list[bytes],
    *,
    partition: int = 0,
    root: bytes | None = None,
) -> tuple[Frontier, bytes]:
    """The head the hub writes after ``batch`` (records' bytes) extends ``before``."""
    after, proof = before.extend([leaf_hash(v) for v in batch])
    data = build_head(
        signer, CODEC, partition=partition, tree_size=after.size,
        root_hash=after.root() if root is None else root,
        chain_hash=chain_hash(batch[-1]), previous_size=before.size, consistency=proof,
        now_ms=1_700_000_000_000 + after.size, message_id=f"{partition:016x}{after.size:016x}",
    )  # fmt: skip
    return after, data


def build_trail(
    key_dir: Path, records: int = 23, per_commit: int = 4, partition: int = 0
) -> list[bytes]:
    """One partition's values: ``per_commit`` records, then their tree head, and so on."""
    signer = load_or_create_signer(key_dir)
    heads: Table[ChainHead] = Table("heads", ChainHead.to_bytes, ChainHead.from_bytes)
    trail = AuditTrail("audit", 1, CODEC, heads)
    frontier = Frontier()
    values: list[bytes] = []
    batch: list[bytes] = []
    for n in range(records):
        out = trail.record(
            AuditStep.FORWARDED, cause=f"{n:032x}", actor="city-shinagawa",
            audit_key="a" * 32, requester="city-shinagawa", provider="jps",
            scenario_id="S003", items=("pension.benefit_status",), request_id=f"r{n}",
            hub_request_id=f"{n:032x}",
        )  # fmt: skip
        assert out.value is not None
        values.append(out.value)
        batch.append(out.value)
        if len(batch) == per_commit or n == records - 1:
            frontier, head = head_bytes(signer, frontier, batch, partition=partition)
            values.append(head)
            batch = []
        heads.commit()
    return values


def trusted_of(key_dir: Path) -> TrustedKeys:
    trust = key_dir / "audit-trust.json"
    return TrustedKeys.load(trust) if trust.exists() else TrustedKeys({})


def verify_values(
    values: list[bytes], key_dir: Path, *, heads_expected: bool | None = None
) -> PartitionResult:
    verifier = PartitionVerifier(0, trusted_of(key_dir), CODEC)
    for offset, value in enumerate(values):
        verifier.add(offset, value)
    return verifier.finish(heads_expected)


def where(findings: list[Finding]) -> list[tuple[str, int, int | None]]:
    return [(f.kind, f.offset, f.position) for f in findings]


def record_offsets(values: list[bytes]) -> list[int]:
    return [i for i, v in enumerate(values) if not is_tree_head(v, CODEC)]


def head_offsets(values: list[bytes]) -> list[int]:
    return [i for i, v in enumerate(values) if is_tree_head(v, CODEC)]


def relink(values: list[bytes], change: int, **update: object) -> list[bytes]:
    """The forger who rewrites record number ``change`` and recomputes every later link
    (tree heads left as they were: they cannot be re-signed)."""
    prev: bytes | None = None
    out: list[bytes] = []
    count = 0
    for value in values:
        if is_tree_head(value, CODEC):
            out.append(value)
            continue
        record = CODEC.decode_as(value, AuditRecord)
        if count == change:
            record = record.model_copy(update=update)
        if prev is not None:
            record = record.model_copy(update={"prev_hash": prev})
        data = CODEC.encode(record)
        prev = chain_hash(data)
        out.append(data)
        count += 1
    return out


def resign(values: list[bytes], key_dir: Path, per_commit: int = 4) -> list[bytes]:
    """The records of ``values`` with fresh heads signed by ``key_dir``'s key: what a hub
    (or a thief of its key) that rewrote the history would write."""
    signer = load_or_create_signer(key_dir)
    records = [values[i] for i in record_offsets(values)]
    out: list[bytes] = []
    frontier = Frontier()
    for start in range(0, len(records), per_commit):
        batch = records[start : start + per_commit]
        frontier, head = head_bytes(signer, frontier, batch)
        out += [*batch, head]
    return out


def heads_of(values: list[bytes]) -> list[SignedHead]:
    return [SignedHead.parse(values[i], CODEC) for i in head_offsets(values)]
