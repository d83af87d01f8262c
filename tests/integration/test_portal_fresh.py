"""A new exchange and a life-event notice reach the citizen's portal on a live hub that
writes no checkpoint for an hour: its signed tree heads alone make them visible, each
with an inclusion proof against the latest head. (How soon: benchmarks/portal_freshness.)"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from benchmarks.portal_freshness import Fresh, fresh_portal
from renkei.merkle import leaf_hash, verify_inclusion
from tests.integration.hub_env import eventually


async def shown(fresh: Fresh, step: str, agency: str) -> list[dict[str, Any]]:
    return [r for r in await fresh.history()
            if r["step"] == step and r["requester"]["id"] == agency]  # fmt: skip


async def test_a_new_exchange_and_a_notice_appear_without_a_checkpoint(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with fresh_portal(kafka_bootstrap, tmp_path) as fresh:
        assert fresh.env.settings.audit_checkpoint_ms == 3_600_000
        await fresh.exchange("fresh-1")

        async def asked() -> bool:
            return bool(await shown(fresh, "ANSWERED", "city-shinagawa"))

        await eventually(asked, timeout_s=60)
        assert len(await shown(fresh, "FORWARDED", "city-shinagawa")) == 1
        await fresh.move(1)

        async def told() -> bool:
            return all([await shown(fresh, "NOTIFIED", a) for a in ("city-shinagawa", "jps")])

        await eventually(told, timeout_s=60)
        assert fresh.index.trail is not None
        assert fresh.index.trail.stats.bad_heads == 0
        for r in await fresh.history():
            assert r["head"] is not None, r  # every record shown is proven by a tree head
            proof = [bytes.fromhex(h) for h in r["proof"]]
            root = bytes.fromhex(r["head"]["root_hash"])
            leaf = leaf_hash(base64.b64decode(r["bytes"]))
            assert verify_inclusion(leaf, r["leaf_index"], r["head"]["tree_size"], proof, root)
