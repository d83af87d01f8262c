"""My Number (個人番号): format and check digit.

A My Number is 12 decimal digits; the 12th is a check digit over the first 11, defined by
the enforcement ordinance of the My Number Act (行政手続における特定の個人を識別するための
番号の利用等に関する法律施行令 第8条)::

    P_n  the n-th of the first 11 digits, counted from the right (n = 1..11)
    Q_n  n + 1 for 1 <= n <= 6, n - 5 for 7 <= n <= 11
    r    = (sum of P_n * Q_n) mod 11
    check digit = 0 if r <= 1 else 11 - r

The number is visible and revocable; Renkei never uses it as a join key (see DESIGN.md).
This module only says whether a string *is* a well-formed My Number.

Error messages never repeat the number itself: it is specific personal information
(特定個人情報) and messages end up in logs and dead-letter records.
"""

from __future__ import annotations

import operator
import random

from renkei.errors import InvalidMyNumberError

__all__ = ["LENGTH", "check_digit", "generate", "is_valid", "validate"]

LENGTH = 12
"""Digits in a My Number, check digit included."""

# Q_n for n = 1..11, i.e. weights for the first 11 digits read from the right.
_WEIGHTS_FROM_RIGHT = (2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6)

_ZEROS = ord("0") * sum(_WEIGHTS_FROM_RIGHT)  # what the digits' bytes add beyond their values

_ASCII_DIGITS = frozenset("0123456789")

# People and agency systems write the number with full-width digits (from IME input) and
# with hyphens or spaces in groups of four; those are presentation, not content. Anything
# else (letters, other scripts' digits, circled digits) is refused rather than guessed at.
_PRESENTATION = str.maketrans(
    {
        **{chr(0xFF10 + d): str(d) for d in range(10)},  # ０..９ → 0..9
        **dict.fromkeys("-‐‑‒–—―−－ー ｰ\u3000\t", None),
    }
)


def _require_digits(text: str, expected: int, what: str) -> None:
    """Raise unless ``text`` is exactly ``expected`` ASCII digits."""
    if len(text) == expected and text.isascii() and text.isdigit():
        return  # the usual case, in C; the loop below only finds what to say
    for position, char in enumerate(text, start=1):
        if char not in _ASCII_DIGITS:
            raise InvalidMyNumberError(
                f"{what} may contain only digits, spaces and hyphens; found {char!r} "
                f"at digit position {position}"
            )
    if len(text) != expected:
        raise InvalidMyNumberError(f"{what} must have {expected} digits, got {len(text)}")


def check_digit(first11: str) -> int:
    """Return the check digit for the first 11 digits of a My Number.

    :param first11: exactly 11 ASCII digits.
    :raises InvalidMyNumberError: if ``first11`` is not 11 ASCII digits.
    """
    _require_digits(first11, LENGTH - 1, "the first part of a My Number")
    # An ASCII digit's byte is its value plus ord("0"): summed in C, no int() per digit
    # (a restore checks every person's number: measured 13 % of its CPU as a generator).
    total = sum(map(operator.mul, first11.encode()[::-1], _WEIGHTS_FROM_RIGHT)) - _ZEROS
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def validate(number: str) -> str:
    """Return the canonical 12-digit form of ``number``, or raise.

    Full-width digits are read as digits; hyphens (any dash variant) and spaces (including
    the ideographic space U+3000) are dropped. Nothing else is accepted.

    :raises InvalidMyNumberError: not a string, a character that is not a digit, not 12
        digits, or a check digit that does not match the first 11 digits.
    """
    if not isinstance(number, str):
        raise InvalidMyNumberError(
            f"a My Number must be given as text, not {type(number).__name__} "
            "(an integer loses leading zeros)"
        )
    digits = number.translate(_PRESENTATION)
    if not digits:
        raise InvalidMyNumberError("the My Number is empty")
    _require_digits(digits, LENGTH, "a My Number")
    if check_digit(digits[:-1]) != int(digits[-1]):
        raise InvalidMyNumberError(
            "the check digit (12th digit) of the My Number does not match its first 11 "
            "digits: a digit was probably mistyped"
        )
    return digits


def is_valid(number: object) -> bool:
    """Return whether ``number`` is a well-formed My Number (see :func:`validate`)."""
    if not isinstance(number, str):
        return False
    try:
        validate(number)
    except InvalidMyNumberError:
        return False
    return True


def generate(rng: random.Random) -> str:
    """Return a random well-formed My Number drawn from ``rng``.

    For synthetic data only; real numbers are assigned by the municipality via J-LIS.
    """
    first11 = f"{rng.randrange(10 ** (LENGTH - 1)):0{LENGTH - 1}d}"
    return first11 + str(check_digit(first11))
