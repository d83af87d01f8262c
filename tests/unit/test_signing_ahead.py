"""Strict mode signs its outbound messages in the pool: the bytes are those of signing inline.

Two hubs on the same keys, clock and inputs: one as the loop runs it (``Hub.handle``
leaves each forwarded request's and answer's signature to
:class:`hub_stream.preverify.Signing`), one with the signing done inline, as before.
Every output of both halves of an exchange must be the same bytes, in the same order.
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest

from benchmarks import profile_hub
from hub_stream.hub import Hub
from hub_stream.outputs import Output
from hub_stream.preverify import Signing
from renkei.crypto import SigningKey
from renkei.operator.publish import init_keys
from schemas.compiled import MessageWriter
from schemas.models import ForwardedRequest

COUNT = 40  # over Signing's minimum of 16: the batch is signed in the pool


def _inline(hub: Hub) -> Hub:
    hub._signing = None
    hub.context = dataclasses.replace(hub.context, signing=None)
    return hub


def _frozen(hub: Hub, now: datetime) -> Hub:
    hub.context = dataclasses.replace(hub.context, clock=lambda: now)
    return hub


def _handle(hub: Hub, records: list[profile_hub.Record]) -> list[Output]:
    outputs = hub.handle(records)
    hub.commit()
    return outputs


def test_outputs_signed_in_the_pool_are_the_inline_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = Path(tempfile.mkdtemp())
    init_keys(keys)
    ahead = profile_hub.build("strict", COUNT, keys)
    inline = profile_hub.build("strict", COUNT, keys)
    inline.requests = ahead.requests  # the same inputs, byte for byte
    now = datetime.now(UTC)
    monkeypatch.setattr(time, "time_ns", lambda: 1_790_000_000_123_000_000)
    monkeypatch.setattr(time, "time", lambda: 1_790_000_000.123)
    _frozen(ahead.hub, now)
    _frozen(_inline(inline.hub), now)

    signed_by: set[str] = set()
    key = ahead.hub.context.hub_key

    class Watched:
        def sign(self, data: bytes) -> bytes:
            signed_by.add(threading.current_thread().name)
            return key.sign(data)

    watched = cast(SigningKey, Watched())
    ahead.hub.context = dataclasses.replace(ahead.hub.context, hub_key=watched)

    requests = _handle(ahead.hub, ahead.requests)
    inline_requests = _handle(inline.hub, inline.requests)
    forwarded = profile_hub._of_type(
        ahead.hub, requests, ahead.topics.agency_in(profile_hub.PROVIDER), ForwardedRequest
    )
    answers = profile_hub.respond(ahead, forwarded)
    responses = _handle(ahead.hub, answers)
    inline_responses = _handle(inline.hub, answers)

    assert len(forwarded) == COUNT
    assert requests == inline_requests
    assert responses == inline_responses
    assert signed_by  # the hub's signatures were made in the pool's threads
    assert all(name.startswith("hub-verify") for name in signed_by)
    assert not any(o.value == b"" for o in requests + responses)  # no placeholder escaped


def test_a_small_batch_is_signed_inline() -> None:
    signing = Signing(minimum=16)
    signing.begin(lambda data: b"s" * 64, 15)
    assert not signing.active
    signing.begin(lambda data: b"s" * 64, 16)
    assert signing.active
    signing.discard()
    assert not signing.active


def test_a_dropped_placeholder_is_not_written() -> None:
    signing = Signing(minimum=1)
    signing.begin(lambda data: data[:2] * 32, 2)
    kept = signing.later("t", b"k", b"\xc3\x01ab", b"cd")
    signing.later("t", b"k", b"\xc3\x01xy", b"zz")  # its record rolled back: not in outputs
    other = Output("u", None, b"v")
    done = signing.finish([other, kept])
    assert done[0] is other
    signature = b"\xc3\x01" * 32  # the fake signer's, over b"\xc3\x01ab\x00cd"
    assert done[1] == Output("t", b"k", MessageWriter.join(b"\xc3\x01ab", b"cd", signature))
    assert not signing.active
