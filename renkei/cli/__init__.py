"""The ``renkei`` command line: one entry point, a sub-command per role."""

from .app import app

__all__ = ["app"]
