"""The least a hub must spend per message in Python, against what the hot-path targets allow.

Run: ``.venv/bin/python -m benchmarks.hot_floor [messages] [--repeat N]``

Issue 10 asks one worker for 0.5 × a bare aiokafka pass-through in trust-acl mode and
0.25 × in strict mode. This prints, from figures measured in this one run:

1. **The budget.** The bare pass-through (``benchmarks.common.passthrough``) and the same
   done exactly-once (``passthrough_transactional``: ``read_committed``, one transaction a
   poll, record batches), ``messages`` each, on the broker of ``RENKEI_BOOTSTRAP``. A hub
   at ratio ``r`` spends ``1 / (r · bare)`` seconds a message in its loop, of which the
   exactly-once loop itself takes ``1 / transactional``; what is left is what
   ``Hub.handle`` may spend a message: ``1 / (r · bare) − 1 / transactional``.
2. **The floor.** The CPU time of each operation a forwarded request and its answer cannot
   do without, each timed alone in a tight loop on the hub's own objects: decoding the
   input (the faster of the codec's reader and fastavro's compiled one to a bare dict,
   both printed), opening and minting link codes, the audit key, the derived ids, writing
   the forwarded request or the answer, the audit record with its chain hash, the pending
   row, and appending the two records a message writes beyond the pass-through's one.
   Strict adds verifying the input's Ed25519 signature and signing the output, through
   libsodium, the fastest Ed25519 the hub has. Nothing of the hub's own logic (the
   scenario table, holdings, replay memory, staging, savepoints) is counted, so the
   floor is a lower bound on any hub in Python doing this work.
3. **The hub.** ``Hub.handle``'s CPU a message, as ``benchmarks.profile_hub`` measures it.

A floor above the budget means no Python hub doing this work reaches the target on this
machine, however lean its own code; the hub's distance from the floor is its own code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import io
import os
import time
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import fastavro
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from benchmarks import profile_hub
from benchmarks.common import broker, passthrough, passthrough_transactional
from benchmarks.profile_hub import PROVIDER, REQUESTER
from hub_stream.ids import derive_id
from hub_stream.records import Pending
from renkei.crypto import audit_key, sodium
from renkei.crypto.sodium import SodiumSigningKey
from renkei.envelope import verify_bytes
from schemas.codec import HEADER_SIZE
from schemas.models import (
    AttributeRequest,
    AttributeResponse,
    AuditStep,
    ForwardedRequest,
    ProviderResponse,
)
from schemas.trusted import trusted

__all__ = ["budget_us", "floor", "main"]

TARGETS = {"trust-acl": 0.5, "strict": 0.25}
SIZE = 600  # bytes a pass-through record: about a signed attribute request


def budget_us(ratio: float, bare: float, transactional: float) -> float:
    """µs a message ``Hub.handle`` may spend for the hub to reach ``ratio`` × ``bare``
    (messages/s), its exactly-once loop costing what ``transactional`` shows."""
    return (1 / (ratio * bare) - 1 / transactional) * 1e6


def _cpu_us(call: Callable[[], object], repeat: int, number: int = 5000) -> float:
    """The best of ``repeat`` timings of ``number`` calls, CPU µs a call."""
    runs = timeit.repeat(call, number=number, repeat=repeat, timer=time.process_time)
    return min(runs) / number * 1e6


def floor(repeat: int) -> dict[str, dict[str, float]]:
    """CPU µs of each operation a request and an answer cannot do without (see above)."""
    exchange = profile_hub.build("strict", 2)
    hub = exchange.hub
    # The operations timed alone: strict's signatures are timed apart.
    ctx = dataclasses.replace(hub.context, strict=False)
    request_bytes = exchange.requests[0].value
    req = hub.codec.decode(request_bytes)
    assert isinstance(req, AttributeRequest)
    now = datetime.now(UTC)
    id_code = ctx.links.open(REQUESTER, req.requester_link_code, now)
    key = audit_key(ctx.keyring, id_code)
    scenario = ctx.directory.scenario(req.scenario_id)
    assert scenario is not None
    hub_request_id = derive_id("hub-request", REQUESTER, req.header.message_id)
    code = ctx.links.mint(PROVIDER, id_code)

    def forward() -> object:
        return ctx.emit(
            ctx.inbox(PROVIDER), code, ForwardedRequest,
            message_id=derive_id("forward", hub_request_id), correlation_id="c",
            hub_request_id=hub_request_id, provider_link_code=code, requester=REQUESTER,
            scenario_id=scenario.scenario_id, legal_basis=scenario.legal_basis,
            items=req.items, reply_public_key=req.reply_public_key,
            hpke_suite=req.hpke_suite, deadline=2**40, request_id=req.request_id,
        )  # fmt: skip

    def pending() -> bytes:
        return trusted(Pending, {
            "requester": REQUESTER, "request_id": req.request_id, "request_message_id": "c",
            "requester_link_code": req.requester_link_code, "provider": PROVIDER,
            "scenario_id": scenario.scenario_id, "legal_basis": scenario.legal_basis,
            "items": tuple(req.items), "audit_key": key, "deadline_ms": 2**40,
        }).to_bytes()  # fmt: skip

    def audit(step: AuditStep) -> Callable[[], object]:
        return lambda: ctx.audit.record(
            step, cause="c", actor=REQUESTER, audit_key=key, requester=REQUESTER,
            provider=PROVIDER, scenario_id=scenario.scenario_id,
            legal_basis=scenario.legal_basis, items=req.items, request_id=req.request_id,
            hub_request_id=hub_request_id,
        )  # fmt: skip

    forwarded = forward()
    response_record = profile_hub.respond(exchange, [forwarded])[0]  # type: ignore[list-item]
    response_bytes = response_record.value
    resp = hub.codec.decode(response_bytes)
    assert isinstance(resp, ProviderResponse)
    assert resp.sealed is not None
    sealed = {"suite": resp.sealed.suite, "enc": resp.sealed.enc,
              "ciphertext": resp.sealed.ciphertext}  # fmt: skip

    def answer() -> object:
        return ctx.emit(
            ctx.inbox(REQUESTER), req.requester_link_code, AttributeResponse,
            message_id=derive_id("answer", hub_request_id), correlation_id="c",
            request_id=req.request_id, requester_link_code=req.requester_link_code,
            provider=PROVIDER, scenario_id=scenario.scenario_id, status=resp.status,
            sealed=sealed, detail="",
        )  # fmt: skip

    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=0, is_transactional=1, producer_id=1, producer_epoch=0,
        base_sequence=0, batch_size=2**31 - 1,
    )  # fmt: skip

    def two_more_records() -> None:
        for _ in range(2):
            builder.append(0, timestamp=None, key=code.encode(), value=request_bytes, headers=[])

    def fastavro_decode(data: bytes) -> Callable[[], object]:
        entry = hub.codec._lookup(data)

        def decode() -> object:  # to a dict: no model, no contract checks
            stream = io.BytesIO(data)
            stream.seek(HEADER_SIZE)
            return fastavro.schemaless_reader(
                stream, entry.writer, entry.reader, return_record_name=True
            )

        return decode

    agency = ctx.directory.agency(REQUESTER)
    assert agency is not None
    signer = SodiumSigningKey.of(ctx.hub_key)
    outbound = forwarded.value  # type: ignore[attr-defined]
    gc.collect()
    gc.freeze()
    request = {
        "decode the request": lambda: hub.codec.decode(request_bytes),
        "open the requester's link code": lambda: ctx.links.open(
            REQUESTER, req.requester_link_code, now
        ),
        "the audit key": lambda: audit_key(ctx.keyring, id_code),
        "mint the provider's link code": lambda: ctx.links.mint(PROVIDER, id_code),
        "two derived ids": lambda: (
            derive_id("hub-request", REQUESTER, "c"),
            derive_id("forward", hub_request_id),
        ),
        "write the forwarded request": forward,
        "the pending row": pending,
        "the audit record": audit(AuditStep.FORWARDED),
        "two more records in the batch": two_more_records,
    }
    response = {
        "decode the answer": lambda: hub.codec.decode(response_bytes),
        "two derived ids": lambda: (derive_id("answer", "x"), derive_id("audit", "y", "c")),
        "write the answer": answer,
        "the audit record": audit(AuditStep.ANSWERED),
        "two more records in the batch": two_more_records,
    }
    strict = {
        "verify the input (libsodium)": lambda: verify_bytes(
            request_bytes, agency.signing_public_key, hub.codec, sodium.verify
        ),
        "sign the output (libsodium)": lambda: signer.sign(outbound),
    }
    aside = {
        "decode the request": fastavro_decode(request_bytes),
        "decode the answer": fastavro_decode(response_bytes),
    }
    parts = {
        name: {what: _cpu_us(call, repeat) for what, call in calls.items()}
        for name, calls in (
            ("request", request), ("answer", response), ("strict", strict), ("aside", aside)
        )
    }  # fmt: skip
    # The floor takes the faster reader: fastavro's, to a bare dict, may beat the codec's.
    for name, what in (("request", "decode the request"), ("answer", "decode the answer")):
        parts[name][what] = min(parts[name][what], parts["aside"][what])
    return parts


async def _baselines(messages: int) -> tuple[float, float]:
    async with broker(Path(os.environ.get("RENKEI_HOME", ".renkei"))) as bootstrap:
        bare = await passthrough(bootstrap, messages, SIZE)
        transactional = await passthrough_transactional(bootstrap, messages, SIZE)
    return bare, transactional


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hot_floor")
    parser.add_argument("messages", nargs="?", type=int, default=50000)
    parser.add_argument("--repeat", type=int, default=5, help="best of N timings (default 5)")
    args = parser.parse_args(argv)

    bare, transactional = asyncio.run(_baselines(args.messages))
    print(f"bare pass-through {bare:,.0f} msg/s; exactly-once pass-through "
          f"{transactional:,.0f} msg/s ({transactional / bare:.2f}×); {args.messages:,} "
          f"messages of {SIZE} B each\n")  # fmt: skip
    parts = floor(args.repeat)
    for name in ("request", "answer", "strict"):
        what = {"request": "a request", "answer": "an answer",
                "strict": "strict beyond trust-acl, an inbound message"}[name]  # fmt: skip
        print(f"\nthe floor of {what} (CPU µs, best of {args.repeat}):")
        for what, us in parts[name].items():
            print(f"  {what:40s} {us:7.2f}")
        print(f"  {'sum':40s} {sum(parts[name].values()):7.2f}")
    print("\n(decoding counts the faster of the codec's reader, which builds the models and")
    print(" checks the contract, and fastavro's compiled reader to a bare dict, which does")
    print(f" neither: fastavro {parts['aside']['decode the request']:.2f} µs a request, "
          f"{parts['aside']['decode the answer']:.2f} µs an answer)")  # fmt: skip

    measured = {mode: _hub_us(mode, args.repeat) for mode in TARGETS}
    trust_floor = (sum(parts["request"].values()) + sum(parts["answer"].values())) / 2
    floors = {"trust-acl": trust_floor, "strict": trust_floor + sum(parts["strict"].values())}
    print("\nper inbound message (the mean of a request and its answer), µs:")
    print(f"  {'mode':10s} {'target':>7s} {'budget':>8s} {'floor':>8s} {'hub':>8s} "
          f"{'floor/budget':>13s} {'hub/floor':>10s}")  # fmt: skip
    for mode, ratio in TARGETS.items():
        budget = budget_us(ratio, bare, transactional)
        print(f"  {mode:10s} {ratio:6.2f}× {budget:8.1f} {floors[mode]:8.1f} "
              f"{measured[mode]:8.1f} {floors[mode] / budget:12.2f}× "
              f"{measured[mode] / floors[mode]:9.2f}×")  # fmt: skip
    print("\n(strict's floor is CPU on every core; the hub verifies and signs in a pool of")
    print(" threads beside its loop, so on an idle second core its thread's share could be")
    print(" less — but the second core is the broker's, as it is the pass-through's.)")


def _hub_us(mode: str, repeat: int) -> float:
    """``Hub.handle``'s CPU µs a message in ``mode``: the best of ``repeat`` runs."""
    with contextlib.redirect_stdout(io.StringIO()):  # its own report, not wanted here
        runs = [profile_hub.once(mode, 2000) for _ in range(repeat)]
    best = min(
        runs,
        key=lambda r: r["request_us"] + r["response_us"],
    )
    return (best["request_us"] + best["response_us"]) / 2


if __name__ == "__main__":
    main()
