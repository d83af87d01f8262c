"""The errors of bulk linkage, under :class:`renkei.errors.RenkeiError`::

RenkeiError
└── LinkageError           bulk linkage could not run
    ├── LinkageInputError  an input file is missing, unreadable or lacks a column
    └── ResumeMismatchError the output folder holds another run's partial work
"""

from __future__ import annotations

from renkei.errors import RenkeiError

__all__ = ["LinkageError", "LinkageInputError", "ResumeMismatchError"]


class LinkageError(RenkeiError):
    """Bulk linkage could not run."""


class LinkageInputError(LinkageError):
    """An input file is missing, unreadable, lacks a column or repeats an id."""


class ResumeMismatchError(LinkageError):
    """The output folder holds partial work of a run over other inputs or settings."""
