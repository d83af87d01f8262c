"""Signing and verifying whole messages (Ed25519 over the single-object encoding).

The signed bytes are the message's encoding with ``header.signature`` empty
(:meth:`schemas.codec.Codec.signing_payload`), so any Avro library can reproduce them.
"""

from __future__ import annotations

from typing import TypeVar

from renkei.crypto import SigningKey, verify
from schemas.codec import Codec
from schemas.models import Message

__all__ = ["sign_message", "verify_message"]

M = TypeVar("M", bound=Message)


def sign_message(message: M, key: SigningKey, codec: Codec) -> M:
    """``message`` with its header's signature set."""
    signature = key.sign(codec.signing_payload(message))
    header = message.header.model_copy(update={"signature": signature})
    return message.model_copy(update={"header": header})


def verify_message(message: Message, public_key: bytes, codec: Codec) -> None:
    """Raise :class:`renkei.errors.SignatureError` unless the sender's key signed ``message``."""
    verify(public_key, codec.signing_payload(message), message.header.signature)
