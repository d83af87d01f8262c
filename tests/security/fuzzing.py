"""The fuzz tests' budget and their hostile inputs.

Four targets share :data:`BUDGET` (at least :data:`TOTAL` examples in all): the decoder,
the hub's per-record path, the directory feed and the portal's trail reader. Every run
draws the same examples (``derandomize=True``), keeps no example database, and has no
deadline: CI is reproducible and never fails for a slow machine.

Hypothesis costs about half a millisecond per example on the project's 2-core machine,
and as much again for every further draw, so each example draws one 64-bit number
(:func:`entropy`) and a :class:`random.Random` seeded with it spends it. Measured there,
with other work running (load average 3.5): the four targets take about 2 minutes
(decoder 59 s, the hub's path 26 s, portal 19 s, directory 18 s). Most inputs
are cheap mutations of genuine encodings — a bit flipped, a byte set, bytes inserted,
removed or repeated, an overlong varint, a length that lies, a cut — because the marker
and the fingerprint mostly survive, so the body parser is what meets them; the rest are
random bytes, alone or behind a genuine header. The targets turn the mutations that still
decode into schema-valid hostile messages (re-signed by their sender, say), so the checks
past the decoder are what must refuse them. :func:`rewrite` makes schema-valid hostile
messages directly: one field of a genuine message replaced by a value that fits its type
and limits — another agency's id or link code, another scenario, an empty or long text, a
date in the past or far ahead, an empty or repeated list — drawn from a palette.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

__all__ = [
    "BUDGET",
    "TOTAL",
    "entropy",
    "fuzz_settings",
    "hostile",
    "mutate",
    "quiet",
    "rewrite",
]

M = TypeVar("M", bound=BaseModel)

TOTAL = 100_000
"""Examples over all fuzz targets, at least."""

BUDGET = {"decoder": 70_000, "router": 8_000, "directory": 8_000, "portal": 14_000}
"""Examples per target: the decoder is the cheapest, the hub's path the dearest."""


def fuzz_settings(target: str) -> settings:
    """Hypothesis settings for one target: its share of the budget, reproducible."""
    return settings(
        max_examples=BUDGET[target],
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],  # the targets, not the strategies
    )


@contextmanager
def quiet(*names: str) -> Iterator[None]:
    """Only errors from these loggers: every refusal is a warning, tens of thousands here."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def entropy() -> st.SearchStrategy[random.Random]:
    """What each example draws: one number, as the seed of a Random (printed on failure)."""
    return st.integers(min_value=0, max_value=(1 << 64) - 1).map(random.Random)


_LIES = (0x00, 0x01, 0x7E, 0x7F, 0x80, 0xFE, 0xFF)  # zig-zag varints: 0, -1, 63, -64, more…


def mutate(rng: random.Random, data: bytes, most: int = 4) -> bytes:
    """``data`` with one to ``most`` mutations."""
    out = bytearray(data)
    for _ in range(rng.randint(1, most)):
        at = rng.randint(0, len(out))
        op = rng.randrange(8)
        if op == 0 and out:  # flip one bit
            out[at % len(out)] ^= 1 << rng.randrange(8)
        elif op == 1 and out:  # set one byte
            out[at % len(out)] = rng.randrange(256)
        elif op == 2:  # insert a few bytes
            out[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 3:  # remove a run
            del out[at : at + rng.randint(1, 16)]
        elif op == 4:  # cut here
            del out[at:]
        elif op == 5 and out:  # repeat a run elsewhere
            start = rng.randrange(len(out))
            out[at:at] = out[start : start + rng.randint(1, 32)]
        elif op == 6:  # an overlong or huge varint
            out[at:at] = b"\xff" * rng.randint(1, 11) + rng.choice((b"\x01", b"\x7f"))
        elif out:  # a length, count or union index that lies
            out[at % len(out)] = rng.choice(_LIES)
    return bytes(out)


def hostile(rng: random.Random, seeds: Sequence[bytes]) -> bytes:
    """Mostly a mutation of one of ``seeds``; sometimes a cut, random bytes, or random
    bytes behind one of the seeds' headers (marker and fingerprint)."""
    seed = rng.choice(seeds)
    kind = rng.randrange(10)
    if kind < 7:
        return mutate(rng, seed)
    if kind == 7:
        return seed[: rng.randrange(len(seed))]
    if kind == 8:
        return seed[:10] + rng.randbytes(rng.randint(0, 200))
    return rng.randbytes(rng.randint(0, 64))


def rewrite(rng: random.Random, message: M, palette: Sequence[Any]) -> M | None:
    """``message`` with one field (at any depth, the signature aside) replaced by a
    hostile value of its type; ``None`` if the value breaks the model's own rules."""
    data = message.model_dump()
    leaves = list(_leaves(data, ()))
    if not leaves:
        return None
    path, old = rng.choice(leaves)
    holder = data
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = _like(rng, old, palette)
    try:
        return type(message).model_validate(data)
    except ValidationError:
        return None


def _leaves(data: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            if key != "signature":
                yield from _leaves(value, (*path, key))
    elif path:
        yield path, data


def _like(rng: random.Random, old: Any, palette: Sequence[Any]) -> Any:
    """A value of ``old``'s kind that a hostile sender might put there."""
    if isinstance(old, bool):
        return not old
    if isinstance(old, enum.Enum):
        return rng.choice(list(type(old)))
    if isinstance(old, int):
        return rng.choice((0, -1, old + 1, old - 1, 2**31 - 1, -(2**63), rng.getrandbits(40)))
    if isinstance(old, datetime):
        return old + timedelta(seconds=rng.choice((-1, 1)) * 10 ** rng.randint(0, 9))
    if isinstance(old, bytes):
        return rng.choice((b"", rng.randbytes(len(old)), old[:-1], old + b"\x00",
                           *[p for p in palette if isinstance(p, bytes)]))  # fmt: skip
    if isinstance(old, list | tuple):
        texts = [p for p in palette if isinstance(p, str)]
        return rng.choice(([], [*old, *old], [rng.choice(texts)], [*old, rng.choice(texts)]))
    texts = [p for p in palette if isinstance(p, str)]
    if isinstance(old, str) and old and rng.random() < 0.3:  # one character off
        at = rng.randrange(len(old))
        return old[:at] + rng.choice("a0Z-_ .\u3042\U0001f600") + old[at + 1 :]
    return rng.choice(("", "x" * rng.randint(1, 300), *texts))
