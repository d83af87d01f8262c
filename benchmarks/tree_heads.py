"""What the hub's tree heads cost per audit record, beside today's chain-only trail.

    .venv/bin/python -m benchmarks.tree_heads [records] [batch ...]

In one process, the hub's own :class:`~hub_stream.audit.AuditTrail` writes ``records``
(default 200,000) audit records over 3 partitions in batches of each ``batch`` size
(default 1, 10, 100, 1000 records), twice per batch size and interleaved: chain-only (hash
chain and a signed checkpoint every 1,000 records, as before) and with tree heads (the
same, plus each record's leaf hash and, per batch and partition that got records, the
frontier extended, the consistency proof, and a signed head written twice). Each batch
ends as the hub's does: ``checkpoints()``, the chain table's changes encoded, commit. No
Kafka: this is the hub's CPU per record, which is what the heads add to. Prints µs per
record of both, the ratio, and heads written; best of three rounds.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from hub_stream.audit import AuditTrail
from hub_stream.checkpoints import ChainHead, Checkpointer
from hub_stream.state import Table
from hub_stream.treeheads import TreeHeads
from renkei.auditchain import AuditSigner, load_or_create_signer
from schemas.codec import Codec, default_codec
from schemas.models import AuditStep

PARTITIONS = 3
ROUNDS = 3


def run(
    records: int, batch: int, signer: AuditSigner, codec: Codec, heads_on: bool
) -> tuple[float, int]:
    """Seconds to write ``records`` in batches of ``batch``; heads written."""
    table: Table[ChainHead] = Table("heads", ChainHead.to_bytes, ChainHead.from_bytes)
    tree_heads = TreeHeads("audit", "audit.heads", signer, codec) if heads_on else None
    trail = AuditTrail(
        "audit", PARTITIONS, codec, table,
        Checkpointer("audit", PARTITIONS, signer, codec, 1000, 10**12), (), tree_heads,
    )  # fmt: skip
    written = 0
    start = time.perf_counter()
    for first in range(0, records, batch):
        for n in range(first, min(records, first + batch)):
            trail.record(
                AuditStep.FORWARDED, cause=f"{n:032x}", actor="city-shinagawa",
                audit_key=f"{n % 100_000:032x}", requester="city-shinagawa", provider="jps",
                scenario_id="S003", legal_basis="番号法第19条第8号 主務省令第2条の表 第26項",
                items=("pension.benefit_status",), request_id=f"r{n}",
                hub_request_id=f"{n:032x}",
            )  # fmt: skip
        outputs = trail.checkpoints(1_700_000_000_000 + first)
        written += sum(o.topic == "audit.heads" for o in outputs)
        table.changes()
        table.commit()
    return time.perf_counter() - start, written


def main() -> None:
    records = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    batches = [int(b) for b in sys.argv[2:]] or [1, 10, 100, 1000]
    codec = default_codec()
    with tempfile.TemporaryDirectory() as key_dir:
        signer = load_or_create_signer(Path(key_dir))
    print(f"{records:,} audit records over {PARTITIONS} partitions, best of {ROUNDS} rounds")
    print("| batch | chain only µs/record | with tree heads µs/record | ratio | heads |")
    print("|---|---|---|---|---|")
    for batch in batches:
        n = records if batch >= 10 else records // 10  # a head per record: fewer of them
        chain = tree = float("inf")
        heads = 0
        for _ in range(ROUNDS):
            chain = min(chain, run(n, batch, signer, codec, heads_on=False)[0])
            seconds, heads = run(n, batch, signer, codec, heads_on=True)
            tree = min(tree, seconds)
        c, t = chain / n * 1e6, tree / n * 1e6
        print(f"| {batch:,} | {c:.2f} | {t:.2f} | {t / c:.2f} | {heads:,} |")


if __name__ == "__main__":
    main()
