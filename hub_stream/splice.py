"""Encode one message, then many copies that differ only in a few fixed-length strings.

A registry event becomes one ``LifeEventNotice`` per agency that differ only in the
message id and the link code; a rotation becomes ``LinkCodeRemap`` messages that differ
only in the message id and the two codes. Building, validating, encoding and (in strict
mode) encoding again to sign each copy costs ~60 µs in pydantic and fastavro; splicing
the new strings into the bytes of one encoded template costs ~1 µs and gives the same
bytes, because in Avro's binary encoding a string of the same length occupies the same
bytes (a length varint, then UTF-8). The signed copy is the unsigned one with the
header's empty ``signature`` (one ``00`` byte, found by
:meth:`schemas.codec.Codec.signature_span`) replaced by the signature — exactly what
:func:`renkei.envelope.encode_signed` writes and what a receiver splices out again to
verify (``tests/unit/test_life_events.py`` and ``tests/unit/test_signature_bytes.py``
check byte equality).

The codec still encodes every template, so the contract has one implementation. A
template whose placeholders are not each found exactly once in its bytes (a body that
happens to contain one), or a value of another length, is refused: the caller encodes
that message the ordinary way.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from schemas.codec import Codec
from schemas.models import Message
from schemas.wire import encode_long

__all__ = ["Template"]


class Template:
    """The encoding of one message with placeholders; see the module docstring.

    Build with :meth:`build`. ``message.header.signature`` must be empty.
    """

    __slots__ = ("_cuts", "_sig_at", "_unsigned")

    def __init__(
        self, unsigned: bytes, sig_at: int, cuts: tuple[tuple[int, int, int], ...]
    ) -> None:
        self._unsigned = unsigned
        self._sig_at = sig_at
        self._cuts = cuts  # (start, end, index of the placeholder), in byte order

    @classmethod
    def build(cls, codec: Codec, message: Message, placeholders: Sequence[str]) -> Template | None:
        """A template of ``message``, whose ASCII ``placeholders`` fill() will replace in
        order; None if they cannot be located unambiguously."""
        if message.header.signature:
            raise ValueError("a template is built from an unsigned message")
        unsigned = codec.encode(message)
        sig_at = codec.signature_span(unsigned)[0]  # the empty signature's one 00 byte
        found = []
        for index, placeholder in enumerate(placeholders):
            raw = placeholder.encode("ascii")
            start = unsigned.find(raw)
            if start < 0 or unsigned.find(raw, start + 1) >= 0:
                return None
            found.append((start, start + len(raw), index))
        found.sort()
        for (_, end, _), (start, _, _) in pairwise(found):
            if end > start:
                return None  # overlapping placeholders
        if any(start <= sig_at < end for start, end, _ in found):
            return None
        return cls(unsigned, sig_at, tuple(found))

    def fill(self, values: Sequence[str]) -> bytes | None:
        """The unsigned encoding with ``values`` in place of the placeholders (same order);
        None if a value's length differs from its placeholder's (encode that one the
        ordinary way)."""
        parts = []
        done = 0
        for start, end, index in self._cuts:
            raw = values[index].encode()
            if len(raw) != end - start:
                return None
            parts.append(self._unsigned[done:start])
            parts.append(raw)
            done = end
        parts.append(self._unsigned[done:])
        return b"".join(parts)

    def sign(self, unsigned: bytes, signature: bytes) -> bytes:
        """``unsigned`` (from :meth:`fill`) with ``signature`` in its header."""
        at = self._sig_at
        return unsigned[:at] + encode_long(len(signature)) + signature + unsigned[at + 1 :]
