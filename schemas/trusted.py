"""Build a model from values already checked against the contract, without validating again.

The hub's hot path checks every field of an inbound message while it reads the bytes
(:mod:`schemas.fastread`) and builds its own state rows from values it checked; running
pydantic's validation over them a second time would cost more than reading them did
(≈ 3 µs for a ten-field model, ≈ 0.8 µs this way). :func:`trusted` sets the instance up
exactly as pydantic's own ``model_construct`` does — the field values, the set of fields
given, no extras, no private attributes — so the result compares, hashes, dumps and copies
like a validated instance. ``tests/unit/test_fastread.py`` holds it to that for every
model built this way, so a pydantic release that changes its internals fails there.

Only for values that passed the same checks the model's validators make: anything else
must go through the model's constructor.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["trusted"]

T = TypeVar("T", bound=BaseModel)

_set = object.__setattr__
_new = object.__new__


def trusted(cls: type[T], values: dict[str, Any]) -> T:
    """An instance of ``cls`` holding ``values`` (every field of ``cls``, already valid)."""
    model = _new(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", set(values))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model
