"""Signing and verifying whole messages (Ed25519 over the bytes as sent).

The signed bytes are the message's single-object encoding with ``header.signature``
empty (one ``00`` byte in its place), marker and fingerprint included. A sender encodes
once with the signature empty, signs those bytes and splices the signature in
(:func:`encode_signed`); a receiver splices it out of the bytes it received and verifies
(:func:`verify_bytes`). Nothing is re-encoded on the way in, so a message written with an
older (or newer) schema version verifies after a reader's schema changed, and so does an
audit checkpoint written years ago.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from renkei.crypto import SigningKey, verify
from renkei.errors import DecodeError, SignatureError
from schemas.codec import Codec
from schemas.models import Message

__all__ = ["encode_signed", "sign_message", "verify_bytes", "verify_message"]

M = TypeVar("M", bound=Message)


def encode_signed(message: Message, key: SigningKey, codec: Codec) -> bytes:
    """The bytes to send: ``message`` encoded once, signed, the signature spliced in.

    The same bytes as ``codec.encode(sign_message(message, key, codec))``, one encoding
    cheaper. Any signature ``message`` carries is replaced.

    :raises EncodeError: ``message`` does not encode.
    """
    unsigned = codec.signing_payload(message)
    return codec.join_signature(unsigned, key.sign(unsigned))


def sign_message(message: M, key: SigningKey, codec: Codec) -> M:
    """``message`` with its header's signature set (encode it to send it)."""
    signature = key.sign(codec.signing_payload(message))
    header = message.header.model_copy(update={"signature": signature})
    return message.model_copy(update={"header": header})


def verify_bytes(
    data: bytes,
    public_key: bytes,
    codec: Codec,
    check: Callable[[bytes, bytes, bytes], None] = verify,
) -> None:
    """Check the signature in received bytes against the sender's public key.

    :param data: the value as it arrived (a Kafka record's value), not a re-encoding.
    :param check: ``(public key, signed bytes, signature)``, raising SignatureError:
        :func:`renkei.crypto.verify`, or the same verdicts faster
        (:func:`renkei.crypto.sodium.verify`).
    :raises SignatureError: the signature does not verify, or cannot be found because
        the header cannot be walked (the :class:`~renkei.errors.DecodeError` is its cause).
    """
    try:
        signed, signature = codec.split_signature(data)
    except DecodeError as exc:
        raise SignatureError(f"no signature can be read from the bytes: {exc}") from exc
    check(public_key, signed, signature)


def verify_message(message: Message, public_key: bytes, codec: Codec) -> None:
    """Check the signature of a message built (or re-encoded) by this process's codec.

    Re-encodes ``message`` with the current schema: right for a message this process
    signed, wrong for one received from a writer of another schema version. A received
    message is verified from its bytes with :func:`verify_bytes`.

    :raises SignatureError: the signature does not verify.
    """
    verify(public_key, codec.signing_payload(message), message.header.signature)
