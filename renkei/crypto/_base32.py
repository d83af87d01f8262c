"""Fixed-width lowercase RFC 4648 base32 for the 33-byte link code, without padding.

The standard library's ``base64.b32encode``/``b32decode`` loop over 5-byte groups in Python
and cost about 3 and 4 µs for a link code — three times the AES-SIV work they wrap. This
codec does the same conversion with a handful of big-integer operations: the 265-bit value
(264 code bits and one zero pad bit) is spread so that every 5-bit group sits in its own
byte, and ``bytes.translate`` maps those bytes to the alphabet. Decoding runs the same
stages backwards. The output is byte for byte what ``base64.b32encode(raw).rstrip(b"=")``
gives, lowercased; a unit test holds it to that.

Decoding is strict: exactly 53 characters from ``a-z2-7`` and a zero pad bit, so each link
code has one spelling only (agencies key their records by it).
"""

from __future__ import annotations

__all__ = ["ALPHABET", "RAW_LENGTH", "TEXT_LENGTH", "decode", "encode"]

ALPHABET = b"abcdefghijklmnopqrstuvwxyz234567"
RAW_LENGTH = 33
TEXT_LENGTH = 53  # ceil(33 * 8 / 5)
_PAD_BITS = TEXT_LENGTH * 5 - RAW_LENGTH * 8  # 1


def _spread_stages(groups: int) -> list[tuple[int, int, int]]:
    """(move mask, keep mask, shift) stages that take 5-bit group i from bit 5i to bit 8i.

    Group i must move 3i bits; writing i in binary, stage k moves the groups whose bit k is
    set by 3 * 2**k. Going from the high bit down, no moved group lands on a resting one.
    """
    full = (1 << (8 * groups)) - 1
    positions = [5 * i for i in range(groups)]
    stages: list[tuple[int, int, int]] = []
    for k in reversed(range((groups - 1).bit_length())):
        bit = 1 << k
        shift = 3 * bit
        move = 0
        for i in range(groups):
            if i & bit:
                move |= 0x1F << positions[i]
                positions[i] += shift
        stages.append((move, full ^ move, shift))
    assert positions == [8 * i for i in range(groups)]
    return stages


_STAGES = _spread_stages(TEXT_LENGTH)
# Encoding moves group bits t up by s: x - t + (t << s) = x + t * (2**s - 1), two operations.
_SPREAD = [(move, (1 << shift) - 1) for move, _, shift in _STAGES]
_FULL = (1 << (8 * TEXT_LENGTH)) - 1
_GATHER = [(move << shift, _FULL ^ (move << shift), shift) for move, _, shift in reversed(_STAGES)]
_TO_TEXT = bytes.maketrans(bytes(range(32)), ALPHABET)
_FROM_TEXT = bytes(ALPHABET.index(c) if c in ALPHABET else 0xFF for c in range(256))
_DIGITS = bytes(range(32))


def encode(raw: bytes) -> str:
    """Encode exactly 33 bytes as 53 lowercase base32 characters."""
    if len(raw) != RAW_LENGTH:
        raise ValueError(f"expected {RAW_LENGTH} bytes, got {len(raw)}")
    x = int.from_bytes(raw, "big") << _PAD_BITS
    for move, factor in _SPREAD:
        x += (x & move) * factor
    return x.to_bytes(TEXT_LENGTH, "big").translate(_TO_TEXT).decode("ascii")


def decode(text: str) -> bytes | None:
    """Decode 53 lowercase base32 characters to 33 bytes; ``None`` if ``text`` is not one."""
    if len(text) != TEXT_LENGTH or not text.isascii():
        return None
    digits = text.encode("ascii").translate(_FROM_TEXT)
    if digits.translate(None, _DIGITS):  # anything left is not in the alphabet
        return None
    x = int.from_bytes(digits, "big")
    for move, keep, shift in _GATHER:
        x = (x & keep) | ((x & move) >> shift)
    if x & ((1 << _PAD_BITS) - 1):  # a set pad bit would be a second spelling of one code
        return None
    return (x >> _PAD_BITS).to_bytes(RAW_LENGTH, "big")
