"""Describe a failure without quoting the input that caused it.

Error texts of the libraries underneath echo what they were given: pydantic's
``ValidationError`` prints ``input_value='123456789018'``, a field validator's message may
name the value it refused, fastavro's errors carry the bytes they choked on. The hub's
dead letters, its ``HubError`` details and its log lines must never hold a My Number or a
basic-4 (name, kana, birth date, address) in clear, so whatever goes there about an
input is built here from the *kinds* and *locations* of the errors only.
"""

from __future__ import annotations

import re
import traceback

from pydantic import ValidationError

from renkei.errors import BadMagicError, DecodeError, TruncatedError, UnknownSchemaError

__all__ = ["describe_decode_error", "describe_exception", "withheld_traceback"]

_TYPE_NAME = re.compile(r"^(jp\.renkei\.[A-Za-z0-9_]+): ")
# Messages the codec builds from the framing alone (marker bytes, lengths, fingerprints).
_FRAMING = (BadMagicError, TruncatedError, UnknownSchemaError)
_MAX_PROBLEMS = 5


def describe_decode_error(exc: DecodeError) -> str:
    """What was wrong with the bytes, as the codec saw it, with no value of theirs."""
    if isinstance(exc, _FRAMING):
        return str(exc)
    found = _TYPE_NAME.match(str(exc))
    what = found.group(1) if found else "the record"
    cause = exc.__cause__
    if isinstance(cause, ValidationError):
        problems = [
            f"{'.'.join(str(p) for p in error['loc']) or '<record>'}: {error['type']}"
            for error in cause.errors(include_input=False, include_url=False)
        ]
        more = len(problems) - _MAX_PROBLEMS
        listed = "; ".join(problems[:_MAX_PROBLEMS]) + (f"; {more} more" if more > 0 else "")
        return f"{what}: values break the contract ({listed})"
    if cause is not None:
        return f"{what}: does not decode ({type(cause).__name__})"
    return f"{what}: does not decode"


def describe_exception(exc: BaseException) -> str:
    """An unexpected failure, named by its type and where it happened, not its message."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__} in {last.name} ({last.filename.rsplit('/', 1)[-1]}:{last.lineno})"


def withheld_traceback(exc: BaseException) -> str:
    """The traceback's frames, for a log line, with every exception message left out.

    The frames name code, not data; the messages of the exception and of its causes may
    quote the input (see the module docstring).
    """
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        lines.append(
            f"{type(current).__name__} (message withheld: it may quote the input)\n"
            + "".join(traceback.format_tb(current.__traceback__))
        )
        current = current.__cause__ or current.__context__
    return "\n".join(reversed(lines))
