"""What the hub writes per exchange without models is what the models would have written.

``FlowContext.emit`` (compiled writers, strict and trust-acl) against ``FlowContext.send``
of the same message; ``Pending.to_bytes`` against pydantic's ``model_dump_json``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub_stream.context import FlowContext
from hub_stream.outputs import Output
from hub_stream.records import Pending
from renkei.crypto import SigningKey
from renkei.envelope import verify_bytes
from schemas.codec import default_codec
from schemas.models import (
    AttributeResponse,
    ErrorCode,
    ForwardedRequest,
    HpkeSuite,
    HubError,
    Message,
    ResponseStatus,
)

CODEC = default_codec()
KEY = SigningKey.generate()


@dataclasses.dataclass
class _Ctx:
    """The fields of a FlowContext that emit and send read."""

    codec: object
    strict: bool
    hub_key: SigningKey
    signing: None = None  # signed inline (the batch's pool: tests/unit/test_signing_ahead.py)

    def emit(self, *args: Any, **kwargs: Any) -> Output:
        return FlowContext.emit(cast(FlowContext, self), *args, **kwargs)

    def send(self, *args: Any, **kwargs: Any) -> Output:
        return FlowContext.send(cast(FlowContext, self), *args, **kwargs)


CASES: list[tuple[type[Message], dict[str, Any]]] = [
    (ForwardedRequest, {
        "hub_request_id": "h" * 32, "provider_link_code": "c" * 53, "requester": "city-x",
        "scenario_id": "S003", "legal_basis": "番号法 第19条第8号", "items": ("a", "b"),
        "reply_public_key": b"k" * 32, "hpke_suite": HpkeSuite.X25519,
        "deadline": 1_790_000_000_123, "request_id": "r-1",
    }),
    (AttributeResponse, {
        "request_id": "r-1", "requester_link_code": "c" * 53, "provider": "jps",
        "scenario_id": "S003", "status": ResponseStatus.PROVIDED,
        "sealed": {"suite": HpkeSuite.X25519, "enc": b"e" * 32, "ciphertext": b"x" * 100},
        "detail": "",
    }),
    (AttributeResponse, {
        "request_id": "r-2", "requester_link_code": "c" * 53, "provider": "jps",
        "scenario_id": "S003", "status": ResponseStatus.NO_DATA, "sealed": None,
        "detail": "該当なし",
    }),
    (HubError, {"code": ErrorCode.TIMEOUT, "detail": "late", "request_id": None,
                "retriable": False}),
]  # fmt: skip


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize(("model", "fields"), CASES)
def test_emit_writes_what_send_writes(
    strict: bool, model: type[Message], fields: dict[str, Any]
) -> None:
    ctx = _Ctx(CODEC, strict, KEY)
    out = ctx.emit("t", "k", model, message_id="0" * 32, correlation_id="1" * 32, **fields)
    assert out.value is not None
    message = CODEC.decode(out.value)
    assert type(message) is model
    assert message.header.sender == "hub"
    assert message.header.correlation_id == "1" * 32
    unsigned = message.model_copy(
        update={"header": message.header.model_copy(update={"signature": b""})}
    )
    assert ctx.send("t", "k", unsigned) == out  # the same topic, key and bytes
    if strict:
        verify_bytes(out.value, KEY.public_bytes, CODEC)
    else:
        assert message.header.signature == b""


def test_emit_refuses_a_value_over_its_limit() -> None:
    model, fields = CASES[0]
    ctx = _Ctx(CODEC, False, KEY)
    with pytest.raises(Exception, match="over its limit"):
        ctx.emit("t", None, model, message_id="0" * 32, **{**fields, "requester": "x" * 65})


_text = st.text(max_size=20)


@settings(max_examples=500, derandomize=True, database=None, deadline=None)
@given(
    st.lists(_text, min_size=8, max_size=8),
    st.lists(_text, max_size=4),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
def test_pending_bytes_are_pydantic_s_json(texts: list[str], items: list[str], ms: int) -> None:
    pending = Pending(
        requester=texts[0], request_id=texts[1], request_message_id=texts[2],
        requester_link_code=texts[3], provider=texts[4], scenario_id=texts[5],
        legal_basis=texts[6], items=tuple(items), audit_key=texts[7], deadline_ms=ms,
    )  # fmt: skip
    assert pending.to_bytes() == pending.model_dump_json().encode()
    assert Pending.from_bytes(pending.to_bytes()) == pending
